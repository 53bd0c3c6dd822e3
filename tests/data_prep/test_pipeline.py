"""The YAML pipeline end to end: counts, removals, PHI, resume after a crash, config checks."""

from __future__ import annotations

import csv
import json
import os
import random

import numpy as np
import pytest
import yaml

from data_prep.config import load_config
from data_prep.pipeline import run_pipeline
from medmegatron.errors import ConfigError

def write_jsonl(path, records) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r) + "\n")


LICENCE = ("This article is distributed under the terms of the Creative Commons Attribution "
           "License, which permits unrestricted use, distribution, and reproduction in any medium, "
           "provided the original author and source are credited. The funders had no role in study "
           "design, data collection and analysis, decision to publish, or preparation of the work.")


@pytest.fixture()
def corpus(tmp_path, make_docs, vocab):
    rng = random.Random(0)
    pubmed = make_docs(120, seed=20, min_words=150, max_words=250)
    benchmark_q = make_docs(2, seed=21, min_words=40, max_words=40)
    records = [{"id": f"p{i}", "text": t + (" " + LICENCE if i % 10 == 0 else "")}
               for i, t in enumerate(pubmed)]
    for i in [*range(1, 10), *range(11, 17)]:  # 15 near-duplicates (Jaccard > 0.93)
        words = pubmed[i].split()
        words[rng.randrange(len(words))] = rng.choice(vocab)
        records.append({"id": f"dup{i}", "text": " ".join(words)})
    records.append({"id": "leak", "text": make_docs(1, seed=22)[0] + " " + benchmark_q[0]})
    write_jsonl(tmp_path / "pubmed.jsonl", records)
    with open(tmp_path / "pubmed.jsonl", "a") as fh:
        fh.write('{"id": "broken", "text": \n')
    with open(tmp_path / "notes.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["ROW_ID", "TEXT"])
        for i, t in enumerate(make_docs(40, seed=23)):
            w.writerow([i, f"Admitted 03/14/2021, phone 617-555-01{i:02d}. {t} MRN: 88{i:06d}."])
    write_jsonl(tmp_path / "general.jsonl", [{"text": t} for t in make_docs(60, seed=24)])
    write_jsonl(tmp_path / "bench.jsonl", [{"question": q, "answer": "A"} for q in benchmark_q])
    return tmp_path


def _config(corpus, out, **over) -> dict:
    cfg = {
        "output_dir": str(out), "on_error": "skip", "shard_docs": 40,
        "executor": {"workers": 2}, "tokenize": {"workers": 1},
        "sources": [{"name": "pubmed", "inputs": [str(corpus / "pubmed.jsonl")]},
                    {"name": "clinical", "inputs": str(corpus / "notes.csv")},
                    {"name": "general", "inputs": [str(corpus / "general.jsonl")]}],
        "filters": {"min_words": 20},
        "minhash": {"threshold": 0.85, "num_hashes": 112},
        "exact_substring": {"thresholds": [400, 100]},
        "decontaminate": {"benchmarks": [{"name": "bench", "path": str(corpus / "bench.jsonl")}]},
        "blend": {"ratios": {"pubmed": 15, "clinical": 1, "general": 4}, "train_tokens": "1e6"},
    }
    cfg.update(over)
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return load_config(path)


def test_pipeline_end_to_end(corpus, tmp_path):
    from megatron.core.datasets.indexed_dataset import IndexedDataset
    from megatron.core.datasets.utils import get_blend_from_list

    from medmegatron.tokenizers import load_tokenizer

    out = tmp_path / "run"
    manifest = run_pipeline(_config(corpus, out))
    per = manifest["steps"]["per_source"]
    assert per["pubmed"]["read"] == 136 and per["pubmed"]["skipped_records"] == {"malformed_json": 1}
    assert per["pubmed"]["removed"]["minhash_near_duplicate"] == 15
    assert per["pubmed"]["removed"]["decontaminate"] == 1
    assert per["pubmed"]["exact_substring_bytes_removed"]["100"] >= 11 * len(LICENCE)  # 340 B < 400
    assert per["pubmed"]["documents"] == 136 - 15 - 1
    assert per["clinical"]["phi_replacements"] == {"DATE": 40, "PHONE": 40, "ID": 40}
    tok = load_tokenizer(None)
    for name in ("pubmed", "clinical", "general"):
        ds = IndexedDataset(str(out / "tokenized" / name))
        assert len(ds) == per[name]["documents"]
        assert int(ds.sequence_lengths.sum()) == per[name]["tokens"]
    clinical = IndexedDataset(str(out / "tokenized" / "clinical"))
    text = tok.detokenize(clinical[3].tolist())
    assert "[DATE]" in text and "03/14/2021" not in text and "617-555" not in text
    pubmed = IndexedDataset(str(out / "tokenized" / "pubmed"))
    n_licence = sum("Creative Commons" in tok.detokenize(pubmed[i].tolist()) for i in range(len(pubmed)))
    assert n_licence == 1  # exact-substring dedup kept only the first copy
    blend = json.loads((out / "blend.json").read_text())
    prefixes, weights = get_blend_from_list([str(x) for x in blend["data_path"]])
    assert prefixes == [str(out / "tokenized" / n) for n in ("pubmed", "clinical", "general")]
    assert np.allclose(weights, [0.75, 0.05, 0.2])
    assert not list(out.rglob("*.tmp-*"))
    report = json.loads((out / "decontam" / "t00000.report.json").read_text())
    assert [r["id"] for r in report] == ["leak"] and "text" not in report[0]


def test_pipeline_resumes_after_crash(corpus, tmp_path, monkeypatch):
    import data_prep.exact_substring as es

    clean = tmp_path / "clean"
    run_pipeline(_config(corpus, clean, executor={"workers": 1}))
    out = tmp_path / "crashy"
    cfg = _config(corpus, out, executor={"workers": 1})
    real = es.unit_masks
    calls = []

    def crashing(load, n, k):
        for i, m in enumerate(real(load, n, k)):
            if k == 100 and i == 2:
                raise RuntimeError("simulated crash")
            calls.append(k)
            yield m

    monkeypatch.setattr(es, "unit_masks", crashing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_pipeline(cfg)
    assert (out / "exact" / "k400.stats.json").exists()
    assert not (out / "exact" / "k100.stats.json").exists()
    monkeypatch.setattr(es, "unit_masks", real)
    ingest_mtime = (out / "ingest" / "t00000.stats.json").stat().st_mtime_ns
    run_pipeline(load_config(out.parent / "crashy.yaml"))
    assert (out / "ingest" / "t00000.stats.json").stat().st_mtime_ns == ingest_mtime  # not redone
    for name in ("pubmed", "clinical", "general"):
        for ext in (".bin", ".idx"):
            a = (clean / "tokenized" / f"{name}{ext}").read_bytes()
            assert a == (out / "tokenized" / f"{name}{ext}").read_bytes()
    with pytest.raises(ConfigError, match="different config"):
        run_pipeline(_config(corpus, out, executor={"workers": 1}, shard_docs=7))
    touched = corpus / "general.jsonl"  # rewritten with the same bytes: same content, new mtime
    touched.write_bytes(touched.read_bytes())
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    run_pipeline(_config(corpus, out, executor={"workers": 1}))
    with open(corpus / "general.jsonl", "a") as fh:  # an input changed under a finished run
        fh.write(json.dumps({"text": "one more document " * 10}) + "\n")
    with pytest.raises(ConfigError, match="inputs changed"):
        run_pipeline(_config(corpus, out, executor={"workers": 1}))


def test_config_errors(tmp_path, corpus):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"output_dir": str(tmp_path / "o"), "sources": [
        {"name": "a", "inputs": [str(corpus / "general.jsonl")]}], "minhash": {"treshold": 0.8}}))
    with pytest.raises(ConfigError, match=r"minhash: unknown key\(s\) \['treshold'\]; valid keys"):
        load_config(bad)
    bad.write_text(yaml.safe_dump({"output_dir": "o", "sources": [
        {"name": "a", "inputs": [str(tmp_path / "missing.jsonl")]}]}))
    with pytest.raises(ConfigError, match="missing.jsonl' does not exist"):
        load_config(bad)
    bad.write_text("output_dir: o\nsources: [\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:\d+: not valid YAML"):
        load_config(bad)


def test_inspect_and_minhash_plan_cli(corpus, tmp_path, capsys):
    from medmegatron.cli import main

    out = tmp_path / "run"
    cfg = _config(corpus, out, executor={"workers": 1}, decontaminate={}, blend=None,
                  exact_substring={"enabled": False})
    run_pipeline(cfg)
    capsys.readouterr()
    assert main(["prep", "inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "minhash_near_duplicate=15" in text and "PHI placeholders: DATE=40" in text
    assert (out / "length_histogram.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["prep", "minhash-plan", "--preset", "med42"]) == 0
    text = capsys.readouterr().out
    assert "WARNING: 15 bands x 400 rows" in text and "J=0.85: 0.99" in text
