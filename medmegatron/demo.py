"""`make demo`: tiny continual pretraining end to end on CPU, on data that ships or is generated.

1. Corpus: the real PubMedQA abstracts from ../shared when present (minus the 500 test-split
   ids, so later evaluation stays clean), otherwise a generated biomedical corpus; plus generated
   clinical and general text, mirroring the biomedical : clinical : general mix of Me-LLaMA.
2. Tokenize each source into a Megatron indexed dataset (skipped when already there).
3. Train `tiny-llama` on 2 local processes (gloo) through megatron-core, blend 15 : 1 : 4.
4. Print the loss curve, the checkpoint path and a PNG of the curve.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from data_prep.readers.pubmedqa import read_pubmedqa
from data_prep.readers.synthetic import synthetic_corpus
from data_prep.tokenize import tokenize_to_indexed
from medmegatron.errors import UserFacingError
from medmegatron.paths import pubmedqa_dir
from medmegatron.tokenizers import load_tokenizer, tokenizer_fingerprint

BLEND = {"pubmed": 15.0, "clinical": 1.0, "general": 4.0}


def _documents(source: str):
    if source == "pubmed" and pubmedqa_dir() is not None:
        folder = pubmedqa_dir()
        test_ids = set(json.loads((folder / "test_ground_truth.json").read_text()))
        return read_pubmedqa(folder / "ori_pqal.json", exclude_ids=test_ids), "PubMedQA PQA-L (train ids)"
    count = {"pubmed": 600, "clinical": 200, "general": 300}[source]
    return synthetic_corpus(source, count), "generated"


def prepare_data(data_dir: Path) -> dict[str, str]:
    """Tokenized prefix per source; each has a manifest, and existing ones are reused."""
    tokenizer = load_tokenizer(None)
    fingerprint = tokenizer_fingerprint(None)
    prefixes = {}
    for source in BLEND:
        prefix = data_dir / source
        manifest_path = data_dir / f"{source}.manifest.json"
        documents, origin = _documents(source)
        if manifest_path.exists():
            manifest = json.loads(manifest_path.read_text())
            if manifest.get("tokenizer_sha256") == fingerprint and manifest.get("origin") == origin:
                prefixes[source] = str(prefix)
                print(f"data: {source:8s} reused {manifest['tokens']:>8,} tokens ({origin})")
                continue
        counts = tokenize_to_indexed(documents, tokenizer, prefix)
        manifest = {"source": source, "origin": origin, "tokenizer_sha256": fingerprint, **counts}
        tmp = manifest_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=2))
        tmp.replace(manifest_path)
        prefixes[source] = str(prefix)
        print(f"data: {source:8s} {counts['documents']:>6,} docs {counts['tokens']:>8,} tokens ({origin})")
    return prefixes


def demo_config(run_dir: Path, prefixes: dict[str, str]) -> dict:
    total = sum(BLEND.values())
    return {
        "run_dir": str(run_dir),
        "model": "tiny-llama",
        "parallel": {"tensor_parallel": 2},
        "optimizer": {"lr": 2e-3, "min_lr": 2e-4, "weight_decay": 0.1, "clip_grad": 1.0},
        "schedule": {"train_iters": 60, "micro_batch_size": 4, "global_batch_size": 16,
                     "lr_warmup_iters": 6, "lr_warmup_init_fraction": 0.1},
        "data": {"paths": list(prefixes.values()),
                 "weights": [BLEND[s] / total for s in prefixes], "seq_length": 128},
        "checkpoint": {"save_interval": 30},
        "logging": {"progress_bar": False},
    }


def plot_losses(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["iteration"] for r in records if "loss" in r]
    losses = [r["loss"] for r in records if "loss" in r]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, losses, label="train loss")
    valid = [(r["iteration"], r["valid_loss"]) for r in records if "valid_loss" in r]
    if valid:
        ax.scatter(*zip(*valid), color="C1", label="validation loss", zorder=3)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (nats/token)")
    ax.set_title("tiny-llama continual pretraining (CPU, TP=2)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_demo(run_dir: str | Path, nproc: int = 2) -> int:
    from medmegatron.runtime.launch import relaunch
    from medmegatron.training.metrics import read_metrics

    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    prefixes = prepare_data(run_dir / "data")
    config_path = run_dir / "train.yaml"
    config_path.write_text(yaml.safe_dump(demo_config(run_dir, prefixes), sort_keys=False))
    print(f"train: {nproc} processes, config {config_path}")
    code = relaunch(nproc, ["medmegatron", "train", str(config_path)])
    if code != 0:
        raise UserFacingError(f"training exited with code {code}; see the messages above")
    records = read_metrics(run_dir)
    losses = [r["loss"] for r in records if "loss" in r]
    window = max(1, len(losses) // 10)
    first, last = sum(losses[:window]) / window, sum(losses[-window:]) / window
    print("\nloss every 10 steps: " + "  ".join(f"{x:.3f}" for x in losses[::10]) + f"  {losses[-1]:.3f}")
    print(f"mean loss, first {window} steps {first:.3f} -> last {window} steps {last:.3f}")
    plot = run_dir / "loss.png"
    plot_losses(records, plot)
    latest = (run_dir / "checkpoints" / "latest").read_text().strip()
    print(f"checkpoint: {run_dir / 'checkpoints' / latest}")
    print(f"metrics:    {run_dir / 'metrics.jsonl'}  (TensorBoard: {run_dir / 'tensorboard'})")
    print(f"plot:       {plot}")
    if not last < first:
        raise UserFacingError("the demo's loss did not decrease; this is a bug, please report it")
    return 0
