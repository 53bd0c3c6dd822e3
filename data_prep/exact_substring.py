"""Exact substring deduplication (Lee et al. 2021) with a suffix array (pydivsufsort).

Definition (what the brute-force test checks): a byte is removed if it lies in a span of at least
`k` bytes, inside one document, that also occurs (inside one document) at an earlier position of
the corpus. The first occurrence is kept; later copies are cut out. Med42 runs it twice, k=400
then k=100.

How: concatenate the documents' UTF-8 bytes and build the suffix array (pydivsufsort's
libdivsufsort, C). Suffixes sharing >= k bytes form runs of adjacent ranks with LCP >= k; in each
run every member except the one at the smallest position starts a duplicated k-window, and the
union of those windows is exactly the removal set above (a longer repeated span is covered by its
overlapping k-windows). Windows are clamped to their document, so nothing matches across
documents. Which adjacent ranks share >= k bytes is found without a full LCP array: a gather of
4 bytes at offset k-4 per suffix drops nearly every pair, and the few survivors are compared
4 bytes at a time (Kasai's LCP is the fallback for very repetitive inputs). All steps after the
suffix array are vectorised numpy, in chunks, touching only the linked ranks.

Bigger than memory: documents are cut into shards of `shard_bytes`; shard j is checked against
itself and every earlier shard i by building the suffix array of (i + j) - two shards in memory at
a time, m(m+1)/2 builds for m shards. Cut bytes can split a multi-byte UTF-8 character; its
remaining bytes are dropped when decoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

_CHUNK = 1 << 20  # ranks per vectorised step: 4 MB temporaries stay in cache and are reused


def _concat(docs: Sequence[bytes]) -> tuple[bytes, np.ndarray]:
    ends = np.cumsum(np.fromiter((len(d) for d in docs), np.int64, len(docs)))
    return b"".join(docs), ends


def suffix_array(data: bytes) -> np.ndarray:
    """Suffix array of `data` (libdivsufsort; int32 below 2**31 bytes)."""
    import pydivsufsort

    return pydivsufsort.divsufsort(data)


def _later_copy_windows(data: bytes, doc_ends: np.ndarray, k: int) -> np.ndarray:
    """Start positions of k-windows (inside one document) that also occur earlier in `data`."""
    n = len(data)
    if n < k + 1 or k <= 0:
        return np.zeros(0, dtype=np.int64)
    sa = suffix_array(data)
    links = _linked_ranks(data, sa, k)  # rank i and i+1 share >= k bytes
    if not len(links):
        return np.zeros(0, dtype=np.int64)
    # only ranks in runs of linked ranks matter; a run starts at a rank not linked to the previous
    is_link = np.zeros(n + 1, dtype=bool)  # is_link[i]: rank i and i+1 share >= k bytes
    is_link[links] = True
    in_run = is_link[:n].copy()
    in_run[1:] |= is_link[:n - 1]
    ranks = np.flatnonzero(in_run)
    run_start = ~is_link[ranks - 1]  # rank 0 reads is_link[-1] = is_link[n] = False
    pos = sa[ranks].astype(np.int64)
    member = _window_inside_doc(doc_ends, k)[pos]
    member_pos = np.where(member, pos, np.iinfo(np.int64).max)
    first_pos = np.minimum.reduceat(member_pos, np.flatnonzero(run_start))
    later = member & (pos != first_pos[np.cumsum(run_start) - 1])
    return pos[later]


def _window_inside_doc(doc_ends: np.ndarray, k: int) -> np.ndarray:
    """Bool per position: the k bytes starting there lie inside one document."""
    lengths = np.diff(doc_ends, prepend=0)
    inside = np.maximum(lengths - k + 1, 0)
    counts = np.stack([inside, lengths - inside], axis=1).ravel()
    return np.repeat(np.tile(np.array([True, False]), len(lengths)), counts)


def _linked_ranks(data: bytes, sa: np.ndarray, k: int, max_verify: float = 4.0) -> np.ndarray:
    """Ranks i (ascending) whose suffix shares >= k bytes with the next: LCP(sa[i], sa[i+1]) >= k.

    Exact, without the full LCP array (Kasai costs about as much as the suffix array itself).
    Adjacent suffixes first compare their bytes [k-4, k): past a shorter common prefix these are
    unrelated text, so almost every pair sharing < k bytes drops out after this one gather. The
    survivors are then checked 4 bytes at a time over [0, k-4). When too many survive (a very
    repetitive input: over `max_verify` * n word loads to check them), Kasai is used instead.
    """
    n = len(data)
    if k < 4 or n < k + 1:
        return _linked_ranks_kasai(data, sa, k)
    # words[p] = data[p:p+4]; an aligned copy, because np.take copies an unaligned source per call
    words = np.ascontiguousarray(np.ndarray((n - 3,), dtype="<u4", buffer=data, strides=(1,)))
    found = []
    for lo in range(0, n - 1, _CHUNK):
        s = sa[lo:lo + _CHUNK + 1]  # ranks lo .. lo+len(s)-1: the pairs (i, i+1) of this chunk
        tail = words.take(np.minimum(s, n - k) + (k - 4))  # a suffix shorter than k cannot link
        cand = np.flatnonzero(tail[:-1] == tail[1:])
        a, b = s[cand], s[cand + 1]
        ok = (a <= n - k) & (b <= n - k)
        found.append((cand[ok] + lo, a[ok], b[ok]))
    cand, a, b = (np.concatenate(x) for x in zip(*found))
    offsets = range(0, k - 4, 4)
    if 2 * len(cand) * len(offsets) > max_verify * n:
        return _linked_ranks_kasai(data, sa, k)
    for off in offsets:
        same = words.take(a + off) == words.take(b + off)
        cand, a, b = cand[same], a[same], b[same]
    return cand


def _linked_ranks_kasai(data: bytes, sa: np.ndarray, k: int) -> np.ndarray:
    import pydivsufsort

    lcp = pydivsufsort.kasai(data, sa)  # lcp[i] = LCP(suffix sa[i], suffix sa[i+1])
    return np.flatnonzero(lcp[:-1] >= k)


def _mask_from_windows(n: int, window_starts: np.ndarray, k: int) -> np.ndarray:
    """Bool mask of the union of the windows [s, s + k), s in `window_starts` (s + k <= n)."""
    if len(window_starts) * 32 > n:  # many windows: one linear pass, no sort
        idx = np.int32 if n < 2**31 - k else np.int64
        last = np.full(n, -k, dtype=idx)  # start of the latest window opened at or before p
        last[window_starts] = window_starts
        np.maximum.accumulate(last, out=last)
        return np.arange(n, dtype=idx) - last < k
    mask = np.zeros(n, dtype=bool)
    if not len(window_starts):
        return mask
    s = np.sort(window_starts)
    reach = np.maximum.accumulate(s + k)
    new = np.ones(len(s), dtype=bool)  # a window starting past every earlier end opens a segment
    new[1:] = s[1:] > reach[:-1]
    first = np.flatnonzero(new)
    seg_end = reach[np.append(first[1:] - 1, len(s) - 1)]
    step = np.zeros(n + 1, dtype=np.int8)  # segments are disjoint and apart: steps stay 0/1
    step[s[first]] = 1
    step[seg_end] = -1
    np.cumsum(step[:n], dtype=np.int8, out=step[:n])
    return step[:n].view(bool)


def unit_masks(load_unit, num_units: int, k: int):
    """Yield, for each unit j in order, per-document removal masks (bool arrays).

    `load_unit(i)` returns unit i's documents as bytes (the input of this pass); at most two
    units are in memory at once.
    """
    for j in range(num_units):
        own = load_unit(j)
        own_len = sum(len(d) for d in own)
        windows = []
        for i in range(j + 1):
            earlier = load_unit(i) if i < j else []
            data, ends = _concat(list(earlier) + list(own))
            offset = len(data) - own_len
            w = _later_copy_windows(data, ends, k)
            windows.append(w[w >= offset] - offset)
        mask = _mask_from_windows(own_len, np.concatenate(windows), k)
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
