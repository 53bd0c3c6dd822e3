"""Stream a merge tensor by tensor: validate everything first, then read/merge/write one tensor.

Peak memory is one tensor per input model (in float32) plus the output tensor, whatever the model
size. Before the first tensor is read we check that every folder is a loadable HF checkpoint
(shard headers and index, via `conversion.safetensors_io.HFShards`), that all configs describe
the same architecture, and that every tensor exists with the same shape everywhere - so a bad
input fails in seconds with the offending folder and tensor named, and never leaves a partial
output. The output is built in `<output>.tmp-<pid>` and renamed into place when complete.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from conversion.safetensors_io import HFShards, ShardedWriter
from medmegatron.errors import UserFacingError
from medmegatron.merging import methods
from medmegatron.merging.config import MergeConfig

# config.json fields that must agree for tensors to mean the same thing across models.
ARCH_FIELDS = ("architectures", "model_type", "hidden_size", "num_hidden_layers",
               "num_attention_heads", "num_key_value_heads", "intermediate_size", "vocab_size",
               "tie_word_embeddings", "num_local_experts")
CARRIED = ("tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
           "generation_config.json")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _hf_config(folder: Path) -> dict:
    path = folder / "config.json"
    if not folder.is_dir():
        raise UserFacingError(f"merge: model folder '{folder}' does not exist; fix its path in "
                              "the merge config")
    if not path.is_file():
        raise UserFacingError(f"merge: '{folder}' has no config.json: not a Hugging Face model "
                              "folder (save it with save_pretrained or `medmegatron convert export`)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserFacingError(f"{path}:{exc.lineno}: invalid JSON; fix or re-export it") from None


def check_architectures(configs: dict[str, dict]) -> None:
    (first, ref), *others = configs.items()
    for folder, cfg in others:
        for key in ARCH_FIELDS:
            if cfg.get(key) != ref.get(key):
                raise UserFacingError(
                    f"merge: '{folder}' and '{first}' are different architectures: config.json "
                    f"{key} is {cfg.get(key)!r} vs {ref.get(key)!r}; only models fine-tuned from "
                    "the same base (same shapes and tokenizer) can be merged")


def check_tensors(shards: dict[str, HFShards]) -> list[str]:
    """The tensor names (first model's order); every folder must hold each with the same shape."""
    (first, ref), *others = shards.items()
    names = [n for h in ref.headers.values() for n in h if n != "__metadata__"]
    for folder, s in others:
        missing = sorted(set(names) - s.names)
        extra = sorted(s.names - set(names))
        if missing or extra:
            which = (f"lacks {missing[:3]}" if missing else f"has extra {extra[:3]}")
            raise UserFacingError(
                f"merge: '{folder}' {which} compared with '{first}' "
                f"({len(missing)} missing, {len(extra)} extra tensors); the models must come from "
                "the same architecture (check tie_word_embeddings and the model family)")
        for n in names:
            if s.shape(n) != ref.shape(n):
                raise UserFacingError(
                    f"merge: tensor '{n}' has shape {list(s.shape(n))} in '{folder}' but "
                    f"{list(ref.shape(n))} in '{first}'"
                    + ("; the vocabularies differ: resize the embeddings to one tokenizer first"
                       if "embed" in n or "lm_head" in n else "; the models are not compatible"))
    return names


def merge_tensor(cfg: MergeConfig, name: str, tensors: list[torch.Tensor],
                 base: torch.Tensor | None) -> torch.Tensor:
    p = cfg.parameters
    weights = [float(m.weight) for m in cfg.models]
    if cfg.method == "linear":
        return methods.linear(tensors, weights, bool(p["normalize"]))
    if cfg.method == "task_arithmetic":
        return methods.task_arithmetic(base, tensors, weights, float(p["lambda"]))
    densities = [float(m.density) for m in cfg.models] if cfg.method in ("ties", "dare") else []
    if cfg.method == "ties":
        return methods.ties(base, tensors, weights, densities, float(p["lambda"]))
    if cfg.method == "dare":
        return methods.dare(base, tensors, weights, densities, float(p["lambda"]), int(p["seed"]),
                            name)
    return methods.slerp(float(p["t"]), tensors[0], tensors[1])


def merge(cfg: MergeConfig, progress=None) -> Path:
    """Run the merge described by `cfg`; returns the output folder."""
    output = Path(cfg.output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise UserFacingError(f"merge: output '{output}' already exists; choose a new output "
                              "(nothing was written)")
    folders = [Path(f) for f in cfg.sources]
    configs = {str(f): _hf_config(f) for f in folders}
    check_architectures(configs)
    shards = {str(f): HFShards(f) for f in folders}
    names = check_tensors(shards)

    first = shards[cfg.models[0].model]
    models = [shards[m.model] for m in cfg.models]
    base = shards[cfg.base_model] if cfg.base_model else None
    out_dtype = {n: DTYPES[cfg.dtype] if cfg.dtype and first.dtype(n).is_floating_point
                 else first.dtype(n) for n in names}

    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f"{output.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        writer = ShardedWriter(tmp, [(n, first.shape(n), out_dtype[n]) for n in names],
                               int(cfg.max_shard_gb * 1024**3))
        for k, name in enumerate(names):
            if not first.dtype(name).is_floating_point:  # integer buffers are not averaged
                merged = first.get(name)
            else:
                merged = merge_tensor(cfg, name, [s.get(name) for s in models],
                                      base.get(name) if base is not None else None)
            writer.write(name, merged.to(out_dtype[name]).contiguous())
            if progress:
                progress(k + 1, len(names), name)
        writer.finish()
        _write_config(cfg, configs[cfg.models[0].model], tmp)
        src = Path(cfg.models[0].model)
        for carried in CARRIED:
            if (src / carried).is_file():
                shutil.copy2(src / carried, tmp / carried)
        (tmp / "merge_config.json").write_text(json.dumps(cfg.as_dict(), indent=2))
        if output.is_dir():  # an empty folder the user created
            output.rmdir()
        os.replace(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return output


def _write_config(cfg: MergeConfig, hf: dict, folder: Path) -> None:
    hf = dict(hf)
    if cfg.dtype:  # transformers 5 reads `dtype`; older configs carry `torch_dtype`
        hf["dtype"] = cfg.dtype
        if "torch_dtype" in hf:
            hf["torch_dtype"] = cfg.dtype
    (folder / "config.json").write_text(json.dumps(hf, indent=2))
