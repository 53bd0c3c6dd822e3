"""One forward/backward/optimizer step through megatron-core's pipeline schedules.

Losses are accumulated per data source (the blend's `dataset_id` travels with every sample), so
the clinical, biomedical and general-domain curves of a continual-pretraining run are separate
numbers at no extra cost: a [num_sources, 2] tensor of (loss sum, token count) per micro-batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import torch

from medmegatron.errors import UserFacingError


class TrainingDiverged(UserFacingError):
    """Non-finite loss or gradient under nan_policy=abort (or too many skipped steps)."""


def loss_func(loss_mask: torch.Tensor, dataset_id: torch.Tensor, num_sources: int,
              output_tensor: torch.Tensor):
    """Masked token loss in megatron-core's 3-tuple convention: (sum, token count, reported).

    The schedule divides the sum by the count and by the number of micro-batches, and DDP averages
    over data-parallel ranks, so the optimised quantity is the mean token loss of the global batch.
    """
    losses = output_tensor.float()  # [batch, seq] per-token loss from GPTModel
    mask = loss_mask.float().view_as(losses)
    per_sample = (losses * mask).sum(dim=1)
    tokens = mask.sum(dim=1)
    by_source = torch.zeros(num_sources, 2, dtype=torch.float64, device=losses.device)
    by_source.index_add_(0, dataset_id.long().view(-1).to(losses.device),
                         torch.stack([per_sample.detach(), tokens], dim=1).double())
    return per_sample.sum(), tokens.sum().to(torch.int), {"lm loss": by_source}


def make_forward_step(num_sources: int):
    def forward_step(data_iterator, model):
        batch = next(data_iterator)
        output = model(batch["tokens"], batch["position_ids"], batch.get("attention_mask"),
                       labels=batch["labels"])
        return output, partial(loss_func, batch["loss_mask"], batch["dataset_id"], num_sources)

    return forward_step


def reduce_reported_loss(losses: list[dict], num_sources: int) -> torch.Tensor:
    """[num_sources, 2] (loss sum, tokens) over this rank's micro-batches and then the world.

    Only last-stage ranks hold losses; every TP rank of the last stage reports the same
    sequences, so the world sum is divided by TP to count each token once.
    """
    import torch.distributed as dist
    from megatron.core import parallel_state

    total = torch.zeros(num_sources, 2, dtype=torch.float64)
    for item in losses:
        total += item["lm loss"].to(torch.float64).cpu()
    device = torch.cuda.current_device() if torch.cuda.is_available() else "cpu"
    total = total.to(device)
    dist.all_reduce(total)
    total /= parallel_state.get_tensor_model_parallel_world_size()
    return total.cpu()


@dataclass
class StepResult:
    loss: float
    tokens: int
    by_source: torch.Tensor  # [num_sources, 2]
    grad_norm: float
    updated: bool


def run_schedule(model_chunks, data_iterators, forward_step, num_microbatches, seq_length,
                 micro_batch_size, forward_only, collect_non_loss_data=False):
    """megatron-core's pipeline schedule for this layout; one data iterator per model chunk."""
    from megatron.core.pipeline_parallel import get_forward_backward_func

    return get_forward_backward_func()(
        forward_step_func=forward_step,
        data_iterator=data_iterators if len(data_iterators) > 1 else data_iterators[0],
        model=model_chunks,
        num_microbatches=num_microbatches,
        seq_length=seq_length,
        micro_batch_size=micro_batch_size,
        decoder_seq_length=seq_length,
        forward_only=forward_only,
        collect_non_loss_data=collect_non_loss_data,
    )


def train_step(model_chunks, optimizer, scheduler, data_iterators, forward_step, num_sources: int,
               num_microbatches: int, seq_length: int, micro_batch_size: int,
               nan_policy: str, iteration: int) -> StepResult:
    for chunk in model_chunks:
        chunk.zero_grad_buffer()
    optimizer.zero_grad()
    losses = run_schedule(model_chunks, data_iterators, forward_step, num_microbatches,
                           seq_length, micro_batch_size, forward_only=False)
    by_source = reduce_reported_loss(losses, num_sources)
    loss_sum, tokens = by_source.sum(dim=0).tolist()
    loss = loss_sum / max(tokens, 1)

    if nan_policy == "skip":
        # Look at the gradient before the update touches the weights (public optimizer steps:
        # prepare_grads is idempotent and step() repeats it).
        optimizer.prepare_grads()
        norm = float(optimizer.get_grad_norm())
        if not (math.isfinite(loss) and math.isfinite(norm)):
            return StepResult(loss, int(tokens), by_source, norm, updated=False)
    updated, grad_norm, _ = optimizer.step()
    grad_norm = float(grad_norm) if grad_norm is not None else float("nan")
    if nan_policy == "abort" and not (math.isfinite(loss) and math.isfinite(grad_norm)):
        raise TrainingDiverged(
            f"non-finite {'loss' if not math.isfinite(loss) else 'gradient norm'} at step "
            f"{iteration} (loss {loss}, grad norm {grad_norm}); stopped under monitor.nan_policy="
            "abort. Resume from the last checkpoint with a lower optimizer.lr or a warmup, or set "
            "monitor.nan_policy=skip to skip such steps"
        )
    if updated:
        scheduler.step(increment=1)
    return StepResult(loss, int(tokens), by_source, grad_norm, bool(updated))


def eval_losses(model_chunks, data_iterators, forward_step, num_sources: int, num_microbatches: int,
                seq_length: int, micro_batch_size: int, iters: int) -> torch.Tensor:
    """[num_sources, 2] (loss sum, tokens) over `iters` validation batches, no gradients."""
    total = torch.zeros(num_sources, 2, dtype=torch.float64)
    for chunk in model_chunks:
        chunk.eval()
    with torch.no_grad():
        for _ in range(iters):
            losses = run_schedule(model_chunks, data_iterators, forward_step, num_microbatches,
                                   seq_length, micro_batch_size, forward_only=True)
            total += reduce_reported_loss(losses, num_sources)
    for chunk in model_chunks:
        chunk.train()
    return total
