"""Stage kinds: how a stage's options become one `medmegatron ...` command, and what it outputs.

A kind knows (1) which keys it takes (checked before anything runs), (2) the command line it
runs - the same one a user would type, so a failed stage can be rerun and debugged by hand,
(3) its named outputs (what `${stage.output}` refers to) and the paths whose content digests
identify them, (4) which external files it reads (hashed into its fingerprint), and (5) whether
a rerun resumes in place (data prep, training) or starts from an empty folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from medmegatron.errors import ConfigError


@dataclass
class Prepared:
    """A stage ready to run: what identifies it, what it reads, the command that produces it."""

    resolved: dict  # the stage's full effective config (enters the fingerprint)
    inputs: list[Path]  # external files/folders it reads (their content enters the fingerprint)
    argv: list[str]  # `medmegatron` arguments
    nproc: int = 1  # processes the command needs (GPUs under Slurm)
    config_file: tuple[Path, str] | None = None  # (path, text) written just before the command runs
    extra: dict = field(default_factory=dict)  # e.g. the planner prediction of a train stage


class Kind:
    OUTPUTS: dict[str, str] = {}  # name -> meaning; the first is what `${stage}` means
    KEYS: dict[str, str] = {}  # option -> meaning
    REQUIRED: tuple[str, ...] = ()
    RESUMABLE = False  # rerun in place (True) or from an empty stage folder

    @classmethod
    def check(cls, options: dict) -> list[str]:
        problems = [f"unknown key '{k}'; {cls.__name__.lower()} stages take {', '.join(cls.KEYS)}"
                    for k in options if k not in cls.KEYS]
        problems += [f"needs `{k}` ({cls.KEYS[k]})" for k in cls.REQUIRED if k not in options]
        return problems

    @classmethod
    def output_paths(cls, stage_dir: Path) -> dict[str, Path]:
        raise NotImplementedError

    @classmethod
    def hashed(cls, stage_dir: Path) -> dict[str, list[Path]]:
        """Output name -> the paths whose content identifies it (not always the path handed out)."""
        return {name: [path] for name, path in cls.output_paths(stage_dir).items()}

    @classmethod
    def prepare(cls, options: dict, stage_dir: Path, config_dir: Path) -> Prepared:
        raise NotImplementedError

    @classmethod
    def repair(cls, run_dir: Path, damaged: list[str]) -> None:
        """Before a resumable stage reruns in place: remove outputs that were edited (deleted
        ones are already gone), so its own resume logic redoes exactly those."""
        for rel in damaged:
            path = run_dir / rel
            if path.is_file():
                path.unlink()


def _existing(paths) -> list[Path]:
    return [Path(p) for p in paths if p and Path(p).exists()]


def _yaml(path: Path, data: dict) -> tuple[Path, str]:
    return path, yaml.safe_dump(data, sort_keys=False)


class Data(Kind):
    """Raw corpora -> cleaned, deduplicated, decontaminated, tokenized sources + blend (data_prep)."""

    OUTPUTS = {"dir": "the data_prep output folder", "tokenized": "folder of <source>.bin/.idx",
               "blend": "blend.json (paths, names, sampling weights)"}
    KEYS = {"config": "a data_prep pipeline config without output_dir (see docs/data_prep.md)"}
    REQUIRED = ("config",)
    RESUMABLE = True  # data_prep skips its finished tasks

    @classmethod
    def check(cls, options):
        problems = super().check(options)
        config = options.get("config")
        if config is not None and not isinstance(config, dict):
            problems.append("config: expected a mapping (the data_prep YAML, inline)")
        elif isinstance(config, dict) and "output_dir" in config:
            problems.append("config.output_dir: leave it out; the pipeline puts data under its run folder")
        return problems

    @classmethod
    def output_paths(cls, stage_dir):
        return {"dir": stage_dir, "tokenized": stage_dir / "tokenized", "blend": stage_dir / "blend.json"}

    @classmethod
    def hashed(cls, stage_dir):
        # the tokens and the blend are the data; manifests carry timestamps
        tokens = sorted(p for p in (stage_dir / "tokenized").glob("*") if p.suffix in (".bin", ".idx"))
        tokens = tokens or [stage_dir / "tokenized" / "(none)"]  # nothing tokenized: missing
        blend = [stage_dir / "blend.json"] if (stage_dir / "blend.json").exists() else []  # optional
        return {"dir": tokens + blend, "tokenized": tokens, "blend": blend}

    @classmethod
    def prepare(cls, options, stage_dir, config_dir):
        from data_prep.config import config_from_dict

        config = {**options["config"], "output_dir": str(stage_dir)}
        cfg = config_from_dict(config)  # errors now, not after earlier stages ran
        inputs = [p for s in cfg.sources if s.format != "synthetic" for p in s.inputs]
        inputs += [p for b in cfg.decontaminate.benchmarks for p in (b.path, b.ids_file)]
        inputs.append(cfg.tokenize.tokenizer)
        path = config_dir / "prep.yaml"
        return Prepared(resolved=config, inputs=_existing(inputs), argv=["prep", "run", str(path)],
                        config_file=_yaml(path, config))


class SFTData(Kind):
    """Conversations -> chat-templated, loss-masked, packed instruction data (`prep sft`)."""

    OUTPUTS = {"prefix": "packed dataset prefix (with _lossmask and _boundaries)"}
    KEYS = {"config": "a `prep sft` config without output_prefix"}
    REQUIRED = ("config",)

    @classmethod
    def output_paths(cls, stage_dir):
        return {"prefix": stage_dir / "sft"}

    @classmethod
    def hashed(cls, stage_dir):
        return {"prefix": [stage_dir / f"sft{part}{ext}" for part in ("", "_lossmask", "_boundaries")
                           for ext in (".bin", ".idx")]}

    @classmethod
    def prepare(cls, options, stage_dir, config_dir):
        from data_prep.sft.config import SFTConfig

        config = {**options["config"], "output_prefix": str(stage_dir / "sft")}
        cfg = SFTConfig.from_dict(dict(config))
        path = config_dir / "sft.yaml"
        return Prepared(resolved=config, inputs=_existing([s.path for s in cfg.sources] + [cfg.tokenizer]),
                        argv=["prep", "sft", str(path)], config_file=_yaml(path, config))


class Import(Kind):
    """HF weights -> a megatron-core distributed checkpoint (`convert import`)."""

    OUTPUTS = {"checkpoint": "dist checkpoint for checkpoint.init_from"}
    KEYS = {"hf_dir": "HF model folder", "tp": "tensor parallel", "pp": "pipeline parallel",
            "ep": "expert parallel", "vp": "virtual pipeline stages"}
    REQUIRED = ("hf_dir",)

    @classmethod
    def output_paths(cls, stage_dir):
        return {"checkpoint": stage_dir / "checkpoint"}

    @classmethod
    def prepare(cls, options, stage_dir, config_dir):
        argv = ["convert", "import", "--hf-dir", str(options["hf_dir"]), "--output", str(stage_dir / "checkpoint")]
        for key in ("tp", "pp", "ep", "vp"):
            if options.get(key) is not None:
                argv += [f"--{key}", str(options[key])]
        return Prepared(resolved=dict(options), inputs=_existing([options["hf_dir"]]), argv=argv)


class Train(Kind):
    """Continual pretraining or SFT on megatron-core (`train`), resumed from its last checkpoint."""

    OUTPUTS = {"checkpoint": "checkpoints root (its latest checkpoint)", "run": "the run folder"}
    KEYS = {"recipe": "recipe .py path or name", "recipe_args": "arguments of the recipe's config()",
            "config": "a training YAML (instead of a recipe)", "overrides": "list of section.field=value",
            "data": "${data-stage} (blend) or ${sft-stage} (packed SFT data)",
            "init_from": "checkpoint to start from (weights only)", "nproc": "processes (default: the recipe's)"}
    RESUMABLE = True

    @classmethod
    def check(cls, options):
        problems = super().check(options)
        if ("recipe" in options) == ("config" in options):
            problems.append("give exactly one of `recipe` or `config`")
        if not isinstance(options.get("overrides", []), (list, dict)):
            problems.append("overrides: a list of section.field=value (or a mapping)")
        return problems

    @classmethod
    def output_paths(cls, stage_dir):
        return {"checkpoint": stage_dir / "checkpoints", "run": stage_dir}

    @classmethod
    def hashed(cls, stage_dir):
        from medmegatron.training.checkpointing import latest_checkpoint

        latest = latest_checkpoint(stage_dir / "checkpoints")
        return {"checkpoint": [latest or stage_dir / "checkpoints" / "latest"], "run": [stage_dir / "checkpoints"]}

    @classmethod
    def repair(cls, run_dir, damaged):
        """A checkpoint with a deleted or edited file cannot be loaded: remove the whole `iter_N`
        folder, so training resumes from the newest intact checkpoint and redoes the rest."""
        import shutil

        for rel in damaged:
            parts = Path(rel).parts
            for i, part in enumerate(parts):
                if part.startswith("iter_") and i and parts[i - 1] == "checkpoints":
                    shutil.rmtree(run_dir.joinpath(*parts[: i + 1]), ignore_errors=True)
                    break

    @staticmethod
    def _data(ref: str) -> list[str]:
        """Overrides that point the run at a data or SFT stage's output."""
        path = Path(ref)
        if (path / "blend.json").exists() or (path / "manifest.json").exists():
            blend = json.loads((path / "blend.json").read_text()) if (path / "blend.json").exists() else None
            if blend:
                names, weights, prefixes = list(blend["shares"]), blend["blend"]["weights"], blend["blend"]["prefixes"]
            else:  # no blend: every tokenized source, sampled by size
                prefixes = sorted(str(p.with_suffix("")) for p in (path / "tokenized").glob("*.idx"))
                names, weights = [Path(p).name for p in prefixes], None
            out = [f"data.paths={json.dumps(prefixes)}", f"data.names={json.dumps(names)}"]
            return out + ([f"data.weights={json.dumps(weights)}"] if weights else ["data.weights=null"])
        if Path(f"{ref}_lossmask.idx").exists():
            return ["data.kind=sft", f"data.paths={json.dumps([ref])}", "data.names=null", "data.weights=null"]
        raise ConfigError(f"data: '{ref}' is neither a data stage's folder nor an SFT prefix (has that stage run?)")

    @classmethod
    def build_config(cls, options, stage_dir):
        from medmegatron.config import load_config

        overrides = options.get("overrides") or []
        if isinstance(overrides, dict):
            overrides = [f"{k}={json.dumps(v) if isinstance(v, (list, dict)) else v}" for k, v in overrides.items()]
        overrides = list(overrides)
        if options.get("data"):
            overrides += cls._data(str(options["data"]))
        if options.get("init_from"):
            overrides.append(f"checkpoint.init_from={options['init_from']}")
        overrides.append(f"run_dir={stage_dir}")
        if "recipe" in options:
            from medmegatron.planning.recipes import load_recipe

            args = [f"recipe.{k}={v}" for k, v in (options.get("recipe_args") or {}).items()]
            cfg, info = load_recipe(str(options["recipe"]), args + overrides)
            nproc = int(options.get("nproc") or info.gpus)
        else:
            cfg = load_config(options["config"], overrides)
            nproc = int(options.get("nproc") or 1)
        return cfg, nproc

    @classmethod
    def prepare(cls, options, stage_dir, config_dir):
        from medmegatron.config import config_to_dict, validate

        cfg, nproc = cls.build_config(options, stage_dir)
        import torch

        validate(cfg, nproc, cuda_available=torch.cuda.is_available(), check_paths=False)
        resolved = config_to_dict(cfg)
        path = config_dir / "train.yaml"
        inputs = [p for p in cfg.data.paths if not str(p).startswith(str(stage_dir.parent))]
        inputs = [Path(f"{p}{s}") for p in inputs for s in (".bin", ".idx")]
        if cfg.checkpoint.init_from and not str(cfg.checkpoint.init_from).startswith(str(stage_dir.parent)):
            inputs.append(cfg.checkpoint.init_from)
        return Prepared(resolved=resolved, inputs=_existing(inputs + [cfg.data.tokenizer]),
                        argv=["train", str(path), "--nproc-per-node", str(nproc)], nproc=nproc,
                        config_file=_yaml(path, resolved), extra={"config": cfg})


class Export(Kind):
    """A checkpoint at any layout -> an HF safetensors folder (`convert export`)."""

    OUTPUTS = {"hf": "HF model folder"}
    KEYS = {"checkpoint": "checkpoint, checkpoints root or run folder", "dtype": "fp32 | bf16 | fp16"}
    REQUIRED = ("checkpoint",)

    @classmethod
    def output_paths(cls, stage_dir):
        return {"hf": stage_dir / "hf"}

    @classmethod
    def prepare(cls, options, stage_dir, config_dir):
        argv = ["convert", "export", "--ckpt", str(options["checkpoint"]), "--output", str(stage_dir / "hf")]
        if options.get("dtype"):
            argv += ["--dtype", str(options["dtype"])]
        return Prepared(resolved=dict(options), inputs=[], argv=argv)


class Merge(Kind):
    """Several HF models -> one (`merge`: linear, task arithmetic, TIES, DARE, SLERP)."""

    OUTPUTS = {"hf": "merged HF model folder"}
    KEYS = {"config": "a merge config without output (method, base_model, models, parameters)"}
    REQUIRED = ("config",)

    @classmethod
    def output_paths(cls, stage_dir):
        return {"hf": stage_dir / "hf"}

    @classmethod
    def prepare(cls, options, stage_dir, config_dir):
        config = {**options["config"], "output": str(stage_dir / "hf")}
        models = [m.get("model") or m.get("path") for m in config.get("models", []) if isinstance(m, dict)]
        path = config_dir / "merge.yaml"
        return Prepared(resolved=config, inputs=_existing(models + [config.get("base_model")]),
                        argv=["merge", str(path)], config_file=_yaml(path, config))


class Eval(Kind):
    """Medical QA accuracy with lm-eval (`eval`): one model, or every checkpoint of a run."""

    OUTPUTS = {"dir": "results.json (or sweep.json + accuracy_vs_tokens.png)"}
    KEYS = {"checkpoint": "a checkpoint", "checkpoints": "a run: every saved checkpoint (accuracy vs tokens)",
            "hf_dir": "an HF model folder", "tasks": "list of NAME=FORMAT:PATH", "limit": "questions per task",
            "tp": "tensor parallel", "pp": "pipeline parallel", "batch_size": "batch size",
            "prompt": "plain | med42", "tokenizer": "tokenizer override"}
    REQUIRED = ("tasks",)

    @classmethod
    def check(cls, options):
        problems = super().check(options)
        if sum(k in options for k in ("checkpoint", "checkpoints", "hf_dir")) != 1:
            problems.append("give exactly one of `checkpoint`, `checkpoints` or `hf_dir`")
        if not isinstance(options.get("tasks", []), list):
            problems.append("tasks: a list like ['pubmedqa=pubmedqa:/data/pubmedqa']")
        return problems

    @classmethod
    def output_paths(cls, stage_dir):
        return {"dir": stage_dir}

    @classmethod
    def hashed(cls, stage_dir):
        sweep = stage_dir / "sweep.json"
        return {"dir": [sweep if sweep.exists() else stage_dir / "results.json"]}

    @classmethod
    def prepare(cls, options, stage_dir, config_dir):
        from medmegatron.evaluation.tasks import parse_task_spec

        flag = {"checkpoint": "--ckpt", "checkpoints": "--ckpts", "hf_dir": "--hf-dir"}
        model = next(k for k in flag if k in options)
        argv = ["eval", flag[model], str(options[model]), "--output", str(stage_dir)]
        tasks = [str(t) for t in options["tasks"]]
        for task in tasks:
            argv += ["--task", task]
        for key in ("limit", "tp", "pp", "batch_size", "prompt", "tokenizer"):
            if options.get(key) is not None:
                argv += [f"--{key.replace('_', '-')}", str(options[key])]
        inputs = [Path(parse_task_spec(t).path) for t in tasks]
        nproc = int(options.get("tp") or 1) * int(options.get("pp") or 1)
        return Prepared(resolved=dict(options), inputs=_existing(inputs), argv=argv, nproc=nproc)


KINDS: dict[str, type[Kind]] = {"data": Data, "sft_data": SFTData, "import": Import, "train": Train,
                                "export": Export, "merge": Merge, "eval": Eval}
