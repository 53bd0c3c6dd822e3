"""Per-source losses and the forgetting monitor on a two-source blend; the monitors' rules."""

from __future__ import annotations

import pytest

from helpers import tiny_overrides

from medmegatron.config import load_config
from medmegatron.training import pretrain
from medmegatron.training.metrics import read_metrics
from medmegatron.training.monitors import ForgettingMonitor, SpikeDetector


@pytest.fixture(scope="module")
def general_prefix(tmp_path_factory) -> str:
    from data_prep.readers.synthetic import synthetic_corpus
    from data_prep.tokenize import tokenize_to_indexed
    from medmegatron.tokenizers import load_tokenizer

    folder = tmp_path_factory.mktemp("general")
    tokenize_to_indexed(synthetic_corpus("general", 400), load_tokenizer(None), folder / "general")
    return str(folder / "general")


def _blend_run(pubmed_prefix, general_prefix, run_dir, threshold):
    return pretrain(load_config(None, tiny_overrides(pubmed_prefix, run_dir, **{
        "data.paths": f"[{pubmed_prefix}, {general_prefix}]", "data.weights": "[0.5, 0.5]",
        "data.names": "[pubmed, general]", "schedule.train_iters": 6, "eval_interval": 3,
        "eval_iters": 2, "monitor.forgetting_threshold": threshold})))


def test_losses_are_reported_per_source_and_forgetting_is_flagged(pubmed_prefix, general_prefix, tmp_path):
    # A threshold of -50% flags any general-domain validation loss above half its step-0 value.
    _blend_run(pubmed_prefix, general_prefix, tmp_path / "flag", threshold=-0.5)
    records = read_metrics(tmp_path / "flag")
    steps = [r for r in records if "lr" in r]
    assert all("loss/pubmed" in r or "loss/general" in r for r in steps)
    assert any("loss/pubmed" in r for r in steps) and any("loss/general" in r for r in steps)
    for r in steps:  # the total is the token-weighted mean of the sources
        parts = [r[k] for k in ("loss/pubmed", "loss/general") if k in r]
        assert min(parts) - 1e-9 <= r["loss"] <= max(parts) + 1e-9
    valid = [r for r in records if "valid_loss/general" in r]
    assert [r["iteration"] for r in valid] == [0, 3, 6]
    events = [r for r in records if r.get("event") == "forgetting"]
    assert [e["iteration"] for e in events] == [3, 6]
    assert events[0]["baseline"] == valid[0]["valid_loss/general"]
    assert (tmp_path / "flag" / "loss.png").stat().st_size > 10_000


def test_no_forgetting_event_below_the_threshold(pubmed_prefix, general_prefix, tmp_path):
    _blend_run(pubmed_prefix, general_prefix, tmp_path / "quiet", threshold=10.0)
    assert not [r for r in read_metrics(tmp_path / "quiet") if r.get("event") == "forgetting"]


def test_forgetting_monitor_compares_with_the_first_value():
    monitor = ForgettingMonitor("general", threshold=0.05)
    assert monitor.check(0, {"general": 2.0}) is None
    assert monitor.check(10, {"general": 2.09}) is None
    event = monitor.check(20, {"general": 2.2})
    assert event["relative_rise"] == pytest.approx(0.1) and event["baseline"] == 2.0


def test_spike_detector_flags_jumps_above_the_running_mean():
    detector = SpikeDetector(threshold=0.5, warmup=3)
    events = [detector.check(i, loss) for i, loss in enumerate([4.0, 3.9, 3.8, 3.7, 3.6, 9.0, 3.5])]
    assert [e["iteration"] for e in events if e] == [5]


def test_wandb_without_the_package_is_a_config_error(pubmed_prefix, tmp_path):
    import importlib.util

    from medmegatron.errors import ConfigError

    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here; the refusal path only exists without it")
    cfg = load_config(None, tiny_overrides(pubmed_prefix, tmp_path / "w", **{"logging.wandb_project": "medmeg"}))
    with pytest.raises(ConfigError, match="wandb is not installed"):
        pretrain(cfg)
