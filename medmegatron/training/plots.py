"""PNG curves of a run from its metrics.jsonl: loss per data source, validation per source."""

from __future__ import annotations

from pathlib import Path

from medmegatron.training.metrics import metric_series, read_metrics


def plot_run(run_dir: str | Path) -> Path:
    """Write `<run_dir>/loss.png` and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    records = read_metrics(run_dir)
    fig, (train_ax, valid_ax) = plt.subplots(1, 2, figsize=(11, 4))
    total = [(r["iteration"], r["loss"]) for r in records if "loss" in r]
    if total:
        train_ax.plot(*zip(*total), color="black", lw=1.5, label="all sources")
    for index, (name, (steps, values)) in enumerate(sorted(metric_series(records, "loss/").items())):
        train_ax.plot(steps, values, lw=1, alpha=0.8, color=f"C{index}", label=name)
    train_ax.set(title="training loss per data source", xlabel="optimizer step", ylabel="loss (nats/token)")
    train_ax.legend(fontsize=8)
    for index, (name, (steps, values)) in enumerate(sorted(metric_series(records, "valid_loss/").items())):
        valid_ax.plot(steps, values, marker="o", color=f"C{index}", label=name)
    valid_ax.set(title="validation loss per data source", xlabel="optimizer step", ylabel="loss (nats/token)")
    if valid_ax.lines:
        valid_ax.legend(fontsize=8)
    fig.tight_layout()
    path = run_dir / "loss.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
