"""Rule-based PHI scrubbing for clinical notes: typed placeholders, counts, never the text.

Why regexes and not Presidio/philter: both need a model or tagger download to run (we are offline);
regex + format rules cover the HIPAA Safe Harbor identifiers that have a surface form - dates,
phone/fax numbers, e-mail, URLs, SSN, medical record/account numbers, ages over 89 - and MIMIC's own
de-identification brackets `[** ... **]`. Names and addresses need a NER model: not covered, say so.

Replacement order matters (URLs before e-mails before numbers; dates before generic IDs).
Only counts per placeholder type are returned; the matched text is never logged or kept.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
          r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")

PATTERNS: list[tuple[str, re.Pattern]] = [
    ("DEID", re.compile(r"\[\*\*[^\]]{0,80}\*\*\]")),  # MIMIC's own de-id markers
    ("URL", re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+", re.I)),
    ("EMAIL", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")),
    ("SSN", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
    ("DATE", re.compile(
        r"\b(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}"
        r"|\d{1,2}[-/.]\d{1,2}[-/.](?:\d{4}|\d{2})"
        rf"|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
        rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH},?\s+\d{{4}}"
        rf"|{_MONTH}\s+\d{{4}})\b", re.I)),
    ("PHONE", re.compile(
        r"(?<![\w-])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?![\w-])")),
    ("ID", re.compile(
        r"\b(?:MRN|MR\s?#|medical\s+record\s+(?:number|no\.?)|acct|account(?:\s+(?:number|no\.?))?"
        r"|patient\s+id|unit\s+no\.?)\s*[:#]?\s*[A-Z0-9][A-Z0-9-]{3,}\b", re.I)),
    ("ID", re.compile(r"\b\d{7,}\b")),  # long bare numbers: record/account/insurance numbers
    ("AGE>89", re.compile(
        r"\b(?:(?:9\d|1[0-4]\d)\s*(?:-|\s)?\s*(?:years?|yrs?|y/?o|yo)\b(?:[\s-]*old)?"
        r"|(?:aged?|age:)\s*(?:9\d|1[0-4]\d)\b)", re.I)),
]


@dataclass
class PhiConfig:
    enabled: bool = False
    sources: list[str] | None = None  # default: sources whose format is clinical_csv
    types: list[str] = field(default_factory=lambda: sorted({name for name, _ in PATTERNS}))


def scrub(text: str, types=None) -> tuple[str, Counter]:
    """Replace PHI-like spans with `[TYPE]`; return the new text and counts per type."""
    counts: Counter = Counter()
    for name, pattern in PATTERNS:
        if types is not None and name not in types:
            continue

        def repl(_m, _name=name):
            counts[_name] += 1
            return f"[{_name}]"

        text = pattern.sub(repl, text)
    return text, counts
