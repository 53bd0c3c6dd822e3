"""`medmegatron merge CONFIG`: merge HF checkpoints (linear, task arithmetic, TIES, DARE, SLERP)."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "merge", help="merge Hugging Face checkpoints (linear, task_arithmetic, ties, dare, slerp)",
        description="Merge HF safetensors folders tensor by tensor as described by a YAML config "
        "(method, models with weight/density, base_model, parameters, dtype, output). See "
        "medmegatron/merging/config.py for the format.")
    parser.add_argument("config", metavar="CONFIG", help="merge YAML file")
    parser.add_argument("--output", default=None, help="override the config's output folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from medmegatron.merging import load_merge_config, merge

    cfg = load_merge_config(args.config, output=args.output)
    out = merge(cfg)
    print(f"merged ({cfg.method}, {len(cfg.models)} models): {out}")
    return 0
