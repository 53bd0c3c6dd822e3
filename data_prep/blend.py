"""Blend weights for megatron-core from per-source token counts and a target mix.

megatron-core's `BlendedMegatronDatasetConfig(blend=([prefixes], [weights]))` samples sources with
probability proportional to the weights; the weights are the *share of training tokens* each
source gets, whatever its size. So the number of passes over a source is
share * train_tokens / source_tokens - printed, with a warning above 4 epochs (Muennighoff et al.
2023: beyond ~4 repetitions extra epochs are worth much less than fresh data).

Mixes: ratios (Me-LLaMA biomedical:clinical:general 15:1:4), absolute budgets (Med42: 50B clinical
+ 15B general), or replay (Meditron: 1% general, the rest in proportion to the other sources' sizes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data_prep.io import write_json_atomic
from medmegatron.errors import UserFacingError

MAX_EPOCHS = 4.0


def compute_blend(token_counts: dict[str, int], prefixes: dict[str, str], *, ratios=None,
                  budgets=None, replay=None, train_tokens: float | None = None) -> dict:
    given = [x for x in (ratios, budgets, replay) if x]
    if len(given) != 1:
        raise UserFacingError("blend: give exactly one of ratios, budgets or replay")
    mix = given[0]
    unknown = set(mix) - set(token_counts)
    if unknown:
        raise UserFacingError(f"blend: {sorted(unknown)} have no token counts; sources with data: "
                              f"{sorted(token_counts)}")
    for name, n in token_counts.items():
        if n <= 0 and (name in mix or replay):
            raise UserFacingError(f"blend: source {name} has no tokens; remove it from the mix")
    if ratios:
        if any(v < 0 for v in ratios.values()) or sum(ratios.values()) <= 0:
            raise UserFacingError("blend ratios must be non-negative and not all zero")
        total = sum(ratios.values())
        shares = {k: v / total for k, v in ratios.items()}
    elif budgets:
        total = sum(budgets.values())
        if total <= 0:
            raise UserFacingError("blend budgets must be positive token counts")
        shares = {k: v / total for k, v in budgets.items()}
        train_tokens = train_tokens or total
    else:
        fixed = sum(replay.values())
        if not 0 < fixed < 1:
            raise UserFacingError("blend replay shares must sum to a value in (0, 1), e.g. 0.01 for 1%")
        rest = {k: v for k, v in token_counts.items() if k not in replay}
        if not rest:
            raise UserFacingError("blend replay: no source left to fill the remaining share")
        rest_total = sum(rest.values())
        shares = {**{k: float(v) for k, v in replay.items()},
                  **{k: (1 - fixed) * v / rest_total for k, v in rest.items()}}
    if not train_tokens or train_tokens <= 0:
        raise UserFacingError("blend: give the training token budget (--train-tokens)")
    names = [k for k in token_counts if shares.get(k, 0) > 0]  # source order
    epochs = {k: shares[k] * train_tokens / token_counts[k] for k in names}
    warnings = [f"{k}: {e:.2f} epochs for {train_tokens:.3g} training tokens (> {MAX_EPOCHS:g}); "
                f"add data, lower its share or the budget" for k, e in epochs.items() if e > MAX_EPOCHS]
    weights = [shares[k] for k in names]
    return {
        "blend": {"prefixes": [prefixes[k] for k in names], "weights": weights},
        "data_path": [x for k in names for x in (shares[k], prefixes[k])],
        "shares": {k: shares[k] for k in names},
        "tokens": {k: int(token_counts[k]) for k in names},
        "train_tokens": float(train_tokens),
        "epochs": epochs,
        "warnings": warnings,
    }


def idx_token_count(prefix: str | Path) -> int:
    """Total tokens of a Megatron dataset, read from its .idx (no manifest needed)."""
    path = Path(f"{prefix}.idx")
    if not path.exists():
        raise UserFacingError(f"{path} does not exist: give the prefix of a tokenized dataset")
    with open(path, "rb") as fh:
        header = fh.read(9 + 8 + 1 + 8 + 8)
        if header[:9] != b"MMIDIDX\x00\x00":
            raise UserFacingError(f"{path}: not a Megatron .idx file (bad magic)")
        n = int(np.frombuffer(header[18:26], "<u8")[0])
        lengths = np.fromfile(fh, dtype="<i4", count=n)
    return int(lengths.sum(dtype=np.int64))


def _parse_mapping(text: str, what: str) -> dict[str, float]:
    out = {}
    for part in text.split(","):
        if "=" not in part:
            raise UserFacingError(f"--{what}: expected NAME=VALUE pairs separated by commas, got {part!r}")
        k, v = part.split("=", 1)
        try:
            out[k.strip()] = float(v)
        except ValueError:
            raise UserFacingError(f"--{what}: {v!r} is not a number") from None
    return out


def blend_command(source_specs: list[str], *, ratios=None, budgets=None, replay=None,
                  train_tokens: float, output: str) -> str:
    prefixes = {}
    for spec in source_specs:
        if "=" not in spec:
            raise UserFacingError(f"--source: expected NAME=PREFIX, got {spec!r}")
        name, prefix = spec.split("=", 1)
        prefixes[name] = prefix
    counts = {k: idx_token_count(p) for k, p in prefixes.items()}
    blend = compute_blend(
        counts, prefixes, ratios=_parse_mapping(ratios, "ratios") if ratios else None,
        budgets=_parse_mapping(budgets, "budgets") if budgets else None,
        replay=_parse_mapping(replay, "replay") if replay else None, train_tokens=train_tokens)
    write_json_atomic(output, blend)
    return format_blend(blend) + f"\nwrote {output}"


def format_blend(blend: dict) -> str:
    lines = [f"{'source':<16}{'tokens':>16}{'share':>10}{'epochs':>10}"]
    for k, share in blend["shares"].items():
        lines.append(f"{k:<16}{blend['tokens'][k]:>16,}{share:>10.4f}{blend['epochs'][k]:>10.2f}")
    lines += [f"WARNING: {w}" for w in blend["warnings"]]
    return "\n".join(lines)
