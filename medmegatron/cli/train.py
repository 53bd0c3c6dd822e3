"""`medmegatron train CONFIG [key=value ...] [--nproc-per-node N]`."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="continual pretraining on megatron-core (TP/PP/EP/DP)",
        description="Train a model from a YAML config; `key=value` overrides any field "
        "(e.g. parallel.tensor_parallel=2 schedule.train_iters=100). Launch with torchrun for "
        "several ranks, or pass --nproc-per-node to have it launched for you.",
    )
    parser.add_argument("config", nargs="?", help="YAML config file (optional if overrides say it all)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    parser.add_argument("--nproc-per-node", type=int, default=1,
                        help="local processes to launch with torchrun (default 1)")
    parser.add_argument("--dry-run", action="store_true",
                        help="validate the config for the given world size and print it, then exit")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import yaml

    from medmegatron.config import config_to_dict, load_config, validate
    from medmegatron.runtime import launch

    config_path, overrides = args.config, list(args.overrides)
    if config_path and "=" in config_path:  # only overrides were given
        overrides.insert(0, config_path)
        config_path = None
    cfg = load_config(config_path, overrides)
    world = int(__import__("os").environ.get("WORLD_SIZE", args.nproc_per_node))
    import torch

    validate(cfg, world, cuda_available=torch.cuda.is_available())
    if args.dry_run:
        print(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
        return 0
    if args.nproc_per_node > 1 and not launch.under_launcher():
        argv = ["medmegatron", "train"] + ([config_path] if config_path else []) + overrides
        return launch.relaunch(args.nproc_per_node, argv)

    from medmegatron.training import pretrain

    result = pretrain(cfg)
    if launch.is_rank_zero():
        print(f"checkpoint: {result.checkpoint}")
        print(f"metrics:    {result.run_dir}/metrics.jsonl")
    return 0
