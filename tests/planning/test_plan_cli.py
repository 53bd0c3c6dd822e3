"""`medmegatron plan` end to end (in-process, through the real console-script parser)."""

from __future__ import annotations

import re

from medmegatron.cli import main
from medmegatron.planning.gpus import GIB, get_gpu
from medmegatron.planning.plan import make_plan
from medmegatron.planning.recipes import load_recipe


def test_plan_70b_prints_memory_per_rank_and_throughput(capsys):
    assert main(["plan", "recipes/cpt_70b.py", "--gpus", "64", "--gpu", "h100-80gb"]) == 0
    out = capsys.readouterr().out
    for row in ("weights", "gradients (fp32)", "optimizer", "activations", "total", "tokens/s/GPU",
                "GPU-hours", "FITS"):
        assert row in out
    # The printed per-rank total is the planner's binding rank, and it fits an H100.
    cfg, _ = load_recipe("recipes/cpt_70b.py")
    plan = make_plan(cfg, 64, get_gpu("h100-80gb"))
    assert f"{plan.peak.total / GIB:7.2f}".strip() in out
    assert plan.peak.total < get_gpu("h100-80gb").memory_gib * GIB


def test_tp1_pp1_70b_is_refused_with_the_reason(capsys):
    code = main(["plan", "recipes/cpt_70b.py", "--gpus", "64", "--gpu", "h100-80gb",
                 "parallel.tensor_parallel=1", "parallel.pipeline_parallel=1",
                 "parallel.virtual_pipeline_parallel=null", "parallel.sequence_parallel=false"])
    out = capsys.readouterr().out
    assert code == 2
    match = re.search(r"needs ([\d.]+) GiB per GPU .* has ([\d.]+) GiB", out)
    assert match and float(match.group(1)) > float(match.group(2))


def test_invalid_layout_names_the_field(capsys):
    code = main(["plan", "cpt_70b", "--gpus", "60", "--gpu", "h100-80gb"])
    assert code == 2
    assert "world size 60" in capsys.readouterr().err


def test_fp8_refused_on_a100(capsys):
    code = main(["plan", "cpt_70b", "--gpu", "a100-80gb", "precision.fp8=delayed"])
    assert code == 2
    assert "FP8 tensor cores" in capsys.readouterr().out


def test_search_ranks_only_feasible_layouts_fastest_first(capsys):
    assert main(["plan", "cpt_mixtral_8x7b", "--gpus", "64", "--search", "--top", "50"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if re.match(r"\s+\d+\s+TP", line)]
    assert rows
    tight = [r[-1] == "tight" for r in rows]
    assert tight == sorted(tight)  # layouts without headroom come last
    rows = [r[:-1] if r[-1] == "tight" else r for r in rows]
    speeds = [float(r[r.index(next(x for x in r if x.startswith("mbs"))) + 1].replace(",", "")) for r in rows]
    roomy = [s for s, t in zip(speeds, tight) if not t]
    assert roomy == sorted(roomy, reverse=True)
    peaks = [float(r[-3]) for r in rows]
    assert max(peaks) <= get_gpu("h100-80gb").memory_gib


def test_layout_with_little_headroom_is_flagged(capsys):
    """Mistral 7B without model parallelism: 74 of 80 GiB, which the planner calls tight."""
    assert main(["plan", "cpt_mistral_7b", "parallel.tensor_parallel=1", "parallel.sequence_parallel=false"]) == 0
    out = capsys.readouterr().out
    assert "FITS" in out and "under 10% headroom" in out
    assert main(["plan", "cpt_mistral_7b"]) == 0
    assert "under 10% headroom" not in capsys.readouterr().out
