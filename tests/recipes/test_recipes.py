"""Every recipe builds, validates for its intended GPU count, fits by the planner, and is
launchable through NeMo-Run (config overrides, executors, dry run)."""

from __future__ import annotations

import importlib
import sys

import fiddle as fdl
import nemo_run as run
import pytest

from medmegatron.config import validate
from medmegatron.errors import ConfigError
from medmegatron.planning.gpus import get_gpu
from medmegatron.planning.plan import make_plan, token_budget
from recipes import RECIPES
from recipes.common import apply_overrides, pretrain_task
from recipes.launch import build_config, docker_executor, slurm_executor
from recipes.launch import main as module_main


def _load(name):
    module = importlib.import_module(f"recipes.{name}")
    return module, build_config(module.recipe())


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_builds_validates_and_fits(name):
    module, cfg = _load(name)
    task = module.recipe()
    assert isinstance(task, run.Partial) and task.__fn_or_cls__ is pretrain_task
    gpu_recipe = name != "tiny_cpu"
    validate(cfg, world_size=module.INFO.gpus, cuda_available=gpu_recipe, check_paths=False)
    if gpu_recipe:
        plan = make_plan(cfg, module.INFO.gpus, get_gpu(module.INFO.gpu))
        assert plan.feasible, plan.problems


@pytest.mark.parametrize("name", RECIPES)
def test_schedule_consumes_the_stated_token_budget(name):
    module, cfg = _load(name)
    step = cfg.schedule.global_batch_size * cfg.data.seq_length
    assert module.INFO.tokens <= token_budget(cfg) < module.INFO.tokens + step


def test_dense_70b_layout_is_within_the_published_h100_ranges():
    _, cfg = _load("cpt_70b")
    p = cfg.parallel
    assert (p.tensor_parallel, p.sequence_parallel) == (4, True)
    assert 4 <= p.pipeline_parallel <= 8 and 5 <= p.virtual_pipeline_parallel <= 20
    assert cfg.data.seq_length == 4096 and p.context_parallel == 1  # CP2 is for 8k sequences
    assert cfg.data.weights == [15.0, 1.0, 4.0]  # Me-LLaMA biomedical : clinical : general


def test_mixtral_recipe_is_the_published_moe_layout_with_rewarm():
    _, cfg = _load("cpt_mixtral_8x7b")
    p = cfg.parallel
    assert (p.tensor_parallel, p.expert_parallel, p.pipeline_parallel, p.virtual_pipeline_parallel) == (1, 8, 4, 8)
    assert cfg.data.weights == [50.0, 15.0]  # 50B clinical + 15B general
    assert 0 < cfg.schedule.lr_warmup_init_fraction < 1 and cfg.schedule.lr_warmup_iters > 0


def test_sft_recipes_mark_their_data_and_neftune():
    _, sft = _load("sft_70b")
    _, neft = _load("sft_mistral_7b_neftune")
    assert sft.data.kind == neft.data.kind == "sft"
    assert sft.neftune_noise_alpha is None and neft.neftune_noise_alpha == 5.0


def test_overrides_are_typed_and_typos_are_named():
    _, cfg = _load("cpt_70b")
    changed = apply_overrides(cfg, ["config.parallel.pipeline_parallel=8", "schedule.train_iters=10"])
    assert (changed.parallel.pipeline_parallel, changed.schedule.train_iters) == (8, 10)
    assert cfg.parallel.pipeline_parallel == 4  # the recipe's own config is untouched
    with pytest.raises(ConfigError, match="Did you mean 'pipeline_parallel'"):
        apply_overrides(cfg, ["parallel.pipline_parallel=8"])
    with pytest.raises(ConfigError, match="must be int"):
        apply_overrides(cfg, ["parallel.tensor_parallel=four"])


def test_executors_build_for_slurm_pyxis_and_docker():
    slurm = fdl.build(slurm_executor(account="med", nodes=8))
    assert isinstance(slurm, run.SlurmExecutor)
    assert (slurm.nodes, slurm.ntasks_per_node, slurm.gpus_per_node) == (8, 8, 8)
    assert slurm.container_image and slurm.launcher == "torchrun"
    assert slurm.env_vars["CUDA_DEVICE_MAX_CONNECTIONS"] == "1"
    docker = fdl.build(docker_executor(gpus=8))
    assert isinstance(docker, run.DockerExecutor) and docker.num_gpus == 8 and docker.ipc_mode == "host"


def test_script_dry_run_applies_overrides_and_selects_executor(monkeypatch, capsys):
    """`python recipes/cpt_70b.py --dryrun ...` through NeMo-Run's real CLI (in-process: what
    the script's `__main__` block calls), no job started."""
    module = importlib.import_module("recipes.cpt_70b")
    argv = ["--dryrun", "--yes", "config.schedule.train_iters=7", "run.executor=slurm",
            "run.executor.nodes=8", "run.executor.account=med"]
    monkeypatch.setattr(sys, "argv", ["recipes/cpt_70b.py", *argv])
    try:
        module_main(module.config, module.INFO)
    except SystemExit as done:  # typer may or may not exit on success
        assert done.code in (0, None)
    text = " ".join(capsys.readouterr().out.split())
    assert "train_iters=7" in text and "SlurmExecutor" in text and "nodes=8" in text
