"""Exact substring dedup equals a brute-force definition, sharded or not."""

from __future__ import annotations

import random

import numpy as np
import pytest

from data_prep.exact_substring import dedup_texts, duplicate_mask


def brute_force(docs: list[bytes], k: int) -> list[np.ndarray]:
    """Byte p is removed iff some k-byte window covering p (inside one document) also occurs,
    inside one document, at an earlier start position."""
    sep = b"\x00"
    data = sep.join(docs)
    mask = np.zeros(len(data), bool)
    for s in range(len(data) - k + 1):
        window = data[s:s + k]
        if sep not in window and data.find(window, 0, s - 1 + k) != -1:
            mask[s:s + k] = True
    out, pos = [], 0
    for d in docs:
        out.append(mask[pos:pos + len(d)])
        pos += len(d) + 1
    return out


@pytest.mark.parametrize("seed", range(6))
def test_matches_brute_force(seed):
    rng = random.Random(seed)
    alphabet = b"ab" if seed % 2 else b"abcdefgh"
    docs = []
    for _ in range(rng.randint(2, 10)):
        d = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))
        if docs and rng.random() < 0.6:  # plant a copy of a span of an earlier document
            src = rng.choice(docs)
            i = rng.randint(0, len(src))
            d = d[:20] + src[i:i + rng.randint(5, 60)] + d[20:]
        docs.append(d)
    for k in (4, 8, 16, 40):
        ref = brute_force(docs, k)
        for shard_bytes in (None, 64, 150):
            got = duplicate_mask(docs, k, shard_bytes=shard_bytes)
            assert all((g == r).all() for g, r in zip(got, ref)), (k, shard_bytes)


def test_two_passes_on_text():
    rng = random.Random(9)
    licence = ("This article is distributed under the terms of the Creative Commons Attribution "
               "License, which permits unrestricted use, distribution, and reproduction in any "
               "medium, provided the original author and source are credited. The funders had no "
               "role in study design, data collection and analysis, decision to publish, or "
               "preparation of the manuscript. Competing interests: none declared by any of the authors.")
    footer = ("Correspondence to the editorial office of the journal, whose postal address is "
              "printed on the cover page of every issue.")
    assert len(licence.encode()) > 400 and 100 < len(footer.encode()) < 400
    words = ["alpha", "beta", "gamma", "delta", "épsilon", "zeta", "eta", "theta"]
    def filler():
        return " ".join(rng.choice(words) for _ in range(40))

    texts = [f"{filler()} {licence} {filler()} {footer}" for _ in range(5)]
    out1, st1 = dedup_texts(texts, 400)
    assert out1[0] == texts[0] and st1.docs_changed == 4  # the first copy is kept
    assert all("Creative Commons" not in t and footer in t for t in out1[1:])
    out2, st2 = dedup_texts(out1, 100)
    assert out2[0] == texts[0] and st2.docs_changed == 4
    assert all("Creative Commons" not in t and "editorial office" not in t for t in out2[1:])
    assert all(t.startswith(s.split()[0]) for t, s in zip(out2, texts))


def _reference_links(data: bytes, k: int) -> np.ndarray:
    import pydivsufsort

    sa = pydivsufsort.divsufsort(data)
    return sa, np.flatnonzero(pydivsufsort.kasai(data, sa)[:-1] >= k)


@pytest.mark.parametrize("seed", range(4))
def test_linked_ranks_equal_kasai(seed, monkeypatch):
    """The gather-and-verify search for LCP >= k equals Kasai's LCP array, on both its paths
    (verify; fall back when too many pairs survive) and across chunk boundaries."""
    import data_prep.exact_substring as es

    rng = random.Random(seed)
    alphabet = [b"ab", b"abcd", bytes(range(256)), b"the cat sat on a mat \x00"][seed]
    parts = []
    for _ in range(60):
        if parts and rng.random() < 0.4:
            src = rng.choice(parts)
            i = rng.randint(0, len(src))
            parts.append(src[i:i + rng.randint(1, 200)])
        else:
            parts.append(bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 150))))
    data = b"".join(parts)
    monkeypatch.setattr(es, "_CHUNK", 37)
    for k in (1, 3, 4, 5, 8, 11, 16, 33, 100):
        if len(data) <= k:
            continue
        sa, ref = _reference_links(data, k)
        for max_verify in (0.0, 4.0, 1e12):
            assert np.array_equal(es._linked_ranks(data, sa, k, max_verify=max_verify), ref), (k, max_verify)


def test_mask_from_windows_both_paths():
    from data_prep.exact_substring import _mask_from_windows

    rng = np.random.default_rng(0)
    for _ in range(300):
        k = int(rng.integers(1, 40))
        n = int(rng.integers(k, 4000))
        starts = rng.integers(0, n - k + 1, int(rng.integers(0, 300)))  # sparse and dense
        cover = np.bincount(starts, minlength=n + 1) - np.bincount(starts + k, minlength=n + 1)
        ref = np.cumsum(cover)[:n] > 0
        assert np.array_equal(_mask_from_windows(n, starts, k), ref)


def test_matches_brute_force_on_text_with_planted_copies():
    """Bigger text-like input (the verify path of the linked-rank search, several shards)."""
    rng = random.Random(11)
    words = b"patient dose trial cohort risk the of and with was were in mg".split()
    docs = [b" ".join(rng.choice(words) for _ in range(rng.randint(5, 60))) for _ in range(40)]
    for i in range(1, len(docs)):
        if rng.random() < 0.5:
            src = docs[rng.randrange(i)]
            j = rng.randint(0, len(src))
            docs[i] = docs[i][:30] + src[j:j + rng.randint(10, 150)] + docs[i][30:]
    for k in (12, 50):
        ref = brute_force(docs, k)
        for shard_bytes in (None, 2000):
            got = duplicate_mask(docs, k, shard_bytes=shard_bytes)
            assert all((g == r).all() for g, r in zip(got, ref)), (k, shard_bytes)
