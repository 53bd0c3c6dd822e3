"""The `medmegatron` command: one subcommand per stage, each a thin module under `medmegatron.cli`.

A subcommand module exposes `add_parser(subparsers)`, which registers its parser and sets `func`
(called with the parsed namespace, returning an exit code). Imports of heavy stages (torch,
megatron-core) happen inside `func`, so `medmegatron --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from medmegatron import __version__
from medmegatron.errors import UserFacingError
from medmegatron.runtime.quiet import quiet_expected_warnings

# Order is the order shown in --help.
SUBCOMMANDS = ("demo", "pipeline", "train", "prep", "convert", "plan", "eval", "merge")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medmegatron",
        description="Continual pretraining of medical LLMs on megatron-core: "
        "prepare data, train, convert, plan and evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"medmegatron {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"medmegatron.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"medmegatron.cli.{name}":
                continue  # stage not built yet: not listed rather than listed as a stub
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    quiet_expected_warnings()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserFacingError as exc:
        if os.environ.get("RANK", "0") == "0":  # one message, not one per rank
            print(f"medmegatron {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
