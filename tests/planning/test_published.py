"""The planner against published large runs (docs/planner.md keeps the same table).

Tolerances: 10 % on model TFLOP/s per GPU; 12 % on tokens/s per GPU, because the published
tokens/s and TFLOP/s of the Llama-3 row imply 439 GFLOP/token where Narayanan's formula (full
s x s attention) gives 481, a convention gap the planner does not paper over; 15 % on the
GPU-hours of a whole epoch (the paper quotes a rounded "~700 hours"); memory verdicts must
agree exactly.
"""

from __future__ import annotations

import dataclasses

import pytest

from medmegatron.planning.published import RUNS, predicted

TOLERANCE = {"tokens_per_s_per_gpu": 0.12, "tflops_per_gpu": 0.10, "gpu_hours": 0.15}


@pytest.mark.parametrize("run", RUNS, ids=[r.name for r in RUNS])
def test_planner_matches_published_run(run):
    plan = run.plan()
    for key, value in predicted(run, plan).items():
        published = run.published[key]
        if key == "fits":
            assert value == published, plan.problems
        else:
            error = (value - published) / published
            assert abs(error) <= TOLERANCE[key], f"{key}: planner {value:,.0f} vs published {published:,.0f}"


def test_published_runs_fit_in_memory():
    """Every published layout actually ran, so the planner must not refuse any of them."""
    for run in RUNS:
        plan = run.plan()
        assert plan.feasible, (run.name, plan.problems)


def test_meditron_model_without_model_parallelism_is_refused():
    meditron = next(r for r in RUNS if r.name.startswith("Meditron"))
    flat = dataclasses.replace(meditron, parallel=dict(tensor_parallel=1, pipeline_parallel=1,
                                                       use_distributed_optimizer=True))
    plan = flat.plan()
    assert not plan.feasible
    assert any("does not fit" in p and "GiB" in p for p in plan.problems)
