"""Load a recipe for planning: a path (`recipes/cpt_70b.py`) or a name (`cpt_70b`).

A recipe module provides `config() -> TrainConfig` and `INFO` (intended GPUs, GPU type, token
budget); the planner applies `key=value` overrides exactly as the recipe's own CLI does.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from medmegatron.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]


def _import_recipe(spec: str) -> ModuleType:
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))  # `recipes` is importable from a checkout
    path = Path(spec)
    if spec.endswith(".py"):
        if not path.exists():
            raise ConfigError(f"recipe file '{spec}' does not exist")
        if path.resolve().parent == REPO_ROOT / "recipes":
            return importlib.import_module(f"recipes.{path.stem}")
        loaded = importlib.util.spec_from_file_location(f"_recipe_{path.stem}", path)
        module = importlib.util.module_from_spec(loaded)
        loaded.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(f"recipes.{spec}")
    except ModuleNotFoundError as exc:
        if exc.name != f"recipes.{spec}":
            raise
        from recipes import RECIPES

        raise ConfigError(
            f"unknown recipe '{spec}': give a .py path or one of {', '.join(RECIPES)}"
        ) from None


def load_recipe(spec: str, overrides: list[str] | None = None):
    """(TrainConfig with overrides applied, the recipe's RecipeInfo)."""
    module = _import_recipe(spec)
    if not hasattr(module, "config") or not hasattr(module, "INFO"):
        raise ConfigError(f"'{spec}' is not a recipe: it must define config() and INFO")
    from recipes.common import recipe_config

    return recipe_config(module.config, overrides or []), module.INFO
