"""Read a YAML config file into a mapping, with errors that point at the file and line."""

from __future__ import annotations

from pathlib import Path

import yaml

from medmegatron.errors import ConfigError


def read_yaml_mapping(path: str | Path, what: str = "config") -> dict:
    """The top-level mapping of `path`; a missing file, bad syntax or a non-mapping is a ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} file '{path}' does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)}); fix the "
                          "syntax there") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level of a {what} must be a mapping (key: value)")
    return raw
