"""JSON Lines and JSON readers (plain, .gz, .zst).

`.jsonl`: one object per line, text under `text_key`. `.json`: a list of objects, or an object
mapping ids to objects. orjson parses; its error carries line/column but never the record's text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import orjson

from data_prep.errors import ErrorPolicy
from data_prep.io import open_binary, open_lines
from data_prep.readers.document import Document
from medmegatron.errors import UserFacingError


def _fields_hint(record: dict, text_key: str) -> tuple[str, str]:
    fields = sorted(record)[:30]
    return (f"record has no '{text_key}' field (fields present: {fields})",
            "set --text-key (or text_key in the config) to the field holding the text")


def _to_document(record, where: str, text_key: str, id_key: str, source: str, default_id: str,
                 policy: ErrorPolicy) -> Document | None:
    if not isinstance(record, dict):
        policy.bad_record(where, "not_an_object",
                          f"expected a JSON object, found {type(record).__name__}")
        return None
    text = record.get(text_key)
    if text is None:
        detail, hint = _fields_hint(record, text_key)
        policy.bad_record(where, "missing_text_field", detail, hint)
        return None
    if not isinstance(text, str):
        policy.bad_record(where, "text_not_a_string",
                          f"field '{text_key}' is a {type(text).__name__}, expected a string")
        return None
    doc_id = record.get(id_key, default_id)
    meta = {k: v for k, v in record.items() if k not in (text_key, id_key)
            and isinstance(v, (str, int, float, bool))}
    return Document(id=str(doc_id), text=text, source=source, metadata=meta)


def read_jsonl(path: str | Path, text_key: str = "text", id_key: str = "id",
               source: str | None = None, policy: ErrorPolicy | None = None) -> Iterator[Document]:
    path = Path(path)
    policy = policy or ErrorPolicy()
    source = source or path.name.split(".")[0]
    try:
        fh = open_lines(path)
    except FileNotFoundError:
        raise UserFacingError(f"input file '{path}' does not exist") from None
    with fh:
        lineno = 0
        while True:
            try:
                line = fh.readline()
            except (OSError, EOFError, ValueError) as exc:  # corrupt gzip/zstd stream
                raise UserFacingError(
                    f"{path}: cannot decompress after line {lineno} ({type(exc).__name__}); "
                    "the file is truncated or not the compression its extension says"
                ) from None
            if not line:
                break
            lineno += 1
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as uexc:
                    policy.bad_record(where, "undecodable",
                                      f"not valid UTF-8 (byte {uexc.start} of the line)",
                                      "re-encode the file as UTF-8")
                    continue
                policy.bad_record(where, "malformed_json", f"not valid JSON ({exc.msg})",
                                  "each line must be one complete JSON object")
                continue
            doc = _to_document(record, where, text_key, id_key, source, f"{source}:{lineno}", policy)
            if doc is not None:
                yield doc


def read_json(path: str | Path, text_key: str = "text", id_key: str = "id",
              source: str | None = None, policy: ErrorPolicy | None = None) -> Iterator[Document]:
    path = Path(path)
    policy = policy or ErrorPolicy()
    source = source or path.name.split(".")[0]
    try:
        with open_binary(path) as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise UserFacingError(f"input file '{path}' does not exist") from None
    except (OSError, EOFError) as exc:
        raise UserFacingError(f"{path}: cannot decompress ({type(exc).__name__})") from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as uexc:
            line = raw[: uexc.start].count(b"\n") + 1
            raise UserFacingError(f"{path}:{line}: not valid UTF-8; re-encode the file as UTF-8") from None
        raise UserFacingError(
            f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); a .json input must be one JSON "
            "list of objects (or use .jsonl with one object per line)"
        ) from None
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else None
    if items is None:
        raise UserFacingError(f"{path}: expected a JSON list of objects or an object of objects")
    for key, record in items:
        if isinstance(record, dict) and id_key not in record:
            record = {**record, id_key: f"{source}:{key}"}
        doc = _to_document(record, f"{path}: record {key}", text_key, id_key, source,
                           f"{source}:{key}", policy)
        if doc is not None:
            yield doc
