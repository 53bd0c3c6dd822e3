"""`medmegatron eval`: medical QA with lm-eval, offline, from Megatron checkpoints or HF folders."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate on medical QA with lm-eval (offline, local files)",
        description="Score multiple-choice medical QA with the EleutherAI harness, from a Megatron "
        "checkpoint at any TP/PP (no export needed), every checkpoint of a run (--ckpts, with an "
        "accuracy-vs-tokens plot) or an HF folder. Data only from local files.",
    )
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument("--ckpt", help="a checkpoint dir (or run dir: its latest checkpoint)")
    model.add_argument("--ckpts", help="a run dir: evaluate every saved checkpoint")
    model.add_argument("--hf-dir", help="an HF model folder (lm-eval's hf backend)")
    parser.add_argument("--task", action="append", required=True, metavar="NAME=FORMAT:PATH",
                        help="e.g. pubmedqa=pubmedqa:/data/pubmedqa or medqa4=medqa:/data/medqa/test.jsonl "
                        "(formats: pubmedqa, medqa, medmcqa, mmlu, mcq; an mmlu folder of <subject>.jsonl "
                        "files expands to Med42's 13 medical subjects); repeat for several")
    parser.add_argument("--output", default="runs/eval", help="results folder (default runs/eval)")
    parser.add_argument("--tp", type=int, default=1, help="tensor parallel size to load at")
    parser.add_argument("--pp", type=int, default=1, help="pipeline parallel size to load at")
    parser.add_argument("--tokenizer", help="tokenizer (default: the one the run trained with)")
    parser.add_argument("--limit", type=int, help="first N questions per task (quick checks)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--prompt", choices=("plain", "med42"), default="plain",
                        help="prompt framing: plain 'Question/Answer' or Med42's chat role tags")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from medmegatron.evaluation.tasks import parse_task_spec
    from medmegatron.runtime import launch

    sources = [parse_task_spec(spec) for spec in args.task]
    world = args.tp * args.pp
    if world > 1 and not args.hf_dir and not launch.under_launcher():
        return launch.relaunch(world, ["medmegatron", *sys.argv[1:]])
    from medmegatron.evaluation.run import markdown_table, run_eval

    out = run_eval(sources=sources, output=Path(args.output), ckpt=args.ckpt, ckpts=args.ckpts,
                   hf_dir=args.hf_dir, tp=args.tp, pp=args.pp, tokenizer=args.tokenizer,
                   limit=args.limit, batch_size=args.batch_size, prompt=args.prompt,
                   is_writer=launch.is_rank_zero())
    if launch.is_rank_zero():
        if "points" in out:
            print(f"evaluated {len(out['points'])} checkpoints; plot: {Path(args.output) / 'accuracy_vs_tokens.png'}")
        else:
            print(markdown_table(out), end="")
            print(f"results: {Path(args.output) / 'results.json'}")
    return 0
