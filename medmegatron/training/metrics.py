"""Where training numbers go: metrics.jsonl (the record tests and plots read), TensorBoard, a bar.

Only global rank 0 writes; losses arrive already reduced across the world.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path


class MetricsLogger:
    def __init__(self, run_dir: Path, total_iters: int, start_iter: int, enabled: bool,
                 tensorboard: bool, progress_bar: bool, log_interval: int = 1,
                 wandb_project: str | None = None, config: dict | None = None):
        self.enabled = enabled
        self.log_interval = max(1, log_interval)
        self.path = run_dir / "metrics.jsonl"
        self._tb = None
        self._bar = None
        self._wandb = None
        if not enabled:
            return
        if wandb_project:  # availability checked by the loop on every rank
            import wandb

            self._wandb = wandb.init(project=wandb_project, name=run_dir.name, dir=str(run_dir),
                                     config=config, resume="allow")
        run_dir.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
            except ImportError:
                print("tensorboard is not installed: metrics go to metrics.jsonl only", file=sys.stderr)
        if progress_bar:
            from tqdm import tqdm

            self._bar = tqdm(total=total_iters, initial=start_iter, desc="train", unit="step",
                             dynamic_ncols=True, file=sys.stderr)

    def log(self, record: dict) -> None:
        if not self.enabled:
            return
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        step = record["iteration"]
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in record.items() if isinstance(v, (int, float))}, step=step)
        if self._tb is not None:
            for key, value in record.items():
                if key != "iteration" and isinstance(value, (int, float)) and math.isfinite(value):
                    self._tb.add_scalar(key.replace(" ", "_"), value, step)
        if self._bar is not None and "lr" in record:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}")
        elif "lr" in record and step % self.log_interval == 0:
            print(f"iter {step:6d} | loss {record['loss']:.4f} | lr {record['lr']:.3e}", flush=True)

    def write(self, message: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(message)
        else:
            print(message, flush=True)

    def close(self) -> None:
        if not self.enabled or self._file.closed:
            return
        if self._bar is not None:
            self._bar.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()
        self._file.close()


def read_metrics(run_dir: str | Path) -> list[dict]:
    """Every record of `<run_dir>/metrics.jsonl`, in order. A run killed mid-write leaves a torn
    last line; it is skipped rather than making the whole file unreadable."""
    path = Path(run_dir) / "metrics.jsonl"
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def metric_series(records: list[dict], prefix: str) -> dict[str, tuple[list[int], list[float]]]:
    """{name: (iterations, values)} of the numeric keys `<prefix><name>` (e.g. "loss/" -> per source)."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    for record in records:
        for key, value in record.items():
            if key.startswith(prefix) and isinstance(value, (int, float)):
                steps, values = out.setdefault(key[len(prefix):], ([], []))
                steps.append(record["iteration"])
                values.append(value)
    return out
