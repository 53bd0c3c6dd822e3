"""Choosing MinHash LSH bands x rows, the S-curve, and the Med42 preset.

P(a pair with Jaccard j becomes a candidate) = 1 - (1 - j^r)^b for b bands of r rows. Med42's paper
gives "9,000 hashes, 15 buckets of 400" for threshold 0.85: 15 x 400 = 6,000, and 15 bands of 400
rows only catch pairs above ~0.99 (P(0.85) ~ 1e-28). The preset therefore uses 9,000 hashes with
bands x rows chosen by `choose_bands_rows` for 0.85, prints the S-curve, and `check_plan` warns
when a choice cannot reach its threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REPORT_POINTS = (0.5, 0.7, 0.8, 0.85, 0.95)


def detection_probability(j, bands: int, rows: int):
    j = np.asarray(j, dtype=float)
    return 1.0 - (1.0 - j ** rows) ** bands


def s_curve_midpoint(bands: int, rows: int) -> float:
    """Jaccard where detection is 50% (exact, by bisection)."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if detection_probability(mid, bands, rows) < 0.5:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _areas(threshold: float, bs: np.ndarray, rs: np.ndarray, grid: int = 400):
    """(false-positive area below t, false-negative area above t) for each (b, r), trapezoid rule."""
    lo = np.linspace(0.0, threshold, grid)
    hi = np.linspace(threshold, 1.0, grid)
    p_lo = 1.0 - (1.0 - lo[None, :] ** rs[:, None]) ** bs[:, None]
    p_hi = 1.0 - (1.0 - hi[None, :] ** rs[:, None]) ** bs[:, None]
    return np.trapezoid(p_lo, lo, axis=1), np.trapezoid(1.0 - p_hi, hi, axis=1)


def _all_pairs(num_hashes: int):
    bs, rs = [], []
    for r in range(1, num_hashes + 1):
        for b in range(1, num_hashes // r + 1):
            bs.append(b)
            rs.append(r)
    return np.array(bs), np.array(rs)


def choose_bands_rows(threshold: float, num_hashes: int, min_detection: float = 0.99,
                      mode: str = "recall", fp_weight: float = 0.5,
                      fn_weight: float = 0.5) -> tuple[int, int]:
    """Pick (bands, rows) with bands*rows <= num_hashes.

    mode="recall" (default for dedup, where candidates are verified by true Jaccard so false
    positives only cost time): among choices detecting a pair at exactly `threshold` with
    probability >= `min_detection`, the one with the least false-positive area below it.
    mode="weighted": datasketch's criterion, fp_weight * FP area + fn_weight * FN area.
    """
    if num_hashes > 2000:  # b*r == budget is always best or tied; keep the search vectorised
        rs = np.arange(1, num_hashes + 1)
        bs = num_hashes // rs
    else:
        bs, rs = _all_pairs(num_hashes)
    fp, fn = _areas(threshold, bs, rs)
    if mode == "weighted":
        best = int(np.argmin(fp * fp_weight + fn * fn_weight))
        return int(bs[best]), int(rs[best])
    det = detection_probability(threshold, bs, rs)
    ok = det >= min_detection
    if not ok.any():
        best = int(np.argmax(det))
    else:
        cost = np.where(ok, fp, np.inf)
        best = int(np.argmin(cost))
    return int(bs[best]), int(rs[best])


@dataclass
class PlanReport:
    bands: int
    rows: int
    threshold: float
    curve: dict
    midpoint: float
    warnings: list

    def format(self) -> str:
        lines = [f"MinHash LSH: {self.bands} bands x {self.rows} rows = {self.bands * self.rows} "
                 f"hashes, target Jaccard {self.threshold}",
                 f"  50% detection at Jaccard {self.midpoint:.3f}",
                 "  P(candidate | Jaccard):"]
        lines += [f"    J={j:.2f}: {p:.4f}" for j, p in self.curve.items()]
        lines += [f"  WARNING: {w}" for w in self.warnings]
        return "\n".join(lines)


def check_plan(bands: int, rows: int, threshold: float, min_detection: float = 0.9) -> PlanReport:
    """S-curve at the report points plus warnings when the choice cannot reach `threshold`."""
    curve = {j: float(detection_probability(j, bands, rows))
             for j in sorted(set(REPORT_POINTS) | {threshold})}
    mid = s_curve_midpoint(bands, rows)
    warnings = []
    p_t = curve[threshold]
    if p_t < min_detection:
        warnings.append(
            f"{bands} bands x {rows} rows detects pairs at Jaccard {threshold} with probability "
            f"{p_t:.3g} (< {min_detection}); its S-curve is centred at {mid:.3f}, so most "
            f"near-duplicates at {threshold} are missed. Use `medmegatron prep minhash-plan "
            f"--threshold {threshold} --num-hashes {bands * rows}` to choose bands x rows.")
    return PlanReport(bands, rows, threshold, curve, mid, warnings)


# Med42 (Christophe et al. 2024): 5-gram words, Jaccard 0.85, 9,000 hashes.
MED42 = {"threshold": 0.85, "ngram": 5, "unit": "word", "num_hashes": 9000,
         "paper_bands": 15, "paper_rows": 400}


def med42_config():
    """The Med42 near-dedup config: paper's hash budget, bands x rows that reach 0.85."""
    from data_prep.minhash import MinHashConfig

    b, r = choose_bands_rows(MED42["threshold"], MED42["num_hashes"])
    return MinHashConfig(threshold=MED42["threshold"], ngram=MED42["ngram"], unit=MED42["unit"],
                         bands=b, rows=r)


def plan_command(preset=None, threshold=None, bands=None, rows=None, num_hashes=None) -> str:
    """Text for `medmegatron prep minhash-plan`."""
    from medmegatron.errors import UserFacingError

    out = []
    if preset == "med42":
        t = MED42["threshold"]
        out.append("Med42 as written in the paper (15 buckets of 400 = 6,000 hashes, not 9,000):")
        out.append(check_plan(MED42["paper_bands"], MED42["paper_rows"], t).format())
        cfg = med42_config()
        out.append(f"\nEffective Med42 preset ({MED42['num_hashes']} hashes, 5-gram words):")
        out.append(check_plan(cfg.bands, cfg.rows, t).format())
        return "\n".join(out)
    if threshold is None:
        raise UserFacingError("minhash-plan needs --preset med42 or --threshold "
                              "(with --bands/--rows to check a choice, or --num-hashes to pick one)")
    if bands and rows:
        return check_plan(bands, rows, threshold).format()
    if not num_hashes:
        raise UserFacingError("give --bands and --rows to check, or --num-hashes to choose them")
    b, r = choose_bands_rows(threshold, num_hashes)
    return f"chosen for threshold {threshold} and {num_hashes} hashes:\n" + \
        check_plan(b, r, threshold).format()
