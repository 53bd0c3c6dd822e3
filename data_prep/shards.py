"""Intermediate shards: zstd-compressed JSON Lines of {id, text, source}, written atomically."""

from __future__ import annotations

import io
from pathlib import Path

import orjson

from data_prep.io import atomic_zst_writer, open_binary


def write_shard(path: str | Path, docs) -> int:
    n = 0
    with atomic_zst_writer(path) as fh:
        for d in docs:
            fh.write(orjson.dumps(d))
            fh.write(b"\n")
            n += 1
    return n


def read_shard(path: str | Path) -> list[dict]:
    with open_binary(path) as raw:
        data = raw.read()
    return [orjson.loads(line) for line in io.BytesIO(data) if line.strip()]
