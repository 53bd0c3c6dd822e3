"""`make demo`: tiny continual pretraining end to end on CPU, on data that ships or is generated.

1. Corpus: the real PubMedQA abstracts from ../shared when present (minus the 500 test-split
   ids, so later evaluation stays clean), otherwise a generated biomedical corpus; plus generated
   clinical and general text, mirroring the biomedical : clinical : general mix of Me-LLaMA.
2. Tokenize each source into a Megatron indexed dataset (skipped when already there).
3. Train `tiny-llama` with `recipes/tiny_cpu.py` on 2 local processes (TP=2, gloo) through
   megatron-core, blend 15 : 1 : 4.
4. Print the loss curve, validation loss per source, the forgetting monitor's verdict, the
   checkpoint path and a PNG of the per-source curves.
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
    for source in ("pubmed", "clinical", "general"):
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


def run_demo(run_dir: str | Path) -> int:
    from medmegatron.runtime.launch import relaunch
    from medmegatron.training.metrics import read_metrics

    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    prefixes = prepare_data(run_dir / "data")
    from medmegatron.config import config_to_dict
    from recipes import tiny_cpu  # the recipe is the single source of the demo's settings

    cfg = tiny_cpu.config(data_root=str(run_dir / "data"), run_dir=str(run_dir))
    missing = [p for p in cfg.data.paths if p not in prefixes.values()]
    assert not missing, f"recipe expects data the demo did not prepare: {missing}"
    config_path = run_dir / "train.yaml"
    config_path.write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
    nproc = tiny_cpu.INFO.gpus
    print(f"train: {nproc} processes, config {config_path}")
    code = relaunch(nproc, ["medmegatron", "train", str(config_path)])
    if code != 0:
        raise UserFacingError(f"training exited with code {code}; see the messages above")
    records = read_metrics(run_dir)
    by_step = {r["iteration"]: r for r in records if "lr" in r}  # a resumed run re-logs some steps
    losses = [by_step[i]["loss"] for i in sorted(by_step)]
    window = max(1, len(losses) // 10)
    first, last = sum(losses[:window]) / window, sum(losses[-window:]) / window
    print("\nloss every 10 steps: " + "  ".join(f"{x:.3f}" for x in losses[::10]) + f"  {losses[-1]:.3f}")
    print(f"mean loss, first {window} steps {first:.3f} -> last {window} steps {last:.3f}")
    for record in records:
        if "valid_loss" in record:
            parts = "  ".join(f"{k.split('/')[1]} {v:.3f}" for k, v in record.items() if k.startswith("valid_loss/"))
            print(f"validation at step {record['iteration']:3d}: {record['valid_loss']:.3f}  ({parts})")
    events = [r for r in records if r.get("event") == "forgetting"]
    print(f"forgetting monitor (general-domain validation loss vs step 0, +5% warns): "
          f"{len(events)} warning(s)")
    plot = run_dir / "loss.png"  # written by the training run (logging.plots)
    latest = (run_dir / "checkpoints" / "latest").read_text().strip()
    print(f"checkpoint: {run_dir / 'checkpoints' / latest}")
    print(f"metrics:    {run_dir / 'metrics.jsonl'}  (TensorBoard: {run_dir / 'tensorboard'})")
    print(f"plot:       {plot}")
    if not last < first:
        raise UserFacingError("the demo's loss did not decrease; this is a bug, please report it")
    return 0
