"""megatron-core dist checkpoint (any layout it was saved in) -> HF safetensors folder.

The checkpoint's keys are global (see `layout`), so the layout it was written at does not
matter: each canonical chunk (one layer, or one expert of one layer) is read as a region of its
global tensor - DCP reads only the stored pieces that overlap, whichever TP/PP/EP ranks wrote
them - split into HF tensors, and appended to the output shard. One chunk in memory at a time.

The model config comes from the checkpoint's `medmegatron.json` (written by the trainer and by
`convert import`); the HF config.json is regenerated from it, keeping the other fields of the
imported model's original config when the checkpoint carries one (`hf/`), and tokenizer files
are copied back. The output goes to `<output>.tmp-<pid>` and is renamed when complete.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from conversion import dist_ckpt, layout
from conversion.errors import ConversionError
from conversion.hf_config import family_of_model, hf_config_from_model
from conversion.importer import CARRIED, fresh_output, publish
from conversion.safetensors_io import ShardedWriter
from medmegatron.config import config_from_dict

DTYPE_NAMES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


def write_training_tokenizer(tokenizer: str | None, folder: Path) -> None:
    """Carry the tokenizer the run trained with when the checkpoint has none of its own.

    A trainer checkpoint records `data.tokenizer` (None = the bundled Llama-2 SentencePiece
    model). An HF folder's tokenizer files are copied; a SentencePiece model is written as
    `tokenizer.model` with a `LlamaTokenizer` config (no BOS added, as in training), which
    `transformers.AutoTokenizer` loads offline.
    """
    from medmegatron.tokenizers import bundled_llama2_tokenizer

    source = Path(tokenizer) if tokenizer else bundled_llama2_tokenizer()
    if source.is_dir():
        for name in CARRIED:
            if name != "config.json" and (source / name).is_file():
                shutil.copy2(source / name, folder / name)
        return
    if source.suffix == ".json":
        shutil.copy2(source, folder / "tokenizer.json")
        return
    shutil.copy2(source, folder / "tokenizer.model")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "LlamaTokenizer", "legacy": True, "add_bos_token": False,
        "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}, indent=2))


def read_checkpoint_config(ckpt_dir: Path):
    """(TrainConfig, metadata dict) from `medmegatron.json`; clear error when absent."""
    path = ckpt_dir / "medmegatron.json"
    if not path.exists():
        raise ConversionError(f"'{path}' is missing: the checkpoint does not say which model it "
                              "holds. Export checkpoints written by `medmegatron train` or "
                              "`medmegatron convert import`")
    meta = json.loads(path.read_text())
    return config_from_dict(meta["config"]), meta


def _spec_of(keys: set[str]) -> str:
    return "te" if layout.MOE_PRE_MLP_NORM["te"] in keys else "local"


def export_hf(ckpt: str | Path, output: str | Path, max_shard_bytes: int = 5 * 1024**3,
              dtype: torch.dtype | None = None, progress=None) -> Path:
    from medmegatron.training.checkpointing import resolve_checkpoint_dir

    ckpt_dir = resolve_checkpoint_dir(ckpt)
    train, meta = read_checkpoint_config(ckpt_dir)
    cfg = train.model
    family = meta.get("hf", {}).get("family") or family_of_model(cfg)
    stored = dist_ckpt.tensor_metadata(ckpt_dir)
    spec = _spec_of(set(stored)) if cfg.num_moe_experts else "local"
    emb = stored.get("embedding.word_embeddings.weight")
    if emb is None:
        raise ConversionError(f"'{ckpt_dir}' has no embedding.word_embeddings.weight: not a GPT "
                              "model checkpoint")
    padded = emb.size[0]
    if padded < cfg.vocab_size:
        raise ConversionError(f"'{ckpt_dir}': embedding has {padded} rows but model.vocab_size is "
                              f"{cfg.vocab_size}; medmegatron.json does not match the weights")
    table = layout.mapping(cfg, family, spec, padded_vocab=padded)
    for entry in table:
        got = stored.get(entry.key)
        want = entry.global_shape(cfg)
        if got is None or tuple(got.size) != want:
            raise ConversionError(
                f"'{ckpt_dir}': tensor {entry.key} is "
                f"{'missing' if got is None else f'of shape {tuple(got.size)}'}, expected {want} "
                "from medmegatron.json; the config and the weights do not match")

    plan, work = [], []
    for entry in table:
        src_dtype = stored[entry.key].properties.dtype
        out_dtype = dtype or src_dtype
        for index in entry.indices(cfg):
            names = entry.hf_names(index)
            plan += [(n, s, out_dtype) for n, s in zip(names, layout.hf_shapes(entry, cfg))]
            work.append((entry, index, names, src_dtype, out_dtype))

    output = Path(output)
    tmp = fresh_output(output)
    try:
        writer = ShardedWriter(tmp, plan, max_shard_bytes)
        for entry, index, names, src_dtype, out_dtype in work:
            region = {entry.key: (tuple(index) + (0,) * len(entry.shape),
                                  (1,) * len(index) + entry.shape, src_dtype)}
            chunk = dist_ckpt.read_regions(ckpt_dir, region)[entry.key].reshape(entry.shape)
            for name, tensor in zip(names, layout.to_hf(entry, chunk, cfg)):
                writer.write(name, tensor.to(out_dtype))
            del chunk
            if progress:
                progress(entry, index)
        writer.finish()
        template = None
        carried = ckpt_dir / "hf"
        if (carried / "config.json").exists():
            template = json.loads((carried / "config.json").read_text())
        hf = hf_config_from_model(cfg, family, template)
        hf["torch_dtype"] = DTYPE_NAMES.get(plan[0][2], "float32")
        hf.pop("dtype", None)
        (tmp / "config.json").write_text(json.dumps(hf, indent=2))
        for name in CARRIED:
            if name != "config.json" and (carried / name).is_file():
                shutil.copy2(carried / name, tmp / name)
        if not (tmp / "tokenizer_config.json").exists():
            write_training_tokenizer(train.data.tokenizer, tmp)
        publish(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return output
