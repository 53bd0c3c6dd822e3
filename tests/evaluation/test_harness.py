"""lm-eval drives our megatron-core backend end to end, and its accuracy is the argmax we compute."""

from __future__ import annotations

import json

import pytest

from helpers import tiny_overrides

from medmegatron.config import load_config
from medmegatron.evaluation.run import evaluate
from medmegatron.evaluation.tasks import TaskSource, normalise
from medmegatron.paths import pubmedqa_dir
from medmegatron.training import pretrain


@pytest.fixture(scope="module")
def tiny_checkpoint(pubmed_prefix, tmp_path_factory):
    run = tmp_path_factory.mktemp("evalrun") / "run"
    pretrain(load_config(None, tiny_overrides(pubmed_prefix, run, **{"schedule.train_iters": 4,
                                                                      "checkpoint.save_interval": 2})))
    return run


@pytest.fixture(scope="module")
def qa_source(tmp_path_factory):
    """PubMedQA's real test split when ../shared is present, else a small generated quiz."""
    if pubmedqa_dir() is not None:
        return TaskSource("pubmedqa", "pubmedqa", str(pubmedqa_dir()))
    path = tmp_path_factory.mktemp("quiz") / "quiz.jsonl"
    drugs = ["metformin", "insulin", "aspirin", "heparin"]
    path.write_text("".join(json.dumps({"question": f"Which drug treats condition {i}?", "options": drugs,
                                        "answer": i % 4}) + "\n" for i in range(12)))
    return TaskSource("quiz", "mcq", str(path))


def test_harness_accuracy_equals_argmax_of_our_loglikelihoods(tiny_checkpoint, qa_source, tmp_path):
    from lm_eval.api.instance import Instance

    from medmegatron.evaluation.megatron_lm import MegatronLM
    from medmegatron.evaluation.tasks import _PROMPT

    import jinja2

    limit = 8
    model = MegatronLM(ckpt=str(tiny_checkpoint), batch_size=4)
    results = evaluate(model, [qa_source], tmp_path, limit=limit, batch_size=4)
    task = f"{qa_source.name}_text"
    assert set(results[task]) == {"acc", "acc_norm"}

    # Independent recomputation: score every choice ourselves and take the argmax.
    template = jinja2.Template(_PROMPT)
    docs = normalise(qa_source)[:limit]
    correct = 0
    for doc in docs:
        context = template.render(**doc)
        requests = [Instance("loglikelihood", doc, (context, " " + choice), i)
                    for i, choice in enumerate(doc["choices"])]
        scores = [logprob for logprob, _ in model.loglikelihood(requests, disable_tqdm=True)]
        correct += int(max(range(len(scores)), key=scores.__getitem__) == doc["answer_index"])
    assert results[task]["acc"] == pytest.approx(correct / limit)


def test_every_checkpoint_of_a_run_is_evaluated_and_plotted_against_tokens(tiny_checkpoint, qa_source, tmp_path):
    from medmegatron.evaluation.run import run_eval

    out = run_eval(sources=[qa_source], output=tmp_path / "sweep", ckpts=str(tiny_checkpoint), limit=4,
                   batch_size=4)
    points = out["points"]
    assert [p["checkpoint"] for p in points] == ["iter_0000002", "iter_0000004"]
    assert [p["tokens"] for p in points] == [2 * 8 * 64, 4 * 8 * 64]
    assert json.loads((tmp_path / "sweep" / "sweep.json").read_text())[1]["tokens"] == 4 * 8 * 64
    assert (tmp_path / "sweep" / "iter_0000004" / "results.md").read_text().startswith("| task |")
    assert (tmp_path / "sweep" / "accuracy_vs_tokens.png").stat().st_size > 5_000
