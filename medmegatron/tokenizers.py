"""Tokenizer loading shared by data_prep (writing .bin/.idx) and training (GPTDataset needs `eod`).

We use megatron-core's own tokenizer classes so that the ids written by data_prep are the ids the
engine expects; this module only picks the library from what is on disk and gives a clear error.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from medmegatron.errors import UserFacingError


def bundled_llama2_tokenizer() -> Path:
    """The Llama-2-style SentencePiece model (32,000 pieces) shipped inside `mistral-common`.

    It is the one real Llama tokenizer available offline, so the tiny presets and demo use it.
    """
    try:
        import mistral_common
    except ImportError as exc:  # pragma: no cover - dependency of the dev env
        raise UserFacingError(
            "the default tokenizer comes from the `mistral-common` package, which is not installed: "
            "run `pip install mistral-common` or set data.tokenizer to a tokenizer path"
        ) from exc
    return Path(mistral_common.__file__).parent / "data" / "tokenizer.model.v1"


def _library_for(path: Path) -> str:
    if path.is_dir():
        if (path / "tokenizer.json").exists() or (path / "tokenizer_config.json").exists():
            return "huggingface"
        if (path / "tokenizer.model").exists():
            return "sentencepiece"
    elif path.suffix == ".json":
        return "huggingface"
    elif path.is_file():
        return "sentencepiece"
    raise UserFacingError(
        f"tokenizer not found or not recognised at '{path}': give a SentencePiece model file "
        "(e.g. tokenizer.model) or a Hugging Face tokenizer folder containing tokenizer.json"
    )


def load_tokenizer(path: str | os.PathLike | None):
    """Load a megatron-core tokenizer (`.tokenize`, `.detokenize`, `.eod`, `.vocab_size`)."""
    from megatron.core.tokenizers import MegatronTokenizer

    path = Path(path) if path else bundled_llama2_tokenizer()
    if not path.exists():
        raise UserFacingError(
            f"tokenizer path '{path}' does not exist: set data.tokenizer (or --tokenizer) to a "
            "SentencePiece .model file or a Hugging Face tokenizer folder"
        )
    library = _library_for(path)
    if library == "sentencepiece" and path.is_dir():
        path = path / "tokenizer.model"
    return MegatronTokenizer.from_pretrained(
        str(path), metadata_path={"library": library, "model_type": "gpt"}
    )


def tokenizer_fingerprint(path: str | os.PathLike | None) -> str:
    """sha256 of the tokenizer file(s): recorded in manifests so data and model can be matched."""
    path = Path(path) if path else bundled_llama2_tokenizer()
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()
