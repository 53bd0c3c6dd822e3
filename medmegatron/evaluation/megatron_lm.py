"""An lm-eval model backend that scores with megatron-core directly from our dist checkpoints.

Evaluating a checkpoint during continual pretraining should not need an HF export per step. This
backend loads the checkpoint at any TP/PP layout (dist_checkpointing reshards), runs forward-only
batches through megatron-core's pipeline schedule, gathers the vocab-parallel logits, drops the
padded vocabulary rows (they would otherwise enter the softmax normaliser), and returns
(log-likelihood, is-greedy) per request, as lm-eval's `TemplateLM` expects.

Under torchrun every rank runs the same harness loop on the same requests (the model forward is a
collective); the results of the last pipeline stage are broadcast so every rank agrees.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model

from medmegatron.errors import UserFacingError


class _Tokenizer:
    """megatron-core tokenizer or an HF tokenizer folder, behind the two calls the harness needs."""

    def __init__(self, path: str | None):
        self.hf = None
        if path and Path(path).is_dir() and (Path(path) / "tokenizer_config.json").exists():
            from transformers import AutoTokenizer

            self.hf = AutoTokenizer.from_pretrained(path)
            self.eod = self.hf.eos_token_id
        else:
            from medmegatron.tokenizers import load_tokenizer

            self.mc = load_tokenizer(path)
            self.eod = self.mc.eod

    def encode(self, text: str) -> list[int]:
        if self.hf is not None:
            return self.hf.encode(text, add_special_tokens=False)
        return list(self.mc.tokenize(text))


@register_model("medmegatron")
class MegatronLM(TemplateLM):
    def __init__(self, ckpt: str, tensor_parallel: int = 1, pipeline_parallel: int = 1,
                 tokenizer: str | None = None, batch_size: int = 8, max_length: int | None = None,
                 **unused):
        super().__init__()
        from megatron.core import parallel_state

        from medmegatron.config import ParallelConfig, config_from_dict
        from medmegatron.models import build_model
        from medmegatron.runtime.distributed import init_model_parallel, init_process_group
        from medmegatron.training.checkpointing import load_weights, read_metadata, resolve_checkpoint_dir

        path = resolve_checkpoint_dir(ckpt)
        meta = read_metadata(path)
        if "config" not in meta:
            raise UserFacingError(f"{path}: no medmegatron.json with the model config; was it written "
                                  "by `medmegatron train` or `medmegatron convert import`?")
        # Only the architecture and tokenizer matter here (older run configs may carry other keys).
        saved = meta["config"]
        self.cfg = config_from_dict({
            "model": {**saved["model"], "preset": "custom"},
            "data": {"tokenizer": saved.get("data", {}).get("tokenizer")},
            "parallel": {"tensor_parallel": int(tensor_parallel), "pipeline_parallel": int(pipeline_parallel)},
        })
        env = init_process_group()
        if env.world_size != self.cfg.parallel.model_parallel:
            raise UserFacingError(
                f"evaluation runs on exactly TP x PP = {self.cfg.parallel.model_parallel} ranks, "
                f"got {env.world_size}: launch with --nproc-per-node {self.cfg.parallel.model_parallel}")
        init_model_parallel(ParallelConfig(tensor_parallel=self.cfg.parallel.tensor_parallel,
                                           pipeline_parallel=self.cfg.parallel.pipeline_parallel),
                            self.cfg.seed)
        self.chunks = build_model(self.cfg, cuda=not env.cpu)
        load_weights(path, self.chunks)
        for chunk in self.chunks:
            chunk.eval()
        self._parallel_state = parallel_state
        self.tok = _Tokenizer(tokenizer if tokenizer is not None else self.cfg.data.tokenizer)
        self.vocab_size = self.cfg.model.vocab_size
        self.batch_size = int(batch_size)
        self.max_length = int(max_length or self.cfg.model.max_position_embeddings)
        self._device = torch.device(torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")

    # --- TemplateLM interface ---------------------------------------------------------------------
    @property
    def eot_token_id(self) -> int:
        return self.tok.eod

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
        return self.tok.encode(string)

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs):
        """Score requests; one forward per distinct input sequence.

        Multiple-choice answers that are one token long (PubMedQA's yes/no/maybe, option
        letters) share their input sequence, so one forward scores all of them - the same
        saving lm-eval's HF backend makes with its logits cache.
        """
        from tqdm import tqdm

        rows: dict[tuple, list[tuple[int, list[int]]]] = {}
        for index, (_, context, continuation) in enumerate(requests):
            whole = (context + continuation)[-(self.max_length + 1):]
            rows.setdefault(tuple(whole[:-1]), []).append((index, whole[-len(continuation):]))
        ordered = sorted(rows.items(), key=lambda item: -len(item[0]))
        batches = [ordered[i:i + self.batch_size] for i in range(0, len(ordered), self.batch_size)]
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        for batch in tqdm(batches, desc="megatron loglikelihood", disable=disable_tqdm):
            scores = self._score(batch)
            wanted = [index for _, members in batch for index, _ in members]
            for index, (logprob, greedy) in zip(wanted, scores.tolist()):
                results[index] = (logprob, bool(greedy))
        return results

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
        raise UserFacingError("rolling log-likelihood (perplexity tasks) is not supported by the "
                              "medmegatron backend; use multiple-choice tasks or the hf backend")

    def generate_until(self, requests, disable_tqdm: bool = False):
        raise UserFacingError("generation tasks are not supported by the medmegatron backend; use "
                              "multiple-choice tasks or export to HF (`medmegatron convert export`)")

    # --- megatron forward -------------------------------------------------------------------------
    def _score(self, batch) -> torch.Tensor:
        """[requests, 2] (sum of continuation log-probs, all-greedy flag), identical on every rank.

        `batch` is [(input ids, [(request index, continuation ids), ...]), ...]; a continuation of
        n tokens is predicted by the logits at the last n input positions.
        """
        from megatron.core.tensor_parallel.mappings import gather_from_tensor_model_parallel_region

        from medmegatron.training.step import run_schedule

        ps = self._parallel_state
        length = max(len(inputs) for inputs, _ in batch)
        tokens = torch.full((len(batch), length), self.eot_token_id, dtype=torch.long)
        for row, (inputs, _) in enumerate(batch):
            tokens[row, :len(inputs)] = torch.tensor(inputs)
        tokens = tokens.to(self._device)
        positions = torch.arange(length, device=self._device).expand_as(tokens)
        count = sum(len(members) for _, members in batch)
        scores = torch.zeros(count, 2, dtype=torch.float64, device=self._device)

        def score_logits(logits: torch.Tensor, non_loss_data: bool = True):
            slot = 0
            for row, (inputs, members) in enumerate(batch):
                end = len(inputs)
                longest = max(len(targets) for _, targets in members)
                window = gather_from_tensor_model_parallel_region(logits[row:row + 1, end - longest:end])
                logprobs = F.log_softmax(window[0, :, :self.vocab_size].float(), dim=-1)
                for _, targets in members:
                    part = logprobs[longest - len(targets):]
                    wanted = torch.tensor(targets, device=part.device)
                    scores[slot, 0] = part.gather(-1, wanted.unsqueeze(-1)).double().sum()
                    scores[slot, 1] = float(bool((part.argmax(-1) == wanted).all()))
                    slot += 1
            return scores

        def forward_step(iterator, model):
            next(iterator)
            return model(tokens, positions, None), score_logits

        with torch.no_grad():
            run_schedule(self.chunks, [iter([0]) for _ in self.chunks], forward_step, num_microbatches=1,
                         seq_length=length, micro_batch_size=len(batch), forward_only=True,
                         collect_non_loss_data=True)
        if ps.get_pipeline_model_parallel_world_size() > 1:
            torch.distributed.broadcast(scores, src=ps.get_pipeline_model_parallel_last_rank(),
                                        group=ps.get_pipeline_model_parallel_group())
        return scores.cpu()
