"""FLOPs and activation formulas against the papers they come from."""

from __future__ import annotations

import dataclasses

import pytest

from medmegatron.config import DataConfig, ParallelConfig, ScheduleConfig, TrainConfig, get_preset
from medmegatron.config.model import ModelConfig
from medmegatron.planning.flops import model_flops_per_token, recompute_flops_per_token
from medmegatron.planning.layout import resolve_layout
from medmegatron.planning.memory import in_flight_chunks, layer_activation_bytes, rank_memory
from medmegatron.planning.params import total_params


@pytest.mark.parametrize("h,layers,s,vocab", [(6144, 40, 2048, 51200), (12288, 96, 2048, 51200),
                                              (3072, 24, 4096, 32000)])
def test_flops_reduce_to_narayanan_2021_for_gpt(h, layers, s, vocab):
    """MHA with an 8h^2 MLP (SwiGLU with F = 8h/3 has the same matmul size as GeLU 4h): per
    sequence, 72 s L h^2 (1 + s/6h + V/12hL) without recompute and the paper's
    96 s L h^2 (1 + s/6h + V/16hL) with full recompute."""
    f = 8 * h // 3
    assert 3 * h * f == 8 * h * h
    m = ModelConfig(num_layers=layers, hidden_size=h, ffn_hidden_size=f, num_attention_heads=h // 128,
                    vocab_size=vocab)
    no_recompute = 72 * s * layers * h * h * (1 + s / (6 * h) + vocab / (12 * h * layers))
    with_recompute = 96 * s * layers * h * h * (1 + s / (6 * h) + vocab / (16 * h * layers))
    model = model_flops_per_token(m, s)
    assert model * s == pytest.approx(no_recompute, rel=1e-9)
    assert (model + recompute_flops_per_token(m, s, 1.0)) * s == pytest.approx(with_recompute, rel=1e-9)


@pytest.mark.parametrize("preset,billions", [("llama2-7b", 6.74), ("llama2-13b", 13.02), ("llama2-70b", 68.98),
                                             ("mistral-7b", 7.24), ("mixtral-8x7b", 46.70), ("qwen2.5-7b", 7.62)])
def test_parameter_counts_match_model_cards(preset, billions):
    """Total counts as published for the HF checkpoints (to 10M)."""
    assert total_params(get_preset(preset)) / 1e9 == pytest.approx(billions, abs=0.01)


def _cfg(pp=4, vp=None, gbs=64, recompute=None, sp=True):
    return TrainConfig(
        model=get_preset("llama2-70b"),
        parallel=ParallelConfig(tensor_parallel=8, pipeline_parallel=pp, virtual_pipeline_parallel=vp,
                                sequence_parallel=sp, recompute_granularity=recompute),
        schedule=ScheduleConfig(micro_batch_size=1, global_batch_size=gbs), data=DataConfig(seq_length=4096),
    )


@pytest.mark.parametrize("pp,vp", [(4, None), (4, 5), (8, 2), (8, 10)])
def test_first_stage_holds_korthikanti_interleaved_activations(pp, vp):
    """Stage 0 of the (interleaved) 1F1B schedule stores L (1 + (p-1)/(p v)) layers' activations
    (Korthikanti et al. 2022, sec. 4.2.3); plain 1F1B stores L."""
    cfg = _cfg(pp, vp)
    lay = resolve_layout(cfg, 64 * pp // 4)
    layers_held = in_flight_chunks(lay, 0) * cfg.model.num_layers // (lay.pp * lay.vp)
    v = vp or 1
    expected = cfg.model.num_layers * (1 + (pp - 1) / (pp * v)) if vp else cfg.model.num_layers
    assert layers_held == pytest.approx(expected)


def test_sequence_parallel_divides_all_activations_by_tp():
    """With SP every stored activation is sharded over TP (Korthikanti: 34/t instead of 10 + 24/t)."""
    sp, no_sp = resolve_layout(_cfg(sp=True), 64), resolve_layout(_cfg(sp=False), 64)
    m = get_preset("llama2-70b")
    full = layer_activation_bytes(m, dataclasses.replace(sp, tp=1, sequence_parallel=False), 2, False)
    assert layer_activation_bytes(m, sp, 2, False) == pytest.approx(full / 8, rel=1e-6)
    assert layer_activation_bytes(m, no_sp, 2, False) > 2 * layer_activation_bytes(m, sp, 2, False)


def test_full_recompute_keeps_only_layer_inputs_plus_one_layer():
    base, full = _cfg(), _cfg(recompute="full")
    lay_base, lay_full = resolve_layout(base, 64), resolve_layout(full, 64)
    mem_base, mem_full = rank_memory(base, lay_base, "first"), rank_memory(full, lay_full, "first")
    per_layer = layer_activation_bytes(base.model, lay_base, 2, False)
    checkpoint = 2 * 4096 * 8192 // 8  # bf16 layer input, sequence-sharded over TP8
    layers_held = mem_base.in_flight * base.model.num_layers // lay_base.pp
    assert mem_full.activations == layers_held * checkpoint + per_layer
    assert mem_full.activations_no_recompute == mem_base.activations
    assert mem_base.activations_full_recompute == mem_full.activations  # the "if full" row


def test_partial_recompute_interpolates_between_none_and_full():
    """recompute_num_layers=k of the 20 layers per stage: k layers keep only their inputs."""
    part = _cfg(recompute="full")
    part.parallel.recompute_num_layers = 5
    lay = resolve_layout(part, 64)
    mem = rank_memory(part, lay, "first")
    per_layer = layer_activation_bytes(part.model, lay, 2, False)
    checkpoint = 2 * 4096 * 8192 // 8
    assert mem.activations == mem.in_flight * (5 * checkpoint + 15 * per_layer) + per_layer
    assert mem.activations_full_recompute < mem.activations < mem.activations_no_recompute
