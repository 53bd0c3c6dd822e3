"""`medmegatron plan RECIPE --gpus N --gpu h100-80gb [--search] [key=value ...]`.

Answers before a job is queued: does this layout fit (memory per rank), how fast will it go, and
what will the recipe's token budget cost. Exit code 2 when the layout is refused.
"""

from __future__ import annotations

import argparse


class _IntermixedParser(argparse.ArgumentParser):
    """Lets `key=value` overrides come after the options (`--gpus 64 parallel.tensor_parallel=8`)."""

    _inside = False

    def parse_known_args(self, args=None, namespace=None):
        if self._inside:
            return super().parse_known_args(args, namespace)
        self._inside = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inside = False


def add_parser(subparsers) -> None:
    default_class = subparsers._parser_class
    subparsers._parser_class = _IntermixedParser
    p = subparsers.add_parser(
        "plan", help="memory, speed and cost of a recipe's parallel layout, before queueing it",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("recipe", help="recipe file (recipes/cpt_70b.py) or name (cpt_70b)")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides, e.g. parallel.tensor_parallel=8 precision.fp8=delayed")
    p.add_argument("--gpus", type=int, help="number of GPUs (default: the recipe's)")
    p.add_argument("--gpu", help="h100-80gb | a100-80gb | h200 (default: the recipe's)")
    p.add_argument("--price", type=float, help="USD per GPU-hour (default: a placeholder cloud rate)")
    p.add_argument("--search", action="store_true", help="rank the feasible layouts for --gpus")
    p.add_argument("--top", type=int, default=10, help="layouts shown by --search")
    subparsers._parser_class = default_class
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from medmegatron.planning.gpus import get_gpu
    from medmegatron.planning.plan import make_plan
    from medmegatron.planning.recipes import load_recipe
    from medmegatron.planning.report import format_plan, format_search
    from medmegatron.planning.search import search

    config, info = load_recipe(args.recipe, args.overrides)
    gpus = args.gpus or info.gpus
    gpu = get_gpu(args.gpu or info.gpu)
    if args.search:
        plans, tried = search(config, gpus, gpu, args.price)
        print(format_search(plans, tried, gpus, gpu.name, args.top))
        return 0 if plans else 2
    plan = make_plan(config, gpus, gpu, args.price)
    print(format_plan(plan, info.name))
    return 0 if plan.feasible else 2
