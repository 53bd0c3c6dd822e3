"""Training data on megatron-core's `GPTDataset` / `BlendedMegatronDatasetBuilder`.

megatron-core ships the datasets but not Megatron-LM's sampler or data loader (those live in
`megatron.training`, which the wheel does not include). `MicrobatchIterator` is our small
equivalent of `MegatronPretrainingSampler`: global batch `i` is always samples
[i*GBS, (i+1)*GBS) and each DP rank takes a contiguous slice of every micro-step, so the set of
samples per optimizer step is identical at every parallel layout, and resuming at
`consumed_samples` continues the exact sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from medmegatron.config import TrainConfig


@dataclass
class Datasets:
    train: object
    valid: object | None
    tokenizer: object


def build_datasets(cfg: TrainConfig, tokenizer, cache_dir: str) -> Datasets:
    """Build train/valid GPT datasets sized for the whole run (rank 0 first, others from cache)."""
    import torch.distributed as dist

    if cfg.data.kind == "sft":
        from medmegatron.training.sft_data import build_sft_datasets

        train, valid = build_sft_datasets(cfg, tokenizer)
        return Datasets(train=train, valid=valid, tokenizer=tokenizer)
    from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
    from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig

    data = cfg.data
    config = GPTDatasetConfig(
        random_seed=data.seed,
        sequence_length=data.seq_length,
        blend=(list(data.paths), list(data.weights) if data.weights else None),
        split=data.split,
        path_to_cache=cache_dir,
        tokenizer=tokenizer,
        reset_position_ids=False,
        reset_attention_mask=False,
        eod_mask_loss=False,
        # the causal mask is generated inside attention; materialising it per sample is waste
        create_attention_mask=False,
        mid_level_dataset_surplus=0.005,
    )
    gbs = cfg.schedule.global_batch_size
    evals = (cfg.schedule.train_iters // cfg.eval_interval + 1) if cfg.eval_interval else 1
    sizes = [cfg.schedule.train_iters * gbs, evals * cfg.eval_iters * gbs, 0]

    def build():
        return BlendedMegatronDatasetBuilder(GPTDataset, sizes, lambda: True, config).build()

    # Rank 0 writes the index caches; the others then read them instead of racing to write.
    if dist.get_rank() == 0:
        train, valid, _ = build()
    dist.barrier()
    if dist.get_rank() != 0:
        train, valid, _ = build()
    return Datasets(train=train, valid=valid, tokenizer=tokenizer)


def _collate(samples: list[dict]) -> dict:
    batch = {key: torch.stack([torch.as_tensor(s[key]) for s in samples]) for key in samples[0]}
    # A single dataset is returned unblended (no dataset_id): it is source 0.
    batch.setdefault("dataset_id", torch.zeros(len(samples), dtype=torch.long))
    return batch


class MicrobatchIterator:
    """Yields this DP rank's micro-batches, starting at `consumed_samples` into `dataset`."""

    def __init__(self, dataset, micro_batch_size: int, dp_rank: int, dp_size: int,
                 consumed_samples: int = 0):
        self.dataset = dataset
        self.mbs = micro_batch_size
        self.dp_rank = dp_rank
        self.dp_size = dp_size
        self.position = consumed_samples

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        start = self.position + self.dp_rank * self.mbs
        if self.position + self.mbs * self.dp_size > len(self.dataset):
            raise StopIteration
        self.position += self.mbs * self.dp_size
        return _collate([self.dataset[i] for i in range(start, start + self.mbs)])
