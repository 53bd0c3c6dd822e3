"""HF folder -> megatron-core dist checkpoint that `checkpoint.init_from` loads at any layout.

Streaming: the output is described up front (keys, global shapes, one chunk per layer/expert)
and each chunk is built from its HF tensors only when the writer asks for it, so peak memory is
about one chunk's inputs plus the chunk. The layout arguments decide the vocabulary padding
(divisor x TP) and are validated against the model (heads, groups, layers, experts must divide);
the chunks themselves are layout-free - dist_checkpointing reshards them when a run loads.

Output (written to `<output>.tmp-<pid>` and renamed when complete, so a failure leaves nothing):
    <output>/            torch_dist checkpoint: {"model": ...} keys, no optimizer
    <output>/medmegatron.json   {"iteration": 0, "config": TrainConfig dict, "hf": {...}}
    <output>/hf/         the source config.json, tokenizer and generation files, for export
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from conversion.errors import ConversionError
from conversion import dist_ckpt, layout
from conversion.hf_config import model_config_from_hf, read_hf_config
from conversion.safetensors_io import HFShards
from medmegatron.config import ParallelConfig, TrainConfig, config_to_dict

# Files carried along so an export is a complete HF model folder again.
CARRIED = ("tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
           "added_tokens.json", "vocab.json", "merges.txt", "generation_config.json", "config.json")
# HF tensors that are not weights (rotary caches some old exports contain).
IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)


def check_layout(cfg, tp: int, pp: int, ep: int, vp: int | None) -> None:
    problems = []
    if cfg.num_attention_heads % tp or cfg.query_groups % tp:
        problems.append(f"--tp {tp} must divide the {cfg.num_attention_heads} heads and "
                        f"{cfg.query_groups} KV groups")
    if cfg.num_layers % (pp * (vp or 1)):
        problems.append(f"--pp {pp} x --vp {vp or 1} must divide the {cfg.num_layers} layers")
    if ep > 1 and (not cfg.num_moe_experts or cfg.num_moe_experts % ep):
        problems.append(f"--ep {ep} must divide the number of experts ({cfg.num_moe_experts or 0})")
    if vp and pp < 2:
        problems.append("--vp needs --pp >= 2")
    if problems:
        raise ConversionError("layout does not fit the model: " + "; ".join(problems))


def fresh_output(output: Path) -> Path:
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise ConversionError(f"'{output}' already exists: choose a new --output (nothing was written)")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f"{output.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    return tmp


def publish(tmp: Path, output: Path) -> None:
    """Make the finished `tmp` folder appear as `output` in one rename."""
    if output.is_dir():  # an empty folder the user created
        output.rmdir()
    os.replace(tmp, output)


def plan_chunks(shards: HFShards, table: list[layout.Entry], cfg, where: Path) -> list[dist_ckpt.Chunk]:
    """Check every HF tensor is used exactly as the config says, and describe the output chunks."""
    used = set()
    chunks = []
    for entry in table:
        gshape = entry.global_shape(cfg)
        for index in entry.indices(cfg):
            names = entry.hf_names(index)
            missing = [n for n in names if n not in shards]
            if missing:
                raise ConversionError(f"{where}: tensor(s) {missing[:3]} required by config.json "
                                      "are missing from the safetensors shards; config and weights "
                                      "do not match")
            expected = layout.hf_shapes(entry, cfg)
            for name, shape in zip(names, expected):
                actual = shards.shape(name)
                if entry.rule == "vocab":
                    ok = actual[1:] == shape[1:] and actual[0] == cfg.vocab_size
                else:
                    ok = actual == shape
                if not ok:
                    raise ConversionError(f"{where}: '{name}' has shape {actual}, but config.json "
                                          f"implies {shape}; config and weights do not match")
            used.update(names)
            dtype = shards.dtype(names[0])
            lead = (1,) * len(index)
            if layout.row_blocks(entry):  # one chunk per HF tensor, no concatenation
                row = 0
                for name, shape in zip(names, expected):
                    chunks.append(dist_ckpt.Chunk(
                        key=entry.key, global_shape=gshape,
                        offset=tuple(index) + (row,) + (0,) * (len(shape) - 1),
                        shape=lead + tuple(shape), dtype=dtype, produce=_reader(shards, name)))
                    row += shape[0]
                continue
            chunks.append(dist_ckpt.Chunk(
                key=entry.key, global_shape=gshape, offset=tuple(index) + (0,) * len(entry.shape),
                shape=lead + entry.shape, dtype=dtype,
                produce=_producer(shards, entry, names, cfg, index)))
    extra = sorted(n for n in shards.names - used if not n.endswith(IGNORED_SUFFIXES)
                   and not (n == "lm_head.weight" and not cfg.untie_embeddings_and_output_weights))
    if extra:
        raise ConversionError(f"{where}: {len(extra)} tensor(s) in the shards are not used by the "
                              f"mapping for this config (e.g. {extra[:3]}); config.json and weights "
                              "do not match, or the architecture has parts this converter ignores")
    return chunks


def _reader(shards, name):
    return lambda: shards.get(name)


def _producer(shards, entry, names, cfg, index):
    def produce():
        tensors = [shards.get(n) for n in names]
        return layout.to_megatron(entry, tensors, cfg, index)
    return produce


def import_hf(hf_dir: str | Path, output: str | Path, tp: int = 1, pp: int = 1, ep: int = 1,
              vp: int | None = None, spec: str = "local", progress=None) -> Path:
    hf_dir, output = Path(hf_dir), Path(output)
    hf = read_hf_config(hf_dir)
    family, cfg = model_config_from_hf(hf, str(hf_dir / "config.json"))
    check_layout(cfg, tp, pp, ep, vp)
    shards = HFShards(hf_dir)
    table = layout.mapping(cfg, family, spec, padded_vocab=cfg.padded_vocab_size(tp))
    chunks = plan_chunks(shards, table, cfg, hf_dir)
    tmp = fresh_output(output)
    try:
        dist_ckpt.write_checkpoint(tmp, chunks, {k: None for k in layout.extra_state_keys(cfg)},
                                   progress=progress)
        carried = tmp / "hf"
        carried.mkdir()
        for name in CARRIED:
            if (hf_dir / name).is_file():
                shutil.copy2(hf_dir / name, carried / name)
        train = TrainConfig(model=cfg, parallel=ParallelConfig(
            tensor_parallel=tp, pipeline_parallel=pp, expert_parallel=ep,
            virtual_pipeline_parallel=vp))
        meta = {"iteration": 0, "config": config_to_dict(train), "world_size": None,
                "hf": {"family": family, "source": str(hf_dir), "spec": spec}}
        (tmp / "medmegatron.json").write_text(json.dumps(meta, indent=2))
        publish(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return output
