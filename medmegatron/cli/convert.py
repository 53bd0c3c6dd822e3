"""`medmegatron convert import|export|verify`: HF <-> megatron-core checkpoints (see conversion/)."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert", help="import HF weights, export to HF, verify logit parity",
        description="Convert between Hugging Face safetensors folders and medmegatron dist "
        "checkpoints (Llama-2/3, Mistral, Mixtral, Qwen2/2.5). Streaming: the model is never "
        "held in memory whole.")
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    imp = sub.add_parser("import", help="HF folder -> dist checkpoint for checkpoint.init_from")
    imp.add_argument("--hf-dir", required=True, help="HF model folder (config.json, *.safetensors)")
    imp.add_argument("--output", required=True, help="new checkpoint folder to create")
    _layout_args(imp)
    imp.add_argument("--spec", choices=("local", "te"), default="local",
                     help="layer spec the checkpoint is for; only MoE norm names differ (default local)")
    imp.set_defaults(func=run_import)

    peft = sub.add_parser("export-lora", help="LoRA run (adapters) -> HF PEFT adapter folder")
    peft.add_argument("--ckpt", required=True, help="the LoRA run dir or one of its checkpoints")
    peft.add_argument("--output", required=True, help="new adapter folder to create")
    peft.set_defaults(func=run_export_lora)

    exp = sub.add_parser("export", help="dist checkpoint (any layout) -> HF safetensors folder")
    exp.add_argument("--ckpt", required=True, help="checkpoint folder, checkpoints/ root or run dir")
    exp.add_argument("--output", required=True, help="new HF folder to create")
    exp.add_argument("--max-shard-gb", type=float, default=5.0, help="safetensors shard size cap")
    exp.add_argument("--dtype", choices=("fp32", "bf16", "fp16"), default=None,
                     help="cast weights on export (default: as stored)")
    exp.set_defaults(func=run_export)

    ver = sub.add_parser("verify", help="max |logit diff| between an HF folder and a checkpoint")
    ver.add_argument("--hf-dir", required=True)
    ver.add_argument("--ckpt", required=True)
    _layout_args(ver)
    ver.add_argument("--tolerance", type=float, default=1e-4, help="fail above this (default 1e-4)")
    ver.add_argument("--seq-length", type=int, default=32)
    ver.add_argument("--batch", type=int, default=2)
    ver.set_defaults(func=run_verify)


def _layout_args(parser) -> None:
    parser.add_argument("--tp", type=int, default=1, help="tensor parallel size")
    parser.add_argument("--pp", type=int, default=1, help="pipeline parallel size")
    parser.add_argument("--ep", type=int, default=1, help="expert parallel size")
    parser.add_argument("--vp", type=int, default=None, help="virtual pipeline stages per rank")


def run_import(args: argparse.Namespace) -> int:
    from conversion.importer import import_hf

    out = import_hf(args.hf_dir, args.output, tp=args.tp, pp=args.pp, ep=args.ep, vp=args.vp,
                    spec=args.spec)
    print(f"checkpoint: {out}  (use checkpoint.init_from={out})")
    return 0


def run_export_lora(args: argparse.Namespace) -> int:
    from conversion.peft import export_peft_adapter

    print(f"PEFT adapter: {export_peft_adapter(args.ckpt, args.output)}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    import torch

    from conversion.exporter import export_hf

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}.get(args.dtype)
    out = export_hf(args.ckpt, args.output, max_shard_bytes=int(args.max_shard_gb * 1024**3), dtype=dtype)
    print(f"hf model: {out}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    """Runs on tp x pp x ep ranks (relaunching itself under torchrun when needed)."""
    import sys

    from medmegatron.runtime import launch

    world = args.tp * args.pp * args.ep  # EP ranks come out of data parallelism: DP = EP here
    if world > 1 and not launch.under_launcher():
        return launch.relaunch(world, ["medmegatron", "convert", *sys.argv[sys.argv.index("convert") + 1:]])

    from conversion.verify import verify
    from medmegatron.config import ParallelConfig
    from medmegatron.runtime.distributed import init_process_group

    init_process_group()
    parallel = ParallelConfig(tensor_parallel=args.tp, pipeline_parallel=args.pp,
                              expert_parallel=args.ep, virtual_pipeline_parallel=args.vp)
    diff = verify(args.hf_dir, args.ckpt, parallel, seq_length=args.seq_length, batch=args.batch)
    ok = diff <= args.tolerance
    if launch.is_rank_zero():
        print(f"max_abs_logit_diff: {diff:.3e}  (tolerance {args.tolerance:g}, tp={args.tp} "
              f"pp={args.pp} ep={args.ep} vp={args.vp}) -> {'OK' if ok else 'FAIL'}")
    return 0 if ok else 1
