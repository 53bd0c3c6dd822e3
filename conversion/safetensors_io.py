"""HF safetensors I/O without ever holding the model: validated shard reading, streaming writing.

Reading: every shard's header is parsed and checked against its file size *before* conversion
starts (a truncated or corrupt shard, or an index naming a missing file/tensor, fails up front
with no output written); tensors are then read one at a time with positioned reads. When the folder
carries our `checksums.sha256`, the shards are verified against it too.

Writing: the shard plan (names, shapes, dtypes) is fixed first, so each shard's header is known
before its data; tensors are then appended as they are produced and hashed on the way. Output is
`model-0000i-of-0000N.safetensors` + `model.safetensors.index.json` + `checksums.sha256`, the
layout `transformers` loads.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import torch

from conversion.errors import ConversionError

INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
CHECKSUMS = "checksums.sha256"

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
          "U8": torch.uint8, "BOOL": torch.bool}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}


def read_header(path: Path) -> dict:
    """The safetensors header of `path`, checked against the file's length (catches truncation)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise ConversionError(f"'{path}' is truncated ({size} bytes): not a safetensors file; "
                                  "re-download or re-export it")
        (n,) = struct.unpack("<Q", raw)
        if n > size - 8 or n > 100_000_000:
            raise ConversionError(f"'{path}' is corrupt or truncated (header length {n} > file "
                                  f"size {size}); re-download or re-export it")
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ConversionError(f"'{path}' has a corrupt safetensors header; re-download or "
                                  "re-export it") from None
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end != size:
        raise ConversionError(f"'{path}' is truncated or has trailing garbage: its header describes "
                              f"{8 + n + end} bytes, the file has {size}; re-download or re-export it")
    return header


def _header_length(path: Path) -> int:
    with path.open("rb") as f:
        return struct.unpack("<Q", f.read(8))[0]


def sha256_file(path: Path, chunk: int = 1 << 24) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class HFShards:
    """The tensors of an HF folder, by name; validated on construction, read one at a time."""

    def __init__(self, hf_dir: Path, verify_checksums: bool = True):
        self.dir = Path(hf_dir)
        index = self.dir / INDEX
        if index.exists():
            try:
                weight_map = json.loads(index.read_text())["weight_map"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ConversionError(f"'{index}' is not a valid safetensors index (needs a "
                                      "'weight_map'); re-download or re-export it") from None
        elif (self.dir / SINGLE).exists():
            weight_map = None
        else:
            found = sorted(p.name for p in self.dir.glob("*.safetensors"))
            raise ConversionError(
                f"'{self.dir}' has no {INDEX}" + (f" for its shards {found[:3]}" if found else
                                                   " and no model.safetensors")
                + ": the index says which shard holds each tensor; re-download or re-export the model"
                + ("" if found else " (.bin/.pth checkpoints are not read: convert them to safetensors)")
            )
        files = sorted(set(weight_map.values())) if weight_map else [SINGLE]
        self.headers: dict[str, dict] = {}
        for name in files:
            path = self.dir / name
            if not path.exists():
                raise ConversionError(f"'{index}' names shard '{name}', which is missing from "
                                      f"'{self.dir}'")
            self.headers[name] = read_header(path)
        if verify_checksums and (self.dir / CHECKSUMS).exists():
            self._verify_checksums(files)
        self.file_of: dict[str, str] = {}
        for name, header in self.headers.items():
            for tensor in header:
                if tensor != "__metadata__":
                    self.file_of[tensor] = name
        for tensor, name in (weight_map or {}).items():
            if self.file_of.get(tensor) != name:
                raise ConversionError(f"'{index}' says '{tensor}' is in '{name}', but that shard "
                                      "does not contain it; the index and shards are out of sync")
        self._data_start = {name: 8 + _header_length(self.dir / name) for name in self.headers}

    def _verify_checksums(self, files: list[str]) -> None:
        expected = {}
        for line in (self.dir / CHECKSUMS).read_text().splitlines():
            if line.strip():
                digest, name = line.split(maxsplit=1)
                expected[name.strip().lstrip("*")] = digest
        for name in files:
            if name in expected and sha256_file(self.dir / name) != expected[name]:
                raise ConversionError(f"'{self.dir / name}' does not match its checksum in "
                                      f"{CHECKSUMS}: the shard is corrupt; re-export or re-copy it")

    def __contains__(self, name: str) -> bool:
        return name in self.file_of

    @property
    def names(self) -> set[str]:
        return set(self.file_of)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.headers[self.file_of[name]][name]["shape"])

    def dtype(self, name: str) -> torch.dtype:
        return DTYPES[self.headers[self.file_of[name]][name]["dtype"]]

    def get(self, name: str) -> torch.Tensor:
        """Read one tensor with a positioned read into a fresh buffer.

        Not `safe_open`: its memory map keeps every page read so far resident (and counted in
        RSS) until the handle closes; a plain read holds exactly one tensor.
        """
        if name not in self.file_of:
            raise ConversionError(f"tensor '{name}' is not in '{self.dir}' (config.json and "
                                  "weights disagree, or the family mapping does not fit)")
        file = self.file_of[name]
        info = self.headers[file][name]
        begin, end = info["data_offsets"]
        buffer = torch.empty(end - begin, dtype=torch.uint8)
        with (self.dir / file).open("rb", buffering=0) as f:
            f.seek(self._data_start[file] + begin)
            view = memoryview(buffer.numpy())
            got = 0
            while got < len(view):
                n = f.readinto(view[got:])
                if not n:
                    raise ConversionError(f"'{self.dir / file}' ended early while reading '{name}'")
                got += n
        return buffer.view(DTYPES[info["dtype"]]).reshape(info["shape"])

    def files(self) -> list[Path]:
        return [self.dir / f for f in self.headers]


class ShardedWriter:
    """Write planned tensors, in plan order, into size-capped safetensors shards + index.

    `plan` is [(name, shape, dtype)] in the order `write` will be called; nothing is buffered
    beyond the tensor being written.
    """

    def __init__(self, out_dir: Path, plan: list[tuple[str, tuple, torch.dtype]],
                 max_shard_bytes: int = 5 * 1024**3):
        self.dir = Path(out_dir)
        shards: list[list[tuple[str, tuple, torch.dtype, int]]] = [[]]
        size = 0
        for name, shape, dtype in plan:
            nbytes = _numel(shape) * torch.empty((), dtype=dtype).element_size()
            if shards[-1] and size + nbytes > max_shard_bytes:
                shards.append([])
                size = 0
            shards[-1].append((name, tuple(shape), dtype, nbytes))
            size += nbytes
        count = len(shards)
        self.shards = [(f"model-{i + 1:05d}-of-{count:05d}.safetensors", s) for i, s in enumerate(shards)]
        self.queue = [(file, name, shape, dtype) for file, s in self.shards for name, shape, dtype, _ in s]
        self.position = 0
        self.checksums: dict[str, str] = {}
        self.total = sum(n for _, s in self.shards for *_, n in s)
        self._file = None
        self._digest = None
        self._current = None

    def _open(self, file: str) -> None:
        entries = dict(self.shards)[file]
        header, offset = {"__metadata__": {"format": "pt"}}, 0
        for name, shape, dtype, nbytes in entries:
            header[name] = {"dtype": DTYPE_NAMES[dtype], "shape": list(shape),
                            "data_offsets": [offset, offset + nbytes]}
            offset += nbytes
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)
        self._file = (self.dir / file).open("wb")
        self._digest = hashlib.sha256()
        self._current = file
        self._emit(struct.pack("<Q", len(raw)) + raw)

    def _emit(self, data) -> None:
        self._file.write(data)
        self._digest.update(data)

    def _close(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self.checksums[self._current] = self._digest.hexdigest()
            self._file = None

    def write(self, name: str, tensor: torch.Tensor) -> None:
        file, expected, shape, dtype = self.queue[self.position]
        if name != expected or tuple(tensor.shape) != shape or tensor.dtype != dtype:
            raise ConversionError(f"internal: expected {expected} {shape} {dtype}, got {name} "
                                  f"{tuple(tensor.shape)} {tensor.dtype}")
        if self._current != file:
            self._close()
            self._open(file)
        self._emit(memoryview(tensor.contiguous().view(-1).view(torch.uint8).numpy()))
        self.position += 1

    def finish(self) -> None:
        if self.position != len(self.queue):
            raise ConversionError(f"internal: {len(self.queue) - self.position} planned tensors "
                                  "were never written")
        self._close()
        weight_map = {name: file for file, name, *_ in self.queue}
        index = {"metadata": {"total_size": self.total}, "weight_map": weight_map}
        (self.dir / INDEX).write_text(json.dumps(index, indent=2))
        (self.dir / CHECKSUMS).write_text(
            "".join(f"{digest}  {file}\n" for file, digest in sorted(self.checksums.items())))


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n
