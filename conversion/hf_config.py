"""HF `config.json` <-> our `ModelConfig`, per family, refusing what megatron-core cannot honour.

Silent config loss is the classic converter bug (rope scaling dropped, tying lost, eps reset to a
default), so every HF field that changes the model's function is either mapped, checked against
the one value megatron-core implements, or refused with a message. Both config styles are read:
transformers 4.x (`rope_theta`, `rope_scaling`) and 5.x (`rope_parameters`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from conversion.errors import ConversionError
from medmegatron.config import ModelConfig

# HF architecture name -> our family name (one mapping table per family in `layout`).
ARCHITECTURES = {
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "mistral",
    "MixtralForCausalLM": "mixtral",
    "Qwen2ForCausalLM": "qwen2",
}
MODEL_TYPES = {"llama": "llama", "mistral": "mistral", "mixtral": "mixtral", "qwen2": "qwen2"}
FAMILY_ARCH = {family: arch for arch, family in ARCHITECTURES.items()}

# megatron-core's llama3 RoPE scaling hard-codes these three (RotaryEmbedding._apply_scaling);
# only the factor is configurable, so any other value would be silently ignored.
LLAMA3_FIXED = {"low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8192}


def read_hf_config(hf_dir: Path) -> dict:
    path = Path(hf_dir) / "config.json"
    if not path.exists():
        raise ConversionError(f"'{path}' does not exist: --hf-dir must be a Hugging Face model "
                              "folder (config.json + *.safetensors)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConversionError(f"'{path}' is not valid JSON ({exc}); re-download or re-save it") from None


def family_of(hf: dict, where: str = "config.json") -> str:
    archs = hf.get("architectures") or []
    for arch in archs:
        if arch in ARCHITECTURES:
            return ARCHITECTURES[arch]
    if not archs and hf.get("model_type") in MODEL_TYPES:
        return MODEL_TYPES[hf["model_type"]]
    raise ConversionError(
        f"{where}: architecture {archs or hf.get('model_type')!r} is not supported. Supported: "
        f"{', '.join(ARCHITECTURES)}. Other architectures need their own mapping table in "
        "conversion/layout.py"
    )


def _rope(hf: dict, where: str) -> tuple[float, dict | None]:
    """(rope_theta, rope_scaling or None) from either config style; refuse unsupported types."""
    params = dict(hf.get("rope_parameters") or {})
    scaling = hf.get("rope_scaling") or None
    theta = hf.get("rope_theta", params.get("rope_theta", 10000.0))
    if scaling is None and params.get("rope_type", "default") != "default":
        scaling = {k: v for k, v in params.items() if k != "rope_theta"}
    if scaling is None:
        return float(theta), None
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind in (None, "default"):
        return float(theta), None
    if kind != "llama3":
        raise ConversionError(
            f"{where}: rope type '{kind}' is not supported (megatron-core implements plain RoPE and "
            "llama3 scaling only); refusing rather than converting a model that would run with "
            "different positions"
        )
    for key, fixed in LLAMA3_FIXED.items():
        if float(scaling.get(key, fixed)) != fixed:
            raise ConversionError(
                f"{where}: llama3 rope scaling with {key}={scaling[key]} is not supported: "
                f"megatron-core fixes it at {fixed} (only 'factor' is configurable)"
            )
    if float(theta) != int(float(theta)):
        raise ConversionError(f"{where}: rope_theta={theta} is not an integer; megatron-core's "
                              "GPTModel takes an integer rotary_base")
    return float(theta), {"rope_type": "llama3", "factor": float(scaling.get("factor", 8.0)),
                          **LLAMA3_FIXED}


def _refuse(condition: bool, where: str, what: str) -> None:
    if condition:
        raise ConversionError(f"{where}: {what} is not supported by this converter/megatron-core "
                              "model; refusing rather than converting silently wrong weights")


def model_config_from_hf(hf: dict, where: str = "config.json") -> tuple[str, ModelConfig]:
    """(family, ModelConfig) for an HF config; every function-changing field is honoured or refused."""
    family = family_of(hf, where)
    theta, scaling = _rope(hf, where)
    heads = hf["num_attention_heads"]
    _refuse(hf.get("hidden_act", "silu") != "silu", where, f"hidden_act={hf.get('hidden_act')!r}")
    _refuse(bool(hf.get("attention_bias")), where, "attention_bias=true (bias on all projections)")
    _refuse(bool(hf.get("mlp_bias")), where, "mlp_bias=true")
    _refuse(float(hf.get("attention_dropout", 0.0) or 0.0) != 0.0, where, "attention_dropout != 0")
    sliding = hf.get("sliding_window")
    if family == "qwen2":
        _refuse(bool(hf.get("use_sliding_window")), where, "Qwen2 use_sliding_window=true")
        sliding = None
    if family in ("llama",):
        sliding = None
    if family == "mixtral":
        _refuse(float(hf.get("router_jitter_noise", 0.0) or 0.0) != 0.0, where, "router_jitter_noise")
    head_dim = hf.get("head_dim") or hf["hidden_size"] // heads
    cfg = ModelConfig(
        name=f"hf-{family}",
        num_layers=hf["num_hidden_layers"],
        hidden_size=hf["hidden_size"],
        ffn_hidden_size=hf["intermediate_size"],
        num_attention_heads=heads,
        num_query_groups=hf.get("num_key_value_heads") or heads,
        kv_channels=head_dim,
        vocab_size=hf["vocab_size"],
        max_position_embeddings=hf.get("max_position_embeddings", 4096),
        norm_epsilon=float(hf.get("rms_norm_eps", 1e-6)),
        rotary_base=theta,
        rope_scaling=scaling,
        add_qkv_bias=family == "qwen2",
        untie_embeddings_and_output_weights=not hf.get("tie_word_embeddings", False),
        sliding_window=sliding,
    )
    if family == "mixtral":
        cfg = dataclasses.replace(
            cfg, num_moe_experts=hf["num_local_experts"], moe_router_topk=hf["num_experts_per_tok"],
            moe_ffn_hidden_size=hf["intermediate_size"],
            moe_aux_loss_coeff=float(hf.get("router_aux_loss_coef", 0.0)),
        )
    return family, cfg


def family_of_model(cfg: ModelConfig) -> str:
    """The HF family a trainer-written checkpoint exports as (no HF config to copy from)."""
    if cfg.num_moe_experts:
        return "mixtral"
    if cfg.add_qkv_bias:
        return "qwen2"
    if cfg.sliding_window:
        return "mistral"
    return "llama"


def hf_config_from_model(cfg: ModelConfig, family: str, template: dict | None = None) -> dict:
    """An HF config for `cfg`: the template's other fields kept, every mapped field rewritten.

    The result uses the transformers-4 style keys (`rope_theta`, `rope_scaling`) that both 4.x
    and 5.x read, so exported checkpoints load with either.
    """
    hf = {k: v for k, v in (template or {}).items() if k not in ("rope_parameters", "rope_scaling")}
    hf.update(
        architectures=[FAMILY_ARCH[family]], model_type=MODEL_TYPES[family],
        num_hidden_layers=cfg.num_layers, hidden_size=cfg.hidden_size,
        intermediate_size=cfg.moe_ffn_hidden_size if cfg.num_moe_experts else cfg.ffn_hidden_size,
        num_attention_heads=cfg.num_attention_heads, num_key_value_heads=cfg.query_groups,
        head_dim=cfg.head_dim, vocab_size=cfg.vocab_size,
        max_position_embeddings=cfg.max_position_embeddings, rms_norm_eps=cfg.norm_epsilon,
        rope_theta=cfg.rotary_base, tie_word_embeddings=not cfg.untie_embeddings_and_output_weights,
        hidden_act="silu",
    )
    if cfg.rope_scaling:
        hf["rope_scaling"] = dict(cfg.rope_scaling)
    if family in ("mistral", "mixtral"):
        hf["sliding_window"] = cfg.sliding_window
    if family == "qwen2":
        hf.setdefault("use_sliding_window", False)
    if family == "mixtral":
        hf.update(num_local_experts=cfg.num_moe_experts, num_experts_per_tok=cfg.moe_router_topk,
                  router_aux_loss_coef=cfg.moe_aux_loss_coeff)
    hf.setdefault("torch_dtype", "float32")
    return hf


def check_same_architecture(expected: ModelConfig, actual: ModelConfig, where: str) -> None:
    """Refuse a checkpoint whose metadata disagrees with the HF config on any shape field."""
    fields = ("num_layers", "hidden_size", "ffn_hidden_size", "num_attention_heads", "query_groups",
              "head_dim", "vocab_size", "add_qkv_bias", "untie_embeddings_and_output_weights",
              "num_moe_experts", "moe_ffn_hidden_size")
    diffs = [f"{f}: {getattr(expected, f)} vs {getattr(actual, f)}" for f in fields
             if getattr(expected, f) != getattr(actual, f)]
    if diffs:
        raise ConversionError(f"{where}: the model config does not match ({'; '.join(diffs)}); "
                              "use the checkpoint and HF folder of the same model")
