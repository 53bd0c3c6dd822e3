"""Instruction tuning in the trainer: packed samples compute what their samples would alone,
only answer tokens carry loss, and NEFTune is scaled right, train-only and the same on every
TP rank (TP=1, TP=2 and TP=2+SP give one loss curve), which goes down."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from helpers import run_layouts, tiny_overrides

SEQ = 128


@pytest.fixture(scope="module")
def sft_prefix(tmp_path_factory) -> str:
    """Generated conversations (project-written) rendered with Med42's template and packed."""
    from data_prep.sft import SFTConfig, build_sft_dataset

    folder = tmp_path_factory.mktemp("sft")
    rng = random.Random(7)
    drugs = ["metformin", "lisinopril", "apixaban", "furosemide"]
    conditions = ["type 2 diabetes", "hypertension", "atrial fibrillation", "heart failure"]
    lines = []
    for i in range(160):
        k = rng.randrange(4)
        lines.append(json.dumps({"messages": [
            {"role": "user", "content": f"What is a first-line drug for {conditions[k]}?"},
            {"role": "assistant", "content": f"{drugs[k].capitalize()} is commonly used."}]}))
    (folder / "chat.jsonl").write_text("\n".join(lines) + "\n")
    build_sft_dataset(SFTConfig.from_dict({
        "sources": [{"name": "chat", "path": str(folder / "chat.jsonl")}],
        "output_prefix": str(folder / "packed"), "template": "med42", "seq_length": SEQ + 1}))
    return str(folder / "packed")


def _tiny_model():
    from medmegatron.config import load_config
    from medmegatron.models import build_model
    from medmegatron.runtime.distributed import init_model_parallel, init_process_group

    cfg = load_config(None, ["model=tiny-llama"])
    init_process_group()
    init_model_parallel(cfg.parallel, cfg.seed)
    return build_model(cfg, cuda=False)[0].eval()


def test_packed_sequence_loss_equals_its_samples_alone(sft_prefix):
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    from medmegatron.training.sft_data import PackedSFTDataset

    model = _tiny_model()
    data = PackedSFTDataset(sft_prefix, SEQ, pad_id=2)
    tokens, masks, starts = (IndexedDataset(sft_prefix + s) for s in ("", "_lossmask", "_boundaries"))
    item = max(range(len(data)), key=lambda i: len(starts[i]))
    assert len(starts[item]) >= 3, "the test needs a sequence with several packed samples"
    sample = data[item]
    with torch.no_grad():
        packed = model(sample["tokens"][None], sample["position_ids"][None],
                       sample["attention_mask"][None], labels=sample["labels"][None])[0]
    packed_sum = float((packed * sample["loss_mask"]).sum())

    raw, mask = np.asarray(tokens[item]), np.asarray(masks[item])
    bounds = list(starts[item]) + [len(raw) - 1]
    alone_sum, answer_tokens = 0.0, 0
    for start, end in zip(bounds[:-1], bounds[1:]):
        seg = torch.from_numpy(raw[start:end + 1].astype(np.int64))
        with torch.no_grad():
            losses = model(seg[None, :-1], torch.arange(len(seg) - 1)[None], None, labels=seg[None, 1:])[0]
        seg_mask = torch.from_numpy(mask[start + 1:end + 1].astype(np.float32))
        if end < len(raw) - 1:
            seg_mask[-1] = 0.0  # the next sample's first token is a prompt token
        alone_sum += float((losses * seg_mask).sum())
        answer_tokens += int(seg_mask.sum())
    assert answer_tokens == int(sample["loss_mask"].sum()) > 0
    assert packed_sum == pytest.approx(alone_sum, rel=1e-5)


def test_only_answer_tokens_carry_loss(sft_prefix):
    from medmegatron.tokenizers import load_tokenizer
    from medmegatron.training.sft_data import PackedSFTDataset

    sample = PackedSFTDataset(sft_prefix, SEQ, pad_id=2)[0]
    tok = load_tokenizer(None)
    weighted = sample["labels"][sample["loss_mask"] > 0].tolist()
    text = tok.detokenize([t for t in weighted if t != 2])
    assert "is commonly used." in text
    assert "first-line drug" not in text and "<|prompter|>" not in text and "<|assistant|>" not in text


def test_neftune_noise_scale_and_eval_mode():
    from medmegatron.training.neftune import NEFTune

    model = _tiny_model()
    neftune = NEFTune(alpha=5.0, seed=3)
    tokens = torch.randint(0, 32000, (2, SEQ))
    positions = torch.arange(SEQ).repeat(2, 1)
    clean = model.embedding(tokens, positions).detach()
    neftune.attach([model])
    model.train()
    noisy = model.embedding(tokens, positions).detach()
    model.eval()
    assert torch.equal(model.embedding(tokens, positions), clean), "no noise in eval mode"
    noise = noisy - clean
    bound = 5.0 / (SEQ * 128) ** 0.5
    assert noise.abs().max() <= bound * (1 + 1e-5)
    assert noise.std().item() == pytest.approx(bound / 3 ** 0.5, rel=0.05)  # U(-b, b)
    neftune.detach()


@pytest.mark.multiprocess
def test_sft_with_neftune_is_identical_across_tp_and_sp_and_lowers_the_masked_loss(sft_prefix, pubmed_prefix, tmp_path):
    sft = {"data.kind": "sft", "data.paths": f"[{sft_prefix}]", "data.split": "100,0,0", "data.seq_length": SEQ,
           "neftune_noise_alpha": 5.0, "schedule.train_iters": 6, "optimizer.lr": 1e-3}
    init = run_layouts(1, {"init": tiny_overrides(pubmed_prefix, tmp_path / "init", **{
        "schedule.train_iters": 1, "schedule.lr_warmup_iters": 0})}, tmp_path / "init.json")
    assert len(init["init"]) == 1
    start = {"checkpoint.init_from": str(tmp_path / "init" / "checkpoints"), **sft}
    reference = run_layouts(1, {"tp1": tiny_overrides(pubmed_prefix, tmp_path / "tp1", **start)},
                            tmp_path / "tp1.json")["tp1"]
    losses = run_layouts(2, {
        "tp2": tiny_overrides(pubmed_prefix, tmp_path / "tp2", **start, **{"parallel.tensor_parallel": 2}),
        "tp2_sp": tiny_overrides(pubmed_prefix, tmp_path / "tp2sp", **start, **{
            "parallel.tensor_parallel": 2, "parallel.sequence_parallel": True}),
    }, tmp_path / "tp2.json")
    for name, curve in losses.items():
        assert len(curve) == len(reference) == 6
        for step, (a, b) in enumerate(zip(reference, curve), start=1):
            assert abs(a - b) <= 1e-5 * abs(a), f"{name} step {step}: {b} vs {a}"
    assert sum(reference[-2:]) / 2 < sum(reference[:2]) / 2 - 0.3
    # speed counts every processed token (as the planner does), the loss only answer tokens
    from medmegatron.training.metrics import read_metrics

    steps = [r for r in read_metrics(tmp_path / "tp1") if "lr" in r]
    for r in steps:
        processed = r["tokens_per_s_per_device"] * r["step_time_s"]
        assert processed == pytest.approx(8 * SEQ, rel=1e-6) and r["tokens"] < 8 * SEQ
