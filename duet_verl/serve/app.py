"""The DUET server: each chat request runs the chain (M thinks, its signal is extracted, m answers) on two engines
and is answered in OpenAI's chat-completions format (``protocol``).

M stops at its ``</think>``: the signal is all m reads, so M's answer after it would be paid for and thrown
away. The prompts, the signal and m's prompt are ``duet_verl.inference``'s, as in training and evaluation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from duet_verl.core import QWEN3_MARKERS, ResponseDecoder
from duet_verl.inference import (
    DuetOutput,
    Sampling,
    chat_prompt,
    large_output,
    small_output,
    small_prompt,
)
from duet_verl.serve.engines import Engine, EngineError
from duet_verl.serve.protocol import (
    ChatRequest,
    Reply,
    RequestError,
    decode_body,
    finish_reason,
    parse_chat_request,
    reasoning,
    sse,
)

logger = logging.getLogger("duet_verl.serve")


@dataclass
class DuetService:
    """A trained pair behind two engines, and the chain each request runs through."""

    large: Engine
    small: Engine
    large_tokenizer: object
    small_tokenizer: object
    large_sampling: Sampling  # M's, for every request
    small_sampling: Sampling  # m's defaults and its largest token budget (requests may lower it)
    model: str = "duet"  # the served model name
    small_template: str = "paper"
    max_prompt_tokens: int = 4096  # M's prompt budget: a longer conversation is refused with a 400
    small_max_prompt_tokens: int | None = None  # m's prompt budget: the signal's start is cut to fit
    large_instruction: str = ""  # appended to the last user message for M, as data_prep's files do; m reads it bare
    markers: tuple[str, str] = QWEN3_MARKERS  # M's thinking markers (duet.think_start, duet.think_end)
    max_request_bytes: int = 4 * 2**20  # a larger request body is refused with a 413 before it is read whole

    def __post_init__(self):
        self.large_decoder = ResponseDecoder(self.large_tokenizer, self.markers)  # M's, markers kept
        self._requests = 0

    def parse(self, body) -> ChatRequest:
        return parse_chat_request(body, self.model, self.small_sampling)

    def _seed(self, request: ChatRequest) -> int:
        self._requests += 1
        return request.seed if request.seed is not None else self._requests

    def _large_prompt(self, request: ChatRequest) -> list[int]:
        messages = [dict(message) for message in request.messages]
        last_user = max(i for i, message in enumerate(messages) if message["role"] == "user")
        messages[last_user]["content"] += self.large_instruction
        prompt = chat_prompt(self.large_tokenizer, messages, thinking=True)
        if len(prompt) > self.max_prompt_tokens:
            raise RequestError(
                f"the conversation is {len(prompt)} tokens; this server takes at most {self.max_prompt_tokens} "
                "(--max-prompt-tokens)", "messages", 400, "context_length_exceeded",
            )  # fmt: skip
        return prompt

    async def _think(self, prompt: list[int], seed: int):
        """M's thinking, stopped at its ``</think>``."""
        start = time.perf_counter()
        stop = (self.large_decoder.end_id,) if self.large_decoder.end_id >= 0 else ()
        generation = await self.large.generate(prompt, self.large_sampling, seed, stop)
        return large_output(generation, time.perf_counter() - start, self.large_decoder)

    def _small_prompt(self, request: ChatRequest, large_text: str):
        try:
            return small_prompt(
                self.small_tokenizer, self.small_template, request.question, large_text,
                self.small_max_prompt_tokens, self.markers,
            )  # fmt: skip
        except ValueError as error:  # the question alone is over m's prompt budget
            raise RequestError(str(error), "messages", 400, "context_length_exceeded") from error

    async def _first_stage(self, request: ChatRequest):
        """The request's seed, M's prompt and thinking, the signal and m's prompt."""
        seed = self._seed(request)
        prompt = self._large_prompt(request)
        large = await self._think(prompt, seed)
        signal, small = self._small_prompt(request, large.text)
        return seed, prompt, large, signal, small

    async def complete(self, request: ChatRequest) -> tuple[DuetOutput, int]:
        """m's answer to ``request`` with M's signal, and M's prompt length."""
        seed, prompt, large, signal, small = await self._first_stage(request)
        start = time.perf_counter()
        generation = await self.small.generate(small.token_ids, request.sampling, seed)
        output = small_output(signal, small, generation, time.perf_counter() - start)
        return DuetOutput(large=large, small=output), len(prompt)

    async def stream(self, request: ChatRequest) -> AsyncIterator[tuple[str, object]]:
        """``("reasoning", signal)``, then ``("content", delta)`` as m writes, then ``("done", (output, M's
        prompt length))``. Input errors surface before the first event, so they can still be a 4xx."""
        seed, prompt, large, signal, small = await self._first_stage(request)
        yield "reasoning", signal.text
        start = time.perf_counter()
        async for piece in self.small.stream(small.token_ids, request.sampling, seed):
            if isinstance(piece, str):
                yield "content", piece
            else:
                output = small_output(signal, small, piece, time.perf_counter() - start)
                yield "done", (DuetOutput(large=large, small=output), len(prompt))

    async def health(self) -> dict[str, str | None]:
        """Each engine's trouble, None where it serves."""
        large, small = await asyncio.gather(self.large.health(), self.small.health())
        return {"large": large, "small": small}

    async def close(self) -> None:
        await asyncio.gather(self.large.close(), self.small.close())


def build_app(service: DuetService):
    """The FastAPI application: ``/v1/chat/completions``, ``/v1/models`` and ``/health``."""
    app = FastAPI(title="duet-verl", description="DUET: M writes the signal, m answers")

    def error(failure: RequestError) -> JSONResponse:
        return JSONResponse(failure.body(), status_code=failure.status)

    def engine_error(failure: EngineError) -> RequestError:
        return RequestError(str(failure), None, failure.status, "engine_error")

    @app.get("/health")
    async def health():
        troubles = await service.health()
        ok = all(trouble is None for trouble in troubles.values())
        body = {"status": "ok" if ok else "unavailable"} | {name: trouble or "ok" for name, trouble in troubles.items()}
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/v1/models")
    async def models():
        model = {"id": service.model, "object": "model", "created": 0, "owned_by": "duet-verl"}
        return {"object": "list", "data": [model]}

    @app.post("/v1/chat/completions")
    async def chat_completions(http: Request):
        try:
            request = service.parse(decode_body(await _read_body(http, service.max_request_bytes)))
        except RequestError as failure:
            return error(failure)
        reply = Reply(service.model)
        if not request.stream:
            try:
                output, large_prompt_tokens = await service.complete(request)
            except RequestError as failure:
                return error(failure)
            except EngineError as failure:
                logger.warning("request %s failed: %s", reply.id, failure)
                return error(engine_error(failure))
            return reply.completion(output, request, large_prompt_tokens)

        events = service.stream(request)
        try:  # M's thinking and input errors come before the response starts: they are still a status code
            first = await anext(events)
        except RequestError as failure:
            return error(failure)
        except EngineError as failure:
            logger.warning("request %s failed: %s", reply.id, failure)
            return error(engine_error(failure))
        return StreamingResponse(_sse(reply, request, first, events), media_type="text/event-stream")

    return app


async def _read_body(http: Request, limit: int) -> bytes:
    """The request body, refused with a 413 as soon as it is known to exceed ``limit`` bytes: from its
    Content-Length when it declares one, else while it streams in."""
    too_large = RequestError(
        f"the request body is larger than this server's limit of {limit} bytes (--max-request-bytes)",
        status=413,
        code="request_too_large",
    )
    declared = http.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in http.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


async def _sse(reply: Reply, request: ChatRequest, first, events) -> AsyncIterator[str]:
    """The stream's events: the role, M's signal as ``reasoning_content`` (and ``reasoning``), m's answer as
    ``content`` deltas, the finish reason, the usage if asked, ``[DONE]``. An engine failure mid-stream is an error
    event."""
    yield sse(reply.chunk({"role": "assistant", "content": ""}))
    yield sse(reply.chunk(reasoning(first[1])))
    try:
        async for kind, value in events:
            if kind == "content":
                yield sse(reply.chunk({"content": value}))
            else:
                output, large_prompt_tokens = value
                yield sse(reply.chunk({}, finish_reason(output, request.sampling)))
                if request.include_usage:
                    yield sse(reply.usage_chunk(output, large_prompt_tokens))
    except EngineError as failure:
        logger.warning("request %s failed mid-stream: %s", reply.id, failure)
        yield sse(RequestError(str(failure), None, failure.status, "engine_error").body())
    yield sse("[DONE]")
