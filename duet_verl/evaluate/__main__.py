"""CLI: ``python -m duet_verl.evaluate --large M --small m --data a.parquet b.parquet --modes duet large --out DIR``.

``--base-large`` names base M for ``large`` and ``concise`` (default: ``--large``), so one run compares M
alone before training with the trained pair.
"""

from __future__ import annotations

import argparse
import sys

from duet_verl.cli import (
    ArgumentParser,
    UsageError,
    fraction,
    non_negative_float,
    positive_int,
    report,
    require_vllm,
    top_k,
)
from duet_verl.core import SMALL_QUESTIONS, TEMPLATES, THINK_END, THINK_START
from duet_verl.evaluate.config import EvalConfig
from duet_verl.evaluate.metrics import MODES
from duet_verl.evaluate.runner import run
from duet_verl.inference import Sampling


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m duet_verl.evaluate",
        description=(
            "Evaluate DUET and its baselines on prepared parquet files. Records go to OUT/records.jsonl as they "
            "finish (rerun the same command to resume); OUT/summary.json, summary.md and accuracy_vs_tokens.png "
            "are written at the end. Defaults are the paper's settings."
        ),
    )
    parser.add_argument("--large", help="M: model folder or hub id; duet's M, and large's and concise's by default")
    parser.add_argument(
        "--base-large",
        help="base M (before training) for large and concise; default --large, one response serving duet too",
    )
    parser.add_argument("--small", help="m: model folder or hub id (needed by duet, small)")
    parser.add_argument(
        "--data", nargs="+", required=True, help="parquet files from python -m duet_verl.data_prep.<name>"
    )
    parser.add_argument("--modes", nargs="+", default=["duet", "large"], choices=MODES, help="what to evaluate")
    parser.add_argument("--out", required=True, help="output folder (reused to resume)")
    parser.add_argument("--backend", choices=("hf", "vllm"), default="vllm", help="vllm (GPU) or hf (transformers)")
    parser.add_argument("--small-template", choices=[t for t in TEMPLATES if t != "baseline"], default="paper")
    parser.add_argument(
        "--small-question", choices=SMALL_QUESTIONS, default="bare",
        help="what m reads in duet: the bare question (as in training) or as_prompted, M's user message "
        "with the answer instruction (the authors' form; duet.val_small_question)",
    )  # fmt: skip
    parser.add_argument("--samples", type=positive_int, default=1,
                        help="samples per question (each its own seed); reports mean ± std over them")  # fmt: skip
    parser.add_argument("--seeds", type=int, help=argparse.SUPPRESS)  # renamed: --samples (refused with that name)
    parser.add_argument("--max-samples", type=positive_int, help="only the first N questions of each file (all)")
    parser.add_argument("--large-max-tokens", type=positive_int, default=16384, help="M's new tokens")
    parser.add_argument("--large-temperature", type=non_negative_float, default=0.6, help="M's (0: greedy)")
    parser.add_argument("--large-top-p", type=fraction, default=0.95)
    parser.add_argument("--large-top-k", type=top_k, default=20)
    parser.add_argument("--small-max-tokens", type=positive_int, default=2048, help="m's new tokens")
    parser.add_argument("--small-temperature", type=non_negative_float, default=0.0, help="m's (0: greedy)")
    parser.add_argument("--small-max-prompt-tokens", type=positive_int,
                        help="cut the signal's start to fit (default: no cut)")  # fmt: skip
    parser.add_argument("--think-start", default=THINK_START, help="M's start-of-thinking marker (duet.think_start)")
    parser.add_argument("--think-end", default=THINK_END, help="M's end-of-thinking marker (duet.think_end)")
    parser.add_argument("--chunk-size", type=positive_int,
                        help="questions per generation call (default: hf 8, vllm 1024)")  # fmt: skip
    parser.add_argument("--large-tp", type=positive_int, default=1, help="vllm tensor parallel size of M (and base M)")
    parser.add_argument("--small-tp", type=positive_int, default=1, help="vllm tensor parallel size of m")
    parser.add_argument("--tp", type=int, help=argparse.SUPPRESS)  # renamed: --large-tp / --small-tp (refused)
    parser.add_argument(
        "--large-gpu-memory",
        type=fraction,
        default=0.6,
        help="vllm gpu_memory_utilization of M (and of base M: in turn); on vLLM's CPU build a fraction of RAM, "
        "unless VLLM_CPU_KVCACHE_SPACE sets the KV cache in GiB",
    )
    parser.add_argument("--small-gpu-memory", type=fraction, default=0.25, help="vllm gpu_memory_utilization of m")
    parser.add_argument("--max-model-len", type=positive_int, help="vllm max_model_len (default: the model's)")
    parser.add_argument("--device", help="hf backend: torch device (default: cuda if available, else cpu)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return parser


def make_generator_factory(args):
    """Build generators lazily so that bad input is reported before torch or vllm is imported."""

    def make(model_path: str, role: str):
        from duet_verl.inference import backends

        if args.backend == "hf":
            return backends.HFGenerator(model_path, batch_size=args.chunk_size or 8, device=args.device)
        memory = args.small_gpu_memory if role == "small" else args.large_gpu_memory
        tp = args.small_tp if role == "small" else args.large_tp
        return backends.VLLMGenerator(model_path, tp, memory, args.max_model_len)

    return make


def config_from_args(args) -> EvalConfig:
    return EvalConfig(
        data=args.data,
        out=args.out,
        modes=list(dict.fromkeys(args.modes)),
        large=args.large,
        small=args.small,
        base_large=args.base_large,
        small_template=args.small_template,
        small_question=args.small_question,
        large_sampling=Sampling(args.large_max_tokens, args.large_temperature, args.large_top_p, args.large_top_k),
        small_sampling=Sampling(args.small_max_tokens, args.small_temperature),
        small_max_prompt_tokens=args.small_max_prompt_tokens,
        markers=(args.think_start, args.think_end),
        seeds=args.samples,
        max_samples=args.max_samples,
        chunk_size=args.chunk_size or (8 if args.backend == "hf" else 1024),
        progress=not args.no_progress,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.seeds is not None:
        parser.error("--seeds is now --samples (samples per question); the benchmarks' --seeds are lists of seeds")
    if args.tp is not None:
        parser.error("--tp is now --large-tp (M's engines) and --small-tp (m's), as TP_LARGE / TP_SMALL in the recipes")
    try:
        if args.backend == "vllm":
            require_vllm()
        summary = run(config_from_args(args), make_generator_factory(args))
    except UsageError as error:  # EvalInputError among them
        return report(error, args)
    except Exception as error:  # a failure while running: one line, the traceback with --debug
        return report(error, args, usage=False)
    from duet_verl.evaluate.report import markdown

    print(markdown(summary))
    print(f"records, summary.json, summary.md and accuracy_vs_tokens.png are in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
