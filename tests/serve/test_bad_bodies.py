"""No request body a client can send makes the server answer 500: every malformed one gets an OpenAI-shaped 4xx,
and a body over ``max_request_bytes`` is refused with a 413 before it is read whole. The app runs in process on
engines that answer at once, so hypothesis can post thousands of bodies in seconds."""

import asyncio
import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duet_verl.inference import Sampling
from duet_verl.inference.backends import Generation
from duet_verl.serve.app import DuetService, build_app

LIMIT = 4096


class InstantEngine:
    """An engine that answers every prompt with the same short text, at once."""

    def __init__(self, name: str, text: str, token_ids: list[int]):
        self.name, self.text, self.token_ids = name, text, token_ids

    async def generate(self, prompt, sampling, seed, stop_ids=()):
        return Generation(self.token_ids, self.text)

    async def stream(self, prompt, sampling, seed):
        yield self.text
        yield Generation(self.token_ids, self.text)

    async def health(self):
        return None

    async def close(self):
        pass


@pytest.fixture(scope="module")
def app(tiny_tokenizer):
    think = tiny_tokenizer.encode("<think>\nfour\n</think>", add_special_tokens=False)
    service = DuetService(
        large=InstantEngine("large", "<think>\nfour\n</think>", think),
        small=InstantEngine("small", "\\boxed{4}", tiny_tokenizer.encode("\\boxed{4}", add_special_tokens=False)),
        large_tokenizer=tiny_tokenizer,
        small_tokenizer=tiny_tokenizer,
        large_sampling=Sampling(max_new_tokens=24, temperature=0.6, top_p=0.95, top_k=20),
        small_sampling=Sampling(max_new_tokens=8, temperature=0.0),
        max_request_bytes=LIMIT,
    )
    return build_app(service)


def post(app, content: bytes | None = None, chunks: list[bytes] | None = None) -> httpx.Response:
    """POST ``content`` (with a Content-Length) or ``chunks`` (chunked, without one) to the chat endpoint."""

    async def send():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://duet") as client:
            if chunks is None:
                return await client.post("/v1/chat/completions", content=content)

            async def stream():
                for chunk in chunks:
                    yield chunk

            return await client.post("/v1/chat/completions", content=stream())

    return asyncio.run(send())


def assert_openai_error(reply: httpx.Response, status: int) -> dict:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert error["type"] == "invalid_request_error"
    return error


def valid(**fields) -> dict:
    return {"model": "duet", "messages": [{"role": "user", "content": "What is 2 + 2?"}]} | fields


def test_a_valid_body_is_answered(app):
    reply = post(app, json.dumps(valid()).encode())
    assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"] == "\\boxed{4}"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # deeper than Python's parser recurses, within the size limit: the 500 this test was written for
        (b"[" * 2000 + b"]" * 2000, "nested too deeply"),
        (b'{"model": "duet", "messages": ' + b"[" * 1500 + b"]" * 1500 + b"}", "nested too deeply"),
        (json.dumps(valid(temperature=float("nan"))).encode(), "NaN"),  # which Python's json would accept
        (b'{"model": "duet", "temperature": Infinity}', "Infinity"),
        (b"\xff\xfe{}", "not valid JSON"),  # not UTF-8
        (b"", "not valid JSON"),
    ],
    ids=["deep-array", "deep-messages", "nan", "infinity", "bad-utf8", "empty"],
)
def test_malformed_bodies_are_400s(app, body, message):
    assert len(body) <= LIMIT
    assert message in assert_openai_error(post(app, body), 400)["message"]


def test_a_body_over_the_limit_is_a_413_by_its_length_or_as_it_streams(app):
    big = json.dumps(valid(messages=[{"role": "user", "content": "x" * LIMIT}])).encode()
    error = assert_openai_error(post(app, big), 413)
    assert error["code"] == "request_too_large" and "--max-request-bytes" in error["message"]
    assert_openai_error(post(app, chunks=[big[i : i + 512] for i in range(0, len(big), 512)]), 413)
    assert post(app, json.dumps(valid()).encode()).status_code == 200  # and it keeps serving


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
# Bodies close to a real request: the right keys with values of any type.
request_like = st.fixed_dictionaries(
    {"model": st.sampled_from(["duet"]) | json_values},
    optional={
        key: json_values
        for key in ("messages", "temperature", "top_p", "max_tokens", "max_completion_tokens", "seed", "n")
        + ("stream", "stream_options")
    },
)
message_like = st.fixed_dictionaries(
    {
        "model": st.just("duet"),
        "messages": st.lists(st.fixed_dictionaries({"role": json_values, "content": json_values})),
    }
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values | request_like | message_like)
def test_no_json_body_gets_a_server_error(app, body):
    reply = post(app, json.dumps(body).encode())
    if reply.status_code != 200:
        assert 400 <= reply.status_code < 500, (body, reply.text)
        assert reply.json()["error"]["message"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=2 * LIMIT))
def test_no_bytes_get_a_server_error(app, body):
    reply = post(app, body)
    assert 400 <= reply.status_code < 500 or reply.status_code == 200, (body, reply.text)
