"""`prep tokenize` output is what megatron-core reads back, token for token and byte for byte."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import zstandard

from medmegatron.cli import main

TRICKY = [
    "Hello  world.\n\n Second   line ", " leading space", "trailing space ", "   ", "",
    "tabs\tand\u00a0nbsp", "numbers 12345 and 3.14159", "accents: é ü ñ 中文 😀",
    "a\n b\n\n\nc", "x" * 300, "The patient's HbA1c improved (p<0.05).",
    "sentencepiece whitespace \u2581 symbol", "<s> special </s> looking",
]


def _reference(tokenizer, texts):
    return [list(tokenizer.tokenize(t)) + [tokenizer.eod] for t in texts]


@pytest.fixture(scope="module")
def sp_tokenizer():
    from medmegatron.tokenizers import load_tokenizer

    return load_tokenizer(None)


def test_cli_tokenize_roundtrip_matches_tokenizer_and_builder(tmp_path, sp_tokenizer, make_docs, capsys):
    from megatron.core.datasets.indexed_dataset import IndexedDataset, IndexedDatasetBuilder

    texts = TRICKY + make_docs(300, seed=1)
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)))
    prefix = tmp_path / "out" / "corpus"
    assert main(["prep", "tokenize", "--input", str(inp), "--output-prefix", str(prefix),
                 "--workers", "2"]) == 0
    ref = _reference(sp_tokenizer, texts)
    ds = IndexedDataset(str(prefix))
    assert len(ds) == len(texts)
    for i, expected in enumerate(ref):
        assert ds[i].tolist() == expected, f"document {i} differs"
    assert ds[0].dtype == np.uint16  # vocab 32,000 < 65,500
    # byte-identical to megatron-core's own builder
    builder = IndexedDatasetBuilder(str(tmp_path / "ref.bin"), dtype=np.uint16)
    for ids in ref:
        builder.add_document(np.array(ids), [len(ids)])
    builder.finalize(str(tmp_path / "ref.idx"))
    assert (tmp_path / "ref.bin").read_bytes() == prefix.with_suffix(".bin").read_bytes()
    assert (tmp_path / "ref.idx").read_bytes() == prefix.with_suffix(".idx").read_bytes()
    manifest = json.loads((tmp_path / "out" / "corpus.manifest.json").read_text())
    assert manifest["counts"] == {"documents": len(texts), "tokens": sum(map(len, ref))}
    assert manifest["tokenizer"]["sha256"] and manifest["inputs"][str(inp)]
    assert not list((tmp_path / "out").glob("*.tmp-*"))
    # up to date: a rerun is skipped
    capsys.readouterr()
    assert main(["prep", "tokenize", "-i", str(inp), "-o", str(prefix)]) == 0
    assert '"skipped": true' in capsys.readouterr().out


def test_in_process_api_matches_parallel_path(tmp_path, sp_tokenizer, make_docs):
    """`tokenize_to_indexed` (used by the trainer demo) writes the same bytes as the fast path."""
    from data_prep.readers.document import Document
    from data_prep.tokenize import tokenize_parallel, tokenize_to_indexed

    docs = [Document(str(i), t, "x") for i, t in enumerate(TRICKY + make_docs(40, seed=9))]
    a = tokenize_to_indexed(docs, sp_tokenizer, tmp_path / "a")
    b = tokenize_parallel(docs, None, tmp_path / "b", workers=1)
    assert a["tokens"] == b["tokens"] and a["documents"] == b["documents"] == len(docs)
    for ext in (".bin", ".idx"):
        assert (tmp_path / f"a{ext}").read_bytes() == (tmp_path / f"b{ext}").read_bytes()


def test_hf_tokenizer_fast_path_matches_megatron(tmp_path, make_docs):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from data_prep.encoders import build_encoder, resolve_encoder
    from medmegatron.tokenizers import load_tokenizer

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(make_docs(100, seed=2), trainer)
    folder = tmp_path / "hf"
    folder.mkdir()
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"eos_token": "</s>", "bos_token": "<s>", "unk_token": "<unk>",
         "tokenizer_class": "PreTrainedTokenizerFast"}))
    mtok = load_tokenizer(folder)
    spec = resolve_encoder(folder, mtok)
    assert spec.kind == "hf"
    texts = TRICKY + make_docs(50, seed=3)
    assert build_encoder(spec).encode_batch(texts) == [list(mtok.tokenize(t)) for t in texts]


def test_sentencepiece_word_cache_matches_megatron(sp_tokenizer, make_docs):
    from data_prep.encoders import build_encoder, resolve_encoder

    spec = resolve_encoder(None, sp_tokenizer)
    assert spec.kind == "sentencepiece_words"
    enc = build_encoder(spec)
    texts = TRICKY + make_docs(100, seed=4) + [" ".join(TRICKY)] * 2
    assert enc.encode_batch(texts) == [list(sp_tokenizer.tokenize(t)) for t in texts]


def test_compressed_inputs_and_error_policy(tmp_path, capsys):
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    good = [{"id": "a", "text": "first document"}, {"id": "b", "text": "second document"}]
    lines = [json.dumps(good[0]).encode(), b'{"id": "x", "body": "no text"}', b"{not json",
             b'{"id": "u", "text": "bad \xff\xfe bytes"}', json.dumps(good[1]).encode()]
    raw = b"\n".join(lines) + b"\n"
    gz = tmp_path / "in.jsonl.gz"
    gz.write_bytes(gzip.compress(raw))
    zst = tmp_path / "in.jsonl.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(raw))
    for path in (gz, zst):
        prefix = tmp_path / path.name.replace(".", "_")
        capsys.readouterr()
        assert main(["prep", "tokenize", "-i", str(path), "-o", str(prefix), "--workers", "1"]) == 2
        err = capsys.readouterr().err
        assert f"{path}:2" in err and "no 'text' field" in err and "['body', 'id']" in err
        assert "no text" not in err  # never echo record content
        assert not prefix.with_suffix(".idx").exists()
        assert main(["prep", "tokenize", "-i", str(path), "-o", str(prefix), "--on-error", "skip",
                     "--workers", "1"]) == 0
        assert len(IndexedDataset(str(prefix))) == 2
        manifest = json.loads(prefix.with_name(prefix.name + ".manifest.json").read_text())
        assert manifest["errors"]["skipped"] == {"missing_text_field": 1, "malformed_json": 1,
                                                 "undecodable": 1}
    # the same error raised while worker processes are running (reader runs in the parent)
    many = tmp_path / "many.jsonl"
    many.write_text("".join(json.dumps({"text": f"doc {i}"}) + "\n" for i in range(3000))
                    + '{"id": 1}\n')
    assert main(["prep", "tokenize", "-i", str(many), "-o", str(tmp_path / "many"),
                 "--workers", "2"]) == 2
    assert f"{many}:3001: record has no 'text' field" in capsys.readouterr().err
    assert not (tmp_path / "many.idx").exists() and not list(tmp_path.glob("many*.tmp-*"))
    # malformed JSON, undecodable line: file and line named
    (tmp_path / "bad.jsonl").write_bytes(b'{"text": "ok"}\n{"text": "x",\n')
    assert main(["prep", "tokenize", "-i", str(tmp_path / "bad.jsonl"), "-o",
                 str(tmp_path / "bad")]) == 2
    assert f"{tmp_path / 'bad.jsonl'}:2: not valid JSON" in capsys.readouterr().err
    (tmp_path / "u.jsonl").write_bytes(b'{"text": "ok"}\n{"text": "\xff"}\n')
    assert main(["prep", "tokenize", "-i", str(tmp_path / "u.jsonl"), "-o", str(tmp_path / "u")]) == 2
    assert f"{tmp_path / 'u.jsonl'}:2: not valid UTF-8" in capsys.readouterr().err
    # a truncated gzip stream
    (tmp_path / "trunc.jsonl.gz").write_bytes(gzip.compress(raw)[:-20])
    assert main(["prep", "tokenize", "-i", str(tmp_path / "trunc.jsonl.gz"), "-o",
                 str(tmp_path / "t"), "--on-error", "skip"]) == 2
    assert "cannot decompress" in capsys.readouterr().err


def test_writer_memory_is_flat():
    """The index writer spools lengths to disk: its Python-side state does not grow."""
    import tracemalloc

    from data_prep.indexed_writer import IndexedWriter

    def peak(n_batches, tmp):
        w = IndexedWriter(tmp, np.uint16)
        tracemalloc.start()
        for _ in range(n_batches):
            w.add_batch(np.ones(2000, np.uint16), np.full(100, 20, np.int32))
        w.finalize()
        _, p = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return p

    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        small = peak(100, Path(d) / "a")
        big = peak(1000, Path(d) / "b")  # 10x the documents
    assert big < small * 1.5 + 200_000
