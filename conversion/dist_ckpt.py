"""Stream tensors into / out of megatron-core's `torch_dist` checkpoint format, no model needed.

megatron-core's `dist_checkpointing.save` takes a state dict of materialised tensors - for a 70B
model, 140 GB at once. Its on-disk format, though, is plain PyTorch Distributed Checkpoint (DCP):
one DCP entry per ShardedTensor key with the *global* shape, any set of chunks, plus
`metadata.json` (backend names) and `common.pt` (non-tensor state). DCP's planner asks for each
tensor only when it writes it (`resolve_data`, serial on CPU), so a planner that produces chunks
on demand writes the checkpoint with one chunk in memory. Reading uses DCP's resharding reader
with requested regions (e.g. one layer of a stacked key), also one region at a time.

What megatron-core expects, and this writes: keys and global shapes exactly as its
`sharded_state_dict()` produces them (see `layout`), `_extra_state` ShardedObjects as BYTE_IO
entries named by their unique key holding `torch.save([obj])`, and the two small files. Tests
load the result with megatron-core's own `dist_checkpointing.load` at several layouts.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner, DefaultSavePlanner
from torch.distributed.checkpoint.metadata import (ChunkStorageMetadata, MetadataIndex,
                                                   TensorProperties, TensorStorageMetadata)
from torch.distributed.checkpoint.planner import (SavePlan, TensorWriteData, WriteItem,
                                                  WriteItemType, LoadPlan)
from torch.distributed.checkpoint.planner_helpers import create_read_items_for_chunk_list

from conversion.errors import ConversionError
from medmegatron.errors import UserFacingError

MEGATRON_METADATA = {"sharded_backend": "torch_dist", "sharded_backend_version": 1,
                     "common_backend": "torch", "common_backend_version": 1}


@contextlib.contextmanager
def _unwrapped_errors(where: Path):
    """DCP wraps every failure in CheckpointException; surface ours, explain the rest."""
    from torch.distributed.checkpoint.api import CheckpointException

    try:
        with warnings.catch_warnings():  # "assuming the intent is to ... in a single process": yes
            warnings.filterwarnings("ignore", message=".*single process.*")
            yield
    except CheckpointException as exc:
        inner = [f[0] if isinstance(f, tuple) else f for f in exc.failures.values()]
        for error in inner:
            if isinstance(error, UserFacingError):
                raise error from None
        raise ConversionError(f"reading/writing the dist checkpoint '{where}' failed: "
                              f"{'; '.join(f'{type(e).__name__}: {e}' for e in inner)[:600]}") from exc


@dataclass
class Chunk:
    """One chunk of a global tensor: `produce()` returns a tensor of `shape` at `offset`."""

    key: str
    global_shape: tuple[int, ...]
    offset: tuple[int, ...]
    shape: tuple[int, ...]  # full rank of the global tensor (leading axes of size 1)
    dtype: torch.dtype
    produce: Callable[[], torch.Tensor]


class _StreamingSavePlanner(DefaultSavePlanner):
    """A save planner whose plan comes from chunk descriptions and whose data is made on demand."""

    def __init__(self, chunks: list[Chunk], objects: dict[str, object], progress=None):
        super().__init__(flatten_state_dict=False, flatten_sharded_tensors=False)
        self.chunks = {MetadataIndex(c.key, torch.Size(c.offset)): c for c in chunks}
        self.objects = objects
        self.progress = progress

    def set_up_planner(self, state_dict, storage_meta=None, is_coordinator=False):
        self.state_dict = {}
        self.is_coordinator = is_coordinator
        self.mappings = {}

    def create_local_plan(self) -> SavePlan:
        items = []
        for index, c in self.chunks.items():
            props = TensorProperties.create_from_tensor(torch.empty(0, dtype=c.dtype))
            items.append(WriteItem(
                index=index, type=WriteItemType.SHARD,
                tensor_data=TensorWriteData(
                    chunk=ChunkStorageMetadata(offsets=torch.Size(c.offset), sizes=torch.Size(c.shape)),
                    properties=props, size=torch.Size(c.global_shape))))
        for key in self.objects:
            items.append(WriteItem(index=MetadataIndex(key), type=WriteItemType.BYTE_IO))
        self.plan = SavePlan(items)
        return self.plan

    def resolve_data(self, write_item: WriteItem):
        if write_item.type == WriteItemType.BYTE_IO:
            buffer = io.BytesIO()
            torch.save([self.objects[write_item.index.fqn]], buffer)
            buffer.seek(0)
            return buffer
        chunk = self.chunks[MetadataIndex(write_item.index.fqn, write_item.index.offset)]
        tensor = chunk.produce().reshape(chunk.shape)
        if tensor.dtype != chunk.dtype:
            raise ConversionError(f"internal: {chunk.key} produced {tensor.dtype}, planned {chunk.dtype}")
        if self.progress:
            self.progress(chunk)
        return tensor


def write_checkpoint(out_dir: Path, chunks: list[Chunk], objects: dict[str, object],
                     common: dict | None = None, progress=None) -> None:
    """Write a megatron-core `torch_dist` checkpoint into the (existing, empty) `out_dir`."""
    writer = dcp.FileSystemWriter(str(out_dir), single_file_per_rank=True, thread_count=1,
                                  sync_files=True)
    with _unwrapped_errors(out_dir):
        dcp.save({}, storage_writer=writer, planner=_StreamingSavePlanner(chunks, objects, progress),
                 no_dist=True)
    torch.save(common or {}, out_dir / "common.pt")
    (out_dir / "metadata.json").write_text(json.dumps(MEGATRON_METADATA))


# --- reading ----------------------------------------------------------------------------------------
def tensor_metadata(ckpt_dir: Path) -> dict[str, TensorStorageMetadata]:
    """Global shape and dtype of every tensor key in a dist checkpoint."""
    backend = ckpt_dir / "metadata.json"
    try:
        info = json.loads(backend.read_text())
    except (OSError, json.JSONDecodeError):
        raise ConversionError(f"'{ckpt_dir}' is not a megatron-core dist checkpoint (missing or bad "
                              "metadata.json); give the iter_XXXXXXX folder, its checkpoints/ root "
                              "or the run directory") from None
    if info.get("sharded_backend") != "torch_dist":
        raise ConversionError(f"'{ckpt_dir}' uses the '{info.get('sharded_backend')}' backend; only "
                              "torch_dist checkpoints are supported")
    try:
        meta = dcp.FileSystemReader(str(ckpt_dir)).read_metadata()
    except Exception as exc:  # truncated/corrupt .metadata: pickle or IO errors
        raise ConversionError(f"'{ckpt_dir}/.metadata' cannot be read ({type(exc).__name__}); the "
                              "checkpoint is incomplete or corrupt") from None
    return {k: v for k, v in meta.state_dict_metadata.items() if isinstance(v, TensorStorageMetadata)}


class _RegionLoadPlanner(DefaultLoadPlanner):
    """Loads requested regions (offset, size) of global tensors into preallocated buffers."""

    def __init__(self, requests: dict[str, tuple[tuple[int, ...], torch.Tensor]]):
        super().__init__()
        self.requests = requests

    def set_up_planner(self, state_dict, metadata=None, is_coordinator=False):
        self.metadata = metadata
        self.is_coordinator = is_coordinator
        self.state_dict = {}

    def create_local_plan(self) -> LoadPlan:
        items = []
        for key, (offset, buffer) in self.requests.items():
            chunk = ChunkStorageMetadata(offsets=torch.Size(offset), sizes=buffer.shape)
            items += create_read_items_for_chunk_list(key, self.metadata.state_dict_metadata[key], [chunk])
        self.plan = LoadPlan(items)
        return self.plan

    def resolve_tensor(self, read_item):
        buffer = self.requests[read_item.dest_index.fqn][1]
        for dim, (start, length) in enumerate(zip(read_item.dest_offsets, read_item.lengths)):
            buffer = buffer.narrow(dim, start, length)
        return buffer

    def commit_tensor(self, read_item, tensor) -> None:
        pass


def read_regions(ckpt_dir: Path, requests: dict[str, tuple[tuple[int, ...], tuple[int, ...], torch.dtype]]
                 ) -> dict[str, torch.Tensor]:
    """{key: (offset, shape, dtype)} -> {key: tensor}; reads only stored chunks that overlap."""
    buffers = {k: (off, torch.empty(shape, dtype=dtype)) for k, (off, shape, dtype) in requests.items()}
    with _unwrapped_errors(ckpt_dir):
        dcp.load({}, storage_reader=dcp.FileSystemReader(str(ckpt_dir)),
                 planner=_RegionLoadPlanner(buffers), no_dist=True)
    return {k: buf for k, (_, buf) in buffers.items()}
