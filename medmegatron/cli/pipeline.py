"""`medmegatron pipeline run|status|report PIPELINE.yaml`: the whole chain, resumable, with a report."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "pipeline", help="run data -> train -> SFT -> export -> eval as one resumable pipeline",
        description="Run the stages of a pipeline YAML in order, skipping those whose outputs exist "
        "with matching inputs (content hashes), resuming interrupted ones, and writing provenance "
        "and an HTML/markdown report.")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_text, func in (
        ("run", "run what is not done, then write the report", run),
        ("status", "show what is done, stale, missing or interrupted (runs nothing)", status),
        ("report", "write the report from what exists", report),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("pipeline", metavar="PIPELINE.yaml")
        p.add_argument("--run-dir", default=None, help="override the file's run_dir")
        if name == "run":
            p.add_argument("--only", nargs="+", metavar="STAGE", help="run these stages (and what they need)")
            p.add_argument("--force", nargs="+", metavar="STAGE", default=[], help="rerun these even if done")
        p.set_defaults(func=func)


def _pipeline(args):
    from medmegatron.pipeline.runner import Pipeline
    from medmegatron.pipeline.spec import load_pipeline

    return Pipeline(load_pipeline(args.pipeline, run_dir=args.run_dir))


def run(args: argparse.Namespace) -> int:
    from medmegatron.pipeline.summary import write_run_report

    pipeline = _pipeline(args)
    print(f"[pipeline] {pipeline.spec.name}: run folder {pipeline.root}", flush=True)
    try:
        results = pipeline.run(only=args.only, force=args.force)
    except Exception:
        try:  # the report of a failed run shows how far it got and which stage failed
            html, md = write_run_report(pipeline)
            print(f"report (run incomplete): {html}")
        except Exception:  # noqa: BLE001 - the stage's own error below is the one to act on
            pass
        raise
    html, md = write_run_report(pipeline)
    ran = [r["name"] for r in results if r["action"] == "ran"]
    skipped = [r["name"] for r in results if r["action"] == "skipped"]
    print(f"[pipeline] ran: {', '.join(ran) or 'nothing'}; skipped (up to date): {', '.join(skipped) or 'nothing'}")
    print(f"report: {html}\n        {md}")
    return 0


def status(args: argparse.Namespace) -> int:
    from medmegatron.pipeline.summary import format_status

    print(format_status(_pipeline(args)))
    return 0


def report(args: argparse.Namespace) -> int:
    from medmegatron.pipeline.summary import write_run_report

    html, md = write_run_report(_pipeline(args))
    print(f"report: {html}\n        {md}")
    return 0
