"""Distributed checkpoints with megatron-core `dist_checkpointing`, saved atomically.

Layout under `<run_dir>/checkpoints/`:
    iter_0000005/        a complete dist checkpoint (torch_dist format) + `medmegatron.json`
    latest               text file naming the newest complete checkpoint

A save goes to `iter_XXXXXXX.tmp/`, is renamed only after every rank finished writing, and
`latest` is replaced (temp + rename) after that, so a crash mid-save never leaves a checkpoint
that looks complete. Checkpoints are resharded on load: any TP/PP/DP layout can read them.
Loading never unpickles arbitrary objects: megatron-core reads the common state with
`torch.load(weights_only=True)` (torch's default), and our metadata is JSON.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import torch.distributed as dist

from medmegatron.errors import UserFacingError

LATEST = "latest"
METADATA = "medmegatron.json"
# Optimizer state in megatron-core's canonical per-parameter form, so it can be resharded
# across TP/PP/DP on load (at the cost of gathering to DP rank 0 when saving).
OPTIMIZER_SHARDING = {"distrib_optim_sharding_type": "fully_reshardable"}


def iteration_dir(root: Path, iteration: int) -> Path:
    return root / f"iter_{iteration:07d}"


def _model_state(chunks: list) -> dict:
    """{'model': ...} or {'model0': ..., 'model1': ...} with virtual pipeline chunks."""
    def unwrap(chunk):
        return chunk.module if hasattr(chunk, "module") else chunk

    def state(chunk):
        sharded = unwrap(chunk).sharded_state_dict()
        if hasattr(unwrap(chunk), "lora"):  # LoRA runs keep only their adapters (base is frozen)
            sharded = {k: v for k, v in sharded.items() if k.startswith("lora.")}
        return sharded

    if len(chunks) == 1:
        return {"model": state(chunks[0])}
    return {f"model{i}": state(c) for i, c in enumerate(chunks)}


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def latest_checkpoint(root: Path) -> Path | None:
    """The checkpoint `latest` names; if that one was deleted, the newest complete one left.

    `iter_N` folders appear only when complete (temporary name, then rename), so any of them is
    safe to resume from; a dangling pointer must not silently restart training from step 0.
    """
    pointer = root / LATEST
    if not pointer.exists():
        return None
    path = root / pointer.read_text().strip()
    if path.is_dir():
        return path
    complete = sorted((p for p in root.glob("iter_*") if p.is_dir() and p.name[5:].isdigit()),
                      key=lambda p: int(p.name[5:]))
    return complete[-1] if complete else None


def resolve_checkpoint_dir(path: str | Path) -> Path:
    """Accept a checkpoint dir, a `checkpoints/` root with `latest`, or a run dir."""
    path = Path(path)
    for candidate in (path, path / "checkpoints"):
        if (candidate / "metadata.json").exists():
            return candidate
        latest = latest_checkpoint(candidate)
        if latest is not None:
            return latest
    raise UserFacingError(
        f"no complete checkpoint found at '{path}': expected a dist checkpoint directory "
        "(with metadata.json), a checkpoints/ folder with a 'latest' file, or a run directory"
    )


def _rng_object(state):
    """Each rank's RNG streams, one shard per global rank (restored only at the same world size)."""
    from megatron.core.dist_checkpointing import ShardedObject

    return ShardedObject("rng_state", state, (dist.get_world_size(),), (dist.get_rank(),), replica_id=0)


def save_checkpoint(root: Path, iteration: int, chunks: list, optimizer, scheduler,
                    extra: dict, metadata: dict, keep_last: int | None = None) -> Path:
    from megatron.core import dist_checkpointing

    from medmegatron.training import rng

    final = iteration_dir(root, iteration)
    tmp = final.with_name(final.name + ".tmp")
    if dist.get_rank() == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    dist.barrier()
    state = _model_state(chunks)
    state["optimizer"] = optimizer.sharded_state_dict(state, metadata=OPTIMIZER_SHARDING)
    state["scheduler"] = scheduler.state_dict()
    state["iteration"] = iteration
    state["rng_state"] = _rng_object(rng.capture())
    state.update(extra)
    dist_checkpointing.save(state, str(tmp), content_metadata=OPTIMIZER_SHARDING)
    dist.barrier()
    if dist.get_rank() == 0:
        (tmp / METADATA).write_text(json.dumps(
            {"iteration": iteration, "world_size": dist.get_world_size(), **metadata}, indent=2))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _write_atomic(root / LATEST, final.name)
        if keep_last:
            _prune(root, keep_last)
    dist.barrier()
    return final


def _prune(root: Path, keep_last: int) -> None:
    complete = sorted(p for p in root.glob("iter_*") if p.is_dir() and not p.name.endswith(".tmp"))
    for old in complete[:-keep_last]:
        shutil.rmtree(old, ignore_errors=True)


ARCHITECTURE_FIELDS = ("num_layers", "hidden_size", "ffn_hidden_size", "num_attention_heads",
                       "num_query_groups", "kv_channels", "vocab_size", "num_moe_experts",
                       "moe_ffn_hidden_size", "add_qkv_bias", "untie_embeddings_and_output_weights")


def check_architecture(path: Path, model_config) -> None:
    """Refuse init_from a checkpoint whose recorded architecture differs from the configured one.

    Caught here, the message names the differing fields; caught by dist_checkpointing, it is a
    shape mismatch deep in a tensor key.
    """
    saved = read_metadata(path).get("config", {}).get("model")
    if not saved:
        return
    current = dataclasses.asdict(model_config)
    diffs = [f"model.{k}: checkpoint {saved.get(k)!r}, config {current.get(k)!r}"
             for k in ARCHITECTURE_FIELDS if k in saved and saved.get(k) != current.get(k)]
    if diffs:
        raise UserFacingError(
            f"checkpoint '{path}' was written for another architecture: " + "; ".join(diffs)
            + ". Use the checkpoint's model settings (its medmegatron.json) or another checkpoint"
        )


def init_weights_from(path: str | Path, chunks: list, model_config) -> Path:
    """`checkpoint.init_from`: find the checkpoint, check its architecture, load its weights."""
    source = resolve_checkpoint_dir(path)
    check_architecture(source, model_config)
    load_weights(source, chunks)
    return source


def load_weights(path: Path, chunks: list) -> None:
    """Load model weights only (init_from): every parameter the model has must be present."""
    from megatron.core import dist_checkpointing
    from megatron.core.dist_checkpointing.validation import StrictHandling

    request = _model_state(chunks)
    try:
        loaded = dist_checkpointing.load(request, str(path), strict=StrictHandling.RAISE_UNEXPECTED)
    except Exception as exc:  # megatron raises CheckpointingException with key lists
        raise UserFacingError(
            f"checkpoint.init_from '{path}' does not match this model ({type(exc).__name__}: "
            f"{str(exc)[:600]}). Check that the model preset/architecture matches the checkpoint"
        ) from None
    _apply_model_state(chunks, loaded)


def _apply_model_state(chunks: list, loaded: dict) -> None:
    for i, chunk in enumerate(chunks):
        module = chunk.module if hasattr(chunk, "module") else chunk
        state = loaded["model"] if len(chunks) == 1 else loaded[f"model{i}"]
        if not hasattr(module, "lora"):
            module.load_state_dict(state)
            continue
        result = module.load_state_dict(state, strict=False)  # adapters only; base came from init_from
        missing = [k for k in result.missing_keys if k.startswith("lora.")]
        if missing or result.unexpected_keys:
            raise UserFacingError(f"LoRA checkpoint does not match the adapters: missing {missing[:5]}, "
                                  f"unexpected {result.unexpected_keys[:5]}")


def save_weights(path: Path, chunks: list, metadata: dict) -> Path:
    """A weights-only checkpoint (what `convert import` writes): for init_from and export."""
    from megatron.core import dist_checkpointing

    tmp = path.with_name(path.name + ".tmp")
    if dist.get_rank() == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    dist.barrier()
    dist_checkpointing.save(_model_state(chunks), str(tmp))
    dist.barrier()
    if dist.get_rank() == 0:
        (tmp / METADATA).write_text(json.dumps({"world_size": dist.get_world_size(), **metadata}, indent=2))
        shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
    dist.barrier()
    return path


def _ensure_optimizer_state(optimizer) -> None:
    """Give a fresh optimizer its state tensors before a checkpoint is loaded into them.

    Without Apex/TE (CPU, or plain torch Adam), megatron-core's `DistributedOptimizer.state_dict()`
    reads the step count from the inner optimizer's state, which a never-stepped torch Adam does
    not have yet (assertion in `state_dict`). megatron-core's own remedy is a zero-gradient dummy
    step; the weights it touches are overwritten by the load that follows.
    """
    for sub in getattr(optimizer, "chained_optimizers", [optimizer]):
        inner = getattr(sub, "optimizer", None)
        if inner is not None and not inner.state and hasattr(sub, "_init_optimizer_states_with_dummy_values"):
            sub._init_optimizer_states_with_dummy_values()


def read_metadata(path: Path) -> dict:
    meta = path / METADATA
    return json.loads(meta.read_text()) if meta.exists() else {}


def load_checkpoint(path: Path, chunks: list, optimizer, scheduler) -> dict:
    """Exact resume: weights, optimizer, scheduler, RNG; returns the common extras (iteration, ...).

    The checkpoint may come from another TP/PP/DP layout: weights and optimizer state are
    resharded by dist_checkpointing. RNG streams are per rank, so they are restored only when the
    world size is unchanged (`rng_restored` in the result says which happened).
    """
    from megatron.core import dist_checkpointing

    from medmegatron.training import rng

    _ensure_optimizer_state(optimizer)
    request = _model_state(chunks)
    request["optimizer"] = optimizer.sharded_state_dict(request, is_loading=True,
                                                        metadata=OPTIMIZER_SHARDING)
    same_world = read_metadata(path).get("world_size") == dist.get_world_size()
    if same_world:
        request["rng_state"] = _rng_object(None)
    loaded = dist_checkpointing.load(request, str(path))
    _apply_model_state(chunks, loaded)
    optimizer.load_state_dict(loaded["optimizer"])
    scheduler.load_state_dict(loaded["scheduler"])
    if same_world:
        rng.restore(loaded["rng_state"])
    extras = {k: v for k, v in loaded.items()
              if not k.startswith(("model", "optimizer", "scheduler", "rng_state"))}
    extras["rng_restored"] = same_world
    return extras

