"""Worker for multi-process tests: train several configs in turn inside one torchrun world.

argv: SPEC.json (name -> list of key=value overrides), OUT.json (rank 0 writes name -> losses).
Re-initialising megatron-core's parallel groups between runs lets one launch cover several
layouts of the same world size, which keeps the multi-process tests few and fast.
"""

import json
import sys

import torch.distributed as dist

from medmegatron.config import load_config
from medmegatron.runtime.quiet import quiet_expected_warnings
from medmegatron.training import pretrain

if __name__ == "__main__":
    quiet_expected_warnings()
    spec, out = sys.argv[1], sys.argv[2]
    results = {}
    for name, overrides in json.loads(open(spec).read()).items():
        results[name] = pretrain(load_config(None, overrides)).losses
    if dist.get_rank() == 0:
        with open(out, "w") as f:
            json.dump(results, f)
    dist.destroy_process_group()
