"""CLI: ``python -m duet_verl.serve --large M --small m [--port 8000]``: an OpenAI-compatible DUET endpoint.

``--large``/``--small`` are each either a model folder (or hub id), run in this process by ``--backend`` (vLLM on
a GPU, transformers on a CPU), or the URL of an OpenAI-compatible engine serving that model (``vllm serve``): the
server is then a router, and each engine is scaled and placed on its own. See docs/serving.md.
"""

from __future__ import annotations

import asyncio
import socket
import sys

from duet_verl.cli import (
    ArgumentParser,
    UsageError,
    check_model,
    fraction,
    non_negative_float,
    port,
    positive_int,
    report,
    require_vllm,
    top_k,
)
from duet_verl.core import MATH_INSTRUCTION, TEMPLATES, THINK_END, THINK_START
from duet_verl.inference import Sampling


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m duet_verl.serve",
        description="Serve a DUET pair behind OpenAI's chat-completions API: M thinks, m answers. "
        "Defaults are the paper's evaluation settings.",
    )
    parser.add_argument("--large", required=True, help="M: model folder or hub id, or an engine URL (http://…)")
    parser.add_argument("--small", required=True, help="m: model folder or hub id, or an engine URL (http://…)")
    parser.add_argument("--large-tokenizer", help="M's tokenizer for an engine URL (default: the path it serves)")
    parser.add_argument("--small-tokenizer", help="m's tokenizer for an engine URL (default: the path it serves)")
    parser.add_argument("--backend", choices=("hf", "vllm"), default="vllm", help="in-process models: vllm or hf")
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve other machines")
    parser.add_argument("--port", type=port, default=8000)
    parser.add_argument("--served-model-name", default="duet", help="the name clients send as 'model'")
    parser.add_argument("--large-max-tokens", type=positive_int, default=16384, help="M's thinking budget")
    parser.add_argument("--large-temperature", type=non_negative_float, default=0.6, help="M's (0: greedy)")
    parser.add_argument("--large-top-p", type=fraction, default=0.95)
    parser.add_argument("--large-top-k", type=top_k, default=20)
    parser.add_argument("--small-max-tokens", type=positive_int, default=2048,
                        help="m's answer budget (max_tokens ≤ this)")  # fmt: skip
    parser.add_argument("--small-temperature", type=non_negative_float, default=0.0,
                        help="m's (0: greedy); per request too")  # fmt: skip
    parser.add_argument("--small-top-p", type=fraction, default=1.0)
    parser.add_argument("--small-template", choices=[t for t in TEMPLATES if t != "baseline"], default="paper")
    parser.add_argument("--small-max-prompt-tokens", type=positive_int,
                        help="cut the signal's start to fit (default: no cut)")  # fmt: skip
    parser.add_argument("--max-prompt-tokens", type=positive_int, default=4096,
                        help="M's prompt budget (longer: a 400)")  # fmt: skip
    parser.add_argument("--max-request-bytes", type=positive_int, default=4 * 2**20,
                        help="largest request body in bytes (larger: a 413)")  # fmt: skip
    parser.add_argument(
        "--large-instruction",
        default=MATH_INSTRUCTION,
        help="appended to the question for M, as in training (default: data_prep's math instruction); m reads "
        "the question without it. Pass '' when clients send M's full prompt themselves",
    )
    parser.add_argument("--think-start", default=THINK_START, help="M's start-of-thinking marker (duet.think_start)")
    parser.add_argument("--think-end", default=THINK_END, help="M's end-of-thinking marker (duet.think_end)")
    parser.add_argument("--max-batch", type=positive_int, default=32,
                        help="in-process models: requests per generate call")  # fmt: skip
    parser.add_argument("--device", help="hf backend: torch device (default: cuda if available, else cpu)")
    parser.add_argument("--large-gpu-memory", type=fraction, default=0.6, help="vllm backend: M's memory fraction")
    parser.add_argument("--small-gpu-memory", type=fraction, default=0.25, help="vllm backend: m's memory fraction")
    parser.add_argument("--max-model-len", type=positive_int, help="vllm backend: max_model_len (default: the model's)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return parser


def is_url(model: str) -> bool:
    return model.startswith(("http://", "https://"))


def check_args(args) -> None:
    """Refuse bad flags before any model loads (``UsageError``): models that are not there, vLLM missing for
    in-process models on the vllm backend, a port this machine will not give."""
    local = []
    for role, name in (("large", "M"), ("small", "m")):
        model = getattr(args, role)
        if getattr(args, f"{role}_tokenizer") and not is_url(model):
            raise UsageError(f"--{role}-tokenizer is for an engine URL; --{role} is a model, whose tokenizer is used")
        if not is_url(model):
            local.append(model)
            check_model(model, name, f"--{role}")
    if local and args.backend == "vllm":
        require_vllm()
    with socket.socket() as probe:  # the port, before minutes of loading models
        try:
            probe.bind((args.host, args.port))
        except OSError as error:
            raise UsageError(f"--host {args.host} --port {args.port}: cannot listen there ({error.strerror}); pick "
                             "another port, or stop what holds it") from error  # fmt: skip


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
    from duet_verl.inference import backends

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
    try:
        check_args(args)
        asyncio.run(serve(args))
    except UsageError as error:
        return report(error, args)
    except Exception as error:  # an engine that fails, a model that does not load: one line, --debug for more
        return report(error, args, usage=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
