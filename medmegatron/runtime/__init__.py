"""Process groups, launch and CPU mode: what has to exist before megatron-core can build a model."""
