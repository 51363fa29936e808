"""The chat-completions wire format of duet_verl.serve: what a request may hold and what each answer carries."""

import pytest

from duet_verl.inference import DuetOutput, LargeOutput, Sampling, SmallOutput
from duet_verl.serve.protocol import Reply, RequestError, parse_chat_request, sse, usage

DEFAULT = Sampling(max_new_tokens=64, temperature=0.0, top_p=1.0)


def parse(**fields):
    body = {"model": "duet", "messages": [{"role": "user", "content": "What is 2+3?"}]} | fields
    return parse_chat_request(body, "duet", DEFAULT)


def test_a_plain_request_takes_the_servers_sampling_and_the_last_user_message():
    request = parse(messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "What is "}, {"type": "text", "text": "2+3?"}]},
    ])  # fmt: skip
    assert request.question == "What is 2+3?"
    assert request.messages[-1] == {"role": "user", "content": "What is 2+3?"}
    assert request.sampling == DEFAULT and request.seed is None
    assert not request.stream and not request.include_usage


def test_request_fields_shape_ms_sampling_within_the_servers_budget():
    request = parse(temperature=0.7, top_p=0.9, max_tokens=10, seed=3, stream=True,
                    stream_options={"include_usage": True})  # fmt: skip
    assert request.sampling == Sampling(max_new_tokens=10, temperature=0.7, top_p=0.9)
    assert (request.seed, request.stream, request.include_usage) == (3, True, True)
    assert parse(max_completion_tokens=5, max_tokens=9).sampling.max_new_tokens == 5
    assert (
        parse(messages=[{"role": "developer", "content": "x"}, {"role": "user", "content": "q"}]).messages[0]["role"]
        == "system"
    )


@pytest.mark.parametrize(
    ("fields", "param", "status"),
    [
        ({"model": "gpt-4"}, "model", 404),
        ({"model": None}, "model", 400),
        ({"messages": None}, "messages", 400),
        ({"messages": "What is 2+3?"}, "messages", 400),
        ({"messages": []}, "messages", 400),
        ({"messages": ["hi"]}, "messages[0]", 400),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role", 400),
        ({"messages": [{"role": "user", "content": 7}]}, "messages[0].content", 400),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages[0].content[0]", 400),
        ({"messages": [{"role": "system", "content": "no question"}]}, "messages", 400),
        ({"temperature": "hot"}, "temperature", 400),
        ({"temperature": 2.5}, "temperature", 400),
        ({"top_p": 0}, "top_p", 400),
        ({"max_tokens": 0}, "max_tokens", 400),
        ({"max_tokens": 65}, "max_tokens", 400),
        ({"max_tokens": 1.5}, "max_tokens", 400),
        ({"seed": "1"}, "seed", 400),
        ({"n": 2}, "n", 400),
        ({"stream": "yes"}, "stream", 400),
        ({"stream_options": 1}, "stream_options", 400),
    ],
)
def test_bad_requests_are_refused_naming_the_field(fields, param, status):
    with pytest.raises(RequestError) as raised:
        parse(**fields)
    assert (raised.value.param, raised.value.status) == (param, status)
    error = raised.value.body()["error"]
    assert error["param"] == param and error["message"]
    assert error["type"] == ("not_found_error" if status == 404 else "invalid_request_error")


def test_a_body_that_is_not_an_object_is_refused():
    with pytest.raises(RequestError, match="JSON object"):
        parse_chat_request([1, 2], "duet", DEFAULT)


OUTPUT = DuetOutput(
    large=LargeOutput(text="<think>add</think>", tokens=7, thinking_tokens=6, seconds=0.1),
    small=SmallOutput(
        signal="add", signal_case="think_block", prompt_tokens=20, signal_tokens_cut=0, text="5", tokens=64, seconds=0.1
    ),  # fmt: skip
)


def test_usage_holds_both_models_and_the_standard_totals():
    counts = usage(OUTPUT, large_prompt_tokens=11)
    assert counts["large"] == {"prompt_tokens": 11, "completion_tokens": 7, "thinking_tokens": 6}
    assert counts["small"] == {"prompt_tokens": 20, "completion_tokens": 64, "signal_tokens_cut": 0}
    assert (counts["prompt_tokens"], counts["completion_tokens"], counts["total_tokens"]) == (31, 71, 102)
    assert counts["completion_tokens_details"] == {"reasoning_tokens": 6}


def test_the_answer_is_ms_and_the_signal_is_the_reasoning():
    reply = Reply("duet")
    body = reply.completion(OUTPUT, parse(), large_prompt_tokens=11)
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "5", "reasoning_content": "add", "reasoning": "add"}
    assert choice["finish_reason"] == "length"  # m used its whole budget of 64
    assert reply.completion(OUTPUT, parse(max_tokens=64), 11)["choices"][0]["finish_reason"] == "length"
    shorter = DuetOutput(OUTPUT.large, SmallOutput("add", "think_block", 20, 0, "5", 3, 0.1))
    assert reply.completion(shorter, parse(), 11)["choices"][0]["finish_reason"] == "stop"
    chunk = reply.chunk({"content": "5"})
    assert chunk["id"] == body["id"] and chunk["object"] == "chat.completion.chunk"
    assert reply.usage_chunk(OUTPUT, 11)["choices"] == []
    assert sse("[DONE]") == "data: [DONE]\n\n"
    assert sse({"a": 1}) == 'data: {"a": 1}\n\n'
