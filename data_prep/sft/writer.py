"""Write packed sequences as three Megatron indexed datasets sharing one item order.

  <prefix>.bin/.idx            tokens, one packed sequence per item (uint16 below 65,500 ids)
  <prefix>_lossmask.bin/.idx   uint8, same item lengths: 1 = token is a training target
  <prefix>_boundaries.bin/.idx int32, item i = start offsets of the samples packed in sequence i
                               (always begins with 0; cu_seqlens = boundaries + [len(item)])

Items are *not* padded to seq_length: padding is the trainer's (pad with EOD, mask 0, one more
cu_seqlens entry), so the files hold no dead bytes and the pad id stays a training-time choice.
Items hold at most `seq_length` tokens and the mask is aligned with them (mask[t] = 1: token t is
a target); a trainer that wants `seq_length` inputs *plus* the shifted label should build with
`seq_length + 1`. Written with data_prep's `IndexedWriter`, which produces the bytes of megatron-core's
`IndexedDatasetBuilder` but atomically (temp + rename); readers use `IndexedDataset`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data_prep.indexed_writer import IndexedWriter, token_dtype


def output_prefixes(prefix) -> dict[str, Path]:
    prefix = Path(prefix)
    return {"tokens": prefix, "loss_mask": prefix.with_name(prefix.name + "_lossmask"),
            "boundaries": prefix.with_name(prefix.name + "_boundaries")}


def write_packed(prefix, bins: list[list[int]], samples: list[tuple[np.ndarray, np.ndarray]],
                 vocab_size: int) -> dict:
    paths = output_prefixes(prefix)
    writers = {"tokens": IndexedWriter(paths["tokens"], token_dtype(vocab_size)),
               "loss_mask": IndexedWriter(paths["loss_mask"], np.uint8),
               "boundaries": IndexedWriter(paths["boundaries"], np.int32)}
    try:
        for members in bins:
            ids = np.concatenate([samples[i][0] for i in members])
            mask = np.concatenate([samples[i][1] for i in members])
            starts = np.cumsum([0] + [len(samples[i][0]) for i in members[:-1]])
            writers["tokens"].add_document(ids)
            writers["loss_mask"].add_document(mask)
            writers["boundaries"].add_document(starts.astype(np.int32))
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    for w in writers.values():
        w.finalize()
    return {k: str(v) for k, v in paths.items()}
