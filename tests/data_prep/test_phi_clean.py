"""PHI placeholders, normalisation and filters."""

from __future__ import annotations

import unicodedata

from data_prep.clean import (FilterConfig, LanguageConfig, LanguageFilter, NormalizeConfig,
                             filter_reason, normalize)
from data_prep.phi import scrub

NOTE = ("Pt seen 03/14/2021 and on 2021-03-15 and March 16, 2021. Call (617) 555-0199 or "
        "617.555.0123. Email jane.doe@hospital.org, see https://portal.example.com/x?id=3. "
        "SSN 123-45-6789, MRN: A1234567, acct 99887766. 92 year old woman; aged 95; a 45 year old "
        "brother. [**Hospital1 18**] BP 120/80, HR 72, glucose 5.6 mmol/L, dose 10 mg.")


def test_phi_placeholders_and_counts():
    out, counts = scrub(NOTE)
    for secret in ("03/14/2021", "2021-03-15", "March 16, 2021", "555-0199", "555-0123",
                   "jane.doe", "portal.example", "123-45-6789", "A1234567", "99887766",
                   "92 year", "aged 95", "Hospital1"):
        assert secret not in out, secret
    for kept in ("45 year old brother", "BP 120/80", "HR 72", "glucose 5.6 mmol/L", "10 mg"):
        assert kept in out, kept
    assert counts == {"DATE": 3, "PHONE": 2, "EMAIL": 1, "URL": 1, "SSN": 1, "ID": 2,
                      "AGE>89": 2, "DEID": 1}
    assert out.count("[DATE]") == 3 and "[AGE>89]" in out


def test_normalize():
    text = "Cafe\u0301  \t au   lait \r\n\r\n\r\n\u0007next  "
    out = normalize(text, NormalizeConfig())
    assert out == "Caf\u00e9 au lait\n\nnext"
    assert unicodedata.is_normalized("NFC", out)


def test_filters(make_docs):
    cfg = FilterConfig(min_words=20)
    good = make_docs(1, seed=13)[0]
    assert filter_reason(good, cfg) is None
    assert filter_reason("too short text", cfg) == "too_short"
    assert filter_reason("\n".join(["same line repeated here ok"] * 10 + [good]), cfg) == "duplicate_lines"
    assert filter_reason(" ".join(["buy now"] * 60), cfg) == "repeated_2gram"
    assert filter_reason(good + " " + " ".join(good.split()[:60]), cfg) == "repeated_5grams"
    assert filter_reason(" ".join(["%%% ###"] * 300) + " " + good, cfg) == "symbols"


def test_language_filter_offline(make_docs):
    lang = LanguageFilter(LanguageConfig(enabled=True))
    english = ("The patients were randomised to two groups, and the primary outcome was the "
               "change in blood pressure after twelve weeks of treatment with the drug.")
    assert lang.keep(english)
    assert not lang.keep(make_docs(1, seed=14)[0])  # random letters are not English
    assert not lang.keep("Der Patient wurde mit einer Lungenentzündung aufgenommen und erhielt "
                         "Antibiotika über sieben Tage.")
