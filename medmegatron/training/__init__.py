"""The training engine on megatron-core: data, steps, optimizer, checkpoints, the loop."""


def pretrain(config):
    """Run training for `config` on this rank (see `medmegatron.training.loop`)."""
    from medmegatron.training.loop import pretrain as _pretrain

    return _pretrain(config)


__all__ = ["pretrain"]
