"""The mapping tables (one per family) and every tensor layout rule, in one tested module.

Conversion goes through the *canonical* megatron-core tensors: the global (TP=1, all layers,
all experts) tensors under the keys megatron-core's `sharded_state_dict()` uses. Those keys are
layout-independent - a layer's tensors sit at index `l` of a leading layer axis (the global
layer number, so PP's local->global index mapping is megatron-core's and is exercised by
loading at PP=2), experts at index `e` of a second axis - and dist_checkpointing reshards them
to whatever TP/PP/EP/VP loads them. So only the HF <-> canonical rules live here:

* QKV: megatron stores, per query group g, [the q heads of g; k_g; v_g] as rows of one matrix
  (same for Qwen2's biases). TP splits whole groups, so the canonical tensor is the interleave
  over *all* groups; getting this per-group (not [Q; K; V]) is what keeps TP>1 and GQA right.
* fc1 with SwiGLU: canonical is [gate; up]. megatron-core's swiglu sharded factory maps each TP
  rank's local [gate_i; up_i] to rows i of both halves, so no per-rank interleave is done here.
* Vocab: embedding/output rows are padded (zeros) to a multiple of divisor x TP on import and
  truncated to the config's vocab size on export.
* Norm names: local and TE specs both save the attention norm as
  `linear_qkv.layer_norm_weight`; the pre-MLP norm is `mlp.linear_fc1.layer_norm_weight`
  except for MoE on the TE spec (`pre_mlp_layernorm.weight`). `_extra_state` entries are
  opaque per-module objects (None on the local spec); they carry no weights and are skipped
  on export and written as None on import so a strict load finds them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from conversion.errors import ConversionError
from medmegatron.config import ModelConfig

L, E = "{l}", "{e}"  # placeholders in HF names: layer index, expert index

MOE_PRE_MLP_NORM = {"local": "decoder.layers.mlp.linear_fc1.layer_norm_weight",
                    "te": "decoder.layers.pre_mlp_layernorm.weight"}


@dataclass(frozen=True)
class Entry:
    """One canonical megatron tensor and the HF tensors it is made of."""

    key: str
    scope: str  # "model" | "layer" | "expert"
    hf: tuple[str, ...]
    rule: str  # "copy" | "qkv" | "fc1" | "vocab"
    shape: tuple[int, ...]  # per layer/expert, without the leading axes

    def global_shape(self, cfg: ModelConfig) -> tuple[int, ...]:
        lead = {"model": (), "layer": (cfg.num_layers,),
                "expert": (cfg.num_layers, cfg.num_moe_experts or 0)}[self.scope]
        return lead + self.shape

    def indices(self, cfg: ModelConfig) -> list[tuple[int, ...]]:
        """Leading-axis indices of the chunks: () for model-level, (l,) or (l, e)."""
        if self.scope == "model":
            return [()]
        if self.scope == "layer":
            return [(layer,) for layer in range(cfg.num_layers)]
        return [(layer, e) for layer in range(cfg.num_layers) for e in range(cfg.num_moe_experts)]

    def hf_names(self, index: tuple[int, ...]) -> list[str]:
        subs = dict(zip(("l", "e"), map(str, index)))
        return [name.format(**subs) if subs else name for name in self.hf]


def _attention(cfg: ModelConfig) -> list[Entry]:
    h, hd = cfg.hidden_size, cfg.head_dim
    qkv_rows = (cfg.num_attention_heads + 2 * cfg.query_groups) * hd
    p = f"model.layers.{L}.self_attn."
    out = [
        Entry("decoder.layers.self_attention.linear_qkv.layer_norm_weight", "layer",
              (f"model.layers.{L}.input_layernorm.weight",), "copy", (h,)),
        Entry("decoder.layers.self_attention.linear_qkv.weight", "layer",
              (p + "q_proj.weight", p + "k_proj.weight", p + "v_proj.weight"), "qkv", (qkv_rows, h)),
    ]
    if cfg.add_qkv_bias:
        out.append(Entry("decoder.layers.self_attention.linear_qkv.bias", "layer",
                         (p + "q_proj.bias", p + "k_proj.bias", p + "v_proj.bias"), "qkv", (qkv_rows,)))
    out.append(Entry("decoder.layers.self_attention.linear_proj.weight", "layer",
                     (p + "o_proj.weight",), "copy", (h, cfg.num_attention_heads * hd)))
    return out


def _dense_mlp(cfg: ModelConfig) -> list[Entry]:
    h, f = cfg.hidden_size, cfg.ffn_hidden_size
    p = f"model.layers.{L}.mlp."
    return [
        Entry("decoder.layers.mlp.linear_fc1.layer_norm_weight", "layer",
              (f"model.layers.{L}.post_attention_layernorm.weight",), "copy", (h,)),
        Entry("decoder.layers.mlp.linear_fc1.weight", "layer",
              (p + "gate_proj.weight", p + "up_proj.weight"), "fc1", (2 * f, h)),
        Entry("decoder.layers.mlp.linear_fc2.weight", "layer", (p + "down_proj.weight",), "copy", (h, f)),
    ]


def _moe_mlp(cfg: ModelConfig, spec: str) -> list[Entry]:
    h, f = cfg.hidden_size, cfg.moe_ffn_hidden_size or cfg.ffn_hidden_size
    p = f"model.layers.{L}.block_sparse_moe."
    x = f"{p}experts.{E}."
    return [
        Entry(MOE_PRE_MLP_NORM[spec], "layer",
              (f"model.layers.{L}.post_attention_layernorm.weight",), "copy", (h,)),
        Entry("decoder.layers.mlp.router.weight", "layer", (p + "gate.weight",), "copy",
              (cfg.num_moe_experts, h)),
        Entry("decoder.layers.mlp.experts.experts.linear_fc1.weight", "expert",
              (x + "w1.weight", x + "w3.weight"), "fc1", (2 * f, h)),
        Entry("decoder.layers.mlp.experts.experts.linear_fc2.weight", "expert",
              (x + "w2.weight",), "copy", (h, f)),
    ]


def mapping(cfg: ModelConfig, family: str, spec: str = "local", padded_vocab: int | None = None) -> list[Entry]:
    """The mapping table of `family` for `cfg`, in the order tensors are converted and written.

    Llama, Mistral and Qwen2 share the dense table (Qwen2 adds QKV biases via `add_qkv_bias`,
    and drops `lm_head` when embeddings are tied); Mixtral swaps the MLP for router + experts.
    """
    if family not in ("llama", "mistral", "qwen2", "mixtral"):
        raise ConversionError(f"no mapping table for family '{family}'")
    if spec not in MOE_PRE_MLP_NORM:
        raise ConversionError(f"unknown layer spec '{spec}': choose 'local' or 'te'")
    if (family == "mixtral") != bool(cfg.num_moe_experts):
        raise ConversionError(f"family '{family}' and num_moe_experts={cfg.num_moe_experts} disagree")
    vocab = padded_vocab or cfg.vocab_size
    h = cfg.hidden_size
    table = [Entry("embedding.word_embeddings.weight", "model", ("model.embed_tokens.weight",),
                   "vocab", (vocab, h))]
    mlp = _moe_mlp(cfg, spec) if family == "mixtral" else _dense_mlp(cfg)
    table += _attention(cfg) + mlp
    table.append(Entry("decoder.final_layernorm.weight", "model", ("model.norm.weight",), "copy", (h,)))
    if cfg.untie_embeddings_and_output_weights:
        table.append(Entry("output_layer.weight", "model", ("lm_head.weight",), "vocab", (vocab, h)))
    return table


def with_padded_vocab(table: list[Entry], padded_vocab: int) -> list[Entry]:
    return [dataclasses.replace(e, shape=(padded_vocab,) + e.shape[1:]) if e.rule == "vocab" else e
            for e in table]


# --- extra state (ShardedObjects) -----------------------------------------------------------------
def extra_state_keys(cfg: ModelConfig) -> list[str]:
    """Unique keys of the `_extra_state` ShardedObjects megatron-core's local spec saves.

    Format `<key>/shard_<offsets>_<counts>` as in `ShardedObject.unique_key`; layer modules have
    one offset (l), experts two (l.e).
    """
    n = cfg.num_layers
    keys = []
    for layer in range(n):
        for mod in ("self_attention.linear_qkv", "self_attention.linear_proj"):
            keys.append(f"decoder.layers.{mod}._extra_state/shard_{layer}_{n}")
        if cfg.num_moe_experts:
            ne = cfg.num_moe_experts
            for e in range(ne):
                for mod in ("linear_fc1", "linear_fc2"):
                    keys.append(f"decoder.layers.mlp.experts.experts.{mod}._extra_state/"
                                f"shard_{layer}.{e}_{n}.{ne}")
        else:
            for mod in ("linear_fc1", "linear_fc2"):
                keys.append(f"decoder.layers.mlp.{mod}._extra_state/shard_{layer}_{n}")
    return keys


# --- tensor rules -----------------------------------------------------------------------------------
def _qkv_split_sizes(cfg: ModelConfig) -> tuple[int, int, int]:
    per_group = cfg.num_attention_heads // cfg.query_groups
    return per_group * cfg.head_dim, cfg.head_dim, cfg.head_dim


def to_megatron(entry: Entry, tensors: list[torch.Tensor], cfg: ModelConfig,
                index: tuple[int, ...] = ()) -> torch.Tensor:
    """HF tensors (in `entry.hf` order) -> the canonical megatron chunk for one index."""
    if entry.rule == "copy":
        out = tensors[0]
    elif entry.rule == "qkv":
        q, k, v = tensors
        g = cfg.query_groups
        rest = q.shape[1:]
        out = torch.cat([q.reshape(g, -1, *rest), k.reshape(g, -1, *rest), v.reshape(g, -1, *rest)],
                        dim=1).reshape(-1, *rest)
    elif entry.rule == "fc1":
        out = torch.cat(tensors, dim=0)
    elif entry.rule == "vocab":
        src = tensors[0]
        padded = entry.shape[0]
        if src.shape[0] > padded:
            raise ConversionError(f"{entry.hf[0]} has {src.shape[0]} rows, more than the padded "
                                  f"vocabulary {padded}")
        out = torch.zeros((padded,) + tuple(src.shape[1:]), dtype=src.dtype)
        out[: src.shape[0]] = src
    else:  # pragma: no cover - table and rules are defined together
        raise AssertionError(entry.rule)
    if tuple(out.shape) != entry.shape:
        raise ConversionError(
            f"HF tensors {entry.hf_names(index)} "
            f"give shape {tuple(out.shape)} for {entry.key}, expected {entry.shape} from config.json; "
            "the weights do not match the config"
        )
    return out.contiguous()


def row_blocks(entry: Entry) -> bool:
    """True when the canonical tensor is just its HF tensors stacked by rows ([gate; up]).

    Such a tensor can be written as one chunk per HF tensor (at row offsets 0 and ffn), which
    is also how megatron-core's swiglu factory saves it: no concatenated copy is ever made.
    """
    return entry.rule == "fc1"


def to_hf(entry: Entry, tensor: torch.Tensor, cfg: ModelConfig) -> list[torch.Tensor]:
    """The inverse of `to_megatron`: one canonical chunk -> HF tensors in `entry.hf` order."""
    if entry.rule == "copy":
        return [tensor]
    if entry.rule == "qkv":
        g = cfg.query_groups
        rest = tensor.shape[1:]
        grouped = tensor.reshape(g, -1, *rest)
        parts = torch.split(grouped, list(_qkv_split_sizes(cfg)), dim=1)
        return [p.reshape(-1, *rest).contiguous() for p in parts]
    if entry.rule == "fc1":
        return [t.contiguous() for t in torch.chunk(tensor, 2, dim=0)]
    if entry.rule == "vocab":
        return [tensor[: cfg.vocab_size].contiguous()]
    raise AssertionError(entry.rule)  # pragma: no cover


def hf_shapes(entry: Entry, cfg: ModelConfig) -> list[tuple[int, ...]]:
    """Shapes of the HF tensors of one chunk (for planning output shards before any data)."""
    if entry.rule == "copy":
        return [entry.shape]
    if entry.rule == "qkv":
        q, k, v = _qkv_split_sizes(cfg)
        g = cfg.query_groups
        rest = entry.shape[1:]
        return [(q * g, *rest), (k * g, *rest), (v * g, *rest)]
    if entry.rule == "fc1":
        half = entry.shape[0] // 2
        return [(half, *entry.shape[1:])] * 2
    return [(cfg.vocab_size, *entry.shape[1:])]
