"""A Megatron `.bin/.idx` writer whose memory does not grow with the corpus.

megatron-core's `IndexedDatasetBuilder` keeps every sequence length in a Python list (~36 bytes
per document) and builds the pointer array in memory at `finalize`; Megatron-LM's
`preprocess_data.py` inherits that and OOMs on corpora of billions of documents. This writer spools
lengths to a temporary int32 file and writes the `.idx` in fixed-size chunks, producing the *same
bytes* as `IndexedDatasetBuilder` (checked in tests against the builder and `IndexedDataset`).

Layout (little-endian): b"MMIDIDX\\x00\\x00", u64 version=1, u8 dtype code, u64 N sequences,
u64 N+1 document indices, int32[N] lengths, int64[N] byte pointers, int64[N+1] document indices.
One sequence per document (what pretraining uses).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from data_prep.io import tmp_path

_HEADER = b"MMIDIDX\x00\x00"
_DTYPE_CODES = {np.uint8: 1, np.int8: 2, np.int16: 3, np.int32: 4, np.int64: 5,
                np.float64: 6, np.float32: 7, np.uint16: 8}
_CHUNK = 1 << 20  # sequences per chunk when writing the index


def token_dtype(vocab_size: int) -> type[np.number]:
    """uint16 below 65,500 ids (halves the .bin), int32 otherwise - megatron-core's convention."""
    return np.uint16 if vocab_size < 65500 else np.int32


class IndexedWriter:
    """Append documents (token arrays) and finalize into `<prefix>.bin/.idx`, atomically.

    Nothing appears under the final names until `finalize()`: .bin is renamed first, .idx last,
    so a reader (which opens the .idx first) never sees a dataset whose .bin is incomplete.
    """

    def __init__(self, prefix: str | os.PathLike, dtype: type[np.number]):
        self.prefix = Path(prefix)
        self.prefix.parent.mkdir(parents=True, exist_ok=True)
        self.dtype = np.dtype(dtype).type
        self._bin_tmp = tmp_path(self.prefix.with_name(self.prefix.name + ".bin"))
        self._len_tmp = tmp_path(self.prefix.with_name(self.prefix.name + ".lengths"))
        self._bin = open(self._bin_tmp, "wb")
        self._len = open(self._len_tmp, "wb")
        self.num_docs = 0
        self.num_tokens = 0

    def add_batch(self, tokens: np.ndarray, lengths: np.ndarray) -> None:
        """Append several documents at once: `tokens` concatenated, `lengths` per document."""
        tokens = np.asarray(tokens)
        if tokens.size and (tokens.max() > np.iinfo(self.dtype).max or tokens.min() < 0):
            raise ValueError(f"token id out of range for {np.dtype(self.dtype).name}")
        self._bin.write(np.ascontiguousarray(tokens, dtype=self.dtype).tobytes())
        self._len.write(np.ascontiguousarray(lengths, dtype=np.int32).tobytes())
        self.num_docs += len(lengths)
        self.num_tokens += int(tokens.size)

    def add_document(self, tokens) -> None:
        tokens = np.asarray(tokens)
        self.add_batch(tokens, np.array([tokens.size], dtype=np.int32))

    def append_raw(self, bin_path: str | os.PathLike, lengths_path: str | os.PathLike) -> None:
        """Append a shard written by another process (its raw .bin and int32 lengths file)."""
        import shutil

        with open(bin_path, "rb") as src:
            shutil.copyfileobj(src, self._bin, 1 << 22)
        n = os.path.getsize(lengths_path) // 4
        tokens = 0
        with open(lengths_path, "rb") as src:
            while block := src.read(_CHUNK * 4):
                tokens += int(np.frombuffer(block, np.int32).sum(dtype=np.int64))
                self._len.write(block)
        self.num_docs += n
        self.num_tokens += tokens

    def abort(self) -> None:
        for fh in (self._bin, self._len):
            fh.close()
        for p in (self._bin_tmp, self._len_tmp):
            p.unlink(missing_ok=True)

    def finalize(self) -> dict:
        self._bin.close()
        self._len.close()
        itemsize = np.dtype(self.dtype).itemsize
        idx_final = self.prefix.with_name(self.prefix.name + ".idx")
        idx_tmp = tmp_path(idx_final)
        n = self.num_docs
        try:
            with open(idx_tmp, "wb") as out, open(self._len_tmp, "rb") as lens:
                out.write(_HEADER)
                out.write(struct.pack("<Q", 1))
                out.write(struct.pack("<B", _DTYPE_CODES[self.dtype]))
                out.write(struct.pack("<Q", n))
                out.write(struct.pack("<Q", n + 1))
                while block := lens.read(_CHUNK * 4):  # lengths
                    out.write(block)
                lens.seek(0)
                offset = 0
                while block := lens.read(_CHUNK * 4):  # byte pointers = exclusive cumsum
                    lengths = np.frombuffer(block, np.int32).astype(np.int64) * itemsize
                    pointers = np.cumsum(lengths) - lengths + offset
                    offset += int(lengths.sum())
                    out.write(pointers.tobytes())
                for start in range(0, n + 1, _CHUNK):  # document indices 0..n
                    out.write(np.arange(start, min(n + 1, start + _CHUNK), dtype=np.int64).tobytes())
                out.flush()
                os.fsync(out.fileno())
            os.replace(self._bin_tmp, self.prefix.with_name(self.prefix.name + ".bin"))
            os.replace(idx_tmp, idx_final)
        finally:
            for p in (idx_tmp, self._bin_tmp, self._len_tmp):
                p.unlink(missing_ok=True)
        return {"documents": self.num_docs, "tokens": self.num_tokens}
