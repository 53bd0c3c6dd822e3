"""Tokenize documents into a Megatron indexed dataset (.bin/.idx), written atomically.

Uses megatron-core's own `IndexedDatasetBuilder`, so the files are by construction what
`megatron.core.datasets.indexed_dataset.IndexedDataset` reads. Each document gets EOD appended.
Both files are written under temporary names and renamed into place (.bin first, .idx last), so a
reader never sees a half-written dataset and a crashed run leaves nothing that looks complete.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

from data_prep.readers.document import Document


def token_dtype(vocab_size: int) -> type[np.number]:
    """uint16 below 65,500 ids (halves the .bin), int32 otherwise - megatron-core's convention."""
    return np.uint16 if vocab_size < 65500 else np.int32


def tokenize_to_indexed(
    documents: Iterable[Document], tokenizer, output_prefix: str | os.PathLike
) -> dict:
    """Write `documents` as `<output_prefix>.bin/.idx`; return counts for the manifest."""
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    prefix = Path(output_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    tmp_bin = prefix.with_name(prefix.name + ".bin.tmp")
    tmp_idx = prefix.with_name(prefix.name + ".idx.tmp")
    builder = IndexedDatasetBuilder(str(tmp_bin), dtype=token_dtype(tokenizer.vocab_size))
    num_docs = num_tokens = 0
    try:
        for doc in documents:
            ids = list(tokenizer.tokenize(doc.text)) + [tokenizer.eod]
            builder.add_document(np.asarray(ids, dtype=np.int64), [len(ids)])
            num_docs += 1
            num_tokens += len(ids)
        builder.finalize(str(tmp_idx))
        os.replace(tmp_bin, prefix.with_name(prefix.name + ".bin"))
        os.replace(tmp_idx, prefix.with_name(prefix.name + ".idx"))
    finally:
        for tmp in (tmp_bin, tmp_idx):
            tmp.unlink(missing_ok=True)
    return {"documents": num_docs, "tokens": num_tokens}
