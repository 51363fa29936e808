"""The OpenAI chat-completions wire format for a DUET pair: request checks, response and stream bodies, errors.

Pure (no server or model imports), so every rule here is unit-tested in milliseconds. The answer is m's;
M's signal is ``reasoning_content``, the field vLLM's reasoning parsers fill for Qwen3, and also ``reasoning``,
the name newer vLLM releases use for it (both carry the same text); ``usage`` holds the
standard totals over both models, M's thinking as ``completion_tokens_details.reasoning_tokens``, and each
model's own counts under ``large`` and ``small``.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

from duet_verl.inference import DuetOutput, Sampling

ROLES = ("system", "developer", "user", "assistant")


class RequestError(Exception):
    """A request the server refuses: HTTP ``status`` with an OpenAI-style error body."""

    def __init__(self, message: str, param: str | None = None, status: int = 400, code: str | None = None):
        super().__init__(message)
        self.message, self.param, self.status, self.code = message, param, status, code

    @property
    def kind(self) -> str:
        return {404: "not_found_error", 503: "service_unavailable_error"}.get(
            self.status, "invalid_request_error" if self.status < 500 else "server_error"
        )

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class ChatRequest:
    """A checked ``POST /v1/chat/completions`` body. The sampling fields shape m's answer; M thinks with the
    server's sampling, the one the pair was trained and evaluated with."""

    messages: list[dict]  # M's conversation, contents as plain text
    question: str  # the last user message: what m reads beside the signal
    sampling: Sampling  # m's
    seed: int | None
    stream: bool
    include_usage: bool  # stream_options.include_usage: a last chunk with the usage


def _number(body: dict, name: str, low: float, high: float, default: float, low_open: bool = False) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(f"'{name}' must be a number, got {json.dumps(value)}", name)
    if value > high or value < low or (low_open and value == low):
        bounds = f"{'(' if low_open else '['}{low}, {high}]"
        raise RequestError(f"'{name}' must be in {bounds}, got {value}", name)
    return float(value)


def _text(content, param: str) -> str:
    """A message's content as text: a string, or a list of ``{"type": "text", "text": ...}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                raise RequestError(f"only text content parts are supported; {param}[{i}] is not one", f"{param}[{i}]")
            texts.append(part["text"])
        return "".join(texts)
    raise RequestError(f"'{param}' must be a string or a list of text parts, got {type(content).__name__}", param)


def _messages(body: dict) -> list[dict]:
    messages = body.get("messages")
    if messages is None:
        raise RequestError("'messages' is required", "messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list of {role, content} objects", "messages")
    checked = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise RequestError(f"messages[{i}] must be an object with 'role' and 'content'", f"messages[{i}]")
        if message.get("role") not in ROLES:
            raise RequestError(
                f"messages[{i}].role must be one of {list(ROLES)}, got {json.dumps(message.get('role'))}",
                f"messages[{i}].role",
            )
        role = "system" if message["role"] == "developer" else message["role"]
        checked.append({"role": role, "content": _text(message.get("content"), f"messages[{i}].content")})
    return checked


def _not_a_number(constant: str):
    raise RequestError(f"the request body holds {constant}, which is not a JSON number")


def decode_body(raw: bytes) -> object:
    """A request body's JSON value; anything that is not standard JSON (bad syntax or encoding, ``NaN`` or
    ``Infinity``, nesting deeper than Python's parser recurses) is a 400, never a server error."""
    try:
        return json.loads(raw, parse_constant=_not_a_number)
    except RecursionError:
        raise RequestError("the request body is nested too deeply to parse") from None
    except ValueError:  # bad JSON or bad UTF-8 (json.JSONDecodeError and UnicodeDecodeError are ValueErrors)
        raise RequestError("the request body is not valid JSON") from None


def parse_chat_request(body, model: str, default_sampling: Sampling) -> ChatRequest:
    """Check ``body`` against what a DUET pair serves; raise ``RequestError`` naming the field otherwise.

    ``model`` is the served name (another is a 404, as OpenAI answers); ``default_sampling`` is m's from the
    server's flags, and ``max_tokens`` may lower its token budget but not raise it.
    """
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    if body.get("model") != model:
        if not isinstance(body.get("model"), str):
            raise RequestError(f"'model' is required and must be a string; this server serves {model!r}", "model")
        raise RequestError(
            f"the model {body['model']!r} does not exist; this server serves {model!r}", "model", 404, "model_not_found"
        )
    messages = _messages(body)
    users = [m["content"] for m in messages if m["role"] == "user"]
    if not users:
        raise RequestError("'messages' needs a user message: m answers the last one", "messages")
    if body.get("n", 1) != 1:
        raise RequestError("only n=1 is supported", "n")
    if not isinstance(body.get("stream", False), bool):
        raise RequestError("'stream' must be true or false", "stream")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    budget = default_sampling.max_new_tokens
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= budget:
            raise RequestError(f"'max_tokens' must be an integer in [1, {budget}], got {json.dumps(max_tokens)}",
                               "max_tokens")  # fmt: skip
        budget = max_tokens
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise RequestError(f"'seed' must be an integer, got {json.dumps(seed)}", "seed")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise RequestError("'stream_options' must be an object", "stream_options")
    return ChatRequest(
        messages=messages,
        question=users[-1],
        sampling=Sampling(
            max_new_tokens=budget,
            temperature=_number(body, "temperature", 0.0, 2.0, default_sampling.temperature),
            top_p=_number(body, "top_p", 0.0, 1.0, default_sampling.top_p, low_open=True),
            top_k=default_sampling.top_k,
        ),
        seed=seed,
        stream=body.get("stream", False),
        include_usage=bool(options.get("include_usage", False)),
    )


def reasoning(signal: str) -> dict:
    """M's signal under both names clients read it by."""
    return {"reasoning_content": signal, "reasoning": signal}


def usage(output: DuetOutput, large_prompt_tokens: int) -> dict:
    """Both models' token counts: OpenAI's totals plus each model's own."""
    large, small = output.large, output.small
    return {
        "prompt_tokens": large_prompt_tokens + small.prompt_tokens,
        "completion_tokens": large.tokens + small.tokens,
        "total_tokens": large_prompt_tokens + small.prompt_tokens + large.tokens + small.tokens,
        "completion_tokens_details": {"reasoning_tokens": large.thinking_tokens},
        "large": {
            "prompt_tokens": large_prompt_tokens,
            "completion_tokens": large.tokens,
            "thinking_tokens": large.thinking_tokens,
        },
        "small": {
            "prompt_tokens": small.prompt_tokens,
            "completion_tokens": small.tokens,
            "signal_tokens_cut": small.signal_tokens_cut,
        },
    }


def finish_reason(output: DuetOutput, sampling: Sampling) -> str:
    """``length`` when m used its whole token budget, else ``stop``."""
    return "length" if output.small.tokens >= sampling.max_new_tokens else "stop"


class Reply:
    """The response bodies of one request, sharing its id, creation time and model name."""

    def __init__(self, model: str):
        self.id, self.created, self.model = f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), model

    def completion(self, output: DuetOutput, request: ChatRequest, large_prompt_tokens: int) -> dict:
        message = {"role": "assistant", "content": output.answer} | reasoning(output.small.signal)
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": finish_reason(output, request.sampling),
                }
            ],  # fmt: skip
            "usage": usage(output, large_prompt_tokens),
        }

    def chunk(self, delta: dict, finish: str | None = None) -> dict:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    def usage_chunk(self, output: DuetOutput, large_prompt_tokens: int) -> dict:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage(output, large_prompt_tokens),
        }


def sse(body: dict | str) -> str:
    """One server-sent event: ``data: <json>`` (or ``data: [DONE]``) and a blank line."""
    return f"data: {body if isinstance(body, str) else json.dumps(body)}\n\n"
