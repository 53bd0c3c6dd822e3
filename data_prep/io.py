"""Small file helpers every stage shares: atomic writes, compressed text, content hashes.

Atomic = write to `<name>.tmp-<pid>` in the same directory, fsync, `os.replace`. A reader therefore
sees either the old complete file or the new complete file, never a half-written one, and a crashed
run leaves only `*.tmp-*` files, which are ignored and cleaned up on the next run.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
from pathlib import Path
from typing import IO, Iterator


def tmp_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(f"{path.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temp file beside `path`; rename onto `path` only if the block finishes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path(path)
    kwargs = {"encoding": "utf-8"} if "b" not in mode else {}
    try:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: str | os.PathLike, obj) -> None:
    with atomic_open(path, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")


def compression_of(path: str | os.PathLike) -> str | None:
    name = str(path).lower()
    if name.endswith(".gz"):
        return "gzip"
    if name.endswith(".zst") or name.endswith(".zstd"):
        return "zstd"
    return None


def open_binary(path: str | os.PathLike) -> IO[bytes]:
    """Open a possibly compressed file for reading bytes (.gz, .zst/.zstd or plain)."""
    kind = compression_of(path)
    if kind == "gzip":
        return gzip.open(path, "rb")
    if kind == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)
    return open(path, "rb")


def open_lines(path: str | os.PathLike) -> IO[bytes]:
    """A buffered binary line reader over a possibly compressed file."""
    raw = open_binary(path)
    return io.BufferedReader(raw, 1 << 20) if compression_of(path) == "zstd" else raw


@contextlib.contextmanager
def atomic_zst_writer(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """Write a zstd-compressed file atomically (used for intermediate JSONL shards)."""
    import zstandard

    with atomic_open(path, "wb") as fh:
        with zstandard.ZstdCompressor(level=3).stream_writer(fh, closefd=False) as zw:
            yield zw


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Content hash recorded in manifests (directories: hash of sorted file names + contents)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
    return digest.hexdigest()


def cleanup_tmp(directory: str | os.PathLike) -> int:
    """Remove leftovers of crashed writers (`*.tmp-<pid>`); returns how many were removed."""
    directory = Path(directory)
    if not directory.exists():
        return 0
    removed = 0
    for p in directory.rglob("*.tmp-*"):
        if p.is_file():
            p.unlink(missing_ok=True)
            removed += 1
    return removed
