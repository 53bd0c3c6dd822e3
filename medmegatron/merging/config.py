"""The merge config (YAML), validated before any tensor is read.

    method: ties                 # linear | task_arithmetic | ties | dare | slerp
    base_model: /ckpt/llama-2-7b # required by task_arithmetic, ties, dare
    models:
      - model: /ckpt/cpt-med     # HF folders (config.json + safetensors)
        weight: 0.5
        density: 0.6             # ties/dare; defaults to parameters.density
      - model: /ckpt/instruct
        weight: 0.5
    parameters: {lambda: 1.0, density: 0.5, t: 0.5, normalize: true, seed: 0}
    dtype: bfloat16              # output dtype; default: each tensor's dtype in the first model
    output: /ckpt/merged
    max_shard_gb: 5

SLERP takes exactly two models and goes from the first (t=0) to the second (t=1); the config
(config.json, tokenizer files) is copied from the first model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path


from medmegatron.config.yaml_file import read_yaml_mapping
from medmegatron.errors import ConfigError

METHODS = ("linear", "task_arithmetic", "ties", "dare", "slerp")
NEEDS_BASE = ("task_arithmetic", "ties", "dare")
PARAMETERS = {"lambda": 1.0, "density": None, "t": None, "normalize": True, "seed": 0}
DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class MergeModel:
    model: str
    weight: float = 1.0
    density: float | None = None


@dataclass
class MergeConfig:
    method: str
    models: list[MergeModel]
    output: str
    base_model: str | None = None
    parameters: dict = field(default_factory=dict)
    dtype: str | None = None
    max_shard_gb: float = 5.0
    where: str = "merge config"  # the YAML path, for messages

    def __post_init__(self):
        w = self.where
        if self.method not in METHODS:
            raise ConfigError(f"{w}: method {self.method!r} is unknown; choose one of {METHODS}")
        self.models = [m if isinstance(m, MergeModel) else _model(m, i, w)
                       for i, m in enumerate(self.models or [])]
        unknown = sorted(set(self.parameters) - set(PARAMETERS))
        if unknown:
            raise ConfigError(f"{w}: unknown parameters {unknown}; known: {sorted(PARAMETERS)}")
        self.parameters = {**PARAMETERS, **self.parameters}
        p = self.parameters
        if self.method == "slerp":
            if len(self.models) != 2:
                raise ConfigError(f"{w}: slerp interpolates exactly 2 models, got "
                                  f"{len(self.models)}; list the two under `models`")
            if p["t"] is None or not 0.0 <= float(p["t"]) <= 1.0:
                raise ConfigError(f"{w}: slerp needs parameters.t in [0, 1] (0 = first model, "
                                  f"1 = second), got {p['t']!r}")
        elif not self.models:
            raise ConfigError(f"{w}: `models` is empty; list at least one model folder")
        if self.method in NEEDS_BASE and not self.base_model:
            raise ConfigError(f"{w}: method {self.method} works on differences from a common "
                              "base: set base_model to the folder the models were fine-tuned from")
        if self.method == "linear" and p["normalize"] and sum(m.weight for m in self.models) == 0:
            raise ConfigError(f"{w}: linear with normalize needs weights that do not sum to 0")
        if self.method in ("ties", "dare"):
            for m in self.models:
                m.density = p["density"] if m.density is None else m.density
                if m.density is None or not 0.0 < float(m.density) <= 1.0:
                    raise ConfigError(f"{w}: {self.method} needs a density in (0, 1] for model "
                                      f"'{m.model}' (per model, or parameters.density); got "
                                      f"{m.density!r}")
        if self.dtype is not None and self.dtype not in DTYPES:
            raise ConfigError(f"{w}: dtype {self.dtype!r}: choose one of {DTYPES} or omit it")
        if not self.max_shard_gb > 0:
            raise ConfigError(f"{w}: max_shard_gb must be > 0")

    @property
    def sources(self) -> list[str]:
        """Every folder read: the models, then the base (if any)."""
        return [m.model for m in self.models] + ([self.base_model] if self.base_model else [])

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("where")
        return d


def _model(raw, i: int, where: str) -> MergeModel:
    if isinstance(raw, str):
        return MergeModel(model=raw)
    known = {f.name for f in dataclasses.fields(MergeModel)}
    if not isinstance(raw, dict) or "model" not in raw or set(raw) - known:
        raise ConfigError(f"{where}: models[{i}] must be a folder path or a mapping with keys "
                          f"{sorted(known)} (model required), got {raw!r}")
    return MergeModel(**raw)


def load_merge_config(path: str | Path, output: str | None = None) -> MergeConfig:
    """Read a YAML merge config; relative model paths are relative to the YAML file."""
    path = Path(path)
    raw = read_yaml_mapping(path, "merge config")
    if output is not None:
        raw["output"] = output
    known = {f.name for f in dataclasses.fields(MergeConfig)} - {"where"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; known keys: {sorted(known)}")
    missing = [k for k in ("method", "models", "output") if k not in raw]
    if missing:
        raise ConfigError(f"{path}: missing required key(s) {missing}")

    def resolve(p):
        return str(p if Path(p).is_absolute() else (path.parent / p))

    models = raw["models"] if isinstance(raw["models"], list) else None
    if models is None:
        raise ConfigError(f"{path}: `models` must be a list")
    raw["models"] = [({**m, "model": resolve(m["model"])} if isinstance(m, dict) and "model" in m
                      else resolve(m) if isinstance(m, str) else m) for m in models]
    if raw.get("base_model"):
        raw["base_model"] = resolve(raw["base_model"])
    raw["output"] = resolve(raw["output"])
    return MergeConfig(**raw, where=str(path))
