"""`python -m recipes NAME [recipe.x=v] [key=value ...] [--print]`: run a recipe on this rank.

No NeMo-Run involved: `recipe.*` are arguments of the recipe's `config()` (data_root, run_dir),
everything else overrides the resulting config. For launchers that already start one process
per GPU themselves (`torchrun -m recipes ...`, `srun` in containers/slurm/). `--print` shows
the resolved config as YAML and exits.
"""

from __future__ import annotations

import importlib
import sys

import yaml

from medmegatron.config import config_to_dict
from medmegatron.errors import UserFacingError
from recipes import RECIPES
from recipes.common import pretrain_task, recipe_config


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    show = "--print" in args
    args = [a for a in args if a != "--print"]
    if not args or args[0] not in RECIPES:
        print(f"usage: python -m recipes {{{','.join(RECIPES)}}} [key=value ...] [--print]", file=sys.stderr)
        return 2
    module = importlib.import_module(f"recipes.{args[0]}")
    try:
        config = recipe_config(module.config, args[1:])
    except UserFacingError as exc:
        print(f"recipes {args[0]}: error: {exc}", file=sys.stderr)
        return 2
    if show:
        print(yaml.safe_dump(config_to_dict(config), sort_keys=False))
        return 0
    pretrain_task(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
