"""The instruction mix: shares from group and source weights, counts, repeats, and the manifest."""

from __future__ import annotations

import numpy as np
import pytest
from sft_helpers import conv, write_jsonl

from data_prep.sft import SFTConfig, SFTSource, build_sft_dataset
from data_prep.sft.mix import plan_mix, select
from medmegatron.errors import ConfigError, UserFacingError


def _src(name, weight=None, group=None):
    return SFTSource(name=name, path=f"{name}.jsonl", weight=weight, group=group)


def test_group_ratios_like_med42_55_45():
    sources = [_src("pubmedqa", 2, "medical"), _src("medqa", 1, "medical"),
               _src("oasst", None, "general"), _src("dolly", None, "general")]
    sizes = {"pubmedqa": 300, "medqa": 500, "oasst": 100, "dolly": 300}
    plan = plan_mix(sources, sizes, {"medical": 55, "general": 45}, total_samples=1000)
    assert sum(p["selected"] for p in plan.values()) == 1000
    assert plan["pubmedqa"]["share"] == pytest.approx(0.55 * 2 / 3)
    assert plan["medqa"]["share"] == pytest.approx(0.55 * 1 / 3)
    assert plan["oasst"]["share"] == pytest.approx(0.45 * 100 / 400)  # size-proportional in group
    assert plan["dolly"]["share"] == pytest.approx(0.45 * 300 / 400)
    medical = plan["pubmedqa"]["selected"] + plan["medqa"]["selected"]
    assert medical == 550
    assert plan["pubmedqa"]["selected"] == 367 and plan["pubmedqa"]["repeats"] == pytest.approx(367 / 300)
    assert plan["pubmedqa"]["full_passes"] == 1 and plan["pubmedqa"]["remainder"] == 67
    assert plan["oasst"]["selected"] == 112 and plan["oasst"]["full_passes"] == 1


def test_default_total_repeats_no_source():
    sources = [_src("a", 1), _src("b", 1)]
    plan = plan_mix(sources, {"a": 50, "b": 500}, None, None)
    assert plan["a"]["selected"] == 50 and plan["b"]["selected"] == 50  # a is the binding source
    assert max(p["repeats"] for p in plan.values()) <= 1.0
    natural = plan_mix([_src("a"), _src("b")], {"a": 50, "b": 500}, None, None)
    assert natural["a"]["selected"] == 50 and natural["b"]["selected"] == 500


def test_select_is_full_passes_plus_distinct_remainder():
    idx = select(10, 27, np.random.default_rng(0))
    counts = np.bincount(idx, minlength=10)
    assert len(idx) == 27 and set(counts) == {2, 3} and (counts == 3).sum() == 7


def test_config_errors_are_actionable(tmp_path):
    with pytest.raises(ConfigError, match="have no group in sft.group_weights"):
        SFTConfig(sources=[{"name": "a", "path": "x"}], output_prefix="o", group_weights={"m": 1})
    with pytest.raises(ConfigError, match="unknown"):
        SFTConfig(sources=[{"name": "a", "path": "x"}], output_prefix="o", template="alpaca")
    with pytest.raises(ConfigError, match="mix explicit and missing weights"):
        SFTConfig(sources=[{"name": "a", "path": "x", "weight": 1}, {"name": "b", "path": "y"}],
                  output_prefix="o")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['seq_len'\]"):
        SFTConfig.from_dict({"sources": [{"name": "a", "path": "x"}], "output_prefix": "o",
                             "seq_len": 4})
    with pytest.raises(UserFacingError, match="does not exist"):
        build_sft_dataset(SFTConfig(sources=[{"name": "a", "path": str(tmp_path / "nope.jsonl")}],
                                    output_prefix=str(tmp_path / "o")))


def test_mix_end_to_end_counts_in_manifest(tmp_path):
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    med = write_jsonl(tmp_path / "med.jsonl", [conv(f"q{i}", f"medical answer {i}") for i in range(6)])
    gen = write_jsonl(tmp_path / "gen.jsonl", [conv(f"q{i}", f"general answer {i}") for i in range(20)])
    cfg = SFTConfig(sources=[{"name": "med", "path": str(med), "weight": 55},
                             {"name": "gen", "path": str(gen), "weight": 45}],
                    output_prefix=str(tmp_path / "mix"), template="chatml", seq_length=256,
                    total_samples=20)
    m = build_sft_dataset(cfg)
    src = m["counts"]["sources"]
    assert src["med"]["mix"]["selected"] == 11 and src["gen"]["mix"]["selected"] == 9
    assert src["med"]["mix"]["repeats"] == pytest.approx(11 / 6)
    assert m["counts"]["samples"] == 20
    tokens = IndexedDataset(str(tmp_path / "mix"))
    mask = IndexedDataset(str(tmp_path / "mix_lossmask"))
    from data_prep.sft.tokenizer import SFTTokenizer

    tok = SFTTokenizer(None)
    text = " ".join(tok.decode(tokens[k][mask[k] == 1]) for k in range(len(tokens)))
    assert text.count("medical answer") == 11 and text.count("general answer") == 9
