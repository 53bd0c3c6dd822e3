"""LoRA on megatron-core's parallel linears: zero-init is exact, TP=2 trains like TP=1, only the
adapters are trained and saved, and merging reproduces the adapted model at TP=1 and TP=2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from helpers import REPO, run_layouts, tiny_overrides


def _model_with_base(base_dir):
    from medmegatron.config import load_config
    from medmegatron.models import build_model
    from medmegatron.runtime.distributed import init_model_parallel, init_process_group
    from medmegatron.training.checkpointing import load_weights, resolve_checkpoint_dir

    cfg = load_config(None, ["model=tiny-llama"])
    init_process_group()
    init_model_parallel(cfg.parallel, cfg.seed)
    chunks = build_model(cfg, cuda=False)
    load_weights(resolve_checkpoint_dir(base_dir), chunks)
    return chunks


@pytest.fixture(scope="module")
def base(pubmed_prefix, tmp_path_factory):
    root = tmp_path_factory.mktemp("lora")
    run_layouts(1, {"base": tiny_overrides(pubmed_prefix, root / "base", **{
        "schedule.train_iters": 2, "schedule.lr_warmup_iters": 0})}, root / "base.json")
    return root


def _logits(model, tokens):
    with torch.no_grad():
        return model(tokens, torch.arange(tokens.shape[1]).repeat(tokens.shape[0], 1), None)


def test_zero_initialised_adapters_reproduce_the_base_exactly_and_merge_back(base):
    from medmegatron.models import lora

    (model,) = _model_with_base(base / "base")
    model.eval()
    tokens = torch.randint(0, 32000, (2, 32))
    reference = _logits(model, tokens)
    lora.attach([model], rank=4, alpha=8.0, targets=list(lora.ROW_PARALLEL) + ["linear_qkv", "linear_fc1"])
    assert torch.equal(_logits(model, tokens), reference)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith("lora.") for n in trainable)
    assert len(list(model.lora.children())) == 4 * 4  # 4 layers x 4 projections

    for pair in model.lora.children():  # a trained adapter: non-zero B
        torch.nn.init.normal_(pair.b.weight, std=0.02)
    adapted = _logits(model, tokens)
    assert not torch.allclose(adapted, reference)
    lora.merge_into_base([model], lora.ROW_PARALLEL + ("linear_qkv", "linear_fc1"))
    assert not hasattr(model, "lora")
    assert torch.allclose(_logits(model, tokens), adapted, atol=1e-4, rtol=1e-4)


@pytest.mark.multiprocess
def test_lora_at_tp2_trains_like_tp1_saves_adapters_only_and_merges_the_same(pubmed_prefix, base, tmp_path):
    from megatron.core import dist_checkpointing
    from safetensors.torch import load_file

    common = {"checkpoint.init_from": str(base / "base"), "lora.rank": 4, "lora.alpha": 8.0,
              "lora.merge_at_end": True, "optimizer.lr": 1e-2, "optimizer.min_lr": 1e-3}
    runs = run_layouts(1, {
        "tp1": tiny_overrides(pubmed_prefix, tmp_path / "tp1", **common),
        # the same batches through the frozen base: what the adapters must improve on
        "frozen": tiny_overrides(pubmed_prefix, tmp_path / "frozen", **{
            **common, "optimizer.lr": 1e-12, "optimizer.min_lr": 1e-13, "lora.merge_at_end": False})},
        tmp_path / "tp1.json")
    tp1, frozen = runs["tp1"], runs["frozen"]
    tp2 = run_layouts(2, {"tp2": tiny_overrides(pubmed_prefix, tmp_path / "tp2", **common,
                                                **{"parallel.tensor_parallel": 2})}, tmp_path / "tp2.json")["tp2"]
    for step, (a, b) in enumerate(zip(tp1, tp2), start=1):
        assert abs(a - b) <= 1e-5 * abs(a), f"step {step}: tp2 {b} vs tp1 {a}"
    assert tp1[0] == frozen[0] and tp1[-1] < frozen[-1] - 0.03, (tp1, frozen)

    saved = dist_checkpointing.load_tensors_metadata(str(tmp_path / "tp1" / "checkpoints" / "iter_0000005"))
    model_keys = [k for k in saved if not k.startswith("optimizer")]
    assert model_keys and all(k.startswith("lora.") for k in model_keys), "adapters only"

    exported = {}
    for name in ("tp1", "tp2"):
        out = tmp_path / f"hf_{name}"
        proc = subprocess.run([sys.executable, "-m", "medmegatron", "convert", "export", "--ckpt",
                               str(tmp_path / name / "merged"), "--output", str(out)],
                              capture_output=True, text=True, cwd=REPO, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        exported[name] = load_file(next(out.glob("*.safetensors")))
    base_hf = tmp_path / "hf_base"
    subprocess.run([sys.executable, "-m", "medmegatron", "convert", "export", "--ckpt", str(base / "base"),
                    "--output", str(base_hf)], check=True, capture_output=True, cwd=REPO, timeout=600)
    base_tensors = load_file(next(base_hf.glob("*.safetensors")))
    changed = 0
    for key, tensor in exported["tp1"].items():
        assert torch.allclose(tensor, exported["tp2"][key], atol=1e-5), key
        changed += int(not torch.equal(tensor, base_tensors[key]))
    assert changed > 0, "the merged model differs from the base"

    # The PEFT adapter of the TP=2 run, applied to the HF base by PEFT's rule W + (alpha/r) B A,
    # gives the merged model's weights: names, q/k/v and gate/up splits all line up.
    peft_dir = tmp_path / "peft"
    proc = subprocess.run([sys.executable, "-m", "medmegatron", "convert", "export-lora", "--ckpt",
                           str(tmp_path / "tp2"), "--output", str(peft_dir)], capture_output=True,
                          text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    adapter = load_file(peft_dir / "adapter_model.safetensors")
    config = json.loads((peft_dir / "adapter_config.json").read_text())
    scale = config["lora_alpha"] / config["r"]
    applied = 0
    for name in [k for k in adapter if k.endswith("lora_A.weight")]:
        module = name[len("base_model.model."):-len(".lora_A.weight")]
        delta = scale * adapter[module.join(["base_model.model.", ".lora_B.weight"])] @ adapter[name]
        expected = exported["tp2"][module + ".weight"]
        assert torch.allclose(base_tensors[module + ".weight"] + delta, expected, atol=1e-5), module
        applied += 1
    assert applied == 4 * 7  # 4 layers x q, k, v, o, gate, up, down


@pytest.mark.multiprocess
def test_lora_resume_at_another_tp_continues_the_same_run(pubmed_prefix, base, tmp_path):
    """Adapters (incl. SwiGLU fc1 halves) and their optimizer state reshard TP=2 -> TP=1."""
    common = {"checkpoint.init_from": str(base / "base"), "lora.rank": 4, "lora.alpha": 8.0,
              "optimizer.lr": 1e-2, "optimizer.min_lr": 1e-3, "checkpoint.resume": True,
              "schedule.lr_decay_iters": 5}
    straight = run_layouts(1, {"s": tiny_overrides(pubmed_prefix, tmp_path / "straight", **common)},
                           tmp_path / "s.json")["s"]
    first = run_layouts(2, {"f": tiny_overrides(pubmed_prefix, tmp_path / "resharded", **common, **{
        "parallel.tensor_parallel": 2, "schedule.train_iters": 3})}, tmp_path / "f.json")["f"]
    rest = run_layouts(1, {"r": tiny_overrides(pubmed_prefix, tmp_path / "resharded", **common)},
                       tmp_path / "r.json")["r"]
    assert len(first) == 3 and len(rest) == 2
    for step, (a, b) in enumerate(zip(straight, first + rest), start=1):
        assert abs(a - b) <= 1e-5 * abs(a), f"step {step}: {b} vs uninterrupted {a}"
