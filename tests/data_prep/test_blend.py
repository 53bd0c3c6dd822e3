"""Blend weights, epochs and the megatron-core blend format."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data_prep.blend import compute_blend
from medmegatron.errors import UserFacingError

COUNTS = {"pubmed": 1_000_000, "clinical": 50_000, "general": 2_000_000}
PREFIXES = {k: f"/data/{k}" for k in COUNTS}


def test_ratios_budgets_replay():
    b = compute_blend(COUNTS, PREFIXES, ratios={"pubmed": 15, "clinical": 1, "general": 4},
                      train_tokens=1_000_000)
    assert b["shares"] == pytest.approx({"pubmed": 0.75, "clinical": 0.05, "general": 0.2})
    assert b["epochs"]["clinical"] == pytest.approx(0.05 * 1e6 / 50_000)
    assert b["warnings"] == []
    b = compute_blend(COUNTS, PREFIXES, ratios={"pubmed": 15, "clinical": 1, "general": 4},
                      train_tokens=10_000_000)
    assert [w.split(":")[0] for w in b["warnings"]] == ["pubmed", "clinical"]  # 7.5 and 10 epochs
    b = compute_blend(COUNTS, PREFIXES, budgets={"clinical": 50e9, "general": 15e9})
    assert b["shares"]["clinical"] == pytest.approx(50 / 65) and b["train_tokens"] == 65e9
    b = compute_blend(COUNTS, PREFIXES, replay={"general": 0.01}, train_tokens=1e6)
    assert b["shares"]["general"] == pytest.approx(0.01)
    assert b["shares"]["pubmed"] / b["shares"]["clinical"] == pytest.approx(20)
    assert sum(b["shares"].values()) == pytest.approx(1)
    with pytest.raises(UserFacingError, match="no token counts"):
        compute_blend(COUNTS, PREFIXES, ratios={"web": 1}, train_tokens=1)


def test_blend_is_read_by_megatron_core(tmp_path):
    from megatron.core.datasets.utils import get_blend_from_list

    b = compute_blend(COUNTS, PREFIXES, ratios={"pubmed": 15, "clinical": 1, "general": 4},
                      train_tokens=1e6)
    prefixes, weights = get_blend_from_list([str(x) for x in b["data_path"]])
    assert prefixes == b["blend"]["prefixes"]
    assert np.allclose(weights, b["blend"]["weights"])


def test_blend_cli_reads_idx(tmp_path, capsys):
    from data_prep.indexed_writer import IndexedWriter
    from medmegatron.cli import main

    for name, n in (("a", 3000), ("b", 100)):
        w = IndexedWriter(tmp_path / name, np.uint16)
        w.add_batch(np.ones(n, np.uint16), np.array([n // 2, n - n // 2], np.int32))
        w.finalize()
    out = tmp_path / "blend.json"
    assert main(["prep", "blend", "--source", f"a={tmp_path / 'a'}", "--source",
                 f"b={tmp_path / 'b'}", "--ratios", "a=3,b=1", "--train-tokens", "2000",
                 "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "WARNING: b: 5.00 epochs" in text
    blend = json.loads(out.read_text())
    assert blend["tokens"] == {"a": 3000, "b": 100}
