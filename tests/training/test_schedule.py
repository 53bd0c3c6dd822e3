"""The LR schedule is the one the papers describe, point by point, and survives a resume."""

from __future__ import annotations

import math

import pytest
import torch

from medmegatron.config import load_config
from medmegatron.training.optim import build_scheduler


def _optimizer():
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.0)


def expected_lr(step: int, peak: float, floor: float, init: float, warmup: int, decay: int) -> float:
    """Linear warmup init -> peak over `warmup` steps, then cosine peak -> floor until `decay`."""
    if warmup and step <= warmup:
        return init + (peak - init) * step / warmup
    if step > decay:
        return floor
    progress = (step - warmup) / (decay - warmup)
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * progress))


SCHEDULES = {
    # Med42: rewarm linearly from 0.1 x peak over 1% of the steps, then cosine.
    "med42": (["schedule.train_iters=3000", "schedule.lr_warmup_fraction=0.01",
               "schedule.lr_warmup_init_fraction=0.1", "optimizer.lr=1e-4", "optimizer.min_lr=1e-5"],
              dict(peak=1e-4, floor=1e-5, init=1e-5, warmup=30, decay=3000)),
    # Meditron: 2,000 warmup steps from 0, cosine down to 1e-6.
    "meditron": (["schedule.train_iters=20000", "schedule.lr_warmup_iters=2000",
                  "optimizer.lr=1.5e-4", "optimizer.min_lr=1e-6"],
                 dict(peak=1.5e-4, floor=1e-6, init=0.0, warmup=2000, decay=20000)),
}


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedule_matches_the_formula_at_every_step(name):
    overrides, params = SCHEDULES[name]
    optimizer = _optimizer()
    scheduler = build_scheduler(load_config(None, overrides), optimizer)
    for step in range(params["decay"] + 1):
        lr = optimizer.param_groups[0]["lr"]
        assert lr == pytest.approx(expected_lr(step, **params), rel=1e-9, abs=1e-15), f"{name} step {step}"
        scheduler.step(increment=1)


def test_resume_continues_the_saved_schedule_even_if_the_config_changed():
    overrides, params = SCHEDULES["med42"]
    first = _optimizer()
    scheduler = build_scheduler(load_config(None, overrides), first)
    for _ in range(1234):
        scheduler.step(increment=1)
    state = scheduler.state_dict()

    resumed = _optimizer()
    # A resumed job launched with a different length must not restart or stretch the schedule.
    changed = build_scheduler(load_config(None, overrides + ["schedule.train_iters=9000"]), resumed)
    changed.load_state_dict(state)
    for step in range(1234, params["decay"] + 1):
        assert resumed.param_groups[0]["lr"] == pytest.approx(expected_lr(step, **params), rel=1e-9)
        changed.step(increment=1)
