"""The pipeline report built from real artifacts: data_prep's manifest and blend, a tiny in-process
training run's metrics.jsonl and checkpoints, lm-eval results (one model and a checkpoint sweep)."""

from __future__ import annotations

import base64
import csv
import json
import random
import re

import pytest

from medmegatron.pipeline.report import read_metrics, write_report

SECRET = "zqxplantedsecretword"  # planted in the corpus: must never reach the report
PHONE = "617-555-0142"


def _docs(rng: random.Random, n: int, vocab: list[str]) -> list[str]:
    return [" ".join(rng.choice(vocab) for _ in range(rng.randint(80, 160))) for _ in range(n)]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """A run folder laid out as `pipeline run` lays it out, every artifact made by the project."""
    from data_prep.config import config_from_dict
    from data_prep.pipeline import run_pipeline
    from medmegatron.config import load_config
    from medmegatron.evaluation.run import run_eval
    from medmegatron.evaluation.tasks import parse_task_spec
    from medmegatron.pipeline.prediction import write_prediction
    from medmegatron.training import pretrain

    root = tmp_path_factory.mktemp("pipeline")
    rng = random.Random(0)
    vocab = ["".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(3, 8))) for _ in range(3000)]
    corpus = root / "corpus"
    corpus.mkdir()
    pubmed, general = _docs(rng, 60, vocab), _docs(rng, 40, vocab)
    with open(corpus / "pubmed.jsonl", "w") as f:
        for i, text in enumerate(pubmed + pubmed[:5]):  # 5 exact duplicates for MinHash
            f.write(json.dumps({"id": f"p{i}", "text": f"{text} {SECRET}" if i % 7 == 0 else text}) + "\n")
        f.write('{"id": "broken", "text": \n')  # one malformed record, skipped and counted
    with open(corpus / "notes.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ROW_ID", "TEXT"])
        for i, text in enumerate(_docs(rng, 30, vocab)):
            w.writerow([i, f"Seen 03/14/2021, phone {PHONE}. {text} {SECRET}"])
    with open(corpus / "general.jsonl", "w") as f:
        for text in general + ["too short to keep"]:
            f.write(json.dumps({"text": text}) + "\n")

    run = root / "run"
    manifest = run_pipeline(config_from_dict({
        "output_dir": str(run / "data"), "on_error": "skip", "executor": {"workers": 1},
        "tokenize": {"workers": 1}, "filters": {"min_words": 20}, "exact_substring": {"enabled": False},
        "minhash": {"threshold": 0.85, "num_hashes": 112},
        "sources": [{"name": "pubmed", "inputs": [str(corpus / "pubmed.jsonl")]},
                    {"name": "clinical", "inputs": [str(corpus / "notes.csv")]},
                    {"name": "general", "inputs": [str(corpus / "general.jsonl")]}],
        "blend": {"ratios": {"pubmed": 2, "clinical": 1, "general": 2}, "train_tokens": 1e5}}))
    blend = json.loads((run / "data" / "blend.json").read_text())

    cfg = load_config(None, [f"{k}={v}" for k, v in {
        "model": "tiny-llama", "run_dir": str(run / "cpt"), "data.paths": json.dumps(blend["blend"]["prefixes"]),
        "data.names": json.dumps(list(blend["shares"])), "data.weights": json.dumps(blend["blend"]["weights"]),
        "data.seq_length": 64, "schedule.micro_batch_size": 2, "schedule.global_batch_size": 4,
        "schedule.train_iters": 4, "schedule.lr_warmup_iters": 1, "optimizer.lr": 3e-3, "optimizer.min_lr": 1e-4,
        "checkpoint.save_interval": 2, "checkpoint.resume": False, "eval_interval": 2, "eval_iters": 2,
        "monitor.general_source": "general", "logging.progress_bar": False, "logging.tensorboard": False,
        "logging.plots": False}.items()])
    write_prediction(cfg, 1, run / "cpt")  # what the runner does before a train stage
    pretrain(cfg)

    with open(corpus / "qa.jsonl", "w") as f:
        for i in range(4):
            f.write(json.dumps({"question": f"which option {i}?", "options": ["alpha", "beta", "gamma"],
                                "answer": i % 3}) + "\n")
    tasks = [parse_task_spec(f"toyqa=mcq:{corpus / 'qa.jsonl'}")]
    run_eval(sources=tasks, output=run / "eval_sweep", ckpts=str(run / "cpt"), batch_size=4)
    run_eval(sources=tasks, output=run / "eval_final", ckpt=str(run / "cpt"), batch_size=4)

    def stage(name, kind, status="done", **outputs):
        return {"name": name, "kind": kind, "status": status, "seconds": 1.5, "fingerprint": "f" * 64,
                "outputs": {k: str(v) for k, v in outputs.items()}, "inputs": {}}

    summary = {"pipeline": "tiny <demo>", "run_dir": str(run), "created_utc": "2025-01-01T00:00:00+00:00",
               "code": {"medmegatron": "0.1.0", "git_commit": "0123456789abcdef", "megatron_core": "0.16.1"},
               "stages": [stage("data", "data", dir=run / "data"),
                          stage("cpt", "train", run=run / "cpt", checkpoint=run / "cpt" / "checkpoints"),
                          stage("sft", "train", status="failed", run=run / "sft"),
                          stage("export", "export", status="missing", hf=run / "export" / "hf"),
                          stage("eval_sweep", "eval", dir=run / "eval_sweep"),
                          stage("eval_final", "eval", dir=run / "eval_final"),
                          stage("eval_hf", "eval", status="missing", dir=run / "eval_hf")]}
    html_path, md_path = write_report(run, summary)
    return {"run": run, "corpus": corpus, "manifest": manifest, "html": html_path.read_text(),
            "md": md_path.read_text(), "md_path": md_path}


def test_report_is_self_contained_and_has_every_section(artifacts):
    html, md = artifacts["html"], artifacts["md"]
    assert artifacts["md_path"].parent == artifacts["run"] / "report"
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html) and "<script" not in html
    images = re.findall(r'<img [^>]*src="([^"]+)"', html)
    assert len(images) == 4  # data, loss, forgetting, accuracy vs tokens
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "tiny &lt;demo&gt;" in html and "<demo>" not in html + md  # names are escaped
    for title in ("Data composition and removals", "Loss per source", "Forgetting monitor",
                  "Planner prediction vs measured throughput", "Evaluation"):
        assert title in html and f"## {title}" in md
    for png in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):  # markdown links its PNGs relatively
        assert "/" not in png and (artifacts["md_path"].parent / png).read_bytes()[:4] == b"\x89PNG"
    assert "sft (failed): no metrics.jsonl" in md and "eval_hf (missing: no results)" in md


def test_report_numbers_come_from_the_artifacts(artifacts):
    html, md, run = artifacts["html"], artifacts["md"], artifacts["run"]
    per = artifacts["manifest"]["steps"]["per_source"]
    assert per["pubmed"]["removed"]["minhash_near_duplicate"] == 5
    assert per["general"]["removed"]["filter_too_short"] == 1
    for source, counts in per.items():
        assert f"{counts['tokens']:,}" in html and f"{counts['tokens']:,}" in md
    assert "minhash_near_duplicate" in md and "filter_too_short" in md
    results = [run / "eval_final" / "results.json", *sorted((run / "eval_sweep").glob("iter_*/results.json"))]
    assert len(results) == 3
    rows = {line.split(" | ")[0]: line for line in md.splitlines() if line.startswith("| eval_")}
    labels = ("| eval_final · cpt", "| eval_sweep · iter_0000002", "| eval_sweep · iter_0000004")
    for path, label in zip(results, labels):
        metrics = json.loads(path.read_text())["results"]
        assert metrics and all(f"{m['acc']:.4f} / {m['acc_norm']:.4f}" in rows[label] for m in metrics.values())
    train, valid, _ = read_metrics(run / "cpt")
    assert [r["iteration"] for r in valid] == [0, 2, 4]
    assert f"{valid[-1]['valid_loss/general']:.4g}" in md
    assert "No forgetting" in md or "WARNING — forgetting" in md
    predicted = json.loads((run / "cpt" / "planner_prediction.json").read_text())["predicted_tokens_per_s_per_device"]
    row = next(line for line in md.splitlines() if line.startswith("| cpt | cpu")).strip("| ").split(" | ")
    number = [float(row[i].replace(",", "")) for i in (5, 6, 7)]  # predicted, measured, measured / predicted
    measured = sorted(r["tokens_per_s_per_device"] for r in train[1:])
    assert number[0] == pytest.approx(predicted, rel=1e-3) and measured[0] <= number[1] <= measured[-1]
    assert number[2] == pytest.approx(number[1] / number[0], abs=0.01)


def test_report_never_contains_document_text(artifacts):
    corpus_text = "".join(p.read_text() for p in artifacts["corpus"].iterdir())
    assert SECRET in corpus_text and PHONE in corpus_text
    for report in (artifacts["html"], artifacts["md"]):
        assert SECRET not in report and PHONE not in report and "03/14/2021" not in report


def test_resumed_run_keeps_the_last_record_and_forgetting_warns(tmp_path):
    """A resume re-logs steps after the last checkpoint; the forgetting monitor's events are listed."""
    from medmegatron.training.metrics import MetricsLogger
    from medmegatron.training.monitors import ForgettingMonitor

    run = tmp_path / "cpt"
    monitor = ForgettingMonitor("general", 0.05)
    general = {0: 4.0, 2: 4.1, 4: 4.4, 6: 4.6}  # +2.5%, +10%, +15% vs step 0
    for start, end, offset in ((0, 4, 0.0), (2, 6, 1.0)):  # crashed after step 4, resumed from step 2
        logger = MetricsLogger(run, 6, start, enabled=True, tensorboard=False, progress_bar=False)
        for step in range(start + 1, end + 1) if start else range(0, end + 1):
            if step:
                logger.log({"iteration": step, "loss": 5.0 + offset, "lr": 1e-3, "loss/general": 4.0 + offset,
                            "tokens_per_s_per_device": 100.0, "step_time_s": 1.0})
            if step % 2 == 0:
                values = {"valid_loss": general[step] + 1.0, "valid_loss/general": general[step]}
                logger.log({"iteration": step, **values})
                event = monitor.check(step, {"general": values["valid_loss/general"]})
                if event:
                    logger.log(event)
        logger.close()
    train, valid, events = read_metrics(run)
    assert [r["iteration"] for r in train] == [1, 2, 3, 4, 5, 6] and train[2]["loss"] == 6.0  # resumed value
    assert [r["iteration"] for r in valid] == [0, 2, 4, 6]
    assert [e["iteration"] for e in events if e["event"] == "forgetting"] == [4, 6]
    html_path, md_path = write_report(tmp_path, {"pipeline": "p", "stages": [
        {"name": "cpt", "kind": "train", "status": "done", "outputs": {"run": str(run)}}]})
    md = md_path.read_text()
    assert "WARNING — forgetting" in md and "step 4: forgetting event" in md and "step 6: forgetting event" in md
    assert "| 6 | 4.6 | +15.00% | yes |" in md


def test_missing_stages_and_no_matplotlib_still_give_a_report(tmp_path, monkeypatch):
    """Nothing ran yet (or everything failed) and matplotlib is absent: tables say so, no plots."""
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    stages = [{"name": n, "kind": k, "status": "missing", "outputs": {}} for n, k in
              (("data", "data"), ("cpt", "train"), ("eval", "eval"))]
    html_path, md_path = write_report(tmp_path, {"pipeline": "p", "run_dir": str(tmp_path), "stages": stages})
    md = md_path.read_text()
    assert "data (missing): no manifest.json" in md and "cpt (missing): no metrics.jsonl" in md
    assert "eval (missing: no results)" in md and "matplotlib is not installed" in md
    assert "<img" not in html_path.read_text() and not list(md_path.parent.glob("*.png"))
