"""What `pipeline status` prints and what the report is given: one row per stage."""

from __future__ import annotations

from medmegatron.pipeline.runner import Pipeline
from medmegatron.pipeline.stages import KINDS


def stage_rows(pipeline: Pipeline) -> list[dict]:
    rows = []
    for st in pipeline.states():
        record = pipeline.record(st.stage.name) or {}
        paths = KINDS[st.stage.kind].output_paths(pipeline.stage_dir(st.stage.name))
        outputs = {n: str(p) for n, p in paths.items()}
        rows.append({"name": st.stage.name, "kind": st.stage.kind, "status": st.status, "reason": st.reason,
                     "seconds": record.get("seconds"), "fingerprint": st.fingerprint or record.get("fingerprint"),
                     "finished_utc": record.get("finished_utc"), "outputs": outputs,
                     "inputs": (record.get("identity") or {}).get("inputs", {}),
                     "code": record.get("code")})
    return rows


def format_status(pipeline: Pipeline) -> str:
    rows = stage_rows(pipeline)
    width = max(len(r["name"]) for r in rows)
    lines = [f"pipeline {pipeline.spec.name}: {pipeline.root}"]
    for r in rows:
        when = f"  finished {r['finished_utc']} ({r['seconds']} s)" if r["status"] == "done" else ""
        reason = f"  ({r['reason']})" if r["reason"] else ""
        lines.append(f"  {r['name']:<{width}}  {r['kind']:<8}  {r['status']:<11}{when}{reason}")
    return "\n".join(lines)


def write_run_report(pipeline: Pipeline):
    import datetime as dt

    from medmegatron.pipeline.report import write_report
    from medmegatron.training.provenance import code_version

    summary = {"pipeline": pipeline.spec.name, "run_dir": str(pipeline.root),
               "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "code": code_version(), "stages": stage_rows(pipeline)}
    return write_report(pipeline.root, summary)
