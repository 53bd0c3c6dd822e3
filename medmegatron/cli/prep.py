"""`medmegatron prep ...`: data preparation (thin: parse arguments, call one data_prep function)."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "prep", help="prepare data: read, clean, deduplicate, decontaminate, tokenize, blend",
        description="Data preparation for continual pretraining (see docs/data_prep.md).")
    sub = parser.add_subparsers(dest="prep_command", metavar="STEP")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])

    p = sub.add_parser("tokenize", help="tokenize inputs into Megatron .bin/.idx (+ manifest)")
    p.add_argument("--input", "-i", nargs="+", required=True, help="input files/folders")
    p.add_argument("--tokenizer", default=None,
                   help="SentencePiece .model or HF tokenizer folder/tokenizer.json "
                        "(default: bundled Llama-2 SentencePiece)")
    p.add_argument("--output-prefix", "-o", required=True)
    p.add_argument("--format", default="auto", help="input format (default: from file name)")
    p.add_argument("--text-key", default=None, help="field/column holding the text")
    p.add_argument("--on-error", choices=("fail", "skip"), default="fail")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--force", action="store_true", help="redo even if outputs are up to date")
    p.set_defaults(func=_tokenize)

    p = sub.add_parser("run", help="run a YAML pipeline (resumable)")
    p.add_argument("config", help="pipeline YAML")
    p.add_argument("--force", action="store_true", help="ignore finished stages and redo them")
    p.set_defaults(func=_run)

    p = sub.add_parser("sft", help="render, mask and pack instruction data (chat templates) into .bin/.idx")
    p.add_argument("config", help="SFT YAML (sources, template, tokenizer, seq_length, ...)")
    p.add_argument("--on-error", choices=("fail", "skip"), default=None,
                   help="override the config's on_error for bad conversations")
    p.set_defaults(func=_sft)

    p = sub.add_parser("minhash-plan", help="S-curve of a bands x rows choice, or pick one")
    p.add_argument("--preset", choices=("med42",), default=None)
    p.add_argument("--threshold", type=float, default=None)
    p.add_argument("--bands", type=int, default=None)
    p.add_argument("--rows", type=int, default=None)
    p.add_argument("--num-hashes", type=int, default=None, help="hash budget for the helper")
    p.set_defaults(func=_minhash_plan)

    p = sub.add_parser("blend", help="megatron-core blend weights from token counts and a mix")
    p.add_argument("--source", action="append", required=True, metavar="NAME=PREFIX",
                   help="a source and its tokenized prefix (manifest gives its tokens)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--ratios", help="e.g. pubmed=15,clinical=1,general=4")
    g.add_argument("--budgets", help="absolute tokens, e.g. clinical=50e9,general=15e9")
    g.add_argument("--replay", help="replay share of general data, e.g. general=0.01")
    p.add_argument("--train-tokens", type=float, required=True, help="token budget of training")
    p.add_argument("--output", "-o", required=True, help="blend JSON to write")
    p.set_defaults(func=_blend)

    p = sub.add_parser("inspect", help="counts per source, length histograms (PNG), removals")
    p.add_argument("path", help="a pipeline output folder or a tokenized prefix")
    p.add_argument("--out-dir", default=None, help="where to write PNGs (default: beside)")
    p.set_defaults(func=_inspect)


def _print(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


def _tokenize(args: argparse.Namespace) -> int:
    from data_prep.tokenize import tokenize_files

    _print(tokenize_files(args.input, args.tokenizer, args.output_prefix, fmt=args.format,
                          text_key=args.text_key, on_error=args.on_error, workers=args.workers,
                          force=args.force))
    return 0


def _sft(args: argparse.Namespace) -> int:
    from data_prep.sft import build_sft_dataset
    from data_prep.sft.config import SFTConfig
    from medmegatron.config.yaml_file import read_yaml_mapping

    raw = read_yaml_mapping(args.config, "SFT config")
    if args.on_error:
        raw["on_error"] = args.on_error
    _print(build_sft_dataset(SFTConfig.from_dict(raw)))
    return 0


def _run(args: argparse.Namespace) -> int:
    from data_prep.pipeline import run_pipeline_file

    _print(run_pipeline_file(args.config, force=args.force))
    return 0


def _minhash_plan(args: argparse.Namespace) -> int:
    from data_prep.minhash_plan import plan_command

    print(plan_command(preset=args.preset, threshold=args.threshold, bands=args.bands,
                       rows=args.rows, num_hashes=args.num_hashes))
    return 0


def _blend(args: argparse.Namespace) -> int:
    from data_prep.blend import blend_command

    print(blend_command(args.source, ratios=args.ratios, budgets=args.budgets, replay=args.replay,
                        train_tokens=args.train_tokens, output=args.output))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from data_prep.inspect import inspect_command

    print(inspect_command(args.path, out_dir=args.out_dir))
    return 0
