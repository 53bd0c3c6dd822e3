"""Fast batch encoders that reproduce megatron-core's `tokenizer.tokenize` exactly.

Why not call megatron-core's tokenizer per document: it is a Python call per document and
SentencePiece encodes each one from scratch. Two faster paths, chosen only when provably equivalent:

* SentencePiece with `split_by_whitespace`, identity normalisation, a dummy prefix and no extra
  whitespace removal (Llama-2, Mistral): encoding is a concatenation of independent per-word
  encodings (SentencePiece itself splits the normalised text before every space that follows a
  non-space), so words are encoded once and cached - the trick GPT-2's BPE uses. Documents that
  contain the whitespace symbol "\u2581" itself are encoded whole; text with single spaces only
  (the usual case after normalisation) is split with `str.split`, the rest with a regex.
* Hugging Face `tokenizers` (tokenizer.json): the Rust `encode_batch`.

Anything else falls back to megatron-core's tokenizer. Tests compare every path with megatron-core's
`tokenize` on tricky whitespace, digits, newlines and non-ASCII text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_WORD = re.compile(r" +[^ ]*")
_WS = "\u2581"


@dataclass(frozen=True)
class EncoderSpec:
    kind: str  # "sentencepiece_words" | "hf" | "megatron"
    path: str
    eod: int
    vocab_size: int
    add_special_tokens: bool = False


def resolve_encoder(tokenizer_path, tokenizer=None) -> EncoderSpec:
    """Inspect the megatron-core tokenizer once (in the parent) and pick the fastest exact path."""
    from medmegatron.tokenizers import bundled_llama2_tokenizer, load_tokenizer

    path = Path(tokenizer_path) if tokenizer_path else bundled_llama2_tokenizer()
    tok = tokenizer if tokenizer is not None else load_tokenizer(path)
    lib = getattr(tok, "_tokenizer", None)
    name = type(lib).__name__
    base = dict(eod=int(tok.eod), vocab_size=int(tok.vocab_size))
    if name == "SentencePieceTokenizer":
        sp_path = path / "tokenizer.model" if path.is_dir() else path
        if (not getattr(lib, "legacy", True) and not getattr(lib, "special_token_to_id", None)
                and (getattr(lib, "ignore_extra_whitespaces", True)
                     or not getattr(lib, "removed_extra_spaces", False))
                and _word_decomposable(lib.tokenizer)):
            return EncoderSpec("sentencepiece_words", str(sp_path), **base)
    if name == "HuggingFaceTokenizer":
        tj = path / "tokenizer.json" if path.is_dir() else path
        if tj.name.endswith(".json") and tj.exists():
            return EncoderSpec("hf", str(tj), add_special_tokens=bool(
                getattr(lib, "include_special_tokens", False)), **base)
    return EncoderSpec("megatron", str(path), **base)


def _word_decomposable(sp) -> bool:
    from sentencepiece import sentencepiece_model_pb2 as pb

    m = pb.ModelProto()
    m.ParseFromString(sp.serialized_model_proto())
    ts, ns = m.trainer_spec, m.normalizer_spec
    user_defined = any(p.type == pb.ModelProto.SentencePiece.USER_DEFINED for p in m.pieces)
    return (ts.model_type in (pb.TrainerSpec.BPE, pb.TrainerSpec.UNIGRAM) and ts.split_by_whitespace
            and not ts.treat_whitespace_as_suffix and ns.name == "identity" and ns.add_dummy_prefix
            and not ns.remove_extra_whitespaces and not user_defined and not ns.normalization_rule_tsv)


class _SentencePieceWords:
    def __init__(self, path: str, max_cache: int = 2_000_000):
        import sentencepiece as spm

        self.sp = spm.SentencePieceProcessor(model_file=path)
        self.cache: dict[str, list[int]] = {}  # " word" (leading spaces) -> ids
        self.split_cache: dict[str, list[int]] = {}  # "word" after a single space -> ids
        self.max_cache = max_cache
        # "a " is normalised to "\u2581a\u2581" = words "\u2581a" + "\u2581": the lone-space word.
        self.lone_space = self.sp.encode("a ")[len(self.sp.encode("a")):]

    def _pieces(self, text: str) -> list[list[int]]:
        """Per-word id lists of `text` (concatenated, they are its encoding)."""
        if not text or _WS in text:
            return [self.sp.encode(text)]
        if text[0] != " " and "  " not in text:  # common case: single spaces -> str.split
            cache = self.split_cache
            words = text.split(" ")
            try:
                return [cache[w] for w in words]
            except KeyError:
                if len(cache) > self.max_cache:
                    cache.clear()
                for w in words:
                    if w not in cache:
                        cache[w] = self.sp.encode(w) if w else self.lone_space
                return [cache[w] for w in words]
        return [self.encode(text)]

    def encode_flat(self, texts: list[str], eod: int, dtype) -> tuple[np.ndarray, np.ndarray]:
        """(all documents' ids with EOD after each, lengths) without per-token Python work."""
        from itertools import chain

        pieces: list[list[int]] = []
        lengths = np.empty(len(texts), dtype=np.int32)
        eod_list = [eod]
        for k, text in enumerate(texts):
            parts = self._pieces(text)
            pieces += parts
            pieces.append(eod_list)
            lengths[k] = sum(map(len, parts)) + 1
        total = int(lengths.sum())
        return np.fromiter(chain.from_iterable(pieces), dtype=dtype, count=total), lengths

    def encode(self, text: str) -> list[int]:
        if not text or _WS in text:
            return self.sp.encode(text)
        cache = self.cache
        if len(cache) > self.max_cache:
            cache.clear()
        out: list[int] = []
        for word in _WORD.findall(" " + text):
            ids = cache.get(word)
            if ids is None:
                ids = self.sp.encode(word[1:]) if len(word) > 1 else self.lone_space
                cache[word] = ids
            out += ids
        return out

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        from itertools import chain

        return [list(chain.from_iterable(self._pieces(t))) for t in texts]


class _HF:
    def __init__(self, path: str, add_special_tokens: bool):
        from tokenizers import Tokenizer

        self.tok = Tokenizer.from_file(path)
        self.add_special = add_special_tokens

    def encode_batch(self, texts):
        return [e.ids for e in self.tok.encode_batch(texts, add_special_tokens=self.add_special)]


class _Megatron:
    def __init__(self, path: str):
        from medmegatron.tokenizers import load_tokenizer

        self.tok = load_tokenizer(path)

    def encode_batch(self, texts):
        return [self.tok.tokenize(t) for t in texts]


def build_encoder(spec: EncoderSpec):
    if spec.kind == "sentencepiece_words":
        return _SentencePieceWords(spec.path)
    if spec.kind == "hf":
        return _HF(spec.path, spec.add_special_tokens)
    return _Megatron(spec.path)


def encode_with_eod(encoder, texts: list[str], eod: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Encode a batch; return (concatenated tokens with EOD after each document, int32 lengths)."""
    if hasattr(encoder, "encode_flat"):
        return encoder.encode_flat(texts, eod, dtype)
    ids = encoder.encode_batch(texts)
    lengths = np.fromiter((len(x) + 1 for x in ids), dtype=np.int32, count=len(ids))
    flat: list[int] = []
    for x in ids:
        flat += x
        flat.append(eod)
    return np.array(flat, dtype=dtype), lengths
