"""Shared fixtures: a small tokenized corpus (real PubMedQA when ../shared exists)."""

from __future__ import annotations


import pytest

from medmegatron.runtime.quiet import quiet_expected_warnings

quiet_expected_warnings()


@pytest.fixture(scope="session")
def pubmed_prefix(tmp_path_factory) -> str:
    """Real PubMedQA abstracts when ../shared is present, else the project's generated corpus."""
    from data_prep.readers.pubmedqa import read_pubmedqa
    from data_prep.readers.synthetic import synthetic_corpus
    from data_prep.tokenize import tokenize_to_indexed
    from medmegatron.paths import pubmedqa_dir
    from medmegatron.tokenizers import load_tokenizer

    folder = tmp_path_factory.mktemp("data")
    source = pubmedqa_dir()
    docs = (read_pubmedqa(source / "ori_pqal.json") if source
            else synthetic_corpus("pubmed", 800))
    tokenize_to_indexed(docs, load_tokenizer(None), folder / "pubmed")
    return str(folder / "pubmed")
