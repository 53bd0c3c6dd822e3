"""One forward/backward/optimizer step through megatron-core's pipeline schedules."""

from __future__ import annotations

from functools import partial

import torch


def loss_func(loss_mask: torch.Tensor, output_tensor: torch.Tensor):
    """Masked token loss: (sum, token count, logged values), megatron-core's 3-tuple convention.

    The schedule divides the sum by the count and by the number of micro-batches, and DDP averages
    over data-parallel ranks, so the optimised quantity is the mean token loss of the global batch.
    """
    losses = output_tensor.float().view(-1)
    mask = loss_mask.float().view(-1)
    loss_sum = torch.sum(losses * mask)
    num_tokens = mask.sum().to(torch.int)
    reporting = torch.stack([loss_sum.detach(), mask.sum()])
    return loss_sum, num_tokens, {"lm loss": reporting}


def forward_step(data_iterator, model):
    batch = next(data_iterator)
    output = model(
        batch["tokens"],
        batch["position_ids"],
        batch.get("attention_mask"),
        labels=batch["labels"],
    )
    return output, partial(loss_func, batch["loss_mask"])


def reduce_reported_loss(losses: list[dict], key: str = "lm loss") -> torch.Tensor:
    """Sum of [loss_sum, tokens] over this rank's micro-batches and then over the whole world.

    Only last-stage ranks have losses; every TP (and CP) rank of the last stage reports the same
    sequences, so the world sum is divided by TP to count each token once.
    """
    import torch.distributed as dist
    from megatron.core import parallel_state

    total = torch.zeros(2, dtype=torch.float64)
    for item in losses:
        total += item[key].to(torch.float64).cpu()
    device = torch.cuda.current_device() if torch.cuda.is_available() else "cpu"
    total = total.to(device)
    dist.all_reduce(total)
    total /= parallel_state.get_tensor_model_parallel_world_size()
    return total.cpu()


def train_step(model_chunks, optimizer, scheduler, data_iterators, num_microbatches: int,
               seq_length: int, micro_batch_size: int) -> dict:
    from megatron.core.pipeline_parallel import get_forward_backward_func

    for chunk in model_chunks:
        chunk.zero_grad_buffer()
    optimizer.zero_grad()
    forward_backward = get_forward_backward_func()
    losses = forward_backward(
        forward_step_func=forward_step,
        data_iterator=data_iterators if len(data_iterators) > 1 else data_iterators[0],
        model=model_chunks,
        num_microbatches=num_microbatches,
        seq_length=seq_length,
        micro_batch_size=micro_batch_size,
        decoder_seq_length=seq_length,
        forward_only=False,
    )
    update_ok, grad_norm, _ = optimizer.step()
    if update_ok:
        scheduler.step(increment=1)
    loss_sum, tokens = reduce_reported_loss(losses).tolist()
    return {
        "loss": loss_sum / max(tokens, 1),
        "tokens": int(tokens),
        "grad_norm": float(grad_norm) if grad_norm is not None else float("nan"),
        "update_ok": bool(update_ok),
    }


def eval_step(model_chunks, data_iterators, num_microbatches: int, seq_length: int,
              micro_batch_size: int) -> tuple[float, int]:
    from megatron.core.pipeline_parallel import get_forward_backward_func

    for chunk in model_chunks:
        chunk.eval()
    with torch.no_grad():
        losses = get_forward_backward_func()(
            forward_step_func=forward_step,
            data_iterator=data_iterators if len(data_iterators) > 1 else data_iterators[0],
            model=model_chunks,
            num_microbatches=num_microbatches,
            seq_length=seq_length,
            micro_batch_size=micro_batch_size,
            decoder_seq_length=seq_length,
            forward_only=True,
        )
    for chunk in model_chunks:
        chunk.train()
    loss_sum, tokens = reduce_reported_loss(losses).tolist()
    return loss_sum, int(tokens)
