from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Document:
    """One unit of text flowing through data_prep; `source` names the corpus it came from."""

    id: str
    text: str
    source: str
    metadata: dict = field(default_factory=dict)
