"""Serving throughput and latency: DUET (M thinks, m answers, through ``duet_verl.serve``) vs M alone on the same
engines and questions, and the M tokens DUET saves per request.

    python benchmarks/bench_serve.py --large M --small m [--base-large M0] [--data test.parquet]
        [--requests 64] [--concurrency 8] [serve flags: --backend, engine URLs, sampling, ...]

DUET requests go over HTTP to the server (started in this process on a free port, with the serve CLI's flags).
M alone is base M (``--base-large``, default ``--large``) answering with thinking on and no stop at ``</think>``,
its budget M's plus m's, on an engine built the same way, at the same concurrency. With ``--data`` (a
``data_prep``/learning-world parquet file) both answers are scored; without it the questions are generic
arithmetic, unscored. Prints a table; ``--out FILE`` also writes it as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from duet_verl.cli import UsageError, positive_int, report
from duet_verl.core import score_answer
from duet_verl.inference import chat_prompt, large_output
from duet_verl.serve.__main__ import build_parser, build_service, check_args, make_engine


@dataclass(frozen=True)
class Item:
    question: str
    data_source: str | None = None
    ground_truth: str | None = None


def load_items(data: Path | None, count: int) -> list[Item]:
    if data is None:
        return [Item(f"What is {i} + {2 * i}?") for i in range(count)]
    import pandas as pd

    rows = pd.read_parquet(data).to_dict("records")
    items = [
        Item(str(row["extra_info"]["question"]), str(row["data_source"]), str(row["reward_model"]["ground_truth"]))
        for row in rows
    ]
    return [items[i % len(items)] for i in range(count)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(name: str, latencies: list[float], wall: float, large_tokens: list[int], correct: list[bool | None]):
    scored = [c for c in correct if c is not None]
    return {
        "mode": name,
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / wall, 2),
        "p50_s": round(percentile(latencies, 0.5), 3),
        "p95_s": round(percentile(latencies, 0.95), 3),
        "large_tokens_per_request": round(statistics.mean(large_tokens), 1),
        "accuracy": round(sum(scored) / len(scored), 3) if scored else None,
    }


def score(item: Item, text: str) -> bool | None:
    return None if item.data_source is None else score_answer(item.data_source, text, item.ground_truth).score > 0


async def timed(items: list[Item], concurrency: int, one) -> tuple[list, float]:
    """``one(i, item)`` for every item, ``concurrency`` at a time: results with latencies, and the wall time."""
    gate = asyncio.Semaphore(concurrency)

    async def run(i: int, item: Item):
        async with gate:
            start = time.perf_counter()
            result = await one(i, item)
            return time.perf_counter() - start, result

    start = time.perf_counter()
    results = await asyncio.gather(*(run(i, item) for i, item in enumerate(items)))
    return results, time.perf_counter() - start


async def bench(args) -> list[dict]:
    import httpx
    import uvicorn

    from duet_verl.serve.app import build_app
    from duet_verl.testing.http_server import free_port

    items = load_items(args.data, args.requests)
    service = await build_service(args)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_app(service), port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.1)

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=3600) as client:

        async def duet(i: int, item: Item):
            body = {
                "model": args.served_model_name,
                "messages": [{"role": "user", "content": item.question}],
                "seed": i,
            }
            reply = await client.post("/v1/chat/completions", json=body)
            reply.raise_for_status()
            answer = reply.json()
            return answer["usage"]["large"]["completion_tokens"], score(
                item, answer["choices"][0]["message"]["content"]
            )

        await timed(items[: args.concurrency], args.concurrency, duet)  # warm-up
        duet_results, duet_wall = await timed(items, args.concurrency, duet)
    server.should_exit = True
    await serving

    alone_engine = service.large
    if args.base_large and args.base_large != args.large:
        alone_engine, _ = await make_engine(replace_large(args), "large")
    sampling = replace(service.large_sampling, max_new_tokens=args.large_max_tokens + args.small_max_tokens)

    async def alone(i: int, item: Item):
        messages = [{"role": "user", "content": item.question + args.large_instruction}]
        generation = await alone_engine.generate(chat_prompt(service.large_tokenizer, messages, True), sampling, i)
        output = large_output(generation, 0.0, service.large_decoder)
        return output.tokens, score(item, output.text)

    alone_results, alone_wall = await timed(items, args.concurrency, alone)
    rows = [
        summary("DUET (M → m)", [r[0] for r in duet_results], duet_wall, [r[1][0] for r in duet_results],
                [r[1][1] for r in duet_results]),
        summary("M alone", [r[0] for r in alone_results], alone_wall, [r[1][0] for r in alone_results],
                [r[1][1] for r in alone_results]),
    ]  # fmt: skip
    saving = 1 - rows[0]["large_tokens_per_request"] / rows[1]["large_tokens_per_request"]
    rows[0]["large_token_saving"] = round(saving, 3)
    await service.close()
    if alone_engine is not service.large:
        await alone_engine.close()
    return rows


def replace_large(args) -> argparse.Namespace:
    copy = argparse.Namespace(**vars(args))
    copy.large = args.base_large
    return copy


def main() -> None:
    parser = build_parser()
    parser.description = __doc__
    parser.add_argument("--base-large", help="M alone's model (default --large): base M before DUET training")
    parser.add_argument("--data", type=Path, help="parquet with extra_info.question and reward_model.ground_truth")
    parser.add_argument("--requests", type=positive_int, default=64)
    parser.add_argument("--concurrency", type=positive_int, default=8)
    parser.add_argument("--out", type=Path, help="a folder: also write the table there, as bench_serve.json")
    args = parser.parse_args()
    try:
        check_args(args)
    except UsageError as error:
        sys.exit(report(error, args))
    rows = asyncio.run(bench(args))
    columns = list(rows[0])
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(str(row.get(column, "")) for column in columns) + " |")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        table = {"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}
        (args.out / "bench_serve.json").write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
