"""Our megatron backend and lm-eval's HF backend give the same log-likelihoods for one model.

A tiny model is trained, exported to HF with `medmegatron convert export`, and both backends
score the same requests with the same tokenizer: at TP=1 and at TP=2 (vocab-parallel logits
gathered) every log-likelihood agrees within 1e-4.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import REPO, run_torchrun, tiny_overrides

from medmegatron.config import load_config
from medmegatron.training import pretrain

pytestmark = pytest.mark.multiprocess

PAIRS = [
    ("Abstract: Aspirin reduced the risk of stroke in adults.\nQuestion: Does aspirin help?\nAnswer:", " yes"),
    ("Abstract: Aspirin reduced the risk of stroke in adults.\nQuestion: Does aspirin help?\nAnswer:", " maybe"),
    ("The patient was started on metformin for", " type 2 diabetes."),
    ("Heart failure is treated with", " furosemide and an ACE inhibitor"),
]


@pytest.fixture(scope="module")
def exported(pubmed_prefix, tmp_path_factory):
    root = tmp_path_factory.mktemp("parity")
    pretrain(load_config(None, tiny_overrides(pubmed_prefix, root / "run", **{"schedule.train_iters": 3})))
    hf_dir = root / "hf"
    proc = subprocess.run([sys.executable, "-m", "medmegatron", "convert", "export", "--ckpt",
                           str(root / "run"), "--output", str(hf_dir)], capture_output=True, text=True,
                          cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (hf_dir / "tokenizer.model").exists(), "export carries the training tokenizer"
    return root, hf_dir


def _hf_scores(hf_dir):
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    hf = HFLM(pretrained=str(hf_dir), device="cpu", dtype="float32", batch_size=2)
    return hf.loglikelihood([Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(PAIRS)],
                            disable_tqdm=True)


def test_megatron_backend_matches_hf_backend_at_tp1_and_tp2(exported):
    from lm_eval.api.instance import Instance

    from medmegatron.evaluation.megatron_lm import MegatronLM

    root, hf_dir = exported
    reference = _hf_scores(hf_dir)

    ours = MegatronLM(ckpt=str(root / "run"), tokenizer=str(hf_dir), batch_size=3)
    tp1 = ours.loglikelihood([Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(PAIRS)],
                             disable_tqdm=True)
    requests = root / "pairs.json"
    requests.write_text(json.dumps(PAIRS))
    run_torchrun(2, "eval_loglikelihoods.py", str(root / "run"), str(hf_dir), str(requests),
                 str(root / "tp2.json"))
    tp2 = json.loads((root / "tp2.json").read_text())

    for name, scores in (("tp1", tp1), ("tp2", tp2)):
        for (ours_lp, ours_greedy), (hf_lp, hf_greedy) in zip(scores, reference):
            assert abs(ours_lp - hf_lp) <= 1e-4, f"{name}: {ours_lp} vs hf {hf_lp}"
            assert bool(ours_greedy) == bool(hf_greedy)
