"""CLI: ``python -m duet_verl.serve --large M --small m [--port 8000]``: an OpenAI-compatible DUET endpoint.

``--large``/``--small`` are each either a model folder (or hub id), run in this process by ``--backend`` (vLLM on
a GPU, transformers on a CPU), or the URL of an OpenAI-compatible engine serving that model (``vllm serve``): the
server is then a router, and each engine is scaled and placed on its own. See docs/serving.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from duet_verl.core import MATH_INSTRUCTION, TEMPLATES, THINK_END, THINK_START
from duet_verl.evaluate.inputs import EvalInputError, check_model
from duet_verl.inference import Sampling


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m duet_verl.serve",
        description="Serve a DUET pair behind OpenAI's chat-completions API: M thinks, m answers. "
        "Defaults are the paper's evaluation settings.",
    )
    parser.add_argument("--large", required=True, help="M: model folder or hub id, or an engine URL (http://…)")
    parser.add_argument("--small", required=True, help="m: model folder or hub id, or an engine URL (http://…)")
    parser.add_argument("--large-tokenizer", help="M's tokenizer for an engine URL (default: the path it serves)")
    parser.add_argument("--small-tokenizer", help="m's tokenizer for an engine URL (default: the path it serves)")
    parser.add_argument("--backend", choices=("hf", "vllm"), default="vllm", help="in-process models (default vllm)")
    parser.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1; 0.0.0.0 to serve other machines")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--served-model-name", default="duet", help="the name clients send as 'model'")
    parser.add_argument("--large-max-tokens", type=int, default=16384, help="M's thinking budget")
    parser.add_argument("--large-temperature", type=float, default=0.6)
    parser.add_argument("--large-top-p", type=float, default=0.95)
    parser.add_argument("--large-top-k", type=int, default=20)
    parser.add_argument("--small-max-tokens", type=int, default=2048, help="m's answer budget (max_tokens ≤ this)")
    parser.add_argument("--small-temperature", type=float, default=0.0, help="default 0 (greedy); per request too")
    parser.add_argument("--small-top-p", type=float, default=1.0)
    parser.add_argument("--small-template", choices=[t for t in TEMPLATES if t != "baseline"], default="paper")
    parser.add_argument("--small-max-prompt-tokens", type=int, help="cut the signal's start to fit (default: no cut)")
    parser.add_argument("--max-prompt-tokens", type=int, default=4096, help="M's prompt budget (longer: a 400)")
    parser.add_argument(
        "--max-request-bytes", type=int, default=4 * 2**20, help="largest request body (larger: a 413); default 4 MiB"
    )
    parser.add_argument(
        "--large-instruction",
        default=MATH_INSTRUCTION,
        help="appended to the question for M, as in training (default: data_prep's math instruction); m reads "
        "the question without it. Pass '' when clients send M's full prompt themselves",
    )
    parser.add_argument("--think-start", default=THINK_START, help="M's start-of-thinking marker (duet.think_start)")
    parser.add_argument("--think-end", default=THINK_END, help="M's end-of-thinking marker (duet.think_end)")
    parser.add_argument("--max-batch", type=int, default=32, help="in-process models: requests per generate call")
    parser.add_argument("--device", help="hf backend: torch device (default: cuda if available, else cpu)")
    parser.add_argument("--large-gpu-memory", type=float, default=0.6, help="vllm backend: M's memory fraction")
    parser.add_argument("--small-gpu-memory", type=float, default=0.25, help="vllm backend: m's memory fraction")
    parser.add_argument("--max-model-len", type=int, help="vllm backend: max_model_len (default: the model's)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return parser


def is_url(model: str) -> bool:
    return model.startswith(("http://", "https://"))


def check_args(args) -> None:
    """Refuse bad flags before any model loads."""
    for flag in ("large_max_tokens", "small_max_tokens", "max_prompt_tokens", "max_request_bytes", "max_batch"):
        if getattr(args, flag) < 1:
            raise SystemExit(f"--{flag.replace('_', '-')} must be ≥ 1, got {getattr(args, flag)}")
    if args.small_max_prompt_tokens is not None and args.small_max_prompt_tokens < 1:
        raise SystemExit(f"--small-max-prompt-tokens must be ≥ 1, got {args.small_max_prompt_tokens}")
    for role, name in (("large", "M"), ("small", "m")):
        model = getattr(args, role)
        if getattr(args, f"{role}_tokenizer") and not is_url(model):
            raise SystemExit(f"--{role}-tokenizer is for an engine URL; --{role} is a model, whose tokenizer is used")
        if not is_url(model):
            try:
                check_model(model, name, f"--{role}")
            except EvalInputError as error:
                raise SystemExit(f"error: {error}") from error


async def make_engine(args, role: str):
    """The engine for one model and its tokenizer."""
    from transformers import AutoTokenizer

    from duet_verl.serve.engines import LocalEngine, RemoteEngine

    model = getattr(args, role)
    if is_url(model):
        served, root = await RemoteEngine.served_model(model)
        tokenizer = AutoTokenizer.from_pretrained(getattr(args, f"{role}_tokenizer") or root)
        engine = RemoteEngine(role, model, tokenizer)
        engine.model = served
        return engine, tokenizer
    from duet_verl.evaluate import backends

    if args.backend == "hf":
        generator = backends.HFGenerator(model, batch_size=args.max_batch, device=args.device)
        tokenizer = generator.tokenizer
    else:
        memory = args.large_gpu_memory if role == "large" else args.small_gpu_memory
        generator = backends.VLLMGenerator(model, 1, memory, args.max_model_len)
        tokenizer = AutoTokenizer.from_pretrained(model)
    return LocalEngine(role, generator, args.max_batch), tokenizer


async def build_service(args):
    from duet_verl.serve.app import DuetService

    (large, large_tokenizer), (small, small_tokenizer) = [await make_engine(args, role) for role in ("large", "small")]
    return DuetService(
        large=large,
        small=small,
        large_tokenizer=large_tokenizer,
        small_tokenizer=small_tokenizer,
        large_sampling=Sampling(args.large_max_tokens, args.large_temperature, args.large_top_p, args.large_top_k),
        small_sampling=Sampling(args.small_max_tokens, args.small_temperature, args.small_top_p),
        model=args.served_model_name,
        small_template=args.small_template,
        max_prompt_tokens=args.max_prompt_tokens,
        small_max_prompt_tokens=args.small_max_prompt_tokens,
        large_instruction=args.large_instruction,
        markers=(args.think_start, args.think_end),
        max_request_bytes=args.max_request_bytes,
    )


async def serve(args) -> None:
    import uvicorn

    from duet_verl.serve.app import build_app

    service = await build_service(args)
    print(
        f"[duet-serve] M: {args.large}, m: {args.small}; serving {args.served_model_name!r} at "
        f"http://{args.host}:{args.port}/v1",
        flush=True,
    )
    config = uvicorn.Config(build_app(service), host=args.host, port=args.port, log_level=args.log_level)
    try:
        await uvicorn.Server(config).serve()
    finally:
        await service.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_args(args)
    from duet_verl.serve.engines import EngineError

    try:
        asyncio.run(serve(args))
    except EngineError as error:
        print(f"[duet-serve] error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
