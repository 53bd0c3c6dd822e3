"""LoRA adapters of a medmegatron run -> a Hugging Face PEFT adapter folder.

The run's checkpoint holds only the adapters (`lora.layer{N}_{target}.a/.b.weight`, global keys;
fc1's B in megatron's canonical [gate; up] order). Fused projections are split the way the
weights are (`layout.to_hf`): QKV's B by query group into q/k/v, fc1's B into gate/up, each half
sharing the one A - so every HF module gets exactly its part of scale * B @ A. Written with the
same atomic folder publish as the exporter.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from conversion import dist_ckpt, layout
from conversion.errors import ConversionError
from conversion.exporter import read_checkpoint_config
from conversion.importer import fresh_output, publish
from medmegatron.training.checkpointing import resolve_checkpoint_dir

# megatron target -> (HF submodule, HF modules in `to_hf` order, rule)
TARGETS = {
    "linear_qkv": ("self_attn", ("q_proj", "k_proj", "v_proj"), "qkv"),
    "linear_proj": ("self_attn", ("o_proj",), "copy"),
    "linear_fc1": ("mlp", ("gate_proj", "up_proj"), "fc1"),
    "linear_fc2": ("mlp", ("down_proj",), "copy"),
}


def _sizes(cfg, target: str) -> tuple[int, int]:
    """(in, out) features of the full (unsharded) projection."""
    h, hd = cfg.hidden_size, cfg.head_dim
    return {
        "linear_qkv": (h, (cfg.num_attention_heads + 2 * cfg.query_groups) * hd),
        "linear_proj": (cfg.num_attention_heads * hd, h),
        "linear_fc1": (h, 2 * cfg.ffn_hidden_size),
        "linear_fc2": (cfg.ffn_hidden_size, h),
    }[target]


def export_peft_adapter(ckpt: str | Path, output: str | Path) -> Path:
    ckpt_dir = resolve_checkpoint_dir(ckpt)
    train, _ = read_checkpoint_config(ckpt_dir)
    cfg, lora = train.model, train.lora
    if not lora.rank:
        raise ConversionError(f"'{ckpt_dir}' is not a LoRA run (lora.rank is 0): use `convert export`")
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[
        train.precision.resolved_dtype(torch.cuda.is_available())]
    tensors = {}
    for layer in range(cfg.num_layers):
        for target in lora.targets:
            sub, modules, rule = TARGETS[target]
            n_in, n_out = _sizes(cfg, target)
            a_key, b_key = f"lora.layer{layer + 1}_{target}.a.weight", f"lora.layer{layer + 1}_{target}.b.weight"
            read = dist_ckpt.read_regions(ckpt_dir, {a_key: ((0, 0), (lora.rank, n_in), dtype),
                                                     b_key: ((0, 0), (n_out, lora.rank), dtype)})
            entry = layout.Entry(b_key, "layer", modules, rule, (n_out, lora.rank))
            for module, b_part in zip(modules, layout.to_hf(entry, read[b_key], cfg)):
                name = f"base_model.model.model.layers.{layer}.{sub}.{module}"
                tensors[f"{name}.lora_A.weight"] = read[a_key].clone()  # q, k, v share A: own copies
                tensors[f"{name}.lora_B.weight"] = b_part.contiguous()
    output = Path(output)
    tmp = fresh_output(output)
    try:
        save_file(tensors, str(tmp / "adapter_model.safetensors"))
        (tmp / "adapter_config.json").write_text(json.dumps({
            "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": lora.rank, "lora_alpha": lora.alpha,
            "lora_dropout": 0.0, "bias": "none", "fan_in_fan_out": False,
            "target_modules": sorted({m for t in lora.targets for m in TARGETS[t][1]}),
            "base_model_name_or_path": str(train.checkpoint.init_from),
        }, indent=2))
        publish(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return output
