"""MinHash: shingles and Jaccard vs Python sets, estimates vs datasketch, LSH vs the S-curve."""

from __future__ import annotations

import random

import numpy as np
import pytest

from data_prep.minhash import (MinHashConfig, MinHasher, band_keys, jaccard, near_dedup,
                               shingles)
from data_prep.minhash_plan import check_plan, choose_bands_rows, detection_probability


def _word_ngrams(text, n=5):
    import re

    w = re.findall(r"\w+", text.lower())
    return {tuple(w[i:i + n]) for i in range(max(1, len(w) - n + 1))} if w else set()


def _mutate(text: str, rng: random.Random, vocab, k: int) -> str:
    words = text.split()
    for _ in range(k):
        words[rng.randrange(len(words))] = rng.choice(vocab)
    return " ".join(words)


def test_shingles_and_jaccard_match_python_sets(make_docs, vocab):
    rng = random.Random(0)
    docs = make_docs(20, seed=5)
    for a in docs[:10]:
        b = _mutate(a, rng, vocab, rng.randint(0, 12))
        sa, sb = _word_ngrams(a), _word_ngrams(b)
        assert len(shingles(a)) == len(sa)
        assert jaccard(shingles(a), shingles(b)) == pytest.approx(len(sa & sb) / len(sa | sb))
    assert len(shingles("")) == 0 and len(shingles("two words")) == 1
    assert len(shingles("abcdef", 3, "char")) == 4


def test_minhash_estimates_agree_with_truth_and_datasketch(make_docs, vocab):
    from datasketch import MinHash

    rng = random.Random(1)
    docs = make_docs(30, seed=6)
    pairs = [(d, _mutate(d, rng, vocab, rng.choice([0, 1, 3, 8, 15, 25]))) for d in docs]
    hasher = MinHasher(512, seed=3)
    ours, ref, truth = [], [], []
    for a, b in pairs:
        sig = hasher.signatures([shingles(a), shingles(b)])
        ours.append(float((sig[0] == sig[1]).mean()))
        ma, mb = MinHash(num_perm=512, seed=3), MinHash(num_perm=512, seed=3)
        for g in _word_ngrams(a):
            ma.update(" ".join(g).encode())
        for g in _word_ngrams(b):
            mb.update(" ".join(g).encode())
        ref.append(ma.jaccard(mb))
        truth.append(jaccard(shingles(a), shingles(b)))
    ours, ref, truth = map(np.array, (ours, ref, truth))
    assert truth.min() < 0.6 < 0.95 < truth.max()
    assert np.abs(ours - truth).max() < 0.08  # std of a 512-hash estimate is <= 0.022
    assert np.abs(ours - ref).mean() < 0.03


def test_lsh_candidate_rate_follows_s_curve(make_docs, vocab):
    """Empirical P(candidate) for pairs near Jaccard 0.7 matches 1-(1-j^r)^b."""
    rng = random.Random(2)
    bands, rows = 14, 8
    hits, expected = [], []
    for i, d in enumerate(make_docs(250, seed=7, min_words=150, max_words=150)):
        b = _mutate(d, rng, vocab, 4)
        sa, sb = shingles(d), shingles(b)
        sig = MinHasher(bands * rows, seed=i).signatures([sa, sb])
        keys = band_keys(sig, bands, rows)
        hits.append(bool((keys[0] == keys[1]).any()))
        expected.append(detection_probability(jaccard(sa, sb), bands, rows))
    assert abs(np.mean(hits) - np.mean(expected)) < 0.09
    assert 0.2 < np.mean(expected) < 0.95  # the test sits on the slope of the curve


def test_near_dedup_precision_recall_on_planted_duplicates(make_docs, vocab):
    rng = random.Random(3)
    base = make_docs(300, seed=8)
    docs, cluster = list(base), list(range(len(base)))
    for i in range(100):  # near-duplicates of the first 100 documents
        docs.append(_mutate(base[i], rng, vocab, rng.randint(0, 3)))
        cluster.append(i)
    sets = [shingles(d) for d in docs]
    cfg = MinHashConfig(threshold=0.85, bands=14, rows=8)
    res = near_dedup(sets, cfg)
    found = {(int(i), int(j)) for i, j, _ in res.verified_pairs}
    assert found and all(jaccard(sets[i], sets[j]) >= 0.85 for i, j in found)  # verified
    # brute-force reference of the same policy: remove j if some kept i < j has J >= 0.85
    ref_keep = np.ones(len(docs), bool)
    for j in range(len(docs)):
        for i in range(j):
            if ref_keep[i] and cluster[i] == cluster[j] and jaccard(sets[i], sets[j]) >= 0.85:
                ref_keep[j] = False
                break
    removed, ref_removed = set(np.flatnonzero(~res.keep)), set(np.flatnonzero(~ref_keep))
    assert len(removed & ref_removed) / len(ref_removed) >= 0.97  # recall
    assert removed <= ref_removed  # precision 1
    assert res.keep[:300].all()  # originals come first and are kept
    for j in removed:  # every removed document has a kept twin above the threshold
        i = res.duplicate_of[j]
        assert res.keep[i] and jaccard(sets[i], sets[j]) >= 0.85


def test_bands_rows_helper_matches_datasketch_and_med42_warns():
    from datasketch.lsh import _optimal_param

    for t, n in [(0.85, 128), (0.7, 64), (0.5, 100)]:
        assert choose_bands_rows(t, n, mode="weighted") == _optimal_param(t, n, 0.5, 0.5)
    b, r = choose_bands_rows(0.85, 9000)
    assert b * r <= 9000 and detection_probability(0.85, b, r) >= 0.99
    assert check_plan(b, r, 0.85).warnings == []
    paper = check_plan(15, 400, 0.85)
    assert paper.warnings and paper.curve[0.85] < 1e-6 and paper.midpoint > 0.98
