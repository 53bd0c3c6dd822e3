"""Bad configs fail before megatron-core is touched, with a message naming the field and the fix."""

from __future__ import annotations

import subprocess
import sys

import pytest

from medmegatron.cli import main
from medmegatron.config import load_config, validate
from medmegatron.errors import ConfigError


def _train_error(capsys, *args: str) -> str:
    code = main(["train", *args, "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    return err


def test_wrong_tensor_parallel_for_head_count(capsys, pubmed_prefix):
    err = _train_error(capsys, "model=tiny-llama", f"data.paths=[{pubmed_prefix}]",
                       "parallel.tensor_parallel=3", "--nproc-per-node", "3")
    assert "model.num_attention_heads=4 is not divisible by parallel.tensor_parallel=3" in err
    assert "use a TP in {1, 2, 4}" in err


def test_missing_dataset_names_the_files_and_the_fix(capsys, tmp_path):
    missing = tmp_path / "nothing_here"
    err = _train_error(capsys, "model=tiny-llama", f"data.paths=[{missing}]")
    assert f"data.paths entry '{missing}'" in err and f"{missing}.bin" in err
    assert "medmegatron prep tokenize" in err


def test_missing_tokenizer(capsys, pubmed_prefix, tmp_path):
    err = _train_error(capsys, "model=tiny-llama", f"data.paths=[{pubmed_prefix}]",
                       f"data.tokenizer={tmp_path / 'tok.model'}")
    assert "data.tokenizer" in err and "does not exist" in err


def test_unknown_key_suggests_the_closest_one():
    with pytest.raises(ConfigError, match="unknown config key 'optimizer.weight_decy'. Did you mean 'weight_decay'"):
        load_config(None, ["optimizer.weight_decy=0.1"])


def test_wrong_type_is_refused():
    with pytest.raises(ConfigError, match="'schedule.train_iters' must be int"):
        load_config(None, ["schedule.train_iters=ten"])


@pytest.mark.parametrize("overrides, world, message", [
    (["parallel.pipeline_parallel=3"], 3, "model.num_layers=4 is not divisible by pipeline_parallel"),
    (["schedule.global_batch_size=6"], 4, "global_batch_size=6 is not divisible by micro_batch_size x data_parallel"),
    (["model=tiny-mixtral", "parallel.expert_parallel=3"], 3, "num_moe_experts=4 is not divisible by parallel.expert_parallel=3"),
    (["parallel.expert_parallel=2"], 2, "needs an MoE model"),
    (["parallel.context_parallel=2", "data.seq_length=66"], 2, "divisible by 2 x context_parallel"),
    (["parallel.context_parallel=2"], 2, "context_parallel > 1 needs Transformer Engine"),
    (["precision.fp8=delayed"], 1, "needs Transformer Engine"),
    (["parallel.tensor_parallel=2"], 3, "world size 3"),
    (["schedule.lr_warmup_iters=5", "schedule.train_iters=5"], 1, "lr_warmup_iters=5 must be smaller"),
])
def test_layout_and_numbers_checks(overrides, world, message):
    cfg = load_config(None, ["model=tiny-llama", *overrides])
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate(cfg, world, cuda_available=False, check_paths=False)


def test_every_problem_is_reported_at_once():
    cfg = load_config(None, ["model=tiny-llama", "parallel.tensor_parallel=3", "schedule.global_batch_size=7"])
    with pytest.raises(ConfigError) as info:
        validate(cfg, 3, cuda_available=False, check_paths=False)
    assert str(info.value).count("\n  - ") >= 3


def test_cli_help_lists_the_subcommands():
    proc = subprocess.run([sys.executable, "-m", "medmegatron", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for name in ("demo", "train", "prep", "convert", "plan", "eval"):
        assert name in proc.stdout
