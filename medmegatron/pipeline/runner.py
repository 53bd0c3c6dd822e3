"""Run a pipeline: decide per stage (done / stale / missing / interrupted), run what is needed.

Records live in `RUN/.pipeline/<stage>.json` (and a copy as `RUN/<stage>/provenance.json`):
fingerprint, resolved config, input and upstream digests, output digests, code version, times.
A record is written only after the stage's command succeeded and its outputs were hashed, so a
record always describes complete outputs. `RUN/.pipeline/<stage>.attempt.json` marks a stage in
flight; finding one means the previous run was interrupted there.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from medmegatron.errors import UserFacingError
from medmegatron.pipeline.executors import command_line, make_executor
from medmegatron.pipeline.hashing import HashCache, digest, file_digests, listing_digest
from medmegatron.pipeline.spec import PipelineSpec, StageSpec, substitute
from medmegatron.pipeline.stages import KINDS, Prepared


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _few(paths: list[str]) -> str:
    paths = sorted(set(paths))
    return ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


@dataclass
class StageState:
    stage: StageSpec
    status: str  # done | not run | stale | changed | missing | interrupted | failed | waiting
    reason: str = ""
    fingerprint: str | None = None
    prepared: Prepared | None = None
    upstream: dict | None = None
    inputs: dict | None = None
    damaged: list[str] = field(default_factory=list)  # run-relative files deleted or modified


class Pipeline:
    def __init__(self, spec: PipelineSpec):
        self.spec = spec
        self.root = spec.run_dir
        self.meta = self.root / ".pipeline"
        self.cache = HashCache(self.meta / "hash_cache.json")

    # ------------------------------------------------------------------ paths and records
    def stage_dir(self, name: str) -> Path:
        return self.root / name

    def record_path(self, name: str) -> Path:
        return self.meta / f"{name}.json"

    def attempt_path(self, name: str) -> Path:
        return self.meta / f"{name}.attempt.json"

    def record(self, name: str) -> dict | None:
        return _read_json(self.record_path(name))

    def _relative(self, obj) -> object:
        """Paths inside the run folder written as ${run_dir}/..., so a moved run keeps its fingerprints."""
        return json.loads(json.dumps(obj, default=str).replace(str(self.root), "${run_dir}"))

    def output_path(self, stage: str, output: str | None) -> Path:
        kind = KINDS[self.spec.stage(stage).kind]
        return kind.output_paths(self.stage_dir(stage))[output or next(iter(kind.OUTPUTS))]

    def output_digests(self, stage: StageSpec) -> dict[str, dict]:
        """{output: {"digest": sha256 or None if a path is missing, "files": {run-relative path: sha256}}}"""
        out = {}
        for name, paths in KINDS[stage.kind].hashed(self.stage_dir(stage.name)).items():
            parts, files = [], {}
            for p in paths:
                listed = file_digests(p, self.cache)
                parts.append(listing_digest(Path(p), listed))
                for f, sha in (listed or {}).items():
                    files[str(f.relative_to(self.root)) if f.is_relative_to(self.root) else str(f)] = sha
            out[name] = {"digest": None if any(p is None for p in parts) else (
                parts[0] if len(parts) == 1 else hashlib.sha256("".join(parts).encode()).hexdigest()),
                "files": files}
        return out

    # ------------------------------------------------------------------ state of one stage
    def state(self, stage: StageSpec, states: dict[str, StageState]) -> StageState:
        deps = stage.depends_on()
        waiting = [d for d in deps if states[d].status != "done"]
        record = self.record(stage.name)
        if waiting:
            hint = "; it ran before" if record else ""
            return StageState(stage, "waiting", f"needs {', '.join(waiting)} first{hint}")
        upstream = {}
        for ref, output in stage.references():
            name = output or next(iter(KINDS[self.spec.stage(ref).kind].OUTPUTS))
            upstream[f"{ref}.{name}"] = self.record(ref)["outputs"][name]["digest"]
        options = substitute(stage.options, self.output_path)
        kind = KINDS[stage.kind]
        prepared = kind.prepare(options, self.stage_dir(stage.name), self.meta / "configs" / stage.name)
        inputs = {str(p): digest(Path(p), self.cache) for p in prepared.inputs}
        identity = {"kind": stage.kind, "resolved": prepared.resolved, "inputs": inputs, "upstream": upstream}
        identity = self._relative(identity)
        fingerprint = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
        st = StageState(stage, "", fingerprint=fingerprint, prepared=prepared, upstream=upstream, inputs=inputs)
        if record and record.get("fingerprint") == fingerprint:
            gone, modified = [], []
            for name, now in self.output_digests(stage).items():
                old = record["outputs"][name]
                if now["digest"] == old["digest"]:
                    continue
                gone += [f for f in old.get("files", {}) if f not in now["files"]]
                modified += [f for f, sha in now["files"].items() if old.get("files", {}).get(f) != sha]
                if not gone and not modified:  # a path with no recorded files
                    gone.append(old["path"])
            st.damaged = sorted(set(gone + modified))
            if modified:
                st.status, st.reason = "changed", f"{_few(modified)} modified after it was made"
            elif gone:
                st.status, st.reason = "missing", f"{_few(gone)} deleted"
            else:
                st.status = "done"
            return st
        attempt = _read_json(self.attempt_path(stage.name))
        if attempt and attempt.get("fingerprint") == fingerprint:  # before "stale": keep its progress
            if "exit_code" in attempt:
                st.status = "failed"
                st.reason = f"exit code {attempt['exit_code']} at {attempt.get('failed_utc')}; a rerun resumes"
            else:
                st.status, st.reason = "interrupted", f"started {attempt.get('started_utc')}; will resume"
        elif record:
            st.status, st.reason = "stale", self._why_stale(record, identity)
        else:
            st.status = "not run"
        return st

    def _why_stale(self, record: dict, identity: dict) -> str:
        old = record.get("identity", {})
        reasons = []
        for key, what in (("resolved", "config"), ("inputs", "input files"), ("upstream", "upstream outputs")):
            if old.get(key) != identity.get(key):
                a, b = old.get(key) or {}, identity.get(key) or {}
                keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                reasons.append(f"{what} changed ({', '.join(keys[:4])})")
        if old.get("kind") != identity.get("kind"):
            reasons.append("kind changed")
        return "; ".join(reasons) or "fingerprint changed"

    def states(self) -> list[StageState]:
        out: dict[str, StageState] = {}
        for stage in self.spec.stages:
            out[stage.name] = self.state(stage, out)
        self.cache.save()
        return list(out.values())

    # ------------------------------------------------------------------ running
    def _clear_for_rerun(self, st: StageState) -> None:
        folder = self.stage_dir(st.stage.name)
        if not folder.exists():
            return
        kind = KINDS[st.stage.kind]
        if kind.RESUMABLE and st.status in ("interrupted", "failed"):
            return  # same fingerprint: the command resumes from what is there
        if kind.RESUMABLE and st.status in ("missing", "changed"):
            kind.repair(self.root, st.damaged)  # drop what cannot be trusted, redo only that
            return
        if kind.RESUMABLE:  # other config or inputs: keep one copy aside
            previous = folder.with_name(folder.name + ".previous")
            shutil.rmtree(previous, ignore_errors=True)
            folder.rename(previous)
            print(f"[pipeline] {st.stage.name}: previous outputs moved to {previous} (delete when not needed)")
        else:
            shutil.rmtree(folder)

    def run_stage(self, st: StageState, executor) -> dict:
        stage, prepared = st.stage, st.prepared
        self._clear_for_rerun(st)
        self.stage_dir(stage.name).mkdir(parents=True, exist_ok=True)
        started = time.time()
        _write_json(self.attempt_path(stage.name), {"fingerprint": st.fingerprint, "started_utc": _now()})
        if prepared.config_file:
            path, text = prepared.config_file
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        if stage.kind == "train":
            from medmegatron.pipeline.prediction import write_prediction

            write_prediction(prepared.extra["config"], prepared.nproc, self.stage_dir(stage.name))
        print(f"[pipeline] {stage.name}: {command_line(prepared.argv)}", flush=True)
        code = executor.run(stage.name, prepared.argv, prepared.nproc)
        if code != 0:
            _write_json(self.attempt_path(stage.name), {"fingerprint": st.fingerprint, "started_utc":
                        _dt.datetime.fromtimestamp(started, _dt.timezone.utc).isoformat(timespec="seconds"),
                        "exit_code": code, "failed_utc": _now()})
            raise UserFacingError(
                f"stage '{stage.name}' failed (exit code {code}); fix the cause shown above and rerun "
                f"`medmegatron pipeline run` - finished stages are skipped and this one resumes. Command: "
                f"{command_line(prepared.argv)}")
        outputs = self.output_digests(stage)
        missing = [n for n, d in outputs.items() if d["digest"] is None]
        if missing:
            raise UserFacingError(f"stage '{stage.name}' finished but did not produce {', '.join(missing)}")
        from medmegatron.training.provenance import code_version

        record = {
            "stage": stage.name, "kind": stage.kind, "fingerprint": st.fingerprint,
            "identity": self._relative({"kind": stage.kind, "resolved": prepared.resolved, "inputs": st.inputs,
                                        "upstream": st.upstream}),
            "command": command_line(prepared.argv),
            "outputs": {n: {"path": str(self.output_path(stage.name, n)), **d} for n, d in outputs.items()},
            "code": code_version(), "started_utc": _dt.datetime.fromtimestamp(started, _dt.timezone.utc)
            .isoformat(timespec="seconds"), "finished_utc": _now(), "seconds": round(time.time() - started, 1),
        }
        _write_json(self.stage_dir(stage.name) / "provenance.json", record)
        _write_json(self.record_path(stage.name), record)
        self.attempt_path(stage.name).unlink(missing_ok=True)
        self.cache.save()
        return record

    def run(self, only: list[str] | None = None, force: list[str] | None = None) -> list[dict]:
        """Run every stage that is not done (or only `only` and what they need); returns a summary."""
        wanted = self._needed(only) if only else {s.name for s in self.spec.stages}
        force = set(force or [])
        executor = make_executor(self.spec.executor, self.spec.name)
        self.meta.mkdir(parents=True, exist_ok=True)
        self._lock()
        states: dict[str, StageState] = {}
        summary = []
        for stage in self.spec.stages:
            st = self.state(stage, states)
            if stage.name in force and st.status == "done":
                st.status, st.reason = "forced", "--force"
            states[stage.name] = st
            if stage.name not in wanted:
                summary.append({"name": stage.name, "action": "not requested", "status": st.status})
                continue
            if st.status == "done":
                print(f"[pipeline] {stage.name}: up to date, skipped", flush=True)
                summary.append({"name": stage.name, "action": "skipped", "status": "done"})
                continue
            if st.status == "waiting":
                raise UserFacingError(f"stage '{stage.name}' {st.reason}")
            print(f"[pipeline] {stage.name}: {st.status}{' - ' + st.reason if st.reason else ''}; running", flush=True)
            record = self.run_stage(st, executor)
            states[stage.name] = StageState(stage, "done", fingerprint=record["fingerprint"])
            summary.append({"name": stage.name, "action": "ran", "status": "done", "seconds": record["seconds"],
                            "was": st.status})
        return summary

    def _lock(self) -> None:
        """One `pipeline run` per run folder: a second one would race the first on every stage.
        The lock is the kernel's (flock), so a killed run leaves none behind."""
        import fcntl

        self._lock_file = open(self.meta / "lock", "a+")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.seek(0)
            raise UserFacingError(f"another `medmegatron pipeline run` is working in {self.root} "
                                  f"({self._lock_file.read().strip() or 'pid unknown'}); wait for it or stop it") from None
        self._lock_file.seek(0)
        self._lock_file.truncate()
        self._lock_file.write(f"pid {os.getpid()}")
        self._lock_file.flush()

    def _needed(self, only: list[str]) -> set[str]:
        need = set()
        for name in only:
            self.spec.stage(name)  # unknown names are errors
            need.add(name)
        changed = True
        while changed:
            before = len(need)
            for s in self.spec.stages:
                if s.name in need:
                    need |= set(s.depends_on())
            changed = len(need) != before
        return need
