"""Build megatron-core `GPTModel` chunks for the current rank from our typed config.

Llama-family architecture throughout: RMSNorm, SwiGLU (gated SiLU), RoPE, GQA, no linear biases
(except Qwen2's QKV bias), optional MoE (Mixtral). With virtual pipeline stages a rank holds
several chunks, hence a list.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from medmegatron.config import TrainConfig
from medmegatron.errors import ConfigError

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def _rope_scaling(rope_scaling: dict | None) -> tuple[bool, float]:
    if not rope_scaling:
        return False, 8.0
    kind = rope_scaling.get("rope_type", rope_scaling.get("type"))
    if kind == "llama3":
        return True, float(rope_scaling.get("factor", 8.0))
    raise ConfigError(
        f"model.rope_scaling type '{kind}' is not supported (only 'llama3'); remove it or "
        "convert the model with a supported RoPE variant"
    )


def _recompute(parallel, num_layers: int) -> dict:
    """Activation recompute: 'selective' = core attention only; 'full' = whole layers."""
    if parallel.recompute_granularity is None:
        return {}
    if parallel.recompute_granularity == "selective":
        return {"recompute_granularity": "selective"}
    if parallel.recompute_num_layers:  # the first N layers of each pipeline chunk
        return {"recompute_granularity": "full", "recompute_method": "block",
                "recompute_num_layers": parallel.recompute_num_layers}
    return {"recompute_granularity": "full", "recompute_method": "uniform", "recompute_num_layers": 1}


def transformer_config(cfg: TrainConfig, cuda: bool):
    """The megatron-core `TransformerConfig` for `cfg` (the single source of truth downstream)."""
    from megatron.core.transformer import TransformerConfig

    m, p = cfg.model, cfg.parallel
    dtype = cfg.precision.resolved_dtype(cuda)
    torch_dtype = _DTYPES[dtype]
    moe = {}
    if m.num_moe_experts:
        moe = dict(
            num_moe_experts=m.num_moe_experts,
            moe_router_topk=m.moe_router_topk,
            moe_ffn_hidden_size=m.moe_ffn_hidden_size or m.ffn_hidden_size,
            moe_aux_loss_coeff=m.moe_aux_loss_coeff,
            moe_router_load_balancing_type="aux_loss" if m.moe_aux_loss_coeff else "none",
            moe_token_dispatcher_type=p.moe_token_dispatcher,
            moe_grouped_gemm=False,
        )
    return TransformerConfig(
        num_layers=m.num_layers,
        hidden_size=m.hidden_size,
        ffn_hidden_size=m.ffn_hidden_size,
        num_attention_heads=m.num_attention_heads,
        num_query_groups=m.query_groups,
        kv_channels=m.head_dim,
        normalization="RMSNorm",
        layernorm_epsilon=m.norm_epsilon,
        gated_linear_unit=True,
        activation_func=F.silu,
        add_bias_linear=False,
        add_qkv_bias=m.add_qkv_bias,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        init_method_std=m.init_method_std,
        window_size=(m.sliding_window - 1, 0) if m.sliding_window else None,
        # Fusions need TE/apex kernels; the unfused paths are numerically the reference.
        bias_activation_fusion=False,
        masked_softmax_fusion=False,
        apply_rope_fusion=False,
        persist_layer_norm=False,
        gradient_accumulation_fusion=False,
        tensor_model_parallel_size=p.tensor_parallel,
        pipeline_model_parallel_size=p.pipeline_parallel,
        virtual_pipeline_model_parallel_size=p.virtual_pipeline_parallel,
        context_parallel_size=p.context_parallel,
        expert_model_parallel_size=p.expert_parallel,
        expert_tensor_parallel_size=p.expert_tensor_parallel,
        sequence_parallel=p.sequence_parallel,
        params_dtype=torch_dtype,
        pipeline_dtype=torch_dtype,
        bf16=dtype == "bf16",
        fp16=dtype == "fp16",
        # FP8 through Transformer Engine: E4M3 forward / E5M2 backward ("hybrid") with the chosen
        # scaling recipe; the non-FP8 parts stay bf16 (validation enforces it).
        fp8="hybrid" if cfg.precision.fp8 else None,
        fp8_recipe=cfg.precision.fp8 or "delayed",
        # CPU init builds each full weight from one seed and slices it, so every TP layout
        # starts from the same numbers; GPU init is faster and what large runs use.
        use_cpu_initialization=not cuda,
        perform_initialization=True,
        deallocate_pipeline_outputs=True,
        # Instruction data has a different number of loss tokens per micro-batch; summing and
        # dividing once by the global count keeps every answer token equally weighted.
        calculate_per_token_loss=cfg.data.kind == "sft",
        **_recompute(p, m.num_layers),
        # With 2 pipeline ranks and interleaving, each rank sends *and* receives activations and
        # gradients to/from the same peer in one batched call; the pairs are matched by order
        # and get crossed (same shapes, silently wrong losses - seen on gloo). megatron-core's
        # unbatched path puts the two directions on different communicators for 2-rank groups.
        batch_p2p_comm=not (p.pipeline_parallel == 2 and p.virtual_pipeline_parallel),
        **moe,
    )


def build_model(cfg: TrainConfig, cuda: bool) -> list[torch.nn.Module]:
    """One `GPTModel` per virtual pipeline chunk held by this rank (a list of one without VP)."""
    from megatron.core import parallel_state
    from megatron.core.models.gpt import GPTModel

    from medmegatron.models.norms import local_block_spec
    from medmegatron.models.spec import layer_spec, transformer_engine_available

    config = transformer_config(cfg, cuda)
    spec = layer_spec(cfg.model.num_moe_experts)
    use_local = not transformer_engine_available()
    rope_scaling, rope_factor = _rope_scaling(cfg.model.rope_scaling)
    vp = cfg.parallel.virtual_pipeline_parallel
    chunks = []
    for vp_stage in range(vp or 1):
        stage = vp_stage if vp else None
        model = GPTModel(
            config=config,
            transformer_layer_spec=local_block_spec(spec, config, stage) if use_local else spec,
            vocab_size=cfg.model.padded_vocab_size(cfg.parallel.tensor_parallel),
            max_sequence_length=cfg.model.max_position_embeddings,
            pre_process=parallel_state.is_pipeline_first_stage(ignore_virtual=vp is None, vp_stage=stage),
            post_process=parallel_state.is_pipeline_last_stage(ignore_virtual=vp is None, vp_stage=stage),
            share_embeddings_and_output_weights=not cfg.model.untie_embeddings_and_output_weights,
            position_embedding_type="rope",
            rotary_base=int(cfg.model.rotary_base),
            rope_scaling=rope_scaling,
            rope_scaling_factor=rope_factor,
            vp_stage=stage,
        )
        if cuda:
            model.cuda(torch.cuda.current_device())
        chunks.append(model)
    return chunks
