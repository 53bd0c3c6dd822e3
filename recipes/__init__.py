"""Training recipes: one module per published setup, each a function returning a NeMo-Run config.

Every recipe module defines `INFO` (`RecipeInfo`: intended GPUs, token budget, source) and
`recipe(...) -> run.Partial[pretrain_task]` whose `config` argument is a `run.Config[TrainConfig]`.
Run one with `python recipes/<name>.py [overrides] [executor=...]` (see recipes/README.md) or plan
it with `medmegatron plan recipes/<name>.py --gpus N --gpu h100-80gb`.
"""

RECIPES = (
    "cpt_70b", "cpt_mixtral_8x7b", "cpt_mistral_7b", "cpt_13b", "sft_70b",
    "sft_mistral_7b_neftune", "tiny_cpu",
)
