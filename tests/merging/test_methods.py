"""Each merge method equals its formula on small hand-checkable tensors."""

from __future__ import annotations

import math

import pytest
import torch

from medmegatron.merging import methods


def t(*values):
    return torch.tensor(values, dtype=torch.float32)


def test_linear_weighted_mean_and_sum():
    a, b = t(1, 2, 3), t(3, 6, -3)
    assert torch.allclose(methods.linear([a, b], [0.25, 0.75]), t(2.5, 5.0, -1.5))
    assert torch.allclose(methods.linear([a, b], [1, 2], normalize=False), t(7, 14, -3))


def test_task_arithmetic_is_base_plus_scaled_sum_of_deltas():
    base = t(1, 1, 1)
    m1, m2 = t(2, 1, 0), t(1, 3, 1)  # deltas (1,0,-1) and (0,2,0)
    got = methods.task_arithmetic(base, [m1, m2], [1.0, 0.5], lam=2.0)
    assert torch.allclose(got, base + 2.0 * (t(1, 0, -1) + 0.5 * t(0, 2, 0)))


def test_trim_keeps_the_largest_magnitudes():
    d = t(0.1, -5, 2, -0.3, 4)
    assert torch.equal(methods.trim_to_density(d, 0.4), t(0, -5, 0, 0, 4))
    assert torch.equal(methods.trim_to_density(d, 1.0), d)


def test_ties_trim_elect_disjoint_mean():
    base = t(1, 1, 1, 1)
    deltas = [t(3, -1, 0.5, 2), t(-2, 4, 1, -1), t(1.5, -0.2, -3, 1)]
    models = [base + d for d in deltas]
    # density 0.5 keeps 2 of 4: (3,0,0,2), (-2,4,0,0), (1.5,0,-3,0)
    # elected signs from sums (2.5, 4, -3, 2): + + - +; agreeing means: (3+1.5)/2, 4, -3, 2
    got = methods.ties(base, models, [1, 1, 1], [0.5] * 3, lam=1.0)
    assert torch.allclose(got, base + t(2.25, 4, -3, 2))
    # weights enter both the election and the mean: w=(2,1,1) -> idx0 (2*3 + 1.5) / 3
    got = methods.ties(base, models, [2, 1, 1], [0.5] * 3, lam=0.5)
    assert torch.allclose(got, base + 0.5 * t(2.5, 4, -3, 2))


def test_ties_elects_sign_by_mass_not_by_count():
    base = t(0.0)
    models = [t(0.5), t(-3.0), t(0.4)]  # two positive votes, but the negative mass wins
    assert torch.allclose(methods.ties(base, models, [1, 1, 1], [1, 1, 1]), t(-3.0))


def test_dare_drops_with_prob_1_minus_density_and_rescales():
    torch.manual_seed(0)
    base, delta = torch.randn(20000), torch.randn(20000)
    got = methods.dare(base, [base + delta], [1.0], [0.3], lam=1.0, seed=7, tensor_name="w")
    d = got - base
    kept = d != 0
    assert abs(kept.float().mean().item() - 0.3) < 0.015
    assert torch.allclose(d[kept], delta[kept] / 0.3, atol=1e-5)
    # exactly the seeded mask: keep where U(0,1) < density from the (seed, tensor, model) generator
    mask = torch.rand(20000, generator=methods.dare_generator(7, "w", 0)) < 0.3
    assert torch.equal(kept, mask)


def test_dare_is_reproducible_per_seed_and_tensor():
    base, m = torch.zeros(1000), torch.ones(1000)
    run = lambda seed, name: methods.dare(base, [m, m], [0.5, 0.5], [0.5, 0.5], 1.0, seed, name)  # noqa: E731
    assert torch.equal(run(1, "a"), run(1, "a"))
    assert not torch.equal(run(1, "a"), run(2, "a"))
    assert not torch.equal(run(1, "a"), run(1, "b"))


def test_slerp_follows_the_great_circle():
    e1, e2 = t(1, 0), t(0, 1)
    half = methods.slerp(0.5, e1, e2)
    assert torch.allclose(half, t(math.sqrt(0.5), math.sqrt(0.5)))  # unit norm, unlike lerp
    assert torch.allclose(methods.slerp(0.0, e1, e2), e1)
    assert torch.allclose(methods.slerp(1.0, e1, e2), e2)
    torch.manual_seed(1)
    a, b = torch.randn(64), torch.randn(64)
    a, b = a / a.norm(), b / b.norm()
    theta = torch.arccos(a @ b)
    r = methods.slerp(0.3, a, b)
    assert torch.allclose(r.norm(), torch.tensor(1.0), atol=1e-5)
    assert torch.allclose(torch.arccos(torch.clamp(r @ a, -1, 1)), 0.3 * theta, atol=1e-4)


@pytest.mark.parametrize("other", [lambda v: 2 * v, lambda v: -v])
def test_slerp_falls_back_to_linear_for_parallel_vectors(other):
    v = t(1, 2, 3)
    w = other(v)
    assert torch.allclose(methods.slerp(0.25, v, w), 0.75 * v + 0.25 * w)
