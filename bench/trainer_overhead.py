"""Trainer overhead: our full training loop vs a bare megatron-core forward_backward loop.

Same tiny model (tiny-llama, fp32, CPU, one process), same micro/global batch and sequence
length; the two are measured alternately, twice each, and each keeps its best median. "Ours" is the wall time between consecutive steps of `medmegatron.training.pretrain`
(data loading from the indexed dataset, per-source loss reduction, monitors, metrics.jsonl);
"bare" is GPTModel + DDP + distributed optimizer + `get_forward_backward_func` over batches
already in memory. Median over the measured steps. Run by hand:

    .venv/bin/python bench/trainer_overhead.py [--steps 40]

Last line: {"overhead_ratio": ours / bare, ...}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from medmegatron.config import load_config
# bench/data_prep.py would shadow the data_prep package when this script's folder is sys.path[0].
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from medmegatron.runtime.quiet import quiet_expected_warnings  # noqa: E402

WARMUP = 5


def _tokenized_corpus(folder: Path) -> str:
    from data_prep.readers.synthetic import synthetic_corpus
    from data_prep.tokenize import tokenize_to_indexed
    from medmegatron.tokenizers import load_tokenizer

    tokenize_to_indexed(synthetic_corpus("pubmed", 3000), load_tokenizer(None), folder / "pubmed")
    return str(folder / "pubmed")


def ours(cfg) -> float:
    from medmegatron.training import pretrain
    from medmegatron.training.metrics import read_metrics

    pretrain(cfg)
    times = [r["wall_time"] for r in read_metrics(cfg.run_dir) if "wall_time" in r]
    return statistics.median(b - a for a, b in zip(times[WARMUP:], times[WARMUP + 1:]))


def bare(cfg, steps: int) -> float:
    """Plain megatron-core: the loop every Megatron user writes first."""
    from megatron.core.pipeline_parallel import get_forward_backward_func

    from medmegatron.models import build_model
    from medmegatron.runtime.distributed import init_model_parallel, init_process_group
    from medmegatron.training.optim import build_optimizer, wrap_ddp

    init_process_group()
    init_model_parallel(cfg.parallel, cfg.seed)
    chunks = build_model(cfg, cuda=False)
    model = wrap_ddp(cfg, chunks, chunks[0].config)
    optimizer = build_optimizer(cfg, model, "fp32")
    s, seq = cfg.schedule, cfg.data.seq_length
    micro = s.global_batch_size // s.micro_batch_size
    sequences = torch.randint(0, 32000, (micro, s.micro_batch_size, seq + 1))
    batches = [(b[:, :-1].contiguous(), b[:, 1:].contiguous()) for b in sequences]
    position_ids = torch.arange(seq).repeat(s.micro_batch_size, 1)

    def loss_func(output):
        loss = output.float().sum()
        count = torch.tensor(output.numel(), dtype=torch.int)
        return loss, count, {"lm loss": torch.stack([loss.detach(), count.float()])}

    def forward_step(iterator, model):
        inputs, labels = next(iterator)
        return model(inputs, position_ids, None, labels=labels), loss_func

    durations = []
    for _ in range(WARMUP + steps):
        start = time.perf_counter()
        for chunk in model:
            chunk.zero_grad_buffer()
        optimizer.zero_grad()
        get_forward_backward_func()(forward_step_func=forward_step, data_iterator=iter(batches),
                                    model=model, num_microbatches=micro, seq_length=seq,
                                    micro_batch_size=s.micro_batch_size, forward_only=False)
        optimizer.step()
        durations.append(time.perf_counter() - start)
    return statistics.median(durations[WARMUP:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    quiet_expected_warnings()
    with tempfile.TemporaryDirectory() as tmp:
        prefix = _tokenized_corpus(Path(tmp))
        cfg = load_config(None, [
            "model=tiny-llama", f"data.paths=[{prefix}]", f"run_dir={tmp}/run", "data.seq_length=128",
            "schedule.micro_batch_size=4", "schedule.global_batch_size=16",
            f"schedule.train_iters={WARMUP + args.steps + 1}", "logging.progress_bar=false",
            "logging.tensorboard=false", "logging.plots=false", "logging.log_interval=1000",
            "checkpoint.resume=false", "checkpoint.save_interval=100000"])
        # Alternate the two (bare, ours, bare, ours) and keep each one's best median, so a load
        # change on a shared machine does not land on one side only.
        bare_runs, ours_runs = [], []
        for round_ in range(2):
            bare_runs.append(bare(cfg, args.steps))
            cfg.run_dir = f"{tmp}/run{round_}"
            ours_runs.append(ours(cfg))
        bare_s, ours_s = min(bare_runs), min(ours_runs)
    print(json.dumps({"overhead_ratio": round(ours_s / bare_s, 4), "ours_step_s": round(ours_s, 5),
                      "bare_step_s": round(bare_s, 5), "steps": args.steps}))


if __name__ == "__main__":
    main()
