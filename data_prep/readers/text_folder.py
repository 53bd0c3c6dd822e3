"""A folder of plain-text files, one document per file (recursively, sorted for determinism)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from data_prep.errors import ErrorPolicy
from data_prep.io import open_binary
from data_prep.readers.document import Document

TEXT_SUFFIXES = (".txt", ".txt.gz", ".txt.zst", ".md", ".text")


def read_text_folder(path: str | Path, source: str | None = None,
                     policy: ErrorPolicy | None = None) -> Iterator[Document]:
    path = Path(path)
    policy = policy or ErrorPolicy()
    source = source or path.name
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(TEXT_SUFFIXES))
    for file in files:
        with open_binary(file) as fh:
            raw = fh.read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            policy.bad_record(f"{file}:{line}", "undecodable", "not valid UTF-8",
                              "re-encode the file as UTF-8")
            continue
        yield Document(id=str(file.relative_to(path)), text=text, source=source)
