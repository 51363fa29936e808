"""The in-process engine under the DUET app: concurrent requests share ``generate`` calls, and a model that stops
working turns requests into 503s and ``/health`` into a 503 naming it."""

import asyncio
import json

import httpx
import pytest

from duet_verl.inference import Sampling
from duet_verl.inference.backends import HFGenerator
from duet_verl.serve.app import DuetService, build_app
from duet_verl.serve.engines import LocalEngine


class Recording:
    """A real generator that records the size of every batch it is given."""

    def __init__(self, generator):
        self.generator, self.batches = generator, []

    def generate(self, prompts, *args):
        self.batches.append(len(prompts))
        return self.generator.generate(prompts, *args)

    def close(self):
        self.generator.close()


@pytest.fixture
def service(tiny_assets, tiny_tokenizer):
    large = Recording(HFGenerator(str(tiny_assets["large"]), batch_size=32))
    small = Recording(HFGenerator(str(tiny_assets["small"]), batch_size=32))
    return DuetService(
        large=LocalEngine("large", large),
        small=LocalEngine("small", small),
        large_tokenizer=tiny_tokenizer,
        small_tokenizer=tiny_tokenizer,
        large_sampling=Sampling(max_new_tokens=24, temperature=0.6, top_p=0.95, top_k=20),
        small_sampling=Sampling(max_new_tokens=8, temperature=0.0),
    )


def post(client, question: str, seed: int, stream: bool = False):
    body = {"model": "duet", "messages": [{"role": "user", "content": question}], "seed": seed, "stream": stream}
    return client.post("/v1/chat/completions", json=body)


async def in_app(service, work):
    transport = httpx.ASGITransport(app=build_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://duet", timeout=120) as client:
        return await work(client)


def test_concurrent_requests_are_batched_by_the_engine(service):
    async def work(client):
        return await asyncio.gather(*(post(client, f"What is {i} + {i}?", seed=i) for i in range(12)))

    replies = asyncio.run(in_app(service, work))
    assert [reply.status_code for reply in replies] == [200] * 12
    for engine in (service.large, service.small):
        assert sum(engine.generator.batches) == 12
        assert max(engine.generator.batches) > 1, engine.generator.batches  # not one request at a time


def test_a_dead_model_is_a_503_and_health_says_which(service):
    async def work(client):
        healthy = await client.get("/health")
        service.small.generator.close()  # m's weights are gone: its next generate fails
        answer = await post(client, "What is 2 + 2?", seed=1)
        stream = await post(client, "What is 2 + 2?", seed=1, stream=True)
        health = await client.get("/health")
        return healthy, answer, stream, health

    healthy, answer, stream, health = asyncio.run(in_app(service, work))
    assert healthy.status_code == 200 and healthy.json()["small"] == "ok"
    assert answer.status_code == 503
    error = answer.json()["error"]
    assert error["type"] == "service_unavailable_error" and "small model's engine failed" in error["message"]
    # The stream had started (M's signal was sent) when m failed: the failure is its last event before [DONE].
    assert stream.status_code == 200
    events = [line[len("data: ") :] for line in stream.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]" and "small model's engine failed" in json.loads(events[-2])["error"]["message"]
    assert any("reasoning_content" in json.loads(event)["choices"][0]["delta"] for event in events[:-2])
    assert health.status_code == 503
    assert health.json()["status"] == "unavailable" and health.json()["large"] == "ok"
    assert "last batch failed" in health.json()["small"]


def test_a_dead_large_model_fails_a_stream_before_it_starts(service):
    async def work(client):
        service.large.generator.close()
        return await post(client, "What is 2 + 2?", seed=1, stream=True)

    reply = asyncio.run(in_app(service, work))
    assert reply.status_code == 503 and "large model's engine failed" in reply.json()["error"]["message"]


def test_a_stop_id_ends_generation_and_is_kept(tiny_assets):
    """How the server stops M at ``</think>``: generation ends at the first stop id, which stays in the output."""
    generator = HFGenerator(str(tiny_assets["large"]))
    [whole] = generator.generate([[10, 20, 30]], 8, 0.0, 1.0, 0, [0])
    stop = next(token for i, token in enumerate(whole.token_ids) if i >= 2 and token not in whole.token_ids[:i])
    [stopped] = generator.generate([[10, 20, 30]], 8, 0.0, 1.0, 0, [0], (stop,))
    assert stopped.token_ids == whole.token_ids[: whole.token_ids.index(stop) + 1]


def test_a_heterogeneous_pair_is_served(llama_assets, tiny_assets, tiny_tokenizer):
    """M from the Llama-style family (its own tokenizer, special thinking tags), m a Qwen3: each prompt is
    rendered with its own model's tokenizer, and M is stopped at its own ``</think>``."""
    from duet_verl.core import render_small_prompt
    from duet_verl.inference import chat_prompt

    large = HFGenerator(str(llama_assets["llama_large"]))
    service = DuetService(
        large=LocalEngine("large", large),
        small=LocalEngine("small", HFGenerator(str(tiny_assets["small"]))),
        large_tokenizer=large.tokenizer,
        small_tokenizer=tiny_tokenizer,
        large_sampling=Sampling(max_new_tokens=24, temperature=0.6, top_p=0.95, top_k=20),
        small_sampling=Sampling(max_new_tokens=8, temperature=0.0),
    )
    assert service.large_decoder.end_id == large.tokenizer.convert_tokens_to_ids("</think>") != -1

    async def work(client):
        return await post(client, "What is 3 + 4?", seed=5)

    reply = asyncio.run(in_app(service, work))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    usage, signal = body["usage"], body["choices"][0]["message"]["reasoning_content"]
    messages = [{"role": "user", "content": "What is 3 + 4?"}]
    assert usage["large"]["prompt_tokens"] == len(chat_prompt(large.tokenizer, messages, thinking=True))
    small_prompt = render_small_prompt(tiny_tokenizer, "paper", "What is 3 + 4?", signal)
    assert usage["small"]["prompt_tokens"] == len(small_prompt.token_ids)
    assert "<|eot_id|>" not in signal and "<|begin_of_text|>" not in signal
