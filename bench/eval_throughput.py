"""Evaluation throughput: our megatron-core lm-eval backend vs the harness's HF backend.

Same tiny model (trained a few steps, then exported to HF with `medmegatron convert export`),
same task (PubMedQA test split when ../shared is present, else a generated quiz), same batch
size, CPU, one process. Requests/s = log-likelihood requests scored per second of harness time.

    .venv/bin/python bench/eval_throughput.py [--limit 60]

Last line: {"speedup_vs_hf": ours_rps / hf_rps, ...}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# bench/data_prep.py would shadow the data_prep package when this script's folder is sys.path[0].
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from medmegatron.runtime.quiet import quiet_expected_warnings  # noqa: E402


def _prepare(tmp: Path) -> tuple[Path, Path, object]:
    from data_prep.readers.synthetic import synthetic_corpus
    from data_prep.tokenize import tokenize_to_indexed
    from medmegatron.config import load_config
    from medmegatron.evaluation.tasks import TaskSource
    from medmegatron.paths import pubmedqa_dir
    from medmegatron.tokenizers import load_tokenizer
    from medmegatron.training import pretrain

    tokenize_to_indexed(synthetic_corpus("pubmed", 800), load_tokenizer(None), tmp / "pubmed")
    run = tmp / "run"
    pretrain(load_config(None, ["model=tiny-llama", f"data.paths=[{tmp / 'pubmed'}]", f"run_dir={run}",
                                "data.seq_length=128", "schedule.train_iters=3", "logging.progress_bar=false",
                                "logging.plots=false", "logging.tensorboard=false"]))
    hf_dir = tmp / "hf"
    subprocess.run([sys.executable, "-m", "medmegatron", "convert", "export", "--ckpt", str(run),
                    "--output", str(hf_dir)], check=True, capture_output=True)
    if pubmedqa_dir() is not None:
        source = TaskSource("pubmedqa", "pubmedqa", str(pubmedqa_dir()))
    else:
        quiz = tmp / "quiz.jsonl"
        quiz.write_text("".join(json.dumps({"question": f"Which drug treats condition {i} in adults "
                                            "with chronic kidney disease?", "options": ["a", "b", "c", "d"],
                                            "answer": i % 4}) + "\n" for i in range(200)))
        source = TaskSource("quiz", "mcq", str(quiz))
    return run, hf_dir, source


def _requests_per_second(model, source, work: Path, limit: int, batch_size: int) -> float:
    from medmegatron.evaluation.run import evaluate

    evaluate(model, [source], work / "warmup", limit=2, batch_size=batch_size)
    start = time.perf_counter()
    evaluate(model, [source], work, limit=limit, batch_size=batch_size)
    elapsed = time.perf_counter() - start
    choices = 3 if source.format == "pubmedqa" else 4
    tasks = 1 if source.format == "pubmedqa" else 2
    return limit * choices * tasks / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    quiet_expected_warnings()
    from medmegatron.evaluation.megatron_lm import MegatronLM
    from medmegatron.evaluation.run import _hf

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run, hf_dir, source = _prepare(tmp)
        ours = _requests_per_second(MegatronLM(ckpt=str(run), tokenizer=str(hf_dir), batch_size=args.batch_size),
                                    source, tmp / "ours", args.limit, args.batch_size)
        hf = _requests_per_second(_hf(str(hf_dir), args.batch_size), source, tmp / "hf", args.limit,
                                  args.batch_size)
    print(json.dumps({"speedup_vs_hf": round(ours / hf, 3), "ours_requests_per_s": round(ours, 2),
                      "hf_requests_per_s": round(hf, 2), "task": source.name, "limit": args.limit}))


if __name__ == "__main__":
    main()
