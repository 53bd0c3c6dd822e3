"""Fixtures for SFT tests: the bundled Llama-2 SentencePiece tokenizer and an HF tokenizer folder
built from it with a chat_template (session-scoped: loading them is the slow part)."""

from __future__ import annotations

import pytest
from sft_helpers import make_hf_folder


@pytest.fixture(scope="session")
def sp_tok():
    from data_prep.sft.tokenizer import SFTTokenizer

    return SFTTokenizer(None)


@pytest.fixture(scope="session")
def hf_folder(tmp_path_factory):
    return make_hf_folder(tmp_path_factory.mktemp("hftok"))


@pytest.fixture(scope="session")
def hf_tok(hf_folder):
    from data_prep.sft.tokenizer import SFTTokenizer

    return SFTTokenizer(hf_folder)
