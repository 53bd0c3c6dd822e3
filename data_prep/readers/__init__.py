"""Readers turn raw sources into `Document`s (id, text, source); one module per format."""

from data_prep.readers.document import Document

__all__ = ["Document"]
