"""Model merging between Hugging Face checkpoints: linear, task arithmetic, TIES, DARE, SLERP.

Typical use: fold a continual-pretraining (CPT) model and an instruct model that share a base
into one model (task arithmetic / TIES / DARE over the base, or SLERP between the two).

Why our own implementation and not mergekit: mergekit 0.1.5 does install cleanly beside our pins
(its requirements are lower bounds: safetensors>=0.5.2, pydantic>=2.10.6, click>=8.2.1,
accelerate>=1.6, transformers>=5,<6; `pip install --dry-run` adds only mergekit, peft and
immutables, no downgrades) and a TIES merge of two tiny Llamas ran with it in a throwaway venv.
We still do not depend on it because (1) it would bring peft and mergekit's own loader and
architecture tables into the training environment for five formulas of ~20 lines each;
(2) merges here must follow the project's I/O contract - shards validated and checksummed on
read (`conversion.safetensors_io.HFShards`), output published atomically, errors as
`UserFacingError` naming the file and fix - which wrapping mergekit would only approximate;
(3) DARE must be reproducible per tensor from a config seed, independent of tensor order.
The methods are in `methods` (pure tensor functions, tested against their formulas), the
streaming driver in `run`, the YAML config in `config`.
"""

from medmegatron.merging.config import MergeConfig, MergeModel, load_merge_config
from medmegatron.merging.run import merge

__all__ = ["MergeConfig", "MergeModel", "load_merge_config", "merge"]
