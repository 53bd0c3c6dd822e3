"""Exact substring deduplication (Lee et al. 2021) with a suffix array (pydivsufsort).

Definition (what the brute-force test checks): a byte is removed if it lies in a span of at least
`k` bytes, inside one document, that also occurs (inside one document) at an earlier position of
the corpus. The first occurrence is kept; later copies are cut out. Med42 runs it twice, k=400
then k=100.

How: concatenate the documents' UTF-8 bytes, build the suffix array and LCP array (pydivsufsort:
divsufsort + Kasai, C code). Suffixes sharing >= k bytes form runs of adjacent ranks with LCP >= k;
in each run every member except the one at the smallest position starts a duplicated k-window, and
the union of those windows is exactly the removal set above (a longer repeated span is covered by
its overlapping k-windows). Windows are clamped to their document, so nothing matches across
documents. All steps after the suffix array are vectorised numpy.

Bigger than memory: documents are cut into shards of `shard_bytes`; shard j is checked against
itself and every earlier shard i by building the suffix array of (i + j) - two shards in memory at
a time, m(m+1)/2 builds for m shards. Cut bytes can split a multi-byte UTF-8 character; its
remaining bytes are dropped when decoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


def _concat(docs: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter((len(d) for d in docs), np.int64, len(docs))
    data = np.frombuffer(b"".join(docs), np.uint8).copy()  # divsufsort needs a writable array
    ends = np.cumsum(lengths)
    return data, ends


def _later_copy_windows(data: np.ndarray, doc_ends: np.ndarray, k: int) -> np.ndarray:
    """Start positions of k-windows (inside one document) that also occur earlier in `data`."""
    import pydivsufsort

    n = len(data)
    if n < k + 1 or k <= 0:
        return np.zeros(0, dtype=np.int64)
    sa = pydivsufsort.divsufsort(data)
    lcp = pydivsufsort.kasai(data, sa)  # lcp[i] = LCP(suffix sa[i], suffix sa[i+1])
    sa = sa.astype(np.int64)
    # document end of each suffix start -> remaining bytes inside its document
    end_of_pos = np.repeat(doc_ends, np.diff(doc_ends, prepend=0))
    remaining = end_of_pos[sa] - sa
    link = lcp[:-1] >= k  # rank i and i+1 share >= k bytes
    if not link.any():
        return np.zeros(0, dtype=np.int64)
    # runs of linked ranks: a run starts where the previous rank is not linked to it
    run_start = np.concatenate([[True], ~link])
    run_id = np.cumsum(run_start) - 1
    member = remaining >= k
    pos = np.where(member, sa, np.iinfo(np.int64).max)
    starts = np.flatnonzero(run_start)
    first_pos = np.minimum.reduceat(pos, starts)[run_id]
    later = member & (sa != first_pos)
    return sa[later]


def _mask_from_windows(n: int, window_starts: np.ndarray, k: int) -> np.ndarray:
    diff = np.bincount(window_starts, minlength=n + 1) - np.bincount(window_starts + k, minlength=n + 1)
    return np.cumsum(diff[:n]) > 0


def unit_masks(load_unit, num_units: int, k: int):
    """Yield, for each unit j in order, per-document removal masks (bool arrays).

    `load_unit(i)` returns unit i's documents as bytes (the input of this pass); at most two
    units are in memory at once.
    """
    for j in range(num_units):
        own = load_unit(j)
        own_len = sum(len(d) for d in own)
        mask = np.zeros(own_len, dtype=bool)
        for i in range(j + 1):
            earlier = load_unit(i) if i < j else []
            data, ends = _concat(list(earlier) + list(own))
            offset = len(data) - own_len
            windows = _later_copy_windows(data, ends, k)
            windows = windows[windows >= offset] - offset
            mask |= _mask_from_windows(own_len, windows, k)
        own_ends = np.cumsum([len(d) for d in own])
        yield np.split(mask, own_ends[:-1]) if len(own) else []


def duplicate_mask(docs: Sequence[bytes], k: int, shard_bytes: int | None = None) -> list[np.ndarray]:
    """Per document, a bool mask of bytes to remove (later copies of >= k-byte spans)."""
    if not docs:
        return []
    units, cur, size = [], [], 0
    for d in docs:
        if cur and shard_bytes is not None and size + len(d) > shard_bytes:
            units.append(cur)
            cur, size = [], 0
        cur.append(d)
        size += len(d)
    units.append(cur)
    return [m for masks in unit_masks(units.__getitem__, len(units), k) for m in masks]


def apply_mask(text: str, raw: bytes, mask: np.ndarray) -> str:
    if not mask.any():
        return text
    return np.frombuffer(raw, np.uint8)[~mask].tobytes().decode("utf-8", errors="ignore")


@dataclass
class SubstringDedupStats:
    k: int
    bytes_in: int = 0
    bytes_removed: int = 0
    docs_changed: int = 0
    docs_emptied: int = 0


def dedup_texts(texts: Sequence[str], k: int, shard_bytes: int | None = None,
                ) -> tuple[list[str], SubstringDedupStats]:
    """Remove later copies of >= k-byte spans from `texts`; returns new texts and counts."""
    raw = [t.encode("utf-8") for t in texts]
    masks = duplicate_mask(raw, k, shard_bytes)
    stats = SubstringDedupStats(k=k)
    out = []
    for text, b, m in zip(texts, raw, masks):
        stats.bytes_in += len(b)
        removed = int(m.sum())
        if not removed:
            out.append(text)
            continue
        stats.bytes_removed += removed
        stats.docs_changed += 1
        kept = apply_mask(text, b, m)
        if not kept.strip():
            stats.docs_emptied += 1
        out.append(kept)
    return out, stats
