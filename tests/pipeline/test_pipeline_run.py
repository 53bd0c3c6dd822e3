"""`medmegatron pipeline run` end to end on a tiny chain: data -> train -> export -> eval.

What it must show: a rerun skips every finished stage; deleting one artifact reruns the stage
that made it (and its dependents only if the rebuilt content differs); killing the pipeline
mid-training and rerunning resumes from the last checkpoint. The stages are the real commands
(data_prep, megatron-core training on 1 CPU rank, HF export, lm-eval), in subprocesses.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from data_prep.readers.synthetic import synthetic_corpus, synthetic_qa
from helpers import REPO

pytestmark = pytest.mark.multiprocess  # stages run as subprocesses


def _write_inputs(raw: Path) -> dict:
    raw.mkdir(parents=True, exist_ok=True)
    paths = {}
    for source, n in (("pubmed", 240), ("general", 160)):
        paths[source] = raw / f"{source}.jsonl"
        paths[source].write_text("".join(json.dumps({"id": d.id, "text": d.text}) + "\n"
                                         for d in synthetic_corpus(source, n)))
    paths["qa"] = raw / "qa.jsonl"
    paths["qa"].write_text("".join(json.dumps({"question": q["question"], "context": q["context"],
                                               "options": ["yes", "no"], "answer": ["yes", "no"].index(q["answer"])})
                                   + "\n" for q in synthetic_qa(12)))
    return paths


def _pipeline(tmp_path: Path, iters: int = 6, save_interval: int = 3, with_eval: bool = True) -> Path:
    p = _write_inputs(tmp_path / "raw")
    stages = {
        "data": {"kind": "data", "config": {
            "sources": [{"name": n, "inputs": [str(p[n])], "format": "jsonl"} for n in ("pubmed", "general")],
            "executor": {"workers": 1},
            "filters": {"max_dup_5gram_char_frac": 0.6, "max_top_2gram_char_frac": 0.3},
            "blend": {"ratios": {"pubmed": 3, "general": 1}, "train_tokens": iters * 8 * 64}}},
        "cpt": {"kind": "train", "recipe": "tiny_cpu", "data": "${data}", "nproc": 1, "overrides": [
            "parallel.tensor_parallel=1", "data.seq_length=64", "schedule.micro_batch_size=4",
            "schedule.global_batch_size=8", f"schedule.train_iters={iters}", "schedule.lr_warmup_iters=1",
            f"checkpoint.save_interval={save_interval}", "eval_interval=3", "eval_iters=1",
            "logging.tensorboard=false"]},
    }
    if with_eval:
        stages["export"] = {"kind": "export", "checkpoint": "${cpt.checkpoint}"}
        stages["eval"] = {"kind": "eval", "hf_dir": "${export}", "tasks": [f"qa=mcq:{p['qa']}"], "limit": 8}
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "run_dir": str(tmp_path / "run"), "stages": stages}))
    return path


def _medmegatron(*args: str, timeout: int = 900) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    proc = subprocess.run([sys.executable, "-m", "medmegatron", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)
    if proc.returncode != 0:
        pytest.fail(f"medmegatron {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n"
                    f"{proc.stderr[-6000:]}")
    return proc.stdout


def _actions(out: str) -> dict[str, str]:
    actions = {}
    for line in out.splitlines():
        if line.startswith("[pipeline] ") and ": " in line:
            name, _, rest = line[len("[pipeline] "):].partition(": ")
            if rest.startswith("up to date"):
                actions[name] = "skipped"
            elif rest.endswith("; running"):
                actions[name] = "ran"
    return actions


def _record(run: Path, stage: str) -> dict:
    return json.loads((run / ".pipeline" / f"{stage}.json").read_text())


def test_rerun_skips_and_deleting_an_artifact_reruns_only_its_stage(tmp_path):
    spec = _pipeline(tmp_path)
    run = tmp_path / "run"
    first = _medmegatron("pipeline", "run", str(spec))
    assert _actions(first) == {"data": "ran", "cpt": "ran", "export": "ran", "eval": "ran"}
    assert "report: " in first and (run / "report" / "report.html").exists()
    for stage in ("data", "cpt", "export", "eval"):  # provenance beside every artifact
        rec = json.loads((run / stage / "provenance.json").read_text())
        assert rec == _record(run, stage) and rec["code"]["medmegatron"] and rec["fingerprint"]
    assert set(_record(run, "cpt")["identity"]["upstream"]) == {"data.dir"}
    results = json.loads((run / "eval" / "results.json").read_text())["results"]
    assert 0.0 <= results["qa_letter"]["acc"] <= 1.0

    again = _medmegatron("pipeline", "run", str(spec))
    assert _actions(again) == dict.fromkeys(("data", "cpt", "export", "eval"), "skipped")
    status = _medmegatron("pipeline", "status", str(spec))
    assert all(f"  {s} " in status and "done" in status for s in ("data", "cpt", "export", "eval"))

    # An intermediate artifact deleted: its stage reruns; the export comes out byte-identical,
    # so the evaluation that consumed it stays valid; upstream stages are untouched.
    weights = next((run / "export" / "hf").glob("*.safetensors"))
    digest_before = _record(run, "export")["outputs"]["hf"]["digest"]
    weights.unlink()
    assert "missing" in _medmegatron("pipeline", "status", str(spec))
    out = _medmegatron("pipeline", "run", str(spec))
    assert _actions(out) == {"data": "skipped", "cpt": "skipped", "export": "ran", "eval": "skipped"}
    assert _record(run, "export")["outputs"]["hf"]["digest"] == digest_before

    # A tokenized source deleted: data prep redoes only that source's tokenization (its
    # earlier tasks are finished), the tokens are identical, so training is not redone.
    ingest_stats = run / "data" / "ingest" / "t00001.stats.json"
    ingest_mtime = ingest_stats.stat().st_mtime_ns
    (run / "data" / "tokenized" / "general.bin").unlink()
    out = _medmegatron("pipeline", "run", str(spec))
    assert _actions(out) == {"data": "ran", "cpt": "skipped", "export": "skipped", "eval": "skipped"}
    assert ingest_stats.stat().st_mtime_ns == ingest_mtime
    assert (run / "data" / "tokenized" / "general.bin").exists()

    # A changed config makes the stage and everything downstream stale (and says why).
    text = spec.read_text().replace("schedule.train_iters=6", "schedule.train_iters=7")
    spec.write_text(text)
    status = _medmegatron("pipeline", "status", str(spec))
    assert "cpt" in status and "stale" in status and "config changed" in status
    assert "needs cpt first" in status  # export waits on it


def test_killing_the_pipeline_mid_training_resumes_from_the_last_checkpoint(tmp_path):
    spec = _pipeline(tmp_path, iters=10, save_interval=2, with_eval=False)
    run = tmp_path / "run"
    log = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "medmegatron", "pipeline", "run", str(spec)], cwd=REPO,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "OMP_NUM_THREADS": "2"})
    checkpoints = run / "cpt" / "checkpoints"
    deadline = time.time() + 600
    while time.time() < deadline and not (checkpoints / "iter_0000004").exists():
        assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process tree, as a node failure would
    proc.wait()
    log.close()
    saved = sorted(int(p.name[5:]) for p in checkpoints.glob("iter_*") if p.name[5:].isdigit())
    assert saved and max(saved) < 10, saved
    assert "interrupted" in _medmegatron("pipeline", "status", str(spec))

    out = _medmegatron("pipeline", "run", str(spec))
    assert _actions(out) == {"data": "skipped", "cpt": "ran"}
    assert f"at iteration {max(saved)}" in out  # resumed, not restarted
    records = [json.loads(line) for line in (run / "cpt" / "metrics.jsonl").read_text().splitlines()]
    steps = [r["iteration"] for r in records if "lr" in r]
    assert max(steps) == 10 and (checkpoints / "iter_0000010").exists()


def test_a_failing_stage_stops_the_run_names_its_command_and_is_reported(tmp_path):
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(yaml.safe_dump({"name": "f", "run_dir": str(tmp_path / "run"), "stages": {
        "export": {"kind": "export", "checkpoint": str(tmp_path / "no_such_checkpoint")}}}))
    proc = subprocess.run([sys.executable, "-m", "medmegatron", "pipeline", "run", str(spec)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "stage 'export' failed (exit code 2)" in proc.stderr
    assert f"medmegatron convert export --ckpt {tmp_path / 'no_such_checkpoint'}" in proc.stderr
    assert "report (run incomplete): " in proc.stdout
    assert "| export | export | failed | exit code 2" in (tmp_path / "run" / "report" / "report.md").read_text()
    status = _medmegatron("pipeline", "status", str(spec))
    assert "failed" in status and "exit code 2" in status
