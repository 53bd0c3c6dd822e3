"""Decontamination catches planted benchmark items and nothing else."""

from __future__ import annotations

import json
import random

import pytest

from data_prep.decontam import BenchmarkSpec, DecontamConfig, build_index


@pytest.mark.shared_data

def test_catches_every_planted_pubmedqa_test_abstract(pubmedqa, make_docs, tmp_path):
    path, test_ids = pubmedqa
    (tmp_path / "ids.json").write_text(json.dumps(sorted(test_ids)))
    cfg = DecontamConfig(benchmarks=[BenchmarkSpec("pubmedqa_test", str(path), "pubmedqa",
                                                   ids_file=str(tmp_path / "ids.json"))])
    cfg.validate()
    index = build_index(cfg)
    assert len(index) == len(test_ids)
    data = json.loads(path.read_text())
    rng = random.Random(0)
    filler = make_docs(len(test_ids), seed=11)
    planted = []
    for k, (pmid, f) in enumerate(zip(sorted(test_ids), filler)):
        abstract = " ".join(data[pmid]["CONTEXTS"])
        if k % 3 == 1:
            abstract = abstract.upper().replace(" ", "  ")  # case/whitespace changes
        if k % 3 == 2:  # only one paragraph of it, inside unrelated text
            abstract = max(data[pmid]["CONTEXTS"], key=len)
        planted.append((pmid, f[: rng.randint(0, len(f))] + "\n" + abstract + "\n" + f))
    caught = [p for p, text in planted if any(i == f"pubmedqa_test:{p}" for i, _ in index.match(text))]
    assert len(caught) == len(test_ids)  # 100%
    train = [pmid for pmid in data if pmid not in test_ids]
    flagged = [p for p in train if index.match(" ".join(data[p]["CONTEXTS"]))]
    assert len(flagged) <= 2  # distinct abstracts do not share 13-grams (a stray phrase at most)
    assert not any(index.match(f) for f in filler)


def test_generic_qa_jsonl(tmp_path, make_docs):
    q = make_docs(3, seed=12, min_words=30, max_words=30)
    (tmp_path / "medqa.jsonl").write_text("".join(
        json.dumps({"question": x, "options": {"A": "aspirin", "B": "heparin"}, "answer": "A"}) + "\n"
        for x in q))
    cfg = DecontamConfig(benchmarks=[BenchmarkSpec("medqa", str(tmp_path / "medqa.jsonl"))])
    index = build_index(cfg)
    assert [i for i, _ in index.match("Exam prep: " + q[1] + " Options: aspirin, heparin")] == ["medqa:1"]
    assert index.match(" ".join(q[1].split()[:12])) == []  # fewer than 13 words in common


def test_mmlu_folder_uses_medical_subjects(tmp_path):
    import csv

    folder = tmp_path / "mmlu"
    folder.mkdir()
    rows = {"anatomy_test.csv": "Which bone of the skull protects the pituitary gland in the sella "
                                "turcica of adult humans",
            "astronomy_test.csv": "Which planet of the solar system has the shortest year of all "
                                  "the planets known today"}
    for name, q in rows.items():
        with open(folder / name, "w", newline="") as fh:
            csv.writer(fh).writerow([q, "sphenoid", "ethmoid", "frontal", "occipital", "A"])
    index = build_index(DecontamConfig(benchmarks=[BenchmarkSpec("mmlu", str(folder), "mmlu_csv")]))
    assert index.items == ["mmlu:anatomy_test:0"]
    assert index.match("Quiz: " + rows["anatomy_test.csv"] + " sphenoid")
