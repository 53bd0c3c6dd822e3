"""`medmegatron demo`: what `make demo` runs."""

from __future__ import annotations


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="tiny continual pretraining end to end on CPU (what `make demo` runs)",
        description="Prepare a small medical corpus, train tiny-llama on 2 local processes with "
        "megatron-core, and print the loss curve and checkpoint path.",
    )
    parser.add_argument("--run-dir", default="runs/demo", help="output folder (default runs/demo)")
    parser.add_argument("--nproc-per-node", type=int, default=2, help="local processes (default 2)")
    parser.set_defaults(func=lambda args: __import__("medmegatron.demo", fromlist=["run_demo"])
                        .run_demo(args.run_dir, args.nproc_per_node))
