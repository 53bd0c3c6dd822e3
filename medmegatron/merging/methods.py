"""The merge formulas, one pure function each, applied to one tensor at a time.

All arithmetic is in float32 (bf16 deltas between close models lose most of their bits); the
driver casts back. `base` is the common ancestor's tensor; `weights` are per-model scalars.

- linear:          sum_i w_i m_i  (/ sum_i w_i when normalize)
- task arithmetic: base + lambda * sum_i w_i (m_i - base)            (Ilharco et al. 2023)
- TIES:            d_i = m_i - base, trimmed to the top `density` fraction by |d_i|; the sign
                   per element is elected as sign(sum_i w_i d_i); the merged delta is the
                   weighted mean over the models whose trimmed d_i is nonzero and agrees with
                   it (the "disjoint mean"); base + lambda * that        (Yadav et al. 2023)
- DARE:            each d_i element kept with probability `density` and rescaled by 1/density
                   (dropped otherwise), then task arithmetic             (Yu et al. 2024)
- SLERP:           spherical interpolation between two tensors flattened to vectors; when the
                   vectors are (anti)parallel within `eps` the angle is ill-conditioned and we
                   fall back to linear interpolation
"""

from __future__ import annotations

import hashlib

import torch


def linear(models: list[torch.Tensor], weights: list[float], normalize: bool = True) -> torch.Tensor:
    out = sum(w * m.float() for w, m in zip(weights, models))
    return out / sum(weights) if normalize else out


def task_arithmetic(base: torch.Tensor, models: list[torch.Tensor], weights: list[float],
                    lam: float = 1.0) -> torch.Tensor:
    base = base.float()
    return base + lam * sum(w * (m.float() - base) for w, m in zip(weights, models))


def trim_to_density(delta: torch.Tensor, density: float) -> torch.Tensor:
    """Keep the `round(density * numel)` largest-magnitude entries of `delta`, zero the rest."""
    k = int(round(density * delta.numel()))
    if k >= delta.numel():
        return delta.clone()
    if k <= 0:
        return torch.zeros_like(delta)
    flat = delta.reshape(-1)
    keep = torch.zeros_like(flat, dtype=torch.bool)
    keep[flat.abs().topk(k, sorted=False).indices] = True
    return torch.where(keep, flat, torch.zeros_like(flat)).reshape(delta.shape)


def ties(base: torch.Tensor, models: list[torch.Tensor], weights: list[float],
         densities: list[float], lam: float = 1.0) -> torch.Tensor:
    base = base.float()
    trimmed = torch.stack([trim_to_density(m.float() - base, d) for m, d in zip(models, densities)])
    w = torch.tensor(weights, dtype=torch.float32).view(-1, *([1] * base.dim()))
    weighted = w * trimmed
    elected = torch.sign(weighted.sum(0))
    agree = (torch.sign(trimmed) == elected) & (trimmed != 0)
    mass = (w * agree).sum(0)
    merged = torch.where(mass > 0, (weighted * agree).sum(0) / mass.clamp_min(1e-12),
                         torch.zeros_like(base))
    return base + lam * merged


def dare_generator(seed: int, tensor_name: str, model_index: int) -> torch.Generator:
    """A generator per (seed, tensor, model): results do not depend on the order tensors are
    visited in, so a merge is reproducible however it is sharded or resumed."""
    digest = hashlib.sha256(f"{seed}:{tensor_name}:{model_index}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def dare_drop(delta: torch.Tensor, density: float, generator: torch.Generator) -> torch.Tensor:
    """Keep each entry with probability `density`, rescaled by 1/density (expectation preserved)."""
    if density >= 1.0:
        return delta.clone()
    keep = torch.rand(delta.shape, generator=generator) < density
    return torch.where(keep, delta / density, torch.zeros_like(delta))


def dare(base: torch.Tensor, models: list[torch.Tensor], weights: list[float],
         densities: list[float], lam: float, seed: int, tensor_name: str) -> torch.Tensor:
    base = base.float()
    deltas = [dare_drop(m.float() - base, d, dare_generator(seed, tensor_name, i))
              for i, (m, d) in enumerate(zip(models, densities))]
    return base + lam * sum(w * d for w, d in zip(weights, deltas))


def slerp(t: float, v0: torch.Tensor, v1: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """Spherical interpolation from v0 (t=0) to v1 (t=1) along the great circle of their
    directions, magnitudes interpolated with the same coefficients (the usual model-merge form)."""
    a, b = v0.float(), v1.float()
    na, nb = a.norm(), b.norm()
    if na == 0 or nb == 0:
        return (1 - t) * a + t * b
    dot = torch.clamp((a.reshape(-1) / na) @ (b.reshape(-1) / nb), -1.0, 1.0)
    if 1 - dot.abs() < eps:
        return (1 - t) * a + t * b
    theta = torch.arccos(dot)
    s = torch.sin(theta)
    return (torch.sin((1 - t) * theta) / s) * a + (torch.sin(t * theta) / s) * b
