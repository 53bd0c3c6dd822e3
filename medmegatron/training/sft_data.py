"""Packed instruction data (written by `medmegatron prep sft`) as training samples.

Each item of `PREFIX` is one packed sequence; `PREFIX_lossmask` marks the assistant tokens and
`PREFIX_boundaries` the start of every sample inside it (all megatron-core indexed datasets).
megatron-core ships no packed-SFT dataset and its local attention has no `cu_seqlens` (THD)
path, so samples are kept apart with a block-diagonal causal mask and position ids that restart
at every sample: a packed sequence then computes exactly what its samples would alone.
Labels are the next token; a label carries loss only if it is an assistant token.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from medmegatron.errors import UserFacingError


def _open(prefix: str):
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    for suffix in ("", "_lossmask", "_boundaries"):
        missing = [p for p in (prefix + suffix + ".bin", prefix + suffix + ".idx") if not Path(p).exists()]
        if missing:
            raise UserFacingError(
                f"SFT data '{prefix}': {', '.join(missing)} not found; build it with "
                "`medmegatron prep sft CONFIG.yaml` (it writes PREFIX, PREFIX_lossmask, PREFIX_boundaries)")
    return IndexedDataset(prefix), IndexedDataset(prefix + "_lossmask"), IndexedDataset(prefix + "_boundaries")


def packed_sample(tokens: np.ndarray, mask: np.ndarray, starts: np.ndarray, seq_length: int,
                  pad_id: int) -> dict:
    """One training sample of `seq_length` inputs from a packed item (see module docstring)."""
    n = len(tokens) - 1  # inputs predict the next token
    if n > seq_length:
        raise UserFacingError(
            f"a packed SFT sequence has {n + 1} tokens but data.seq_length={seq_length}: build the "
            f"SFT data with seq_length {seq_length + 1} (inputs plus the shifted label)")
    inputs = np.full(seq_length, pad_id, dtype=np.int64)
    labels = np.full(seq_length, pad_id, dtype=np.int64)
    loss_mask = np.zeros(seq_length, dtype=np.float32)
    inputs[:n] = tokens[:-1]
    labels[:n] = tokens[1:]
    loss_mask[:n] = mask[1:]
    document = np.full(seq_length, -1, dtype=np.int64)  # padding attends to nothing of the samples
    position_ids = np.zeros(seq_length, dtype=np.int64)
    bounds = list(starts) + [n]
    for doc, (start, end) in enumerate(zip(bounds[:-1], bounds[1:])):
        end = min(end, n)
        if start >= end:
            continue
        document[start:end] = doc
        position_ids[start:end] = np.arange(end - start)
        if end < n:  # the sample's last input predicts the next sample's first token: no loss
            loss_mask[end - 1] = 0.0
    same = document[:, None] == document[None, :]
    causal = np.tril(np.ones((seq_length, seq_length), dtype=bool))
    attention_mask = ~(same & causal)  # True = masked out (megatron-core's convention)
    np.fill_diagonal(attention_mask, False)  # padding rows attend to themselves (no NaN rows)
    return {
        "tokens": torch.from_numpy(inputs), "labels": torch.from_numpy(labels),
        "loss_mask": torch.from_numpy(loss_mask), "position_ids": torch.from_numpy(position_ids),
        "attention_mask": torch.from_numpy(attention_mask).unsqueeze(0),
    }


class PackedSFTDataset(torch.utils.data.Dataset):
    """Items `[first, last)` of a packed SFT prefix (a train/valid split by item)."""

    def __init__(self, prefix: str, seq_length: int, pad_id: int, first: int = 0, last: int | None = None):
        self.tokens, self.mask, self.starts = _open(prefix)
        self.seq_length, self.pad_id = seq_length, pad_id
        self.first, self.last = first, len(self.tokens) if last is None else last

    def __len__(self) -> int:
        return self.last - self.first

    def __getitem__(self, index: int) -> dict:
        i = self.first + index
        return packed_sample(np.asarray(self.tokens[i]), np.asarray(self.mask[i]),
                             np.asarray(self.starts[i]), self.seq_length, self.pad_id)


class Cycled(torch.utils.data.Dataset):
    """Repeats a dataset to `length` samples (epochs over the instruction set, in order)."""

    def __init__(self, dataset, length: int):
        self.dataset, self.length = dataset, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        return self.dataset[index % len(self.dataset)]


def build_sft_datasets(cfg, tokenizer):
    """(train, valid) for `data.kind=sft`: one packed prefix split by item per `data.split`."""
    if len(cfg.data.paths) != 1:
        raise UserFacingError("data.kind=sft takes one packed prefix in data.paths (mix sources when "
                              "building it: `medmegatron prep sft` with weights per source)")
    full = PackedSFTDataset(cfg.data.paths[0], cfg.data.seq_length, tokenizer.eod)
    weights = [float(x) for x in cfg.data.split.split(",")]
    valid_items = int(round(len(full) * weights[1] / sum(weights))) if len(weights) > 1 else 0
    train_items = len(full) - valid_items
    if train_items < 1:
        raise UserFacingError(f"SFT data '{cfg.data.paths[0]}' has {len(full)} packed sequences: "
                              "too few for the data.split given")
    gbs = cfg.schedule.global_batch_size
    train = Cycled(PackedSFTDataset(cfg.data.paths[0], cfg.data.seq_length, tokenizer.eod, 0, train_items),
                   cfg.schedule.train_iters * gbs)
    valid = None
    if valid_items:
        valid = Cycled(PackedSFTDataset(cfg.data.paths[0], cfg.data.seq_length, tokenizer.eod,
                                        train_items, len(full)), cfg.eval_iters * gbs)
    return train, valid
