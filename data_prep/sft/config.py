"""The SFT build config: which sources, in what ratio, rendered how, packed to what length.

A plain dataclass (the CLI wires YAML onto it with `SFTConfig.from_dict`) validated up front, so
a typo fails before minutes of tokenization rather than after.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from medmegatron.errors import ConfigError

OVERLONG_CHOICES = ("truncate", "drop")


@dataclass
class SFTSource:
    """One JSONL file of conversations.

    `weight`: this source's ratio in the mix (relative to the others in its group); None means
    "in proportion to its size". `group`: a key of `SFTConfig.group_weights` (e.g. "medical").
    """

    name: str
    path: str
    weight: float | None = None
    group: str | None = None


@dataclass
class SFTConfig:
    sources: list[SFTSource]
    output_prefix: str
    template: str = "med42"          # med42 | llama2 | chatml | mistral | tokenizer
    tokenizer: str | None = None     # SentencePiece file, HF folder, or None (bundled Llama-2)
    seq_length: int = 4096
    overlong: str = "truncate"       # sample longer than seq_length: truncate or drop (counted)
    on_error: str = "fail"           # bad record: fail (file:line message) or skip (counted)
    group_weights: dict[str, float] | None = None  # e.g. {"medical": 55, "general": 45}
    total_samples: int | None = None  # None: largest mix that repeats no source
    default_system: str | None = None  # system prompt for conversations that have none
    seed: int = 1234
    extra: dict = field(default_factory=dict)  # free-form, recorded in the manifest only

    def __post_init__(self):
        from data_prep.sft.templates import TEMPLATES

        self.sources = [s if isinstance(s, SFTSource) else _source(s, i)
                        for i, s in enumerate(self.sources)]
        if not self.sources:
            raise ConfigError("sft.sources is empty: list at least one {name, path} source")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ConfigError(f"sft.sources: duplicate source names {sorted(names)}; give each a "
                              "unique name (it keys the manifest)")
        if self.template not in TEMPLATES:
            raise ConfigError(f"sft.template={self.template!r} is unknown: choose one of "
                              f"{sorted(TEMPLATES)}")
        if self.overlong not in OVERLONG_CHOICES:
            raise ConfigError(f"sft.overlong={self.overlong!r}: choose one of {OVERLONG_CHOICES}")
        if self.on_error not in ("fail", "skip"):
            raise ConfigError(f"sft.on_error={self.on_error!r}: choose 'fail' or 'skip'")
        if not isinstance(self.seq_length, int) or self.seq_length < 8:
            raise ConfigError(f"sft.seq_length={self.seq_length!r}: must be an integer >= 8")
        if self.total_samples is not None and self.total_samples < 1:
            raise ConfigError("sft.total_samples must be >= 1 (or null for the no-repeat maximum)")
        for s in self.sources:
            if s.weight is not None and not s.weight > 0:
                raise ConfigError(f"sft.sources[{s.name}].weight={s.weight!r}: must be > 0 "
                                  "(remove the source to exclude it)")
        if self.group_weights is not None:
            bad = {g: w for g, w in self.group_weights.items() if not w > 0}
            if bad:
                raise ConfigError(f"sft.group_weights {bad}: weights must be > 0")
            missing = [s.name for s in self.sources if s.group not in self.group_weights]
            if missing:
                raise ConfigError(f"sft.sources {missing} have no group in sft.group_weights "
                                  f"{sorted(self.group_weights)}: set each source's `group`")
            empty = [g for g in self.group_weights if not any(s.group == g for s in self.sources)]
            if empty:
                raise ConfigError(f"sft.group_weights names groups with no source: {empty}")
        groups = {}
        for s in self.sources:
            groups.setdefault(s.group, set()).add(s.weight is None)
        mixed = [g for g, kinds in groups.items() if len(kinds) == 2]
        if mixed:
            raise ConfigError(f"sft.sources in group(s) {mixed} mix explicit and missing weights: "
                              "give every source of a group a weight, or none (size-proportional)")

    @classmethod
    def from_dict(cls, data: dict) -> "SFTConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"sft config: unknown key(s) {unknown}; known keys are {sorted(known)}")
        return cls(**data)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _source(raw, i: int) -> SFTSource:
    if not isinstance(raw, dict):
        raise ConfigError(f"sft.sources[{i}] must be a mapping {{name, path, weight?, group?}}")
    known = {f.name for f in dataclasses.fields(SFTSource)}
    unknown = sorted(set(raw) - known)
    if unknown or "name" not in raw or "path" not in raw:
        raise ConfigError(f"sft.sources[{i}]: needs `name` and `path`"
                          + (f"; unknown key(s) {unknown}" if unknown else "")
                          + f" (known: {sorted(known)})")
    return SFTSource(**raw)
