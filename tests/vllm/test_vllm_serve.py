"""``python -m duet_verl.serve`` on vLLM's CPU build, driven by the official ``openai`` client: first one box
(both models in the server's process), then the production shape, two real ``vllm serve`` engines (M, m) with
the server routing between them. Ends by killing m's engine."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import httpx
import openai
import pytest

from duet_verl.core import MATH_INSTRUCTION, extract_signal, render_small_prompt
from duet_verl.inference import chat_prompt
from duet_verl.testing.http_server import ServerProcess, free_port

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

LARGE_MAX_TOKENS, SMALL_MAX_TOKENS = 40, 16


def vllm_serve(model, name: str, log) -> ServerProcess:
    port = free_port()
    command = [
        os.path.join(os.path.dirname(sys.executable), "vllm"), "serve", str(model), "--port", str(port),
        "--host", "127.0.0.1", "--served-model-name", name, "--dtype", "float32", "--enforce-eager",
        "--max-model-len", "1024", "--kv-cache-memory-bytes", "256M",
    ]  # fmt: skip
    # A 256 MB KV cache each (VLLM_CPU_KVCACHE_SPACE, whole GiB only, would override it), and one thread each not
    # pinned to a core: two engines share this machine's two cores (docs/serving.md, on thread contention).
    env = {k: v for k, v in os.environ.items() if k != "VLLM_CPU_KVCACHE_SPACE"}
    env |= {"VLLM_CPU_OMP_THREADS_BIND": "nobind", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1"}  # fmt: skip
    return ServerProcess(command, port, log, env, timeout_s=400)


def test_one_box_with_in_process_vllm(tiny_assets, tmp_path, tiny_tokenizer):
    """``--backend vllm``: both models in the server's own process (vLLM's CPU build here, a GPU in use)."""
    port = free_port()
    env = os.environ | {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "duet_verl.serve", "--backend", "vllm", "--port", str(port),
               "--large", str(tiny_assets["large"]), "--small", str(tiny_assets["small"]), "--max-model-len", "1024",
               "--large-max-tokens", str(LARGE_MAX_TOKENS), "--small-max-tokens", str(SMALL_MAX_TOKENS)]  # fmt: skip
    with ServerProcess(command, port, tmp_path / "one_box.log", env, timeout_s=400) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=300)
        question = "What is 7 + 8?"
        request = {"model": "duet", "messages": [{"role": "user", "content": question}], "seed": 4}
        whole = client.chat.completions.create(**request)
        chunks = list(client.chat.completions.create(**request, stream=True, stream_options={"include_usage": True}))
    signal = whole.choices[0].message.model_extra["reasoning_content"]
    usage = whole.usage.model_dump()
    large_prompt = chat_prompt(tiny_tokenizer, [{"role": "user", "content": question + MATH_INSTRUCTION}], True)
    assert usage["large"]["prompt_tokens"] == len(large_prompt)
    assert usage["small"]["prompt_tokens"] == len(
        render_small_prompt(tiny_tokenizer, "paper", question, signal).token_ids
    )
    assert 0 < usage["small"]["completion_tokens"] <= SMALL_MAX_TOKENS
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole.choices[0].message.content
    assert chunks[-1].usage.model_dump() == usage


@pytest.fixture(scope="module")
def cluster(tiny_assets, tmp_path_factory, record_wall_time):
    logs = tmp_path_factory.mktemp("vllm_serve")
    start = time.perf_counter()
    large = vllm_serve(tiny_assets["large"], "tiny-large", logs / "large.log").start()
    small = vllm_serve(tiny_assets["small"], "tiny-small", logs / "small.log").start()
    record_wall_time("two vllm serve engines up (CPU)", time.perf_counter() - start)
    port = free_port()
    router = ServerProcess(
        [sys.executable, "-m", "duet_verl.serve", "--large", large.url, "--small", small.url, "--port", str(port),
         "--large-temperature", "0", "--large-max-tokens", str(LARGE_MAX_TOKENS),
         "--small-max-tokens", str(SMALL_MAX_TOKENS)],
        port, logs / "router.log", timeout_s=120,
    )  # fmt: skip
    try:
        yield large, small, router.start()
    finally:
        for process in (router, small, large):
            process.stop()


@pytest.fixture(scope="module")
def client(cluster):
    return openai.OpenAI(base_url=cluster[2].url + "/v1", api_key="unused", max_retries=0, timeout=300)


def complete(engine: ServerProcess, model: str, prompt: list[int], max_tokens: int, stop=()) -> list[int]:
    """The engine's own greedy completion of ``prompt``, token ids."""
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "return_token_ids": True,
            "stop_token_ids": list(stop), "skip_special_tokens": True}  # fmt: skip
    reply = httpx.post(engine.url + "/v1/completions", json=body, timeout=120)
    reply.raise_for_status()
    return reply.json()["choices"][0]["token_ids"]


def test_the_router_chains_the_two_engines(cluster, client, tiny_tokenizer):
    """M's signal is what M's engine writes for the question (stopped at ``</think>``), and the answer is what
    m's engine writes for m's prompt built from it: the router adds nothing and loses nothing."""
    large, small, _ = cluster
    question = "What is 12 + 30?"
    response = client.chat.completions.create(model="duet", messages=[{"role": "user", "content": question}], seed=1)
    assert [model.id for model in client.models.list().data] == ["duet"]

    large_prompt = chat_prompt(tiny_tokenizer, [{"role": "user", "content": question + MATH_INSTRUCTION}], True)
    think_end = tiny_tokenizer.convert_tokens_to_ids("</think>")
    large_ids = complete(large, "tiny-large", large_prompt, LARGE_MAX_TOKENS, stop=(think_end,))
    signal = extract_signal(tiny_tokenizer.decode(large_ids, skip_special_tokens=True)).text
    message = response.choices[0].message
    assert message.model_extra["reasoning_content"] == signal

    small_prompt = render_small_prompt(tiny_tokenizer, "paper", question, signal).token_ids
    small_ids = complete(small, "tiny-small", small_prompt, SMALL_MAX_TOKENS)
    assert message.content == tiny_tokenizer.decode(small_ids, skip_special_tokens=True)
    usage = response.usage.model_dump()
    assert usage["large"] == {"prompt_tokens": len(large_prompt), "completion_tokens": len(large_ids),
                              "thinking_tokens": usage["completion_tokens_details"]["reasoning_tokens"]}  # fmt: skip
    assert usage["small"] == {"prompt_tokens": len(small_prompt), "completion_tokens": len(small_ids),
                              "signal_tokens_cut": 0}  # fmt: skip


def test_a_stream_forwards_ms_tokens_as_they_come(client):
    request = {"model": "duet", "messages": [{"role": "user", "content": "What is 5 * 6?"}], "seed": 2}
    whole = client.chat.completions.create(**request)
    chunks = list(client.chat.completions.create(**request, stream=True, stream_options={"include_usage": True}))
    deltas = [chunk.choices[0].delta for chunk in chunks if chunk.choices]
    contents = [d.content for d in deltas if d.content]
    assert "".join(contents) == whole.choices[0].message.content
    assert len(contents) > 1  # m's engine streams: one delta per token or so, not the answer at once
    reasoning = "".join(d.model_extra.get("reasoning_content") or "" for d in deltas)
    assert reasoning == whole.choices[0].message.model_extra["reasoning_content"]
    assert chunks[-1].usage.model_dump() == whole.usage.model_dump()


def test_concurrent_requests_all_come_back(cluster):
    async def all_of_them():
        client = openai.AsyncOpenAI(base_url=cluster[2].url + "/v1", api_key="unused", max_retries=0, timeout=300)

        async def one(i: int):
            request = {"model": "duet", "messages": [{"role": "user", "content": f"Question {i}: {i} + {i}?"}],
                       "seed": i}  # fmt: skip
            if i % 2:
                chunks = [c async for c in await client.chat.completions.create(**request, stream=True)]
                return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            return (await client.chat.completions.create(**request)).choices[0].message.content

        async with client:
            return await asyncio.gather(*(one(i) for i in range(24)))

    answers = asyncio.run(all_of_them())
    assert len(answers) == 24 and all(isinstance(answer, str) for answer in answers)


def test_a_dead_engine_is_a_503_and_health_says_which(cluster, client):
    """Last in this module: it kills m's engine."""
    _, small, router = cluster
    assert router.health()[0] == 200
    small.kill()
    with pytest.raises(openai.InternalServerError) as raised:
        client.chat.completions.create(model="duet", messages=[{"role": "user", "content": "1 + 1?"}])
    assert raised.value.status_code == 503
    assert "small model's engine" in raised.value.body["message"]
    status, body = router.health()
    assert status == 503 and '"large":"ok"' in body and "unreachable" in body
