"""medmegatron: continual pretraining, instruction tuning and evaluation of medical LLMs on megatron-core."""

__version__ = "0.1.0"
