"""Readers turn raw sources into `Document`s (id, text, source); one module per format.

`read_input(path, fmt="auto", ...)` picks the reader from the file name (or `fmt`) so the CLI, the
YAML pipeline and the tokenizer share one entry point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from data_prep.errors import ErrorPolicy
from data_prep.readers.document import Document
from medmegatron.errors import UserFacingError

__all__ = ["Document", "FORMATS", "detect_format", "read_input"]

FORMATS = ("jsonl", "json", "parquet", "hf_disk", "text_folder", "jats", "clinical_csv",
           "pubmedqa", "synthetic")


def _strip_compression(name: str) -> str:
    for ext in (".gz", ".zst", ".zstd"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def detect_format(path: str | Path) -> str:
    path = Path(path)
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            return "hf_disk"
        return "text_folder"
    name = _strip_compression(path.name.lower())
    if name == "ori_pqal.json":
        return "pubmedqa"
    for suffix, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json"),
                        (".parquet", "parquet"), (".csv", "clinical_csv"), (".nxml", "jats"),
                        (".xml", "jats")):
        if name.endswith(suffix):
            return fmt
    raise UserFacingError(
        f"cannot tell the format of '{path}' from its name: pass --format (one of {FORMATS})"
    )


def read_input(path: str | Path, fmt: str = "auto", source: str | None = None,
               text_key: str | None = None, id_key: str | None = None,
               policy: ErrorPolicy | None = None, exclude_ids: set[str] | None = None,
               num_docs: int = 1000, seed: int = 1234) -> Iterator[Document]:
    """Documents from one input; `source` defaults per format (file stem, 'clinical', 'pubmed')."""
    policy = policy or ErrorPolicy()
    if fmt == "synthetic":
        from data_prep.readers.synthetic import synthetic_corpus

        yield from synthetic_corpus(str(path), num_docs, seed)
        return
    path = Path(path)
    if fmt == "auto":
        if not path.exists():
            raise UserFacingError(f"input '{path}' does not exist")
        fmt = detect_format(path)
    if fmt not in FORMATS:
        raise UserFacingError(f"unknown input format {fmt!r}: use one of {FORMATS}")
    kw = {"source": source, "policy": policy}
    if fmt in ("jsonl", "json", "parquet", "hf_disk"):
        kw.update(text_key=text_key or "text", id_key=id_key or "id")
    if fmt == "jsonl":
        from data_prep.readers.jsonl import read_jsonl as reader
    elif fmt == "json":
        from data_prep.readers.jsonl import read_json as reader
    elif fmt == "parquet":
        from data_prep.readers.tabular import read_parquet as reader
    elif fmt == "hf_disk":
        from data_prep.readers.tabular import read_hf_disk as reader
    elif fmt == "clinical_csv":
        from data_prep.readers.tabular import read_clinical_csv as reader

        kw.update(text_key=text_key or "TEXT", id_key=id_key or "ROW_ID")
    elif fmt == "text_folder":
        from data_prep.readers.text_folder import read_text_folder as reader
    elif fmt == "jats":
        from data_prep.readers.jats import read_jats as reader
    else:  # pubmedqa
        from data_prep.readers.pubmedqa import read_pubmedqa

        for doc in read_pubmedqa(path, exclude_ids=exclude_ids):
            if source:
                doc.source = source
            yield doc
        return
    yield from reader(path, **kw)
