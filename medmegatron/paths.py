"""Locations of optional shared data (dev/CI machines only) and of the repository."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """`../shared` beside the repo (or $MEDMEGATRON_SHARED_DIR); None on a user's machine."""
    env = os.environ.get("MEDMEGATRON_SHARED_DIR")
    candidate = Path(env) if env else REPO_ROOT.parent / "shared"
    return candidate if candidate.is_dir() else None


def pubmedqa_dir() -> Path | None:
    shared = shared_dir()
    path = shared / "data" / "pubmedqa" if shared else None
    return path if path and (path / "ori_pqal.json").exists() else None
