"""What a checkpoint was made from: code version and fingerprints of the data it trained on."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from medmegatron import __version__
from medmegatron.paths import REPO_ROOT


def code_version() -> dict:
    version = {"medmegatron": __version__}
    try:
        commit = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10)
        if commit.returncode == 0:
            version["git_commit"] = commit.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        import megatron.core

        version["megatron_core"] = megatron.core.__version__
    except Exception:  # version is informative only
        pass
    return version


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_fingerprints(prefixes: list[str]) -> dict:
    """sha256 of each dataset's .idx (document boundaries, small) and of its manifest if present."""
    out = {}
    for prefix in prefixes:
        entry = {"idx_sha256": _sha256(Path(prefix + ".idx"))}
        for manifest in (Path(prefix + ".manifest.json"), Path(prefix + ".json")):
            if manifest.exists():
                entry["manifest_sha256"] = _sha256(manifest)
                break
        out[prefix] = entry
    return out
