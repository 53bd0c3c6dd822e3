"""`medmegatron demo`: what `make demo` runs."""

from __future__ import annotations


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="the whole pipeline on a tiny model on CPU (what `make demo` runs)",
        description="Write the demo's inputs and pipeline file, then run it: data prep -> continual "
        "pretraining (tiny-llama, TP=2 on 2 local processes) -> SFT data -> SFT with NEFTune -> export "
        "-> evaluation -> report. Rerunning skips finished stages.",
    )
    parser.add_argument("--run-dir", default="runs/demo", help="output folder (default runs/demo)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from medmegatron.demo import run_demo

    return run_demo(args.run_dir)
