"""Run lm-eval on local medical tasks, offline, and write results as JSON and a markdown table."""

from __future__ import annotations

import json
import os
from pathlib import Path

from medmegatron.evaluation.tasks import TaskSource, write_tasks


def _offline() -> None:
    # Nothing may be fetched at run time: datasets come from local JSON files only.
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def evaluate(model, sources: list[TaskSource], work_dir: Path, limit: int | None = None,
             batch_size: int = 8, prompt: str = "plain") -> dict:
    """`model` is an lm-eval LM instance (ours or the harness's HF backend). Returns metrics by task."""
    _offline()
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    tasks = write_tasks(sources, work_dir / "tasks", prompt)
    manager = TaskManager(include_path=str(work_dir / "tasks"), include_defaults=False)
    output = simple_evaluate(model=model, tasks=tasks, task_manager=manager, limit=limit,
                             batch_size=batch_size, log_samples=False, bootstrap_iters=0)
    results = {}
    for task, metrics in (output or {}).get("results", {}).items():
        results[task] = {k.split(",")[0]: v for k, v in metrics.items()
                         if k.split(",")[0] in ("acc", "acc_norm") and isinstance(v, (int, float))}
    return results


def markdown_table(results: dict) -> str:
    lines = ["| task | acc | acc_norm |", "|---|---|---|"]
    for task, m in sorted(results.items()):
        lines.append(f"| {task} | {m.get('acc', float('nan')):.4f} | {m.get('acc_norm', float('nan')):.4f} |")
    return "\n".join(lines) + "\n"


def write_results(results: dict, out_dir: Path, extra: dict | None = None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "results.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"results": results, **(extra or {})}, indent=2))
    tmp.replace(path)
    (out_dir / "results.md").write_text(markdown_table(results))
    return path


def plot_accuracy_vs_tokens(points: list[dict], path: Path) -> Path:
    """points: [{"tokens": int, "results": {task: {acc, acc_norm}}}] -> PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    tasks = sorted({t for p in points for t in p["results"]})
    for index, task in enumerate(tasks):
        xs = [p["tokens"] for p in points if task in p["results"]]
        metric = "acc_norm" if task.endswith("_text") else "acc"
        ys = [p["results"][task].get(metric) for p in points if task in p["results"]]
        ax.plot(xs, ys, marker="o", color=f"C{index}", label=f"{task} ({metric})")
    ax.set(xlabel="training tokens", ylabel="accuracy", title="accuracy across checkpoints")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _megatron(ckpt, tp: int, pp: int, tokenizer: str | None, batch_size: int):
    from medmegatron.evaluation.megatron_lm import MegatronLM

    return MegatronLM(ckpt=str(ckpt), tensor_parallel=tp, pipeline_parallel=pp, tokenizer=tokenizer,
                      batch_size=batch_size)


class _CountTruncations:
    """lm-eval's HF backend warns once per request whose prompt exceeds the model's length (it
    keeps the right-most tokens); one summary line says the same without a line per question."""

    def __init__(self):
        self.count = 0

    def filter(self, record) -> bool:
        if str(record.msg).startswith("Combined length of context"):
            self.count += 1
            return False
        return True


def _hf(hf_dir: str, batch_size: int):
    import atexit
    import logging

    _offline()
    from lm_eval.models.huggingface import HFLM

    counter = _CountTruncations()
    logging.getLogger("lm_eval.models.huggingface").addFilter(counter)
    atexit.register(lambda: counter.count and print(
        f"note: {counter.count} prompt(s) longer than the model's context were truncated from the left"))

    return HFLM(pretrained=hf_dir, device="cpu", dtype="float32", batch_size=batch_size)


def run_eval(*, sources: list[TaskSource], output: Path, ckpt: str | None = None,
             ckpts: str | None = None, hf_dir: str | None = None, tp: int = 1, pp: int = 1,
             tokenizer: str | None = None, limit: int | None = None, batch_size: int = 8,
             prompt: str = "plain", is_writer: bool = True) -> dict:
    """One model (checkpoint or HF folder), or every checkpoint of a run with an accuracy plot."""
    from medmegatron.training.checkpointing import read_metadata

    if ckpts:
        root = Path(ckpts) / "checkpoints" if (Path(ckpts) / "checkpoints").is_dir() else Path(ckpts)
        points = []
        for path in sorted(p for p in root.glob("iter_*") if p.is_dir() and not p.name.endswith(".tmp")):
            meta = read_metadata(path)
            cfg = meta.get("config", {})
            tokens = meta.get("iteration", 0) * cfg.get("schedule", {}).get("global_batch_size", 0) \
                * cfg.get("data", {}).get("seq_length", 0)
            results = evaluate(_megatron(path, tp, pp, tokenizer, batch_size), sources,
                               output / path.name, limit, batch_size, prompt)
            points.append({"checkpoint": path.name, "tokens": tokens, "results": results})
            if is_writer:
                write_results(results, output / path.name, {"checkpoint": str(path), "tokens": tokens})
        if is_writer:
            output.mkdir(parents=True, exist_ok=True)
            (output / "sweep.json").write_text(json.dumps(points, indent=2))
            plot_accuracy_vs_tokens(points, output / "accuracy_vs_tokens.png")
        return {"points": points}
    model = _hf(hf_dir, batch_size) if hf_dir else _megatron(ckpt, tp, pp, tokenizer, batch_size)
    results = evaluate(model, sources, output, limit, batch_size, prompt)
    if is_writer:
        write_results(results, output, {"model": hf_dir or str(ckpt)})
    return results
