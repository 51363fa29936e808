"""Throughput of the CPU ``hf`` rollout server: concurrent requests served one at a time vs batched.

    python benchmarks/bench_hf_rollout.py [--requests 64] [--response-length 48] [--model large]

Builds the offline tiny fixtures in a temporary folder, sends ``--requests`` concurrent requests (as verl's agent
loop does for one generation batch) with ``rollout.max_num_seqs=1`` (one ``generate()`` per request, the server
before batching) and with the default cap, and prints requests/s for each.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time

from duet_verl.cpu.hf_rollout import HFRolloutServer
from duet_verl.testing.hf_server import standalone_hf_server
from duet_verl.worlds import tiny


def make_server(model_dir, response_length: int, max_num_seqs: int) -> HFRolloutServer:
    return standalone_hf_server(
        model_dir,
        "actor_rollout_ref.rollout.prompt_length=64",
        f"actor_rollout_ref.rollout.response_length={response_length}",
        f"actor_rollout_ref.rollout.max_num_seqs={max_num_seqs}",
    )


def serve(server: HFRolloutServer, prompts: list[list[int]]) -> float:
    async def run():
        params = {"temperature": 1.0, "logprobs": True}
        await asyncio.gather(*[server.generate(p, dict(params), request_id=str(i)) for i, p in enumerate(prompts)])

    start = time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--response-length", type=int, default=48)
    parser.add_argument("--model", choices=sorted(tiny.MODEL_SPECS), default="large")
    args = parser.parse_args()
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as folder:
        paths = tiny.build_all(folder)
        prompts = [[rng.randrange(10, 500) for _ in range(rng.randint(16, 48))] for _ in range(args.requests)]
        for label, cap in (("one generate() per request", 1), ("batched (max_num_seqs=256)", 256)):
            server = make_server(paths[args.model], args.response_length, cap)
            seconds = serve(server, prompts)
            print(
                f"{label:>28}: {args.requests} requests in {seconds:6.2f} s = {args.requests / seconds:7.1f} req/s "
                f"({server.num_generate_calls} generate calls)"
            )


if __name__ == "__main__":
    main()
