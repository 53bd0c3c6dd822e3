"""The pipeline YAML as typed objects: stages, their references to each other, the executor.

```yaml
name: demo
run_dir: runs/demo                # default runs/<name>; relative to the current directory
executor: {kind: local}           # or {kind: slurm, account: ..., partition: ..., nodes: ...}
stages:
  data:   {kind: data, config: {sources: [...], blend: {ratios: {pubmed: 15, general: 4}}}}
  cpt:    {kind: train, recipe: recipes/tiny_cpu.py, data: "${data}", nproc: 2}
  export: {kind: export, checkpoint: "${cpt.checkpoint}"}
  eval:   {kind: eval, hf_dir: "${export}", tasks: ["pubmedqa=pubmedqa:/data/pubmedqa"]}
```
Validated up front, all at once: unknown kinds and keys, references to missing stages or
outputs, cycles.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medmegatron.errors import ConfigError

REFERENCE = re.compile(r"\$\{([A-Za-z0-9_-]+)(?:\.([A-Za-z0-9_]+))?\}")
STAGE_NAME = re.compile(r"[A-Za-z0-9_-]+")


@dataclass
class ExecutorSpec:
    """Where stage commands run: `local` (torchrun on this machine) or `slurm` (NeMo-Run)."""

    kind: str = "local"
    account: str | None = None
    partition: str | None = None
    nodes: int = 1
    gpus_per_node: int = 8
    time: str = "04:00:00"
    container_image: str | None = None
    container_mounts: list[str] = field(default_factory=list)
    job_dir: str | None = None
    dryrun: bool = False  # slurm: write the sbatch scripts, submit nothing


@dataclass
class StageSpec:
    name: str
    kind: str
    options: dict[str, Any]  # the stage's keys other than kind/after, references unresolved
    after: list[str] = field(default_factory=list)

    def references(self) -> list[tuple[str, str | None]]:
        """(stage, output) pairs this stage's options refer to."""
        found: list[tuple[str, str | None]] = []
        _walk_strings(self.options, lambda s: found.extend(REFERENCE.findall(s)) or s)
        return [(stage, output or None) for stage, output in found]

    def depends_on(self) -> list[str]:
        names = [stage for stage, _ in self.references()] + list(self.after)
        return list(dict.fromkeys(names))


@dataclass
class PipelineSpec:
    name: str
    run_dir: Path
    stages: list[StageSpec]  # in execution order (topologically sorted, YAML order kept)
    executor: ExecutorSpec = field(default_factory=ExecutorSpec)
    source: Path | None = None  # the YAML file

    def stage(self, name: str) -> StageSpec:
        for s in self.stages:
            if s.name == name:
                return s
        raise ConfigError(f"no stage named '{name}'; stages: {', '.join(s.name for s in self.stages)}")


def _walk_strings(obj: Any, fn) -> Any:
    if isinstance(obj, str):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: _walk_strings(v, fn) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_walk_strings(v, fn) for v in obj]
    return obj


def substitute(options: dict, lookup) -> dict:
    """`options` with every `${stage[.output]}` replaced by `lookup(stage, output)` (a path)."""
    return _walk_strings(options, lambda s: REFERENCE.sub(lambda m: str(lookup(m.group(1), m.group(2))), s))


def _closest(name: str, valid) -> str:
    close = difflib.get_close_matches(name, list(valid), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _executor(raw: Any) -> ExecutorSpec:
    if raw is None:
        return ExecutorSpec()
    if not isinstance(raw, dict):
        raise ConfigError("executor: expected a mapping like {kind: local} or {kind: slurm, account: ...}")
    valid = set(ExecutorSpec.__dataclass_fields__)
    unknown = sorted(set(raw) - valid)
    if unknown:
        raise ConfigError(f"executor: unknown key(s) {unknown}{_closest(unknown[0], valid)}; valid: {sorted(valid)}")
    spec = ExecutorSpec(**raw)
    if spec.kind not in ("local", "slurm"):
        raise ConfigError(f"executor.kind must be 'local' or 'slurm', got {spec.kind!r}")
    if spec.kind == "slurm" and not (spec.account and spec.partition):
        raise ConfigError("executor: kind slurm needs `account` and `partition`")
    return spec


def _order(stages: dict[str, StageSpec]) -> list[StageSpec]:
    """Topological order, keeping YAML order among independent stages; cycles are errors."""
    done: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            cycle = " -> ".join(visiting[visiting.index(name):] + [name])
            raise ConfigError(f"stages form a cycle: {cycle}")
        visiting.append(name)
        for dep in stages[name].depends_on():
            visit(dep)
        visiting.pop()
        done.append(name)

    for name in stages:
        visit(name)
    return [stages[n] for n in done]


def parse_pipeline(raw: Any, source: Path | None = None) -> PipelineSpec:
    """A mapping (the YAML) -> a validated PipelineSpec; every problem reported at once."""
    from medmegatron.pipeline.stages import KINDS

    if not isinstance(raw, dict):
        raise ConfigError("a pipeline file is a mapping with `name`, `stages` and optional `run_dir`, `executor`")
    valid_top = {"name", "run_dir", "executor", "stages"}
    problems = [f"unknown top-level key '{k}'{_closest(k, valid_top)}" for k in raw if k not in valid_top]
    name = str(raw.get("name") or (source.stem if source else "pipeline"))
    stages_raw = raw.get("stages")
    if not isinstance(stages_raw, dict) or not stages_raw:
        raise ConfigError("stages: give a mapping of stage name -> {kind: ..., ...}")
    stages: dict[str, StageSpec] = {}
    for stage_name, body in stages_raw.items():
        where = f"stages.{stage_name}"
        if not STAGE_NAME.fullmatch(str(stage_name)):
            problems.append(f"{where}: stage names use letters, digits, '_' and '-' only (they name folders)")
            continue
        if not isinstance(body, dict) or "kind" not in body:
            problems.append(f"{where}: needs `kind` (one of {', '.join(KINDS)})")
            continue
        kind = body["kind"]
        if kind not in KINDS:
            problems.append(f"{where}.kind: '{kind}' is not one of {', '.join(KINDS)}{_closest(str(kind), KINDS)}")
            continue
        options = {k: v for k, v in body.items() if k not in ("kind", "after")}
        after = body.get("after") or []
        stages[stage_name] = StageSpec(str(stage_name), kind, options, [after] if isinstance(after, str) else list(after))
        problems += [f"{where}: {p}" for p in KINDS[kind].check(options)]
    for s in stages.values():
        for ref, output in s.references() + [(a, None) for a in s.after]:
            if ref not in stages:
                problems.append(f"stages.{s.name}: refers to stage '{ref}', which is not defined{_closest(ref, stages)}")
            elif output and output not in KINDS[stages[ref].kind].OUTPUTS:
                outputs = KINDS[stages[ref].kind].OUTPUTS
                problems.append(f"stages.{s.name}: stage '{ref}' ({stages[ref].kind}) has no output '{output}'; "
                                f"it has {', '.join(outputs)}")
    if problems:
        raise ConfigError("pipeline config:\n  - " + "\n  - ".join(problems))
    run_dir = Path(raw.get("run_dir") or f"runs/{name}").expanduser().resolve()
    return PipelineSpec(name=name, run_dir=run_dir, stages=_order(stages), executor=_executor(raw.get("executor")),
                        source=source)


def load_pipeline(path: str | Path, run_dir: str | None = None) -> PipelineSpec:
    from medmegatron.config.yaml_file import read_yaml_mapping

    path = Path(path)
    raw = read_yaml_mapping(path, "pipeline file")
    if run_dir:
        raw = {**raw, "run_dir": run_dir}
    return parse_pipeline(raw, source=path.resolve())
