"""Tokenize documents into a Megatron indexed dataset (.bin/.idx), written atomically.

Two entry points:
* `tokenize_to_indexed(documents, tokenizer, prefix)` - in-process, with a megatron-core tokenizer
  object (what the trainer demo uses).
* `tokenize_parallel(documents, tokenizer_path, prefix, workers)` - the fast path: batches of
  documents go to worker processes that encode with an exact fast encoder (see `encoders.py`) and
  return compact numpy arrays; the parent appends them in order. Lengths are spooled to disk by
  `IndexedWriter`, so memory stays flat however many documents there are.

Both produce bytes identical to megatron-core's `IndexedDatasetBuilder` (tests check it), append EOD
to every document, and rename .bin then .idx into place only when complete.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
from typing import Iterable

import numpy as np

from data_prep.indexed_writer import IndexedWriter, token_dtype
from data_prep.readers.document import Document

__all__ = ["token_dtype", "tokenize_to_indexed", "tokenize_parallel"]


def tokenize_to_indexed(
    documents: Iterable[Document], tokenizer, output_prefix: str | os.PathLike
) -> dict:
    """Write `documents` as `<output_prefix>.bin/.idx`; return counts for the manifest."""
    writer = IndexedWriter(output_prefix, token_dtype(tokenizer.vocab_size))
    try:
        for doc in documents:
            ids = list(tokenizer.tokenize(doc.text)) + [tokenizer.eod]
            writer.add_document(np.asarray(ids, dtype=np.int64))
    except BaseException:
        writer.abort()
        raise
    return writer.finalize()


_WORKER: dict = {}


def _init_worker(spec) -> None:
    from data_prep.encoders import build_encoder

    _WORKER["spec"] = spec
    _WORKER["encoder"] = build_encoder(spec)
    _WORKER["dtype"] = token_dtype(spec.vocab_size)


def _encode(texts: list[str]):
    from data_prep.encoders import encode_with_eod

    spec = _WORKER["spec"]
    return encode_with_eod(_WORKER["encoder"], texts, spec.eod, _WORKER["dtype"])


def _batches(documents: Iterable[Document], size: int, counter: list):
    it = iter(documents)
    while batch := list(itertools.islice(it, size)):
        counter[0] += len(batch)
        yield [d.text for d in batch]


def tokenize_parallel(
    documents: Iterable[Document], tokenizer_path, output_prefix: str | os.PathLike,
    workers: int | None = None, batch_docs: int = 256, progress: bool = False, spec=None,
) -> dict:
    """Fast, order-preserving tokenization with `workers` processes (default: all cores)."""
    from data_prep.encoders import resolve_encoder

    spec = spec or resolve_encoder(tokenizer_path)
    workers = workers if workers is not None else (os.cpu_count() or 1)
    writer = IndexedWriter(output_prefix, token_dtype(spec.vocab_size))
    counter = [0]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(unit="doc", desc="tokenize", mininterval=1.0)
    try:
        batches = _batches(documents, batch_docs, counter)
        if workers <= 1:
            _init_worker(spec)
            results = map(_encode, batches)
            pool = None
        else:
            ctx = mp.get_context("fork") if hasattr(os, "fork") else mp.get_context()
            pool = ctx.Pool(workers, initializer=_init_worker, initargs=(spec,))
            results = pool.imap(_encode, batches, chunksize=1)
        try:
            for tokens, lengths in results:
                writer.add_batch(tokens, lengths)
                if bar is not None:
                    bar.update(len(lengths))
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
    except BaseException:
        writer.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
    out = writer.finalize()
    out["encoder"] = spec.kind
    return out


def tokenize_files(
    inputs: list[str], tokenizer_path, output_prefix: str | os.PathLike, *, fmt: str = "auto",
    text_key: str | None = None, on_error: str = "fail", workers: int | None = None,
    force: bool = False, progress: bool = True,
) -> dict:
    """`medmegatron prep tokenize`: read inputs, write .bin/.idx + manifest; skip if up to date."""
    from pathlib import Path

    from data_prep.encoders import resolve_encoder
    from data_prep.errors import ErrorPolicy
    from data_prep.manifest import build_manifest, input_hashes, is_up_to_date, write_manifest
    from data_prep.readers import read_input
    from medmegatron.tokenizers import bundled_llama2_tokenizer, tokenizer_fingerprint

    tok_path = Path(tokenizer_path) if tokenizer_path else bundled_llama2_tokenizer()
    hashes = input_hashes(inputs)
    tok_hash = tokenizer_fingerprint(tok_path)
    config = {"format": fmt, "text_key": text_key, "on_error": on_error}
    if not force and is_up_to_date(output_prefix, hashes, config, tok_hash):
        return {"skipped": True, "reason": "outputs up to date (same inputs, config, tokenizer)"}
    policy = ErrorPolicy(on_error)
    spec = resolve_encoder(tok_path)
    docs = itertools.chain.from_iterable(
        read_input(p, fmt=fmt, text_key=text_key, policy=policy) for p in inputs)
    counts = tokenize_parallel(docs, tok_path, output_prefix, workers=workers, progress=progress,
                               spec=spec)
    manifest = build_manifest(
        "tokenized", inputs=hashes, config=config,
        counts={"documents": counts["documents"], "tokens": counts["tokens"]},
        errors=policy.as_dict(),
        tokenizer={"path": str(tok_path), "sha256": tok_hash, "encoder": spec.kind,
                   "eod": spec.eod, "vocab_size": spec.vocab_size,
                   "dtype": np.dtype(token_dtype(spec.vocab_size)).name},
        outputs={"bin": f"{output_prefix}.bin", "idx": f"{output_prefix}.idx"},
    )
    write_manifest(output_prefix, manifest)
    return {**counts, "skipped_records": policy.total_skipped}
