"""``python -m duet_verl.serve`` with the in-process transformers backend on the tiny pair, driven by the official
``openai`` client and by ``curl``: answers, streams, 50 concurrent requests, bad input."""

import asyncio
import json
import subprocess
import sys

import openai
import pytest

from duet_verl.core import MATH_INSTRUCTION, render_small_prompt
from duet_verl.inference import DuetPipeline, Sampling, chat_prompt
from duet_verl.inference.backends import HFGenerator
from duet_verl.testing.http_server import ServerProcess, free_port

pytestmark = pytest.mark.slow  # an end-to-end run: outside the developer loop (docs/development.md)

LARGE = Sampling(max_new_tokens=40, temperature=0.6, top_p=0.95, top_k=20)
SMALL = Sampling(max_new_tokens=16, temperature=0.0)
MAX_PROMPT_TOKENS = 96


def messages(question: str) -> list[dict]:
    return [{"role": "user", "content": question}]


@pytest.fixture(scope="module")
def server(tiny_assets, tmp_path_factory):
    port = free_port()
    command = [
        sys.executable, "-m", "duet_verl.serve", "--backend", "hf", "--port", str(port),
        "--large", str(tiny_assets["large"]), "--small", str(tiny_assets["small"]),
        "--large-max-tokens", str(LARGE.max_new_tokens), "--small-max-tokens", str(SMALL.max_new_tokens),
        "--max-prompt-tokens", str(MAX_PROMPT_TOKENS),
    ]  # fmt: skip
    with ServerProcess(command, port, tmp_path_factory.mktemp("serve") / "server.log", timeout_s=180) as process:
        yield process


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def ask(client, question: str, seed: int, **fields):
    return client.chat.completions.create(model="duet", messages=messages(question), seed=seed, **fields)


def assert_chain_counts(tokenizer, question: str, reasoning: str, usage: dict) -> None:
    """The usage a response reports is that of its own question: M's prompt is the question with the server's
    instruction (as data_prep's files give it in training), m's holds the bare question and the signal returned
    beside the answer."""
    large_prompt = chat_prompt(tokenizer, messages(question + MATH_INSTRUCTION), thinking=True)
    assert usage["large"]["prompt_tokens"] == len(large_prompt)
    small_prompt = render_small_prompt(tokenizer, "paper", question, reasoning)
    assert usage["small"]["prompt_tokens"] == len(small_prompt.token_ids)
    assert usage["completion_tokens"] == usage["large"]["completion_tokens"] + usage["small"]["completion_tokens"]
    assert 0 < usage["large"]["completion_tokens"] <= LARGE.max_new_tokens
    assert 0 < usage["small"]["completion_tokens"] <= SMALL.max_new_tokens


def test_the_served_answer_is_the_pipelines(client, tiny_assets, tiny_tokenizer):
    """One request through the server equals the same request through ``DuetPipeline`` (same seeds): the server
    runs the chain that evaluation runs, on prompts built as data_prep builds them for training. M stops at
    ``</think>`` when served, which leaves the signal as it is."""
    question = "What is 12 + 30?"
    response = ask(client, question, seed=7)
    message = response.choices[0].message
    assert client.models.list().data[0].id == "duet"

    large, small = HFGenerator(str(tiny_assets["large"])), HFGenerator(str(tiny_assets["small"]))
    pipeline = DuetPipeline(large, small, tiny_tokenizer, tiny_tokenizer, LARGE, SMALL)
    [expected] = pipeline.run([question], [messages(question + MATH_INSTRUCTION)], large_seeds=[7], small_seeds=[7])
    assert message.content == expected.answer
    assert message.model_extra["reasoning_content"] == expected.small.signal
    usage = response.usage.model_dump()
    assert usage["small"]["prompt_tokens"] == expected.small.prompt_tokens
    assert usage["small"]["completion_tokens"] == expected.small.tokens
    assert usage["large"]["thinking_tokens"] == usage["completion_tokens_details"]["reasoning_tokens"]
    assert_chain_counts(tiny_tokenizer, question, expected.small.signal, usage)


def test_a_stream_sends_the_signal_then_the_answer(client):
    question = "What is 5 * 6?"
    whole = ask(client, question, seed=3)
    chunks = list(ask(client, question, seed=3, stream=True, stream_options={"include_usage": True}))
    deltas = [chunk.choices[0].delta for chunk in chunks if chunk.choices]
    reasoning = "".join(d.model_extra.get("reasoning_content") or "" for d in deltas)
    content = "".join(d.content or "" for d in deltas)
    first_content = next(i for i, d in enumerate(deltas) if d.content)
    assert all(not d.model_extra.get("reasoning_content") for d in deltas[first_content:])  # signal first
    assert reasoning == whole.choices[0].message.model_extra["reasoning_content"]
    assert content == whole.choices[0].message.content
    assert chunks[-2].choices[0].finish_reason == whole.choices[0].finish_reason
    assert chunks[-1].usage.model_dump() == whole.usage.model_dump()
    assert len({chunk.id for chunk in chunks}) == 1


def test_curl_gets_an_answer_and_a_stream(server):
    body = {"model": "duet", "messages": messages("What is 9 - 4?"), "seed": 1}
    post = ["curl", "-sS", "--fail-with-body", server.url + "/v1/chat/completions", "-H",
            "Content-Type: application/json"]  # fmt: skip
    answer = json.loads(subprocess.run([*post, "-d", json.dumps(body)], capture_output=True, check=True).stdout)
    assert answer["object"] == "chat.completion" and isinstance(answer["choices"][0]["message"]["content"], str)
    assert answer["usage"]["total_tokens"] > 0
    streamed = subprocess.run([*post, "-N", "-d", json.dumps(body | {"stream": True})], capture_output=True,
                              check=True, text=True).stdout  # fmt: skip
    events = [line[len("data: ") :] for line in streamed.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    content = "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks)
    assert content == answer["choices"][0]["message"]["content"]


def test_fifty_concurrent_requests_each_reach_their_caller(server, tiny_tokenizer):
    """Mixed streaming and non-streaming at once: none lost, and each response is its own question's (its
    prompt token counts are recomputed from its question and the signal it carries)."""

    async def one(client, i: int):
        question = f"Question {i}: what is {i} plus {'one ' * (i % 7)}?"
        request = {"model": "duet", "messages": messages(question), "seed": i}
        if i % 2:
            chunks = [c async for c in await client.chat.completions.create(
                **request, stream=True, stream_options={"include_usage": True})]  # fmt: skip
            deltas = [c.choices[0].delta for c in chunks if c.choices]
            reasoning = "".join(d.model_extra.get("reasoning_content") or "" for d in deltas)
            return question, reasoning, chunks[-1].usage.model_dump()
        response = await client.chat.completions.create(**request)
        return question, response.choices[0].message.model_extra["reasoning_content"], response.usage.model_dump()

    async def all_of_them():
        client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=300)
        async with client:
            return await asyncio.gather(*(one(client, i) for i in range(50)))

    results = asyncio.run(all_of_them())
    assert len(results) == 50
    for question, reasoning, usage in results:
        assert_chain_counts(tiny_tokenizer, question, reasoning, usage)
    assert server.health()[0] == 200


@pytest.mark.parametrize(
    ("request_fields", "error", "param"),
    [
        ({"messages": None}, openai.BadRequestError, "messages"),
        ({"messages": [{"role": "user", "content": 3}]}, openai.BadRequestError, "messages[0].content"),
        ({"temperature": "hot"}, openai.BadRequestError, "temperature"),
        ({"max_tokens": SMALL.max_new_tokens + 1}, openai.BadRequestError, "max_tokens"),
        ({"model": "gpt-4o"}, openai.NotFoundError, "model"),
        ({"messages": messages("why " * MAX_PROMPT_TOKENS)}, openai.BadRequestError, "messages"),
    ],
)
def test_bad_input_gets_an_openai_error_and_the_server_keeps_serving(client, request_fields, error, param):
    request = {"model": "duet", "messages": messages("What is 1 + 1?")} | request_fields
    with pytest.raises(error) as raised:
        client.chat.completions.create(**request)
    assert raised.value.body["param"] == param and raised.value.body["message"]
    if "why " in str(request_fields):
        assert raised.value.body["code"] == "context_length_exceeded"
    assert ask(client, "What is 1 + 1?", seed=0).choices[0].message.content is not None


def test_a_body_that_is_not_json_is_a_400(server):
    post = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", server.url + "/v1/chat/completions", "-d", "{nope"]
    out = subprocess.run(post, capture_output=True, check=True, text=True).stdout
    body, status = out.rsplit("\n", 1)
    assert status == "400" and json.loads(body)["error"]["type"] == "invalid_request_error"
