"""Fixtures for data_prep tests: generated text (no third-party data) and optional PubMedQA."""

from __future__ import annotations

import json
import random

import pytest


def random_text(rng: random.Random, words: int, vocab: list[str]) -> str:
    out = []
    for i in range(words):
        out.append(rng.choice(vocab))
        if rng.random() < 0.08:
            out[-1] += "."
    return " ".join(out)


@pytest.fixture(scope="session")
def vocab() -> list[str]:
    rng = random.Random(0)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(5000)]


@pytest.fixture()
def make_docs(vocab):
    """Factory: n documents of random words (independent: pairwise Jaccard ~ 0)."""

    def make(n: int, seed: int = 0, min_words: int = 80, max_words: int = 200) -> list[str]:
        rng = random.Random(seed)
        return [random_text(rng, rng.randint(min_words, max_words), vocab) for _ in range(n)]

    return make


@pytest.fixture(scope="session")
def pubmedqa():
    """(ori_pqal.json path, set of test ids) - skipped on machines without ../shared."""
    from medmegatron.paths import pubmedqa_dir

    folder = pubmedqa_dir()
    if folder is None:
        pytest.skip("needs ../shared/data/pubmedqa (PubMedQA PQA-L), present on dev/CI machines only")
    test_ids = set(json.loads((folder / "test_ground_truth.json").read_text()))
    return folder / "ori_pqal.json", test_ids
