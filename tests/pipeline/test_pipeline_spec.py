"""Pipeline files are checked before anything runs: every problem at once, each naming its stage."""

from __future__ import annotations

import io
import sys

import pytest

from medmegatron.errors import ConfigError
from medmegatron.pipeline.spec import parse_pipeline


def _spec(stages: dict, **top):
    return parse_pipeline({"name": "t", "run_dir": "/tmp/unused", "stages": stages, **top})


def test_order_follows_references():
    spec = _spec({
        "eval": {"kind": "eval", "hf_dir": "${export}", "tasks": ["q=mcq:/x.jsonl"]},
        "export": {"kind": "export", "checkpoint": "${cpt.checkpoint}"},
        "data": {"kind": "data", "config": {"sources": []}},
        "cpt": {"kind": "train", "recipe": "tiny_cpu", "data": "${data}"},
    })
    assert [s.name for s in spec.stages] == ["data", "cpt", "export", "eval"]
    assert spec.stage("export").references() == [("cpt", "checkpoint")]


def test_all_problems_are_reported_together():
    with pytest.raises(ConfigError) as err:
        _spec({
            "data": {"kind": "dataa", "config": {}},
            "cpt": {"kind": "train", "recipe": "tiny_cpu", "config": "x.yaml", "data": "${dta}"},
            "export": {"kind": "export", "checkpoint": "${cpt.weights}", "shard": 1},
            "eval": {"kind": "eval", "tasks": ["q=mcq:/x"]},
        }, executor={"kind": "local", "nodez": 2})
    text = str(err.value)
    for needle in ("stages.data.kind: 'dataa' is not one of", "did you mean 'data'",
                   "stages.cpt: give exactly one of `recipe` or `config`",
                   "stages.cpt: refers to stage 'dta', which is not defined",
                   "stage 'cpt' (train) has no output 'weights'; it has checkpoint, run",
                   "stages.export: unknown key 'shard'",
                   "stages.eval: give exactly one of `checkpoint`, `checkpoints` or `hf_dir`"):
        assert needle in text, (needle, text)


def test_cycles_and_executor_keys_are_refused():
    with pytest.raises(ConfigError, match="cycle: a -> b -> a"):
        _spec({"a": {"kind": "export", "checkpoint": "${b}"},
               "b": {"kind": "eval", "checkpoint": "${a}", "tasks": []}})
    with pytest.raises(ConfigError, match="unknown key"):
        _spec({"a": {"kind": "export", "checkpoint": "/c"}}, executor={"kind": "local", "nodez": 2})
    with pytest.raises(ConfigError, match="needs `account` and `partition`"):
        _spec({"a": {"kind": "export", "checkpoint": "/c"}}, executor={"kind": "slurm"})


def test_slurm_executor_writes_the_recipes_sbatch_with_torchrun(tmp_path, monkeypatch, capsys):
    """The train stage goes through recipes/launch.py's Slurm factory (dry run: nothing submitted)."""
    from medmegatron.pipeline.executors import SlurmExecutor
    from medmegatron.pipeline.spec import ExecutorSpec

    monkeypatch.setenv("NEMORUN_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # NeMo-Run shells out via invoke, which reads stdin
    spec = ExecutorSpec(kind="slurm", account="med", partition="batch", gpus_per_node=8,
                        job_dir=str(tmp_path / "jobs"), dryrun=True)
    executor = SlurmExecutor(spec, "cpt70b")
    assert executor.run("cpt", ["train", "/lustre/run/train.yaml", "--nproc-per-node", "64"], 64) == 0
    text = " ".join(capsys.readouterr().out.split())
    for needle in ("#SBATCH --nodes=8", "#SBATCH --account=med", "#SBATCH --partition=batch",
                   "--nproc-per-node 8", "-m medmegatron train /lustre/run/train.yaml", "NCCL_IB_TIMEOUT=22"):
        assert needle in text, needle
    single = executor.executor(1)
    assert single.nodes == 1 and single.ntasks_per_node == 1 and single.launcher is None


def test_the_documented_example_pipeline_is_valid():
    """docs/pipeline.md's example must stay a file `pipeline run` accepts (structure, keys, references)."""
    import re
    from pathlib import Path

    import yaml

    text = (Path(__file__).resolve().parents[2] / "docs" / "pipeline.md").read_text()
    example = yaml.safe_load(re.search(r"```yaml\n(.*?)```", text, re.S).group(1))
    spec = parse_pipeline(example)
    assert [s.name for s in spec.stages] == ["data", "base", "cpt", "sft_data", "sft", "export", "merge",
                                             "eval_cpt", "eval"]
    assert spec.executor.kind == "slurm" and spec.stage("cpt").depends_on() == ["data", "base"]


def test_a_second_run_in_the_same_folder_is_refused(tmp_path):
    from medmegatron.errors import UserFacingError
    from medmegatron.pipeline.runner import Pipeline

    spec = parse_pipeline({"name": "t", "run_dir": str(tmp_path), "stages": {"e": {"kind": "export", "checkpoint": "/c"}}})
    first, second = Pipeline(spec), Pipeline(spec)
    first.meta.mkdir(parents=True)
    first._lock()
    with pytest.raises(UserFacingError, match=r"another `medmegatron pipeline run` is working in .* \(pid \d+\)"):
        second._lock()
