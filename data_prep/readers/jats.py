"""PubMed Central JATS (`<article>`, .nxml/.xml) and PubMed/MEDLINE (`<PubmedArticle>`) XML.

Keeps title, abstract and body section titles/paragraphs; drops references, figures, tables,
formulas, supplementary material and citation markers ("[12]", "Fig. 3" links), which are noise for
language modelling. Streamed with lxml `iterparse`, so PubMed baseline files with 30k articles
don't sit in memory whole.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from data_prep.errors import ErrorPolicy
from data_prep.io import open_binary
from data_prep.readers.document import Document
from medmegatron.errors import UserFacingError

_NOISE_TAGS = {"ref-list", "fig", "fig-group", "table-wrap", "table-wrap-group", "table",
               "supplementary-material", "disp-formula", "inline-formula", "tex-math",
               "fn-group", "ack", "glossary", "app-group", "label", "object-id", "graphic",
               "media", "alternatives"}
_CITATION_XREF = {"bibr", "fig", "table", "supplementary-material", "fn", "disp-formula"}
_SPACES = re.compile(r"[ \t\r\f\v]+")


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _drop(el) -> None:
    """Remove `el` but keep its tail text (lxml's remove() would drop the tail too)."""
    parent = el.getparent()
    if parent is None:
        return
    tail = el.tail or ""
    # A citation marker leaves bracket/comma residue like "[ , ]" behind: cleaned later.
    prev = el.getprevious()
    if prev is not None:
        prev.tail = (prev.tail or "") + tail
    else:
        parent.text = (parent.text or "") + tail
    parent.remove(el)


def _clean(el) -> None:
    for node in list(el.iter()):
        name = _local(node.tag)
        if name in _NOISE_TAGS or (name == "xref" and node.get("ref-type") in _CITATION_XREF):
            _drop(node)


def _text(el) -> str:
    text = "".join(el.itertext())
    text = re.sub(r"[\[(]\s*[,;\u2013\-\s]*\s*[\])]", "", text)  # empty citation brackets
    text = _SPACES.sub(" ", text).strip()
    return re.sub(r" ([.,;:])(?=\s|$)", r"\1", text)  # space left where a citation was cut


def _jats_article(el) -> tuple[str, str]:
    _clean(el)
    parts = []
    title = el.find(".//{*}title-group/{*}article-title")
    if title is None:
        title = el.find(".//article-title")
    if title is not None:
        parts.append(_text(title))
    for abstract in el.iter("{*}abstract", "abstract"):
        if abstract.get("abstract-type") in ("graphical", "teaser"):
            continue
        for node in abstract.iter("{*}title", "title", "{*}p", "p"):
            parts.append(_text(node))
    body = el.find("{*}body")
    if body is None:
        body = el.find("body")
    if body is not None:
        for node in body.iter("{*}title", "title", "{*}p", "p"):
            if _local(node.getparent().tag) in ("caption",):
                continue
            parts.append(_text(node))
    pmid = None
    for aid in el.iter("{*}article-id", "article-id"):
        if aid.get("pub-id-type") in ("pmid", "pmc", "pmcid"):
            pmid = f"{aid.get('pub-id-type')}:{(aid.text or '').strip()}"
            break
    return pmid or "", "\n".join(p for p in parts if p)


def _pubmed_article(el) -> tuple[str, str]:
    pmid = el.findtext(".//PMID") or ""
    parts = [_text(t) for t in el.iter("ArticleTitle")]
    for ab in el.iter("AbstractText"):
        label = ab.get("Label")
        body = _text(ab)
        parts.append(f"{label.title()}: {body}" if label else body)
    return f"pmid:{pmid.strip()}", "\n".join(p for p in parts if p)


def read_jats(path: str | Path, source: str | None = None,
              policy: ErrorPolicy | None = None) -> Iterator[Document]:
    from lxml import etree

    path = Path(path)
    policy = policy or ErrorPolicy()
    source = source or "pubmed"
    try:
        fh = open_binary(path)
    except FileNotFoundError:
        raise UserFacingError(f"input file '{path}' does not exist") from None
    count = 0
    with fh:
        context = etree.iterparse(fh, events=("end",), tag=("{*}article", "article", "PubmedArticle"),
                                  recover=False, huge_tree=True, resolve_entities=False, no_network=True)
        try:
            for _, el in context:
                if _local(el.tag) == "article" and el.getparent() is not None and \
                        _local(el.getparent().tag) == "sub-article":
                    continue
                count += 1
                doc_id, text = _pubmed_article(el) if el.tag == "PubmedArticle" else _jats_article(el)
                el.clear(keep_tail=True)
                if not text:
                    policy.bad_record(f"{path}: article {count}", "empty_article",
                                      "article has no title, abstract or body text")
                    continue
                yield Document(id=doc_id or f"{path.name}:{count}", text=text, source=source)
        except etree.XMLSyntaxError as exc:
            raise UserFacingError(
                f"{path}:{exc.lineno}: not well-formed XML ({exc.msg.split(',')[0]}); expected "
                "JATS (<article>) or PubMed (<PubmedArticle>) XML") from None
