"""The launch paths outside `python recipes/<name>.py`: `python -m recipes` (what the sbatch
example runs under torchrun), the NeMo-Run Slurm example, and the container's pins."""

from __future__ import annotations

import importlib.util
import io
import re
import sys
import subprocess
from pathlib import Path

import yaml

from recipes import RECIPES
from recipes.__main__ import main as recipes_main
from recipes.common import NGC_IMAGE

ROOT = Path(__file__).resolve().parents[2]
SBATCH = ROOT / "containers" / "slurm" / "cpt_70b.sbatch"


def test_module_entry_applies_recipe_arguments_and_overrides(capsys):
    args = ["cpt_70b", "recipe.data_root=/d", "recipe.run_dir=/lustre/r", "parallel.pipeline_parallel=8"]
    assert recipes_main([*args, "--print"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["run_dir"] == "/lustre/r" and cfg["parallel"]["pipeline_parallel"] == 8
    assert cfg["data"]["paths"] == [f"/d/{s}_text_document" for s in ("biomedical", "clinical", "general")]
    assert recipes_main(["cpt_70b", "recipe.data_rot=/d", "--print"]) == 2
    assert "did you mean 'recipe.data_root'" in capsys.readouterr().err
    assert recipes_main(["cpt_70b", "paralel.tensor_parallel=2", "--print"]) == 2
    assert "Did you mean 'parallel'" in capsys.readouterr().err
    assert recipes_main(["no_such_recipe"]) == 2


def test_sbatch_example_is_valid_bash_and_runs_a_known_recipe():
    subprocess.run(["bash", "-n", str(SBATCH)], check=True)
    text = SBATCH.read_text()
    match = re.search(r"-m recipes (\w+)", text)
    assert match and match.group(1) in RECIPES
    nodes = int(re.search(r"#SBATCH --nodes=(\d+)", text).group(1))
    gpus = int(re.search(r"#SBATCH --gpus-per-node=(\d+)", text).group(1))
    from importlib import import_module
    assert nodes * gpus == import_module(f"recipes.{match.group(1)}").INFO.gpus


def test_dockerfile_base_is_pinned_and_matches_the_recipes():
    text = (ROOT / "containers" / "Dockerfile").read_text()
    base = re.search(r"ARG BASE_IMAGE=(\S+)", text).group(1)
    assert base == NGC_IMAGE and not base.endswith(":latest")
    assert "megatron-core==0.16.1" in text and "nemo-run==0.11.1" in text


def test_nemo_run_slurm_example_dry_run_writes_an_sbatch_script(tmp_path, monkeypatch, capsys):
    """In-process (a subprocess would spend most of its time importing NeMo-Run again)."""
    monkeypatch.setenv("NEMORUN_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # NeMo-Run shells out via invoke, which reads stdin
    spec = importlib.util.spec_from_file_location("nemo_run_slurm", ROOT / "containers" / "nemo_run_slurm.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.main(["cpt_mixtral_8x7b", "--account", "med", "--nodes", "8",
                  "--job-dir", str(tmp_path / "jobs"), "--dryrun"])
    text = " ".join(capsys.readouterr().out.split())
    for needle in ("#SBATCH --nodes=8", "#SBATCH --account=med", "--container-image",
                   "--nproc-per-node 8", "nemo_run.core.runners.fdl_runner", "NCCL_IB_TIMEOUT=22"):
        assert needle in text, needle
