"""Packing keeps every sample whole, records correct boundaries, reports true efficiency; the
three datasets are read back with megatron-core's own `IndexedDataset`."""

from __future__ import annotations

from collections import Counter

import numpy as np
from sft_helpers import conv, write_jsonl

from data_prep.sft import SFTConfig, build_sft_dataset
from data_prep.sft.packing import pack


def test_pack_places_every_sample_once_within_capacity():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 65, size=500)
    bins = pack(lengths, 64, np.random.default_rng(1))
    flat = [i for b in bins for i in b]
    assert sorted(flat) == list(range(500))
    assert all(sum(lengths[i] for i in b) <= 64 for b in bins)
    lower_bound = int(np.ceil(lengths.sum() / 64))
    assert len(bins) <= 1.25 * lower_bound + 1  # best-fit decreasing is near-optimal


def _dataset(tmp_path, n=40):
    rng = np.random.default_rng(3)
    words = "fever cough anemia insulin renal hepatic sepsis dose aspirin statin".split()
    recs = []
    for i in range(n):
        q = " ".join(rng.choice(words, rng.integers(2, 12)))
        a = " ".join(rng.choice(words, rng.integers(1, 20)))
        recs.append(conv(f"Q{i}: {q}?", f"A{i}: {a}."))
    return write_jsonl(tmp_path / "med.jsonl", recs)


def test_packed_output_reads_back_with_megatron_indexed_dataset(tmp_path, sp_tok):
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    from data_prep.sft.build import encode_source
    from data_prep.errors import ErrorPolicy

    path = _dataset(tmp_path)
    cfg = SFTConfig(sources=[{"name": "med", "path": str(path)}], output_prefix=str(tmp_path / "o/sft"),
                    template="med42", seq_length=128)
    manifest = build_sft_dataset(cfg)
    tokens = IndexedDataset(str(tmp_path / "o/sft"))
    mask = IndexedDataset(str(tmp_path / "o/sft_lossmask"))
    bounds = IndexedDataset(str(tmp_path / "o/sft_boundaries"))
    assert len(tokens) == len(mask) == len(bounds) == manifest["counts"]["sequences"]
    assert mask.index.dtype == np.uint8 and bounds.index.dtype == np.int32
    assert (tokens.sequence_lengths == mask.sequence_lengths).all()

    expected = encode_source(str(path), cfg, sp_tok, ErrorPolicy(), {})
    want = Counter((tuple(i), tuple(m)) for i, m in expected)
    got = Counter()
    total = 0
    for k in range(len(tokens)):
        ids, m, starts = tokens[k], mask[k], bounds[k]
        assert len(ids) <= 128 and starts[0] == 0 and (np.diff(starts) > 0).all()
        ends = list(starts[1:]) + [len(ids)]
        for a, b in zip(starts, ends):  # each boundary span is one whole sample, BOS first
            assert ids[a] == sp_tok.bos and m[a] == 0
            got[(tuple(ids[a:b]), tuple(m[a:b]))] += 1
        total += len(ids)
    assert got == want  # every sample whole, exactly once, with its own mask
    counts = manifest["counts"]
    assert counts["tokens"] == total
    assert counts["packing_efficiency"] == total / (len(tokens) * 128)
    assert counts["packing_efficiency"] > 0.9
    assert counts["samples"] == 40 and counts["loss_tokens"] == sum(int(m.sum()) for _, m in expected)
    assert (tmp_path / "o/sft.manifest.json").exists()
    assert not list((tmp_path / "o").glob("*.tmp-*"))  # atomic writes left no temp files
