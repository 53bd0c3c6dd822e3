"""The instruction mix: how many samples each source contributes, and how often it is repeated.

Shares: with `group_weights` (Med42: medical 55 : general 45) a source gets
group_weight/sum(group_weights) x its weight within the group; without groups, weight/sum. A
missing weight means "in proportion to the source's size" (the natural mix). The total is
`total_samples`, or by default the largest total that repeats no source (every source is used
at most once; the scarcest source relative to its share sets the total).

A source asked for more samples than it has is repeated: whole passes over all its samples plus
a seeded random subset for the remainder, so no sample is repeated twice more than another.
"""

from __future__ import annotations

import math

import numpy as np

from medmegatron.errors import UserFacingError


def shares(sources, sizes: dict[str, int], group_weights: dict | None) -> dict[str, float]:
    def weight(s):
        return float(s.weight) if s.weight is not None else float(sizes[s.name])

    groups: dict = {}
    for s in sources:
        groups.setdefault(s.group if group_weights else None, []).append(s)
    gw_total = sum(group_weights.values()) if group_weights else 1.0
    out = {}
    for g, members in groups.items():
        g_share = group_weights[g] / gw_total if group_weights else 1.0
        total = sum(weight(s) for s in members)
        if total <= 0:
            raise UserFacingError(f"sft mix: group {g!r} has no valid samples in any of its sources "
                                  f"{[s.name for s in members]}: fix the inputs or drop the group")
        for s in members:
            out[s.name] = g_share * weight(s) / total
    return out


def plan_mix(sources, sizes: dict[str, int], group_weights: dict | None,
             total_samples: int | None) -> dict[str, dict]:
    """Per source: available, share, selected, repeats (selected / available)."""
    share = shares(sources, sizes, group_weights)
    empty = [n for n, p in share.items() if p > 0 and sizes[n] == 0]
    if empty:
        raise UserFacingError(f"sft mix: source(s) {empty} have a share of the mix but no valid "
                              "samples: fix their inputs (see the skipped counts) or remove them")
    if total_samples is None:
        total_samples = min(math.floor(sizes[n] / p + 1e-9) for n, p in share.items() if p > 0)
    targets = _largest_remainder(share, total_samples)
    return {n: {"available": sizes[n], "share": share[n], "selected": targets[n],
                "repeats": targets[n] / sizes[n] if sizes[n] else 0.0,
                "full_passes": targets[n] // sizes[n] if sizes[n] else 0,
                "remainder": targets[n] % sizes[n] if sizes[n] else 0}
            for n in share}


def _largest_remainder(share: dict[str, float], total: int) -> dict[str, int]:
    """Integer counts proportional to `share` that sum exactly to `total`."""
    raw = {n: p * total for n, p in share.items()}
    out = {n: math.floor(v) for n, v in raw.items()}
    left = total - sum(out.values())
    for n in sorted(raw, key=lambda n: (out[n] - raw[n], n))[:left]:
        out[n] += 1
    return out


def select(size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Indices into a source: `count // size` full passes + a random `count % size` subset."""
    passes, rest = divmod(count, size)
    parts = [np.arange(size)] * passes + [np.sort(rng.choice(size, rest, replace=False))]
    return np.concatenate(parts).astype(np.int64)
