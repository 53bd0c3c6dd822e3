"""Worker for conversion tests: logit parity and re-saving at several layouts in one world.

argv: SPEC.json, OUT.json. SPEC is a list of cases {"name", "hf_dir", "ckpt", "parallel": {...},
"kwargs": {...}, "resave": DIR (optional)}. Each case reports max |logit diff| (rank 0 writes
name -> diff). With "resave", the checkpoint is also loaded into megatron-core models at that
layout and saved again by megatron-core's own `dist_checkpointing.save`, so tests can export a
checkpoint as sharded by TP/PP/EP ranks and check the round trip is bit-identical.
"""

import json
import shutil
import sys
from pathlib import Path

import torch.distributed as dist

from conversion.verify import verify
from medmegatron.config import ParallelConfig, config_from_dict
from medmegatron.runtime.distributed import init_model_parallel, init_process_group
from medmegatron.runtime.quiet import quiet_expected_warnings


def resave(ckpt: str, out: str, parallel: ParallelConfig) -> None:
    from megatron.core import dist_checkpointing

    from medmegatron.models import build_model
    from medmegatron.training.checkpointing import _model_state, load_weights

    meta = json.loads((Path(ckpt) / "medmegatron.json").read_text())
    cfg = config_from_dict(meta["config"])
    cfg.parallel = parallel
    cfg.precision.dtype = "fp32"
    init_model_parallel(parallel, 1)
    chunks = build_model(cfg, cuda=False)
    load_weights(Path(ckpt), chunks)
    if dist.get_rank() == 0:
        Path(out).mkdir(parents=True)
    dist.barrier()
    dist_checkpointing.save(_model_state(chunks), out)
    if dist.get_rank() == 0:
        shutil.copy(Path(ckpt) / "medmegatron.json", Path(out) / "medmegatron.json")
        if (Path(ckpt) / "hf").is_dir():
            shutil.copytree(Path(ckpt) / "hf", Path(out) / "hf")
    dist.barrier()


if __name__ == "__main__":
    quiet_expected_warnings()
    init_process_group()
    spec, out = sys.argv[1], sys.argv[2]
    results = {}
    for case in json.loads(open(spec).read()):
        parallel = ParallelConfig(**case["parallel"])
        results[case["name"]] = verify(case["hf_dir"], case["ckpt"], parallel, **case.get("kwargs", {}))
        if case.get("resave"):
            resave(case["ckpt"], case["resave"], parallel)
    if dist.get_rank() == 0:
        with open(out, "w") as f:
            json.dump(results, f)
    dist.destroy_process_group()
