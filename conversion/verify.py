"""Logit parity: the HF model (`transformers`, fp32, eager attention) vs megatron-core at a layout.

The megatron side is built and loaded exactly as training does (`build_model` + `load_weights`,
which reshards through dist_checkpointing), then run through megatron-core's forward-only
pipeline schedule, so TP, PP, VP and EP are all exercised. Logits are gathered over TP, cut to
the real vocabulary and compared on the last pipeline stage; the max |diff| is shared with every
rank. Must be called on every rank of an initialised process group (CPU mode on CPU).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from conversion.errors import ConversionError
from conversion.exporter import read_checkpoint_config
from conversion.hf_config import check_same_architecture, model_config_from_hf, read_hf_config
from medmegatron.config import ParallelConfig, TrainConfig


def _megatron_logits(chunks, tokens: torch.Tensor, vocab_size: int) -> torch.Tensor | None:
    """Forward-only through megatron-core's schedule; full-vocab logits on the last stage, else None."""
    from megatron.core import parallel_state
    from megatron.core.pipeline_parallel import get_forward_backward_func
    from megatron.core.tensor_parallel import gather_from_tensor_model_parallel_region

    batch, seq = tokens.shape
    # The interleaved (VP) schedule needs at least PP micro-batches.
    num_micro = parallel_state.get_pipeline_model_parallel_world_size() if len(chunks) > 1 else 1
    if batch % num_micro:
        raise ConversionError(f"--batch {batch} must be a multiple of {num_micro} with virtual pipeline")
    micro = list(torch.split(tokens, batch // num_micro))
    position_ids = torch.arange(seq).unsqueeze(0).expand(batch // num_micro, seq)
    captured = []

    def loss_func(output):
        captured.append(gather_from_tensor_model_parallel_region(output)[..., :vocab_size])
        return output.sum() * 0.0, {}

    def forward_step(data_iterator, model):
        return model(next(data_iterator), position_ids, None), loss_func

    for chunk in chunks:
        chunk.eval()
    with torch.no_grad():
        get_forward_backward_func()(
            forward_step_func=forward_step,
            data_iterator=[iter(micro) for _ in chunks] if len(chunks) > 1 else iter(micro),
            model=chunks, num_microbatches=num_micro, seq_length=seq,
            micro_batch_size=batch // num_micro, decoder_seq_length=seq, forward_only=True)
    if parallel_state.is_pipeline_last_stage(ignore_virtual=True):
        return torch.cat(captured, dim=0).float()
    return None


def hf_logits(hf_dir: Path, tokens: torch.Tensor) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    with torch.no_grad():
        return model(tokens).logits.float()


def verify(hf_dir: str | Path, ckpt: str | Path, parallel: ParallelConfig, seq_length: int = 32,
           batch: int = 2, seed: int = 1234, router_pre_softmax: bool | None = None) -> float:
    """Max |logit difference| between the HF folder and the checkpoint at `parallel` (all ranks)."""
    import torch.distributed as dist

    from medmegatron.models import build_model
    from medmegatron.runtime.distributed import init_model_parallel
    from medmegatron.training.checkpointing import load_weights, resolve_checkpoint_dir

    hf_dir = Path(hf_dir)
    _, hf_cfg = model_config_from_hf(read_hf_config(hf_dir), str(hf_dir / "config.json"))
    ckpt_dir = resolve_checkpoint_dir(ckpt)
    train, _ = read_checkpoint_config(ckpt_dir)
    check_same_architecture(hf_cfg, train.model, f"{ckpt_dir} vs {hf_dir}")
    if seq_length > train.model.max_position_embeddings:
        raise ConversionError(f"--seq-length {seq_length} exceeds max_position_embeddings")
    cfg = TrainConfig(model=dataclasses.replace(train.model), parallel=parallel)
    cfg.precision.dtype = "fp32"
    init_model_parallel(parallel, seed)
    chunks = build_model(cfg, cuda=False)
    load_weights(ckpt_dir, chunks)
    if router_pre_softmax is not None:  # for showing which router semantics match HF
        chunks[0].config.moe_router_pre_softmax = router_pre_softmax
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, hf_cfg.vocab_size, (batch, seq_length), generator=generator)
    ours = _megatron_logits(chunks, tokens, hf_cfg.vocab_size)
    diff = torch.tensor([-1.0], dtype=torch.float64)
    from megatron.core import parallel_state

    if ours is not None and parallel_state.get_tensor_model_parallel_rank() == 0:
        reference = hf_logits(hf_dir, tokens)
        diff[0] = (ours - reference).abs().max().item()
    dist.all_reduce(diff, op=dist.ReduceOp.MAX)
    return float(diff[0])
