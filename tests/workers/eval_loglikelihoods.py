"""Worker: load a checkpoint in our lm-eval backend at TP=N (under torchrun), score fixed requests.

argv: CKPT TOKENIZER_DIR REQUESTS.json OUT.json; rank 0 writes [[logprob, is_greedy], ...].
"""

import json
import sys

import torch.distributed as dist

from medmegatron.evaluation.megatron_lm import MegatronLM
from medmegatron.runtime.quiet import quiet_expected_warnings

if __name__ == "__main__":
    quiet_expected_warnings()
    ckpt, tokenizer, requests_path, out = sys.argv[1:5]
    model = MegatronLM(ckpt=ckpt, tensor_parallel=dist.get_world_size() if dist.is_initialized() else 2,
                       tokenizer=tokenizer, batch_size=3)
    pairs = json.loads(open(requests_path).read())
    requests = [((c, x), model.tok_encode(c), model.tok_encode(c + x)[len(model.tok_encode(c)):]) for c, x in pairs]
    scores = model._loglikelihood_tokens(requests, disable_tqdm=True)
    if dist.get_rank() == 0:
        with open(out, "w") as f:
            json.dump(scores, f)
    dist.destroy_process_group()
