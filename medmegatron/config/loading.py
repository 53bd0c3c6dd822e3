"""Build a `TrainConfig` from YAML/dicts and `a.b=value` overrides, refusing unknown keys.

Typos in configs are the commonest silent failure in training stacks (a misspelt `weight_decay`
keeps the default); every unknown key is an error naming the closest valid one.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from pathlib import Path
from typing import Any

import yaml

from medmegatron.config.presets import get_preset
from medmegatron.config.train import TrainConfig
from medmegatron.config.yaml_file import read_yaml_mapping
from medmegatron.errors import ConfigError


def _unknown_key(key: str, valid: list[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else f" Valid keys: {', '.join(valid)}."
    return ConfigError(f"unknown config key '{where}{key}'.{hint}")


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check `value` against a field's type, converting ints to floats where a float is wanted."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where) if len(inner) == 1 else value
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is float and isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
        try:
            return float(value)
        except ValueError:
            pass
    if annotation in (int, float, str, bool) and not isinstance(value, annotation) or (
        annotation is int and isinstance(value, bool)
    ):
        raise ConfigError(
            f"config key '{where}' must be {annotation.__name__}, got {value!r} "
            f"({type(value).__name__})"
        )
    if origin is list and not isinstance(value, list):
        raise ConfigError(f"config key '{where}' must be a list, got {value!r}")
    return value


def _apply(obj: Any, values: dict, where: str = "") -> None:
    hints = typing.get_type_hints(type(obj))
    names = [f.name for f in dataclasses.fields(obj)]
    for key, value in values.items():
        if key not in names:
            raise _unknown_key(key, names, where)
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            _apply(current, value, f"{where}{key}.")
        else:
            setattr(obj, key, _coerce(value, hints[key], f"{where}{key}"))


def _resolve_model(raw: dict) -> tuple[dict, str | None]:
    """`model: tiny-llama` or `model: {preset: tiny-llama, num_layers: 8}` -> preset + fields."""
    model = raw.get("model")
    if isinstance(model, str):
        model = {"preset": model}
    if isinstance(model, dict) and "preset" in model:
        fields = dict(model)
        preset = fields.pop("preset")
        raw = dict(raw)
        raw["model"] = fields
        return raw, (None if preset == "custom" else preset)
    return raw, None


def parse_overrides(overrides: list[str]) -> dict:
    """['schedule.train_iters=5', 'model=tiny-llama'] -> nested dict (values parsed as YAML)."""
    nested: dict = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key=value (e.g. schedule.train_iters=10)")
        key, text = item.split("=", 1)
        value = yaml.safe_load(text) if text else None
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if part == "model" and isinstance(node.get(part), str):  # model=PRESET model.x=...
                node[part] = {"preset": node[part]}
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{item}' sets a field inside '{part}', which is not a section")
        node[parts[-1]] = value
    return nested


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _model_as_dict(raw: dict) -> dict:
    if isinstance(raw.get("model"), str):
        return {**raw, "model": {"preset": raw["model"]}}
    return raw


def config_from_dict(raw: dict) -> TrainConfig:
    raw, preset = _resolve_model(raw or {})
    config = TrainConfig()
    if preset:
        config.model = get_preset(preset)
    _apply(config, raw)
    return config


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    raw: dict = read_yaml_mapping(path, "config") if path is not None else {}
    if overrides:
        extra = parse_overrides(overrides)
        if isinstance(extra.get("model"), str):  # a preset named on the command line replaces the file's
            raw = {k: v for k, v in raw.items() if k != "model"}
        raw = _merge(_model_as_dict(raw), _model_as_dict(extra))
    return config_from_dict(raw)


def config_to_dict(config: TrainConfig) -> dict:
    return dataclasses.asdict(config)
