"""`build_sft_dataset(config)`: read, validate, template, tokenize, mix, pack, write, manifest.

Everything a record can lose is counted per source in the manifest (bad records by reason,
trailing user turns removed, overlong samples truncated or dropped), next to what the mix took
from each source and how often it was repeated, so `records == valid + skipped` can be audited.
Samples are held in memory (ids + uint8 mask: ~3-9 bytes/token), fine for SFT mixes of a few
hundred million tokens; the manifest is written last, so its presence implies complete data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data_prep.errors import ErrorPolicy
from data_prep.manifest import build_manifest, input_hashes, write_manifest
from data_prep.sft.config import SFTConfig
from data_prep.sft.conversations import read_conversations
from data_prep.sft.encode import apply_overlong, encode_pieces
from data_prep.sft.mix import plan_mix, select
from data_prep.sft.packing import efficiency, pack
from data_prep.sft.templates import TEMPLATES
from data_prep.sft.tokenizer import SFTTokenizer
from data_prep.sft.writer import write_packed
from medmegatron.errors import UserFacingError
from medmegatron.tokenizers import tokenizer_fingerprint


def encode_source(path: str, config: SFTConfig, tok: SFTTokenizer, policy: ErrorPolicy,
                  counts: dict) -> list[tuple[np.ndarray, np.ndarray]]:
    """All usable (ids, mask) samples of one JSONL file; losses recorded in `counts`/`policy`."""
    render = TEMPLATES[config.template]
    samples = []
    for conv in read_conversations(path, policy, counts, config.default_system):
        ids, mask = encode_pieces(render(conv, tok), tok)
        fitted = apply_overlong(ids, mask, config.seq_length, config.overlong, counts)
        if fitted is not None:
            samples.append(fitted)
    return samples


def build_sft_dataset(config: SFTConfig) -> dict:
    """Build `<output_prefix>{.bin/.idx, _lossmask, _boundaries, .manifest.json}`; return the manifest."""
    for s in config.sources:
        if not Path(s.path).is_file():
            raise UserFacingError(f"sft source '{s.name}': file '{s.path}' does not exist; fix "
                                  "its path in sft.sources")
    tok = SFTTokenizer(config.tokenizer)
    if config.template == "tokenizer" and not tok.chat_template:
        tok.render([], add_generation_prompt=False)  # raises the "no chat_template" error up front

    per_source, pools = {}, {}
    for s in config.sources:
        policy = ErrorPolicy(config.on_error)
        counts: dict = {}
        pools[s.name] = encode_source(s.path, config, tok, policy, counts)
        counts["usable"] = len(pools[s.name])
        counts["errors"] = policy.as_dict()
        per_source[s.name] = counts

    plan = plan_mix(config.sources, {n: len(p) for n, p in pools.items()}, config.group_weights,
                    config.total_samples)
    rng = np.random.default_rng(config.seed)
    samples = []
    for s in config.sources:
        per_source[s.name]["mix"] = plan[s.name]
        pool = pools[s.name]
        samples += [pool[i] for i in select(len(pool), plan[s.name]["selected"], rng)] if pool else []
    if not samples:
        raise UserFacingError("sft: the mix selected no samples: every source is empty after "
                              "validation (see the skipped counts) or total_samples is 0")

    lengths = [len(ids) for ids, _ in samples]
    bins = pack(lengths, config.seq_length, rng)
    outputs = write_packed(config.output_prefix, bins, samples, tok.vocab_size)
    tokens = int(sum(lengths))
    counts = {
        "samples": len(samples), "sequences": len(bins), "tokens": tokens,
        "loss_tokens": int(sum(int(m.sum()) for _, m in samples)),
        "seq_length": config.seq_length,
        "packing_efficiency": efficiency(tokens, len(bins), config.seq_length),
        "sources": per_source,
    }
    manifest = build_manifest(
        "sft", inputs=input_hashes([s.path for s in config.sources]), config=config.as_dict(),
        counts=counts,
        tokenizer={"path": str(config.tokenizer) if config.tokenizer else "bundled-llama2",
                   "sha256": tokenizer_fingerprint(config.tokenizer), "bos": tok.bos,
                   "eos": tok.eos, "vocab_size": tok.vocab_size},
        outputs=outputs)
    write_manifest(config.output_prefix, manifest)
    return manifest
