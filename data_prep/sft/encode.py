"""Pieces -> (token ids, loss mask), and the overlong policy.

The mask is aligned with the tokens: mask[t] = 1 means token t is a training *target* (the trainer
shifts: labels = tokens[1:], loss weights = mask[1:]). A sample's first token is always prompt
(BOS or a role tag), so the last token of one packed sample never learns to predict the next.
"""

from __future__ import annotations

import numpy as np

from data_prep.sft.templates import Piece


def encode_pieces(pieces: list[Piece], tok) -> tuple[np.ndarray, np.ndarray]:
    ids: list[int] = []
    mask: list[int] = []
    for piece in pieces:
        part = [piece.token] if piece.token is not None else tok.encode(piece.text)
        ids += part
        mask += [int(piece.train)] * len(part)
    return np.asarray(ids, dtype=np.int64), np.asarray(mask, dtype=np.uint8)


def apply_overlong(ids: np.ndarray, mask: np.ndarray, seq_length: int, policy: str,
                   counts: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """Fit one sample to `seq_length` tokens; None when it must be dropped. Every outcome counted.

    truncate keeps the first `seq_length` tokens (the system prompt and early turns) and drops the
    sample only if no assistant token survives; drop removes any overlong sample.
    """
    if len(ids) <= seq_length:
        return ids, mask
    if policy == "drop":
        counts["overlong_dropped"] = counts.get("overlong_dropped", 0) + 1
        return None
    ids, mask = ids[:seq_length], mask[:seq_length]
    if not mask.any():
        counts["overlong_dropped_no_answer_left"] = counts.get("overlong_dropped_no_answer_left", 0) + 1
        return None
    counts["overlong_truncated"] = counts.get("overlong_truncated", 0) + 1
    return ids, mask
