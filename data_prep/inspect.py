"""`medmegatron prep inspect`: counts per source, length histograms (PNG), removals per step.

Reads only what the pipeline wrote (manifest.json and the .idx files), so it is cheap on any size.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from medmegatron.errors import UserFacingError


def idx_lengths(prefix: str | Path) -> np.ndarray:
    path = Path(f"{prefix}.idx")
    with open(path, "rb") as fh:
        header = fh.read(34)
        if header[:9] != b"MMIDIDX\x00\x00":
            raise UserFacingError(f"{path}: not a Megatron .idx file")
        n = int(np.frombuffer(header[18:26], "<u8")[0])
        return np.fromfile(fh, dtype="<i4", count=n)


def length_histogram_png(lengths: dict[str, np.ndarray], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    top = max((int(v.max()) for v in lengths.values() if len(v)), default=1)
    bins = np.logspace(0, np.log10(max(top, 2)), 50)
    for name, v in lengths.items():
        if len(v):
            ax.hist(v, bins=bins, histtype="step", label=f"{name} (n={len(v):,})")
    ax.set_xscale("log")
    ax.set_xlabel("document length (tokens, incl. EOD)")
    ax.set_ylabel("documents")
    ax.set_title("Document length per source")
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def inspect_run(path: str | Path, out_dir: str | Path | None = None) -> dict:
    """Summary dict + PNG of a pipeline output dir or a single tokenized prefix."""
    path = Path(path)
    manifest_file = path / "manifest.json" if path.is_dir() else None
    if manifest_file is not None and manifest_file.exists():
        manifest = json.loads(manifest_file.read_text())
        per_source = manifest["steps"]["per_source"]
        prefixes = manifest["outputs"].get("tokenized", {})
        out_dir = Path(out_dir) if out_dir else path
    elif Path(f"{path}.idx").exists():
        per_source, prefixes = {path.name: {}}, {path.name: str(path)}
        out_dir = Path(out_dir) if out_dir else path.parent
    else:
        raise UserFacingError(f"{path}: neither a pipeline output dir (with manifest.json) nor a "
                              "tokenized prefix (with .idx)")
    lengths = {name: idx_lengths(p) for name, p in prefixes.items()}
    summary = {}
    for name, v in lengths.items():
        s = dict(per_source.get(name, {}))
        s.update(documents=int(len(v)), tokens=int(v.sum(dtype=np.int64)),
                 tokens_per_doc_median=float(np.median(v)) if len(v) else 0.0,
                 tokens_per_doc_p99=float(np.percentile(v, 99)) if len(v) else 0.0)
        summary[name] = s
    png = length_histogram_png(lengths, out_dir / "length_histogram.png") if lengths else None
    return {"sources": summary, "histogram_png": str(png) if png else None}


def inspect_command(path: str, out_dir: str | None = None) -> str:
    info = inspect_run(path, out_dir)
    lines = [f"{'source':<14}{'docs':>10}{'tokens':>14}{'median':>9}  removed per step"]
    for name, s in info["sources"].items():
        removed = ", ".join(f"{k}={v}" for k, v in sorted(s.get("removed", {}).items()) if v) or "-"
        lines.append(f"{name:<14}{s['documents']:>10,}{s['tokens']:>14,}"
                     f"{s['tokens_per_doc_median']:>9.0f}  {removed}")
        if s.get("phi_replacements"):
            lines.append(f"{'':<14}PHI placeholders: " + ", ".join(
                f"{k}={v}" for k, v in sorted(s["phi_replacements"].items())))
        if s.get("skipped_records"):
            lines.append(f"{'':<14}skipped records: " + ", ".join(
                f"{k}={v}" for k, v in sorted(s["skipped_records"].items())))
    if info["histogram_png"]:
        lines.append(f"length histogram: {info['histogram_png']}")
    return "\n".join(lines)
