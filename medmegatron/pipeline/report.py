"""The report of one `medmegatron pipeline run`: what went in, how training went, what came out.

Two renderings of the same content: one self-contained HTML file (PNG plots as base64 data URIs,
inline CSS, no scripts or remote assets, so it can be mailed or archived as is) and a markdown
file with the PNGs beside it (for a repository or a wiki). Everything is read back from the files
the stages wrote (manifest.json, blend.json, metrics.jsonl, results.json/sweep.json,
planner_prediction.json), so the report can be rebuilt at any time. A stage that is missing or
failed shows as such. Only counts, names and numbers are reported, never document text
(corpora can be clinical notes).
"""

from __future__ import annotations

import io
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import yaml

from medmegatron.pipeline.report_render import (
    Plot, Section, Table, fmt, render_html, render_markdown, write_atomic,
)
from medmegatron.training import metrics
from medmegatron.training.metrics import metric_series

WARMUP_STEPS = 5  # first steps excluded from measured throughput (compilation, allocator, caches)


def _read_json(path: Path):
    """Parsed JSON, or None when the file is absent or unreadable (a stage that did not finish)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- plotting


def _figure(ncols: int = 1, width: float = 6.5):
    """An Agg figure (no pyplot, no display), or None when matplotlib is not installed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None, [None] * ncols
    fig = Figure(figsize=(width, 3.8))
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _have_matplotlib() -> bool:
    try:
        return __import__("matplotlib") is not None
    except ImportError:
        return False


def _png(fig) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


def _tokens_axis(ax, tokens_per_step: float | None) -> None:
    """Training tokens as a second x axis on top of the step axis (linear in steps)."""
    if tokens_per_step:
        top = ax.secondary_xaxis("top", functions=(lambda s: s * tokens_per_step, lambda t: t / tokens_per_step))
        top.set_xlabel("training tokens", fontsize=8)
        top.tick_params(labelsize=7)


# --------------------------------------------------------------------------- 1. header


def _header(summary: dict) -> Section:
    code = summary.get("code") or {}
    version = " · ".join(f"{k} {str(v)[:12] if k == 'git_commit' else v}" for k, v in code.items())
    rows = [[s.get("name"), s.get("kind"), s.get("status", "missing"), s.get("reason") or "", s.get("seconds"),
             (s.get("fingerprint") or "")[:12]] for s in summary.get("stages", [])]
    return Section(f"Pipeline {summary.get('pipeline', '')}", [
        f"Run folder: {summary.get('run_dir', '')}",
        f"Created (UTC): {summary.get('created_utc', '')}",
        f"Code: {version or 'unknown'}",
        Table(["stage", "kind", "status", "why", "seconds", "fingerprint"], rows)])


def _output(stage: dict, key: str) -> Path | None:
    value = (stage.get("outputs") or {}).get(key)
    return Path(value) if value else None  # never Path(""): that is the current directory


def _label(stage: dict) -> str:
    """The stage's name, with its status when its outputs may not be this run's (failed, stale)."""
    status = stage.get("status", "missing")
    return stage.get("name", "?") if status in ("done", "skipped") else f"{stage.get('name', '?')} ({status})"


def _unavailable(stage: dict, what: str) -> str:
    return f"{stage.get('name')} ({stage.get('status', 'missing')}): no {what}."


# --------------------------------------------------------------------------- 2. data


def _data_stage(stage: dict) -> list:
    folder = _output(stage, "dir")
    manifest = _read_json(folder / "manifest.json") if folder else None
    if not manifest:
        return [_unavailable(stage, f"manifest.json in {folder}")]
    per = (manifest.get("steps") or {}).get("per_source") or {}
    blend = _read_json(folder / "blend.json") or {}
    shares, epochs, counts = blend.get("shares", {}), blend.get("epochs", {}), manifest.get("counts") or {}
    rows = [[src, s.get("read"), sum((s.get("skipped_records") or {}).values()),
             sum((s.get("removed") or {}).values()), s.get("documents"), s.get("tokens"),
             sum((s.get("phi_replacements") or {}).values()), shares.get(src), epochs.get(src)]
            for src, s in per.items()]
    steps = sorted({k for s in per.values() for k, n in (s.get("removed") or {}).items() if n})
    removed = [[step] + [per[src].get("removed", {}).get(step, 0) for src in per] for step in steps]
    spans = sorted({k for s in per.values() for k, n in (s.get("exact_substring_bytes_removed") or {}).items() if n})
    removed += [[f"exact_substring_{k} (bytes cut)"] + [per[src].get("exact_substring_bytes_removed", {}).get(k, 0)
                                                        for src in per] for k in spans]
    blocks = [f"{_label(stage)}: {fmt(counts.get('documents'))} documents, {fmt(counts.get('tokens'))} tokens"
              + (f"; blend for {fmt(blend['train_tokens'])} training tokens" if blend.get("train_tokens") else ""),
              Table(["source", "read", "skipped records", "removed", "documents", "tokens",
                     "PHI replacements", "blend share", "epochs"], rows)]
    if removed:
        blocks.append(Table(["removed by step"] + list(per), removed))
    if blend.get("warnings"):
        blocks.append([f"blend warning: {w}" for w in blend["warnings"]])
    plot = _data_plot(stage["name"], per, steps)
    return blocks + ([plot] if plot else [])


def _data_plot(name: str, per: dict, steps: list[str]) -> Plot | None:
    fig, (tok_ax, rem_ax) = _figure(2, 11)
    if fig is None:
        return None
    sources = list(per)
    tok_ax.bar(sources, [per[s].get("tokens") or 0 for s in sources], color=[f"C{i}" for i in range(len(sources))])
    tok_ax.set(title="tokens per source", ylabel="tokens")
    left = [0] * len(steps)
    for i, src in enumerate(sources):
        counts = [per[src].get("removed", {}).get(step, 0) for step in steps]
        rem_ax.barh(steps, counts, left=left, color=f"C{i}", label=src)
        left = [a + b for a, b in zip(left, counts)]
    rem_ax.set(title="documents removed per step", xlabel="documents")
    rem_ax.tick_params(axis="y", labelsize=7)
    if steps:
        rem_ax.legend(fontsize=8)
    return Plot(f"data_{name}", _png(fig), f"{name}: tokens per source and removals per step")


# --------------------------------------------------------------------------- 3., 4. and 6.: training


def read_metrics(run_dir: Path) -> tuple[list[dict], list[dict], list[dict]]:
    """(train steps, validations, events) of metrics.jsonl; a resumed run logs some steps again,
    so the last record per iteration wins."""
    try:
        records = metrics.read_metrics(run_dir)
    except OSError:
        return [], [], []
    train, valid, events = {}, {}, {}
    for r in records:
        if "iteration" not in r:
            continue
        if "event" in r:  # before the others: a forgetting event has valid_loss, a spike has loss
            events[(r["iteration"], r["event"])] = r
        elif "valid_loss" in r:
            valid[r["iteration"]] = r
        elif "loss" in r:
            train[r["iteration"]] = r
    return ([train[k] for k in sorted(train)], [valid[k] for k in sorted(valid)],
            [events[k] for k in sorted(events)])


def run_config(run_dir: Path) -> dict:
    """The run's resolved config: the config.yaml the trainer writes at start, else the newest
    checkpoint's medmegatron.json, else the train.yaml the pipeline wrote (a run that never started)."""

    def from_yaml(path: Path) -> dict:
        try:
            loaded = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            return {}
        return loaded if isinstance(loaded, dict) else {}

    if cfg := from_yaml(run_dir / "config.yaml"):
        return cfg
    from medmegatron.training.checkpointing import latest_checkpoint

    latest = latest_checkpoint(run_dir / "checkpoints") if (run_dir / "checkpoints").is_dir() else None
    meta = _read_json(latest / "medmegatron.json") if latest else None
    if isinstance(meta, dict) and isinstance(meta.get("config"), dict):
        return meta["config"]
    return from_yaml(run_dir / "train.yaml")


@dataclass
class TrainRun:
    """One train stage's folder, read once: metrics records and the resolved config."""

    stage: dict
    path: Path | None
    train: list[dict]
    valid: list[dict]
    events: list[dict]
    cfg: dict

    @classmethod
    def load(cls, stage: dict) -> "TrainRun":
        path = _output(stage, "run")
        if path is None and (ckpt := _output(stage, "checkpoint")):  # checkpoints/ or checkpoints/iter_N
            path = ckpt.parent.parent if ckpt.name.startswith("iter_") else ckpt.parent
        if path is None:
            return cls(stage, None, [], [], [], {})
        return cls(stage, path, *read_metrics(path), run_config(path))

    @property
    def tokens_per_step(self) -> int | float | None:
        gbs = (self.cfg.get("schedule") or {}).get("global_batch_size")
        seq = (self.cfg.get("data") or {}).get("seq_length")
        logged = [r["tokens"] for r in self.train if isinstance(r.get("tokens"), (int, float))]
        return gbs * seq if gbs and seq else statistics.median(logged) if logged else None


def _losses(run: TrainRun) -> list:
    if not run.train and not run.valid:
        return [_unavailable(run.stage, f"metrics.jsonl in {run.path}")]
    tps, last = run.tokens_per_step, run.train[-1] if run.train else {}
    blocks = [f"{_label(run.stage)}: {len(run.train)} steps logged (last step {fmt(last.get('iteration'))}, "
              f"loss {fmt(last.get('loss'))})"
              + (f", {fmt(int(tps * last['iteration']))} training tokens" if tps and last else "")]
    sources = sorted(metric_series(run.valid, "valid_loss/"))
    if run.valid:  # at most ~12 rows: evenly spaced validations and the last one
        every = max(1, len(run.valid) // 10)
        shown = [r for i, r in enumerate(run.valid) if i % every == 0 or i == len(run.valid) - 1]
        blocks.append(Table(["step", "valid loss"] + sources,
                            [[r["iteration"], r.get("valid_loss")] + [r.get(f"valid_loss/{s}") for s in sources]
                             for r in shown]))
    if other := [e for e in run.events if e["event"] != "forgetting"]:  # loss spikes, skipped steps
        blocks.append([f"step {e['iteration']}: {e['event']}" for e in other])
    fig, (train_ax, valid_ax) = _figure(2, 11)
    if fig is not None:
        total = [(r["iteration"], r["loss"]) for r in run.train if isinstance(r.get("loss"), (int, float))]
        if total:
            train_ax.plot(*zip(*total), color="black", lw=1.5, label="all sources")
        for i, (src, (xs, ys)) in enumerate(sorted(metric_series(run.train, "loss/").items())):
            train_ax.plot(xs, ys, lw=1, alpha=0.8, color=f"C{i}", label=src)
        for i, (src, (xs, ys)) in enumerate(sorted(metric_series(run.valid, "valid_loss/").items())):
            valid_ax.plot(xs, ys, marker="o", color=f"C{i}", label=src)
        for ax, title in ((train_ax, "training loss per source"), (valid_ax, "validation loss per source")):
            ax.set(title=title, xlabel="optimizer step", ylabel="loss (nats/token)")
            _tokens_axis(ax, tps)
            if ax.lines:
                ax.legend(fontsize=8)
        blocks.append(Plot(f"loss_{run.stage['name']}", _png(fig), f"{run.stage['name']}: loss per data source"))
    return blocks


def _forgetting(run: TrainRun) -> list:
    """General-domain validation loss against step 0, the monitor's threshold and its events
    (the trainer's rule: monitor.general_source, else a source named 'general')."""
    monitor = run.cfg.get("monitor") or {}
    general = monitor.get("general_source") or ("general" if "general" in metric_series(run.valid, "valid_loss/") else None)
    threshold = float(monitor.get("forgetting_threshold", 0.05))
    points = [(r["iteration"], r[f"valid_loss/{general}"]) for r in run.valid if f"valid_loss/{general}" in r]
    warned = [e for e in run.events if e["event"] == "forgetting"]
    if not run.valid:
        return [_unavailable(run.stage, "validation records in metrics.jsonl")]
    if not general or not points:
        why = "no general-domain source configured" if not general else f"no validation loss for '{general}'"
        return [f"{_label(run.stage)}: not monitored ({why})."]
    baseline = next((v for step, v in points if step == 0), warned[0].get("baseline") if warned else None)
    if baseline is None:
        return [f"{_label(run.stage)}: no step-0 validation loss for '{general}' to compare with."]
    rises = [(step, v / baseline - 1) for step, v in points]
    over = [step for step, rise in rises if rise > threshold]
    if over or warned:
        verdict = (f"WARNING — forgetting: '{general}' validation loss rose more than {threshold:.1%} above step 0 "
                   f"at {len(over)} evaluation(s) (first at step {(over or [warned[0]['iteration']])[0]}, worst "
                   f"{max(r for _, r in rises):+.1%}); {len(warned)} warning event(s) logged.")
    else:
        verdict = (f"No forgetting: '{general}' validation loss stayed within +{threshold:.1%} of step 0 "
                   f"(final step {rises[-1][0]}: {rises[-1][1]:+.1%}).")
    blocks = [f"{_label(run.stage)}: {verdict}",
              Table(["step", f"valid loss ({general})", "vs step 0", "over threshold"],
                    [[step, v, f"{v / baseline - 1:+.2%}", v / baseline - 1 > threshold] for step, v in points])]
    if warned:
        blocks.append([f"step {e['iteration']}: forgetting event, {general} valid loss {fmt(e.get('valid_loss'))}"
                       f" ({e.get('relative_rise', 0):+.1%})" for e in warned])
    fig, (ax,) = _figure()
    if fig is not None:
        ax.plot(*zip(*points), marker="o", color="C0", label=f"{general} validation loss")
        ax.axhline(baseline, color="gray", ls=":", label="step 0")
        ax.axhline(baseline * (1 + threshold), color="red", ls="--", label=f"threshold ({threshold:+.0%})")
        for e in warned:
            ax.axvline(e["iteration"], color="red", alpha=0.3)
        ax.set(title="forgetting monitor", xlabel="optimizer step", ylabel="loss (nats/token)")
        _tokens_axis(ax, run.tokens_per_step)
        ax.legend(fontsize=8)
        name = run.stage["name"]
        blocks.append(Plot(f"forgetting_{name}", _png(fig), f"{name}: general-domain loss vs step 0"))
    return blocks


def _measured(train: list[dict], key: str) -> float | None:
    """Median over steady-state steps: warm-up steps and skipped (non-finite) steps excluded.
    Validation and checkpoint saves are outside the trainer's step timer already."""
    values = [r[key] for r in train if isinstance(r.get(key), (int, float)) and not r.get("skipped")]
    steady = values[WARMUP_STEPS:] if len(values) > 2 * WARMUP_STEPS else values[1:] or values
    return statistics.median(steady) if steady else None


def _throughput(runs: list[TrainRun]) -> list:
    """The planner's prediction (planner_prediction.json) against what the trainer measured."""
    rows = []
    for run in runs:
        pred = (_read_json(run.path / "planner_prediction.json") if run.path else None) or {}
        measured = _measured(run.train, "tokens_per_s_per_device")
        if measured is None and not pred:
            continue
        predicted = pred.get("predicted_tokens_per_s_per_device")
        ratio = f"{measured / predicted:.2f}" if measured and predicted else None
        device = f"{pred['device']} ({pred['peak_source']})" if pred.get("peak_source") else pred.get("device")
        rows.append([run.stage["name"], device, pred.get("layout"), pred.get("peak_tflops"), pred.get("efficiency"),
                     predicted, measured, ratio, pred.get("predicted_step_seconds"),
                     _measured(run.train, "step_time_s")])
    if not rows:
        return []
    return [f"Measured: median of metrics.jsonl's tokens_per_s_per_device and step_time_s, without "
            f"warm-up (the first {WARMUP_STEPS} steps; the first one in runs of {2 * WARMUP_STEPS} steps "
            "or fewer) and skipped steps.",
            Table(["stage", "device (peak from)", "layout", "peak TFLOP/s", "efficiency", "predicted tokens/s/device",
                   "measured tokens/s/device", "measured / predicted", "predicted step s", "measured step s"], rows)]


# --------------------------------------------------------------------------- 5. evaluation


def _eval_rows(stage: dict, run_dir: str) -> tuple[list[dict], list[dict]]:
    """(table rows {label, tokens, results}, sweep points) of one eval stage."""
    folder = _output(stage, "dir")
    sweep = _read_json(folder / "sweep.json") if folder else None
    if isinstance(sweep, list):
        rows = [{"label": f"{stage['name']} · {p.get('checkpoint')}", "tokens": p.get("tokens"),
                 "results": p.get("results") or {}} for p in sweep]
        return rows, rows
    single = _read_json(folder / "results.json") if folder else None
    if isinstance(single, dict):
        model = str(single.get("model") or single.get("checkpoint") or "")
        if run_dir and model.startswith(run_dir.rstrip("/") + "/"):
            model = model[len(run_dir.rstrip("/")) + 1:]
        label = f"{stage['name']} · {model}" if model else stage["name"]
        return [{"label": label, "tokens": single.get("tokens"), "results": single.get("results") or {}}], []
    return [{"label": f"{stage['name']} ({stage.get('status', 'missing')}: no results)", "tokens": None,
             "results": {}}], []


def _acc(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "—"  # as evaluation/run.py's results.md


def _metric(task: str) -> str:
    # the same choice as evaluation/run.py's plot: length-normalised for free-text answers
    return "acc_norm" if task.endswith("_text") else "acc"


def _evals(stages: list[dict], run_dir: str) -> list:
    rows, sweeps = [], []
    for stage in stages:
        r, points = _eval_rows(stage, run_dir)
        rows += r
        if points:
            sweeps.append((stage["name"], points))
    tasks = sorted({t for r in rows for t in r["results"]})
    table = Table(["model", "training tokens"] + [f"{t} (acc / acc_norm)" for t in tasks],
                  [[r["label"], r["tokens"]] + [" / ".join(_acc(r["results"][t].get(m)) for m in ("acc", "acc_norm"))
                                                if t in r["results"] else "—" for t in tasks] for r in rows])
    blocks = [table]
    fig, (ax,) = _figure() if sweeps else (None, [None])
    if fig is not None:
        for name, points in sweeps:
            for task in sorted({t for p in points for t in p["results"]}):
                pts = [(p["tokens"], p["results"][task].get(_metric(task))) for p in points
                       if task in p["results"] and p["tokens"] is not None]
                if pts:
                    ax.plot(*zip(*sorted(pts)), marker="o", label=f"{name}: {task} ({_metric(task)})")
        ax.set(title="accuracy vs training tokens", xlabel="training tokens", ylabel="accuracy")
        ax.legend(fontsize=8)
        blocks.append(Plot("accuracy_vs_tokens", _png(fig), "accuracy across checkpoints"))
    return blocks


# --------------------------------------------------------------------------- assembly


def build_sections(summary: dict) -> list[Section]:
    stages = summary.get("stages") or []
    by_kind = {k: [s for s in stages if s.get("kind") == k] for k in ("data", "train", "eval")}
    sections = [_header(summary)]
    if by_kind["data"]:
        sections.append(Section("Data composition and removals",
                                [b for s in by_kind["data"] for b in _data_stage(s)]))
    runs = [TrainRun.load(s) for s in by_kind["train"]]
    if runs:
        sections.append(Section("Loss per source", [b for run in runs for b in _losses(run)]))
        sections.append(Section("Forgetting monitor", [b for run in runs for b in _forgetting(run)]))
    if by_kind["eval"]:
        sections.append(Section("Evaluation", _evals(by_kind["eval"], str(summary.get("run_dir", "")))))
    if throughput := _throughput(runs):
        sections.append(Section("Planner prediction vs measured throughput", throughput))
    if not _have_matplotlib():
        sections[0].blocks.append("matplotlib is not installed: the report has no plots.")
    return sections


def write_report(run_dir: Path, summary: dict) -> tuple[Path, Path]:
    """Writes run_dir/report/report.html and run_dir/report/report.md (+ PNGs) atomically
    (temp + rename); returns (html, md). PNGs go first, so a report never links a missing plot."""
    folder = Path(run_dir) / "report"
    folder.mkdir(parents=True, exist_ok=True)
    sections = build_sections(summary)
    markdown, files = render_markdown(sections)
    for name, png in files.items():
        write_atomic(folder / name, png)
    html_path, md_path = folder / "report.html", folder / "report.md"
    write_atomic(md_path, markdown.encode("utf-8"))
    write_atomic(html_path, render_html(sections).encode("utf-8"))
    for stale in folder.glob("*.png"):  # plots of stages that no longer have data
        if stale.name not in files:
            stale.unlink()
    return html_path, md_path
