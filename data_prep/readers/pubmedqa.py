"""Reader for PubMedQA PQA-L (`ori_pqal.json`): one document per abstract.

The file maps a PubMed id to {QUESTION, CONTEXTS: [...], LONG_ANSWER, final_decision, ...}; the
abstract text is the contexts followed by the conclusion (long answer).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from data_prep.readers.document import Document
from medmegatron.errors import UserFacingError


def read_pubmedqa(path: str | Path, exclude_ids: set[str] | None = None) -> Iterator[Document]:
    path = Path(path)
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserFacingError(f"PubMedQA file '{path}' does not exist") from None
    except json.JSONDecodeError as exc:
        raise UserFacingError(
            f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); expected the PubMedQA ori_pqal.json "
            "object mapping ids to records"
        ) from None
    if not isinstance(records, dict):
        raise UserFacingError(f"{path}: expected a JSON object mapping PubMed ids to records")
    for pmid, record in records.items():
        if exclude_ids and pmid in exclude_ids:
            continue
        if "CONTEXTS" not in record:
            raise UserFacingError(
                f"{path}: record {pmid} has no CONTEXTS field (fields present: "
                f"{sorted(record)}); is this PubMedQA's ori_pqal.json?"
            )
        parts = list(record["CONTEXTS"]) + [record.get("LONG_ANSWER", "")]
        yield Document(id=f"pubmedqa:{pmid}", text="\n".join(p for p in parts if p), source="pubmed")
