"""Benchmark decontamination: an n-gram index over evaluation sets; flag or remove documents.

Why our own and not datatrove's n-gram decontamination block: that one needs `lighteval` and its
task registry (downloads). Benchmarks here come from local files only (offline): PubMedQA's
`ori_pqal.json` (optionally restricted to the test ids), and generic QA files - JSONL/JSON whose
string fields (question, options, answer, context; nested too) are indexed - which covers MedQA,
MedMCQA and user files, plus MMLU CSVs (question, A-D, answer).

Matching: lower-cased word n-grams (default 13, as in GPT-3's decontamination), hashed to 64 bits
(same shingling as MinHash). A document is contaminated when it shares >= `min_matches` n-grams
with one benchmark item. Items shorter than n words are indexed as one n-gram of all their words,
so they only match a verbatim copy.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from data_prep.minhash import shingles
from medmegatron.errors import ConfigError, UserFacingError


@dataclass
class BenchmarkSpec:
    """One benchmark file in the `decontaminate.benchmarks` list of the YAML config."""

    name: str
    path: str
    format: str = "qa_jsonl"  # pubmedqa | qa_jsonl | mmlu_csv
    ids_file: str | None = None  # PubMedQA: JSON list/object of ids to keep (e.g. test split)
    fields: list[str] | None = None  # qa_jsonl: only these fields (default: every string)
    subjects: list[str] | None = None  # mmlu_csv folder: default the MultiMedQA medical subjects


# MMLU subjects in MultiMedQA (Singhal et al. 2023)
MMLU_MEDICAL = ("anatomy", "clinical_knowledge", "college_biology", "college_medicine",
                "medical_genetics", "professional_medicine")


@dataclass
class DecontamConfig:
    benchmarks: list[BenchmarkSpec] = field(default_factory=list)
    ngram: int = 13
    min_matches: int = 1
    action: str = "remove"  # remove | report

    def validate(self) -> None:
        if self.action not in ("remove", "report"):
            raise ConfigError(f"decontaminate.action must be 'remove' or 'report', got {self.action!r}")
        if self.ngram < 1 or self.min_matches < 1:
            raise ConfigError("decontaminate.ngram and min_matches must be >= 1")
        for b in self.benchmarks:
            if b.format not in ("pubmedqa", "qa_jsonl", "mmlu_csv"):
                raise ConfigError(f"benchmark {b.name}: format must be pubmedqa, qa_jsonl or "
                                  f"mmlu_csv, got {b.format!r}")
            if not Path(b.path).exists():
                raise ConfigError(f"benchmark {b.name}: file '{b.path}' does not exist (benchmarks "
                                  "are local files; nothing is downloaded)")


def _strings(obj, fields=None) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if fields is None or k in fields:
                yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def benchmark_items(spec: BenchmarkSpec) -> Iterator[tuple[str, str]]:
    """(item id, text) pairs of one benchmark."""
    path = Path(spec.path)
    if spec.format == "pubmedqa":
        data = json.loads(path.read_text(encoding="utf-8"))
        keep = None
        if spec.ids_file:
            ids = json.loads(Path(spec.ids_file).read_text(encoding="utf-8"))
            keep = set(map(str, ids))
        for pmid, rec in data.items():
            if keep is None or pmid in keep:
                parts = list(rec.get("CONTEXTS", [])) + [rec.get("QUESTION", ""),
                                                          rec.get("LONG_ANSWER", "")]
                yield f"{spec.name}:{pmid}", "\n".join(p for p in parts if p)
    elif spec.format == "mmlu_csv":
        subjects = tuple(spec.subjects or MMLU_MEDICAL)
        files = sorted(f for f in path.glob("*.csv") if f.stem.startswith(subjects)) \
            if path.is_dir() else [path]
        for f in files:
            with open(f, encoding="utf-8", newline="") as fh:
                for i, row in enumerate(csv.reader(fh)):
                    yield f"{spec.name}:{f.stem}:{i}", " ".join(row[:-1])
    else:
        text = path.read_text(encoding="utf-8")
        stripped = text.lstrip()
        if stripped.startswith("["):
            records = json.loads(text)
        else:
            records = []
            for lineno, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise UserFacingError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
        for i, rec in enumerate(records):
            rid = rec.get("id", i) if isinstance(rec, dict) else i
            yield f"{spec.name}:{rid}", " ".join(_strings(rec, spec.fields))


class NgramIndex:
    """Sorted 64-bit n-gram hashes with the item each came from."""

    def __init__(self, ngram: int = 13):
        self.ngram = ngram
        self.hashes = np.zeros(0, np.uint64)
        self.owner = np.zeros(0, np.int64)
        self.items: list[str] = []

    def build(self, items: Iterable[tuple[str, str]]) -> "NgramIndex":
        hs, owners = [], []
        for item_id, text in items:
            h = shingles(text, self.ngram, "word")
            if len(h):
                hs.append(h)
                owners.append(np.full(len(h), len(self.items)))
                self.items.append(item_id)
        if hs:
            h = np.concatenate(hs)
            o = np.concatenate(owners)
            order = np.argsort(h, kind="stable")
            self.hashes, self.owner = h[order], o[order]
        return self

    def __len__(self) -> int:
        return len(self.items)

    def match(self, text: str, min_matches: int = 1) -> list[tuple[str, int]]:
        """Benchmark items sharing >= min_matches n-grams with `text` (item id, count)."""
        if not len(self.hashes):
            return []
        h = shingles(text, self.ngram, "word")
        pos = np.searchsorted(self.hashes, h)
        pos[pos >= len(self.hashes)] = 0
        hit = self.hashes[pos] == h
        if not hit.any():
            return []
        # all owners of each matching hash (a hash can belong to several items)
        owners = []
        for p, hv in zip(pos[hit], h[hit]):
            q = p
            while q < len(self.hashes) and self.hashes[q] == hv:
                owners.append(self.owner[q])
                q += 1
        ids, counts = np.unique(owners, return_counts=True)
        return [(self.items[i], int(c)) for i, c in zip(ids, counts) if c >= min_matches]


def build_index(config: DecontamConfig) -> NgramIndex:
    items = (item for spec in config.benchmarks for item in benchmark_items(spec))
    return NgramIndex(config.ngram).build(items)
