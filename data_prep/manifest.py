"""JSON manifests written beside every output: what went in, what came out, what was removed.

A manifest is what makes an output trustworthy and resumable: input file hashes + config +
tokenizer hash identify the work, so a rerun with the same inputs can skip it and a changed input
invalidates it. Written atomically, after the data files, so a manifest implies complete data.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from pathlib import Path

from data_prep.io import file_sha256, write_json_atomic

MANIFEST_VERSION = 1


def manifest_path(prefix: str | os.PathLike) -> Path:
    prefix = Path(prefix)
    return prefix.with_name(prefix.name + ".manifest.json")


def input_hashes(paths) -> dict[str, str]:
    return {str(p): file_sha256(p) for p in paths if Path(p).exists()}


def build_manifest(kind: str, *, inputs: dict[str, str], config: dict, counts: dict,
                   steps: dict | None = None, errors: dict | None = None,
                   tokenizer: dict | None = None, outputs: dict | None = None) -> dict:
    from medmegatron import __version__

    return {
        "manifest_version": MANIFEST_VERSION,
        "kind": kind,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "medmegatron_version": __version__,
        "python": platform.python_version(),
        "inputs": inputs,
        "config": config,
        "tokenizer": tokenizer,
        "counts": counts,
        "steps": steps or {},
        "errors": errors or {},
        "outputs": outputs or {},
    }


def write_manifest(prefix: str | os.PathLike, manifest: dict) -> Path:
    path = manifest_path(prefix)
    write_json_atomic(path, manifest)
    return path


def read_manifest(prefix: str | os.PathLike) -> dict | None:
    path = manifest_path(prefix)
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def is_up_to_date(prefix: str | os.PathLike, inputs: dict[str, str], config: dict,
                  tokenizer_hash: str | None = None, files=(".bin", ".idx")) -> bool:
    """True when a previous run wrote `prefix` from the same inputs, config and tokenizer."""
    prefix = Path(prefix)
    old = read_manifest(prefix)
    if old is None or any(not prefix.with_name(prefix.name + s).exists() for s in files):
        return False
    old_tok = (old.get("tokenizer") or {}).get("sha256")
    return old.get("inputs") == inputs and old.get("config") == config and old_tok == tokenizer_hash
