"""Parquet files, Hugging Face `datasets` saved with `save_to_disk`, and clinical-note CSVs.

CSV defaults follow MIMIC: MIMIC-III NOTEEVENTS has `TEXT`/`ROW_ID`, MIMIC-IV-Note `text`/`note_id`;
column names are matched case-insensitively. Rows are streamed, never loaded whole.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Iterator

from data_prep.errors import ErrorPolicy
from data_prep.io import open_binary
from data_prep.readers.document import Document
from medmegatron.errors import UserFacingError

_ID_CANDIDATES = ("id", "note_id", "row_id", "hadm_id")


def _pick(columns: list[str], wanted: str, path: Path, what: str) -> str:
    by_lower = {c.lower(): c for c in columns}
    if wanted.lower() in by_lower:
        return by_lower[wanted.lower()]
    raise UserFacingError(
        f"{path}: no '{wanted}' {what} column (columns present: {columns[:40]}); set --text-key "
        "(or text_key in the config) to the column holding the text"
    )


def _id_column(columns: list[str], id_key: str) -> str | None:
    by_lower = {c.lower(): c for c in columns}
    for cand in (id_key, *_ID_CANDIDATES):
        if cand.lower() in by_lower:
            return by_lower[cand.lower()]
    return None


def read_parquet(path: str | Path, text_key: str = "text", id_key: str = "id",
                 source: str | None = None, policy: ErrorPolicy | None = None) -> Iterator[Document]:
    import pyarrow.parquet as pq

    path = Path(path)
    policy = policy or ErrorPolicy()
    source = source or path.name.split(".")[0]
    try:
        pf = pq.ParquetFile(path)
    except FileNotFoundError:
        raise UserFacingError(f"input file '{path}' does not exist") from None
    except Exception as exc:  # pyarrow raises ArrowInvalid for non-parquet bytes
        raise UserFacingError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
    columns = pf.schema_arrow.names
    text_col = _pick(columns, text_key, path, "text")
    id_col = _id_column(columns, id_key)
    row = 0
    for batch in pf.iter_batches(batch_size=4096, columns=[c for c in (text_col, id_col) if c]):
        texts = batch.column(text_col).to_pylist()
        ids = batch.column(id_col).to_pylist() if id_col else [None] * len(texts)
        for text, doc_id in zip(texts, ids):
            row += 1
            if not isinstance(text, str):
                policy.bad_record(f"{path}: row {row}", "text_not_a_string",
                                  f"column '{text_col}' is null or not a string")
                continue
            yield Document(id=str(doc_id if doc_id is not None else f"{source}:{row}"),
                           text=text, source=source)


def read_hf_disk(path: str | Path, text_key: str = "text", id_key: str = "id",
                 source: str | None = None, policy: ErrorPolicy | None = None,
                 split: str | None = None) -> Iterator[Document]:
    """A dataset written by `datasets.Dataset.save_to_disk` (a DatasetDict: every split, or `split`)."""
    from datasets import DatasetDict, load_from_disk

    path = Path(path)
    policy = policy or ErrorPolicy()
    source = source or path.name
    try:
        ds = load_from_disk(str(path))
    except FileNotFoundError as exc:
        raise UserFacingError(f"{path}: not a dataset saved with save_to_disk ({exc})") from None
    splits = ([split] if split else list(ds)) if isinstance(ds, DatasetDict) else [None]
    for name in splits:
        part = ds[name] if name is not None else ds
        text_col = _pick(list(part.column_names), text_key, path, "text")
        id_col = _id_column(list(part.column_names), id_key)
        for i, rec in enumerate(part.select_columns([c for c in (text_col, id_col) if c])):
            text = rec[text_col]
            where = f"{path}: {name + ' ' if name else ''}row {i}"
            if not isinstance(text, str):
                policy.bad_record(where, "text_not_a_string", f"column '{text_col}' is not a string")
                continue
            doc_id = rec[id_col] if id_col else f"{source}:{name or ''}:{i}"
            yield Document(id=str(doc_id), text=text, source=source)


def read_clinical_csv(path: str | Path, text_key: str = "TEXT", id_key: str = "ROW_ID",
                      source: str | None = None, policy: ErrorPolicy | None = None) -> Iterator[Document]:
    """MIMIC-style note CSV (quoted multi-line text fields); plain or .gz/.zst."""
    import io

    path = Path(path)
    policy = policy or ErrorPolicy()
    source = source or "clinical"
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        raw = open_binary(path)
    except FileNotFoundError:
        raise UserFacingError(f"input file '{path}' does not exist") from None
    with io.TextIOWrapper(raw, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise UserFacingError(f"{path}: empty CSV file (expected a header row)") from None
        except UnicodeDecodeError:
            raise UserFacingError(f"{path}:1: not valid UTF-8; re-encode the file as UTF-8") from None
        text_col = header.index(_pick(header, text_key, path, "text"))
        id_name = _id_column(header, id_key)
        id_col = header.index(id_name) if id_name else None
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except UnicodeDecodeError:
                raise UserFacingError(
                    f"{path}:{start}: not valid UTF-8; re-encode the file as UTF-8 "
                    "(the file cannot be read past this point)") from None
            except csv.Error as exc:
                policy.bad_record(f"{path}:{start}", "malformed_csv", f"malformed CSV row ({exc})")
                continue
            if len(row) != len(header):
                policy.bad_record(f"{path}:{start}", "wrong_column_count",
                                  f"row has {len(row)} fields, header has {len(header)}")
                continue
            doc_id = row[id_col] if id_col is not None else f"{source}:{start}"
            yield Document(id=str(doc_id), text=row[text_col], source=source)
