"""Per-document cleaning: normalisation, length/repetition filters and an offline language check.

Why not datatrove's Gopher filters: they split words with spaCy (about 150 docs/s/core measured
here), which would dominate the pipeline; these are the same rules (Rae et al. 2021) on a regex
word split. The language filter needs no download: an English stop-word ratio, or a fastText
`lid.176.bin` the user already has on disk.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

_HSPACE = re.compile(r"[^\S\n]+")  # whitespace except newline
_MANY_NL = re.compile(r"\n{3,}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_WORD = re.compile(r"\w+")

_STOPWORDS = frozenset(
    "the of and to in a is that for it as was with be by on not he i this are or his from at "
    "which but have an had they you were their one all we can her has there been if more when "
    "will would who so no she other its may these than into after were our "
    "also between both during each should such then those while".split())


@dataclass
class NormalizeConfig:
    enabled: bool = True
    nfc: bool = True
    whitespace: bool = True


def normalize(text: str, cfg: NormalizeConfig) -> str:
    if cfg.nfc:
        text = unicodedata.normalize("NFC", text)
    if cfg.whitespace:
        text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
        text = _HSPACE.sub(" ", text)
        text = "\n".join(line.strip() for line in text.split("\n"))
        text = _MANY_NL.sub("\n\n", text).strip()
    return text


@dataclass
class FilterConfig:
    enabled: bool = True
    min_words: int = 20
    max_words: int = 1_000_000
    max_dup_line_frac: float = 0.30  # Gopher
    max_top_2gram_char_frac: float = 0.20
    max_dup_5gram_char_frac: float = 0.15
    max_symbol_word_frac: float = 0.5  # words without any letter or digit


def filter_reason(text: str, cfg: FilterConfig) -> str | None:
    """Name of the first failed rule (for per-step removal counts), or None to keep."""
    words = _WORD.findall(text.lower())
    n = len(words)
    if n < cfg.min_words:
        return "too_short"
    if n > cfg.max_words:
        return "too_long"
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) > 1:
        dup = len(lines) - len(set(lines))
        if dup / len(lines) > cfg.max_dup_line_frac:
            return "duplicate_lines"
    tokens = text.split()
    if tokens:
        symbolic = sum(1 for t in tokens if not any(c.isalnum() for c in t))
        if symbolic / len(tokens) > cfg.max_symbol_word_frac:
            return "symbols"
    total_chars = sum(len(w) for w in words) or 1
    if n >= 2:
        bigrams = Counter(zip(words, words[1:]))
        (a, b), count = bigrams.most_common(1)[0]
        if count > 1 and count * (len(a) + len(b)) / total_chars > cfg.max_top_2gram_char_frac:
            return "repeated_2gram"
    if n >= 5:
        grams = list(zip(*(words[i:] for i in range(5))))
        counts = Counter(grams)
        covered = [False] * n
        for i, g in enumerate(grams):
            if counts[g] > 1:
                for j in range(i, i + 5):
                    covered[j] = True
        dup_chars = sum(len(w) for w, c in zip(words, covered) if c)
        if dup_chars / total_chars > cfg.max_dup_5gram_char_frac:
            return "repeated_5grams"
    return None


@dataclass
class LanguageConfig:
    enabled: bool = False
    language: str = "en"
    min_stopword_ratio: float = 0.06  # stop-word method (English only)
    fasttext_model: str | None = None  # path to a local lid.176.bin; then min_score applies
    min_score: float = 0.65


class LanguageFilter:
    def __init__(self, cfg: LanguageConfig):
        from medmegatron.errors import ConfigError

        self.cfg = cfg
        self.model = None
        if cfg.fasttext_model:
            try:
                import fasttext
            except ImportError:
                raise ConfigError("language.fasttext_model needs the `fasttext` package "
                                  "(pip install fasttext-numpy2-wheel)") from None
            self.model = fasttext.load_model(cfg.fasttext_model)
        elif cfg.language != "en":
            raise ConfigError("the offline stop-word language check knows English only: set "
                              "language.fasttext_model to a local lid.176.bin for other languages")

    def keep(self, text: str) -> bool:
        if self.model is not None:
            labels, scores = self.model.predict(text.replace("\n", " ")[:5000])
            return labels[0] == f"__label__{self.cfg.language}" and scores[0] >= self.cfg.min_score
        words = _WORD.findall(text.lower())
        if not words:
            return False
        return sum(w in _STOPWORDS for w in words) / len(words) >= self.cfg.min_stopword_ratio
