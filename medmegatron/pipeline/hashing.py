"""Content digests of files and folders, cached by (size, mtime) the way git's index is.

Skipping must follow content, not timestamps (a rebuilt, identical artifact should not rerun
its dependents), but re-reading a 140 GB checkpoint on every `pipeline status` is not an
option: a file is re-hashed only when its size or mtime changed since it was last hashed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

SKIPPED_SUFFIXES = (".tmp", ".lock")  # in-flight writes, never part of an artifact


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


class HashCache:
    """{absolute path: [size, mtime_ns, sha256]} persisted as JSON (written atomically)."""

    def __init__(self, path: Path):
        self.path = path
        self.entries: dict[str, list] = {}
        if path.exists():
            try:
                self.entries = json.loads(path.read_text())
            except (OSError, ValueError):  # a damaged cache only costs re-hashing
                self.entries = {}

    def file(self, path: Path) -> str:
        st = path.stat()
        key = str(path.resolve())
        hit = self.entries.get(key)
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            return hit[2]
        sha = file_sha256(path)
        self.entries[key] = [st.st_size, st.st_mtime_ns, sha]
        return sha

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.entries))
        tmp.replace(self.path)


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.endswith(SKIPPED_SUFFIXES)
                  and not any(part.endswith(".tmp") for part in p.relative_to(root).parts))


def file_digests(path: Path, cache: HashCache) -> dict[Path, str] | None:
    """{file: sha256} of a file or of every file in a folder; None if the path does not exist."""
    path = Path(path)
    if path.is_file():
        return {path: cache.file(path)}
    if not path.is_dir():
        return None
    return {f: cache.file(f) for f in _files(path)}


def listing_digest(path: Path, files: dict[Path, str] | None) -> str | None:
    """The digest of `path` from its `file_digests` (one walk serves both)."""
    if files is None:
        return None
    if Path(path).is_file():
        return files[Path(path)]
    listing = hashlib.sha256()
    for f, sha in files.items():
        listing.update(f"{f.relative_to(path).as_posix()}\0{sha}\n".encode())
    return listing.hexdigest()


def digest(path: Path, cache: HashCache) -> str | None:
    """sha256 of a file, or of a folder's (relative path, file sha256) list; None if missing."""
    return listing_digest(Path(path), file_digests(path, cache))
