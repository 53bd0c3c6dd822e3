"""Evaluation on medical QA with lm-eval: a megatron-core backend and local-file task suite."""
