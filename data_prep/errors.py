"""What to do with a bad record: stop with a clear message, or skip it and count it.

Messages name the file, the line (or record) and what is wrong, never the record's text: inputs may
be clinical notes. Skipped records are counted per reason so the manifest can report them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from medmegatron.errors import UserFacingError

ON_ERROR_CHOICES = ("fail", "skip")


@dataclass
class ErrorPolicy:
    on_error: str = "fail"
    skipped: Counter = field(default_factory=Counter)
    examples: list = field(default_factory=list)  # first few locations, for the manifest

    def __post_init__(self):
        if self.on_error not in ON_ERROR_CHOICES:
            raise UserFacingError(
                f"on_error must be one of {ON_ERROR_CHOICES}, got {self.on_error!r}"
            )

    def bad_record(self, where: str, reason: str, detail: str, hint: str = "") -> None:
        """Report one bad record at `where` ("file:line"); raise (fail) or count it (skip)."""
        if self.on_error == "fail":
            tail = f"; {hint}" if hint else ""
            raise UserFacingError(
                f"{where}: {detail}{tail} (or pass --on-error skip to skip and count such records)"
            )
        self.skipped[reason] += 1
        if len(self.examples) < 20:
            self.examples.append(f"{where}: {reason}")

    @property
    def total_skipped(self) -> int:
        return sum(self.skipped.values())

    def as_dict(self) -> dict:
        return {"on_error": self.on_error, "skipped": dict(self.skipped),
                "skipped_total": self.total_skipped, "skipped_examples": list(self.examples)}
