"""`medmegatron demo`: what `make demo` runs."""

from __future__ import annotations


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="tiny continual pretraining end to end on CPU (what `make demo` runs)",
        description="Prepare a small medical corpus, train tiny-llama (recipes/tiny_cpu.py) on 2 "
        "local processes with megatron-core, and print the loss curves and checkpoint path.",
    )
    parser.add_argument("--run-dir", default="runs/demo", help="output folder (default runs/demo)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from medmegatron.demo import run_demo

    return run_demo(args.run_dir)
