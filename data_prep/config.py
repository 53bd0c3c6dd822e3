"""Typed, YAML-loadable pipeline config, validated before any work starts.

Unknown keys are errors that list the valid ones (a typo must not silently disable a step).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from data_prep.clean import FilterConfig, LanguageConfig, NormalizeConfig
from data_prep.decontam import BenchmarkSpec, DecontamConfig
from data_prep.minhash import MinHashConfig
from data_prep.phi import PhiConfig
from data_prep.readers import FORMATS
from medmegatron.errors import ConfigError


@dataclass
class SourceConfig:
    name: str
    inputs: list[str]
    format: str = "auto"
    text_key: str | None = None
    id_key: str | None = None
    phi: bool | None = None  # default: True for clinical_csv inputs


@dataclass
class MinHashStep(MinHashConfig):
    enabled: bool = True
    preset: str | None = None  # "med42": 9,000 hashes, 5-gram words, 0.85, bands x rows chosen
    num_hashes: int | None = None  # with threshold: bands x rows picked by the helper

    def resolve(self) -> "MinHashStep":
        from data_prep.minhash_plan import MED42, choose_bands_rows

        if self.preset == "med42":
            self.threshold, self.ngram, self.unit = MED42["threshold"], MED42["ngram"], MED42["unit"]
            self.num_hashes = MED42["num_hashes"]
        elif self.preset is not None:
            raise ConfigError(f"minhash.preset must be 'med42' or null, got {self.preset!r}")
        if self.num_hashes:
            self.bands, self.rows = choose_bands_rows(self.threshold, self.num_hashes)
            self.num_hashes = None
        return self


@dataclass
class ExactSubstringStep:
    enabled: bool = True
    thresholds: list[int] = field(default_factory=lambda: [400, 100])  # bytes, Med42
    # The suffix-array unit is one shard (`shard_docs` documents); two are in memory at once.


@dataclass
class TokenizeStep:
    enabled: bool = True
    tokenizer: str | None = None  # None: bundled Llama-2 SentencePiece
    workers: int | None = None


@dataclass
class BlendStep:
    ratios: dict[str, float] | None = None
    budgets: dict[str, float] | None = None
    replay: dict[str, float] | None = None
    train_tokens: float | None = None


@dataclass
class ExecutorConfig:
    kind: str = "local"  # local | slurm (datatrove executors)
    workers: int = 2
    slurm_partition: str | None = None
    slurm_time: str = "24:00:00"
    slurm_cpus_per_task: int = 4
    slurm_mem_per_cpu_gb: int = 4
    slurm_venv: str | None = None


@dataclass
class PipelineConfig:
    output_dir: str
    sources: list[SourceConfig]
    on_error: str = "fail"
    shard_docs: int = 50_000
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    language: LanguageConfig = field(default_factory=LanguageConfig)
    phi: PhiConfig = field(default_factory=lambda: PhiConfig(enabled=True))
    minhash: MinHashStep = field(default_factory=MinHashStep)
    exact_substring: ExactSubstringStep = field(default_factory=ExactSubstringStep)
    decontaminate: DecontamConfig = field(default_factory=DecontamConfig)
    tokenize: TokenizeStep = field(default_factory=TokenizeStep)
    blend: BlendStep | None = None

    def validate(self) -> "PipelineConfig":
        if not self.sources:
            raise ConfigError("sources: give at least one source (name + inputs)")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ConfigError(f"sources: names must be unique, got {names}")
        for s in self.sources:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", str(s.name)):
                raise ConfigError(f"sources: name {s.name!r} must use letters, digits, '_', '-', "
                                  "'.' only (it names output files)")
            if s.format != "synthetic":
                for p in s.inputs:
                    if not Path(p).exists():
                        raise ConfigError(f"sources.{s.name}.inputs: '{p}' does not exist")
            if s.format not in ("auto", *FORMATS):
                raise ConfigError(f"sources.{s.name}.format: {s.format!r} is not one of "
                                  f"{('auto', *FORMATS)}")
        if self.on_error not in ("fail", "skip"):
            raise ConfigError(f"on_error must be 'fail' or 'skip', got {self.on_error!r}")
        if self.executor.kind not in ("local", "slurm"):
            raise ConfigError(f"executor.kind must be 'local' or 'slurm', got {self.executor.kind!r}")
        if self.executor.kind == "slurm" and not self.executor.slurm_partition:
            raise ConfigError("executor.slurm_partition is required with executor.kind: slurm")
        if self.shard_docs < 1:
            raise ConfigError("shard_docs must be >= 1")
        self.minhash.resolve().validate()
        if any(t < 1 for t in self.exact_substring.thresholds):
            raise ConfigError("exact_substring.thresholds must be positive byte counts")
        self.decontaminate.validate()
        if self.blend is not None:
            b = self.blend
            try:  # YAML 1.1 reads 1e9 (no dot) as a string
                b.train_tokens = float(b.train_tokens) if b.train_tokens is not None else None
                for name in ("ratios", "budgets", "replay"):
                    if getattr(b, name):
                        setattr(b, name, {k: float(v) for k, v in getattr(b, name).items()})
            except (TypeError, ValueError, AttributeError):
                raise ConfigError("blend: ratios/budgets/replay must map source names to numbers, "
                                  "train_tokens must be a number") from None
            given = [x for x in (self.blend.ratios, self.blend.budgets, self.blend.replay) if x]
            if len(given) != 1:
                raise ConfigError("blend: give exactly one of ratios, budgets or replay")
            unknown = set(next(iter(given))) - set(names)
            if unknown:
                raise ConfigError(f"blend names {sorted(unknown)} are not sources {names}")
        return self

    def fingerprint(self) -> str:
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _build(cls, data, where: str):
    """Instantiate dataclass `cls` from a dict, recursively, rejecting unknown keys."""
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; valid keys: {sorted(fields)}")
    kwargs = {}
    nested = {"executor": ExecutorConfig, "normalize": NormalizeConfig, "filters": FilterConfig,
              "language": LanguageConfig, "phi": PhiConfig, "minhash": MinHashStep,
              "exact_substring": ExactSubstringStep, "decontaminate": DecontamConfig,
              "tokenize": TokenizeStep, "blend": BlendStep}
    for key, value in data.items():
        sub = f"{where}.{key}" if where else key
        if key == "blend" and value is None:
            kwargs[key] = None
        elif key in nested and cls is PipelineConfig:
            kwargs[key] = _build(nested[key], value, sub)
        elif key == "sources" and cls is PipelineConfig:
            if not isinstance(value, list):
                raise ConfigError("sources: expected a list of {name, inputs, ...}")
            kwargs[key] = [_build(SourceConfig, v, f"sources[{i}]") for i, v in enumerate(value)]
        elif key == "benchmarks" and cls is DecontamConfig:
            kwargs[key] = [_build(BenchmarkSpec, v, f"{sub}[{i}]") for i, v in enumerate(value or [])]
        else:
            kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where or 'config'}: {exc}") from None


def load_config(path: str | Path) -> PipelineConfig:
    from medmegatron.config.yaml_file import read_yaml_mapping

    return config_from_dict(read_yaml_mapping(path, "pipeline config"))


def config_from_dict(data: dict) -> PipelineConfig:
    """A validated PipelineConfig from the YAML's mapping (a source's `inputs` may be one string)."""
    data = dict(data or {})
    if "sources" in data:
        for s in data["sources"]:
            if isinstance(s, dict) and isinstance(s.get("inputs"), str):
                s["inputs"] = [s["inputs"]]
    return _build(PipelineConfig, data, "").validate()
