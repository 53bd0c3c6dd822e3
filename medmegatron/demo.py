"""`make demo`: the whole chain as one pipeline, on a tiny model, on CPU, in a few minutes.

data (clean, PHI-scrub, MinHash + exact-substring dedup, decontaminate, tokenize, blend 15 : 1 : 4)
-> continual pretraining (`recipes/tiny_cpu.py`, TP=2 on 2 gloo ranks) -> instruction data (chat
template, loss masks, packing) -> SFT with NEFTune from the CPT checkpoint -> export to HF ->
evaluation (every CPT checkpoint: accuracy vs tokens; the SFT model through the HF backend) ->
report. Rerunning skips every finished stage (`medmegatron pipeline status RUN/pipeline.yaml`).

Inputs: the real PubMedQA abstracts and questions from ../shared when present (its 500 test
questions are evaluated on, and the decontamination step removes their abstracts from the
training corpus); otherwise generated text and questions. Clinical notes and general text are
always generated here - no third-party text ships with the project.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import yaml

from data_prep.readers.synthetic import synthetic_clinical_notes, synthetic_corpus, synthetic_qa
from medmegatron.paths import REPO_ROOT, pubmedqa_dir

CPT_ITERS, SFT_ITERS = 60, 30
SFT_SEQ = 512
EVAL_LIMIT = 200


def _write_if_changed(path: Path, text: str) -> Path:
    """Same bytes -> untouched file (its cached digest stays valid); else atomic replace."""
    data = text.encode("utf-8")
    if path.exists() and path.read_bytes() == data:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def _jsonl(records) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def _conversation(question: str, context: str, answer: str) -> dict:
    return {"messages": [
        {"role": "user", "content": f"Context: {context}\nQuestion: {question}\nAnswer yes, no or maybe."},
        {"role": "assistant", "content": answer}]}


def write_inputs(raw: Path) -> dict:
    """The demo's raw inputs; returns their paths and where the QA data comes from."""
    notes = io.StringIO()
    writer = csv.DictWriter(notes, fieldnames=["ROW_ID", "TEXT"])
    writer.writeheader()
    writer.writerows(synthetic_clinical_notes(300))
    paths = {"clinical": _write_if_changed(raw / "clinical_notes.csv", notes.getvalue()),
             "general": _write_if_changed(raw / "general.jsonl", _jsonl(
                 {"id": d.id, "text": d.text} for d in synthetic_corpus("general", 600)))}
    folder = pubmedqa_dir()
    if folder is not None:
        data = json.loads((folder / "ori_pqal.json").read_text())
        test = set(json.loads((folder / "test_ground_truth.json").read_text()))
        train = [data[i] for i in sorted(data) if i not in test]
        paths["sft"] = _write_if_changed(raw / "pubmedqa_train_chat.jsonl", _jsonl(
            _conversation(r["QUESTION"], " ".join(r["CONTEXTS"]), f"{r['final_decision']}. {r['LONG_ANSWER']}")
            for r in train))
        paths["pubmedqa"] = folder
        return {"paths": paths, "origin": "PubMedQA PQA-L (../shared)"}
    questions = list(synthetic_qa(700))
    paths["pubmed"] = _write_if_changed(raw / "pubmed.jsonl", _jsonl(
        {"id": d.id, "text": d.text} for d in synthetic_corpus("pubmed", 600)))
    paths["sft"] = _write_if_changed(raw / "qa_train_chat.jsonl", _jsonl(
        _conversation(q["question"], q["context"], f"{q['answer']}.") for q in questions[:500]))
    paths["qa_eval"] = _write_if_changed(raw / "qa_eval.jsonl", _jsonl(
        {"question": q["question"], "context": q["context"], "options": ["yes", "no"],
         "answer": ["yes", "no"].index(q["answer"])} for q in questions[500:]))
    return {"paths": paths, "origin": "generated (no ../shared/data/pubmedqa on this machine)"}


def demo_pipeline(run_dir: Path, inputs: dict) -> dict:
    """The pipeline file `make demo` runs (written to RUN/pipeline.yaml, readable and rerunnable)."""
    p = inputs["paths"]
    if "pubmedqa" in p:
        pubmed = {"name": "pubmed", "inputs": [str(p["pubmedqa"] / "ori_pqal.json")], "format": "pubmedqa"}
        benchmarks = [{"name": "pubmedqa_test", "path": str(p["pubmedqa"] / "ori_pqal.json"),
                       "format": "pubmedqa", "ids_file": str(p["pubmedqa"] / "test_ground_truth.json")}]
        task = f"pubmedqa=pubmedqa:{p['pubmedqa']}"
    else:
        pubmed = {"name": "pubmed", "inputs": [str(p["pubmed"])], "format": "jsonl"}
        benchmarks = [{"name": "qa_eval", "path": str(p["qa_eval"]), "format": "qa_jsonl"}]
        task = f"qa=mcq:{p['qa_eval']}"
    recipe = str(REPO_ROOT / "recipes" / "tiny_cpu.py")
    cpt_tokens = CPT_ITERS * 16 * 128
    return {
        "name": "demo",
        "run_dir": str(run_dir),
        "executor": {"kind": "local"},
        "stages": {
            "data": {"kind": "data", "config": {
                "sources": [pubmed,
                            {"name": "clinical", "inputs": [str(p["clinical"])], "format": "clinical_csv"},
                            {"name": "general", "inputs": [str(p["general"])], "format": "jsonl"}],
                "executor": {"workers": 2},
                # generated text is template-made, so its 5-gram repetition is naturally high
                "filters": {"max_dup_5gram_char_frac": 0.6, "max_top_2gram_char_frac": 0.3},
                "decontaminate": {"benchmarks": benchmarks},
                "blend": {"ratios": {"pubmed": 15, "clinical": 1, "general": 4}, "train_tokens": cpt_tokens},
            }},
            "cpt": {"kind": "train", "recipe": recipe, "data": "${data}", "nproc": 2,
                    "overrides": [f"schedule.train_iters={CPT_ITERS}", "checkpoint.save_interval=20"]},
            "sft_data": {"kind": "sft_data", "config": {
                "sources": [{"name": "qa", "path": str(p["sft"])}], "template": "med42", "seq_length": SFT_SEQ}},
            "sft": {"kind": "train", "recipe": recipe, "data": "${sft_data}", "init_from": "${cpt.checkpoint}",
                    "nproc": 2, "overrides": [
                        f"schedule.train_iters={SFT_ITERS}", f"data.seq_length={SFT_SEQ}", "data.split=95,5,0",
                        "schedule.global_batch_size=8", "schedule.micro_batch_size=2", "schedule.lr_warmup_iters=3",
                        "optimizer.lr=1e-3", "optimizer.min_lr=1e-4", "neftune_noise_alpha=5",
                        "monitor.general_source=null", "eval_interval=10", "checkpoint.save_interval=30"]},
            "export": {"kind": "export", "checkpoint": "${sft.checkpoint}"},
            # the first EVAL_LIMIT test questions keep the demo within minutes on 2 cores
            "eval_cpt": {"kind": "eval", "checkpoints": "${cpt.run}", "tasks": [task], "batch_size": 16,
                         "limit": EVAL_LIMIT},
            "eval_sft": {"kind": "eval", "hf_dir": "${export}", "tasks": [task], "prompt": "med42",
                         "batch_size": 16, "limit": EVAL_LIMIT},
        },
    }


def run_demo(run_dir: str | Path) -> int:
    from medmegatron.pipeline.runner import Pipeline
    from medmegatron.pipeline.spec import load_pipeline
    from medmegatron.pipeline.summary import format_status, write_run_report

    run_dir = Path(run_dir).resolve()
    inputs = write_inputs(run_dir / "raw")
    print(f"demo inputs: {inputs['origin']}; clinical notes and general text generated")
    spec_path = _write_if_changed(run_dir / "pipeline.yaml",
                                  yaml.safe_dump(demo_pipeline(run_dir, inputs), sort_keys=False))
    pipeline = Pipeline(load_pipeline(spec_path))
    results = pipeline.run()
    ran = [r["name"] for r in results if r["action"] == "ran"]
    print(f"\nran: {', '.join(ran) or 'nothing (everything up to date)'}")
    print(format_status(pipeline))
    html, md = write_run_report(pipeline)
    print(f"\nrerun or inspect: medmegatron pipeline run|status {spec_path}")
    print(f"report: {html}\n        {md}")
    return 0
