"""3D parallelism as a fact: every layout reproduces the single-process loss from the same weights.

All runs start from one checkpoint (written by a single-process run), train 5 optimizer steps
on the same global batches in fp32, and must match the TP=1/PP=1/DP=1 losses within 1e-5
relative. megatron-core does all the parallel work; these tests only pick layouts.
"""

from __future__ import annotations

import pytest

from helpers import run_layouts, tiny_overrides

pytestmark = pytest.mark.multiprocess

REL_TOL = 1e-5
ONE_STEP = {"schedule.train_iters": 1, "schedule.lr_warmup_iters": 0}


def assert_same_losses(reference: list[float], other: list[float], name: str) -> None:
    assert len(other) == len(reference) == 5, name
    for step, (a, b) in enumerate(zip(reference, other), start=1):
        assert abs(a - b) <= REL_TOL * abs(a), f"{name}: step {step} loss {b} vs single-process {a}"


@pytest.fixture(scope="module")
def dense_start(pubmed_prefix, tmp_path_factory):
    """Initial weights (one step of training, saved) and the single-process reference losses."""
    root = tmp_path_factory.mktemp("dense")
    init = run_layouts(1, {"init": tiny_overrides(pubmed_prefix, root / "init", **ONE_STEP)},
                       root / "init.json")
    assert len(init["init"]) == 1
    start = str(root / "init" / "checkpoints")
    reference = run_layouts(1, {"ref": tiny_overrides(pubmed_prefix, root / "ref", **{"checkpoint.init_from": start})},
                            root / "ref.json")["ref"]
    return root, start, reference


def test_two_rank_layouts_match_single_process(pubmed_prefix, dense_start):
    root, start, reference = dense_start
    layouts = {
        "tp2": {"parallel.tensor_parallel": 2},
        "pp2": {"parallel.pipeline_parallel": 2},
        "dp2_full_recompute": {"parallel.recompute_granularity": "full"},
        "pp2_vp2": {"parallel.pipeline_parallel": 2, "parallel.virtual_pipeline_parallel": 2},
        "tp2_sp": {"parallel.tensor_parallel": 2, "parallel.sequence_parallel": True},
    }
    runs = {name: tiny_overrides(pubmed_prefix, root / name, **{"checkpoint.init_from": start}, **extra)
            for name, extra in layouts.items()}
    # Reshard-resume: 3 steps at TP=2, then the same run resumed at TP=1 (weights and
    # fully-reshardable optimizer state both resharded by dist_checkpointing).
    runs["tp2_first3"] = tiny_overrides(pubmed_prefix, root / "reshard", **{
        "checkpoint.init_from": start, "parallel.tensor_parallel": 2, "schedule.train_iters": 3,
        "schedule.lr_decay_iters": 5, "checkpoint.resume": True})
    losses = run_layouts(2, runs, root / "world2.json")
    for name in layouts:
        assert_same_losses(reference, losses[name], name)

    resumed = run_layouts(1, {"tp1_last2": tiny_overrides(pubmed_prefix, root / "reshard", **{
        "checkpoint.init_from": start, "schedule.lr_decay_iters": 5, "checkpoint.resume": True})},
        root / "resumed.json")["tp1_last2"]
    assert_same_losses(reference, losses["tp2_first3"] + resumed, "tp2 -> tp1 reshard resume")


def test_tp2_pp2_on_four_ranks_matches_single_process(pubmed_prefix, dense_start):
    root, start, reference = dense_start
    runs = {"tp2_pp2": tiny_overrides(pubmed_prefix, root / "tp2pp2", **{"checkpoint.init_from": start},
                                      **{"parallel.tensor_parallel": 2, "parallel.pipeline_parallel": 2})}
    losses = run_layouts(4, runs, root / "world4.json")
    assert_same_losses(reference, losses["tp2_pp2"], "tp2_pp2")


def test_moe_expert_parallel_alltoall_matches_single_process(pubmed_prefix, tmp_path):
    """tiny-mixtral at EP=2 with the alltoall dispatcher (gloo) equals EP=1 in one process."""
    common = {"model": "tiny-mixtral"}
    init = run_layouts(1, {"init": tiny_overrides(pubmed_prefix, tmp_path / "init", **common,
                                                  **ONE_STEP)}, tmp_path / "init.json")
    assert len(init["init"]) == 1
    start = {"checkpoint.init_from": str(tmp_path / "init" / "checkpoints"), **common}
    reference = run_layouts(1, {"ref": tiny_overrides(pubmed_prefix, tmp_path / "ref", **start)},
                            tmp_path / "ref.json")["ref"]
    runs = {
        "ep2_alltoall": tiny_overrides(pubmed_prefix, tmp_path / "a2a", **start, **{
            "parallel.expert_parallel": 2, "parallel.moe_token_dispatcher": "alltoall"}),
        "ep2_allgather": tiny_overrides(pubmed_prefix, tmp_path / "ag", **start, **{
            "parallel.expert_parallel": 2, "parallel.moe_token_dispatcher": "allgather"}),
    }
    losses = run_layouts(2, runs, tmp_path / "moe.json")
    for name in runs:
        assert_same_losses(reference, losses[name], name)
