"""Where the server's two models run: an OpenAI-compatible engine over HTTP, or a generator in this process.

Both take one request's prompt as token ids (rendered by ``duet_verl.inference``, as in training) and return a
``Generation`` whose text is decoded by the model's own tokenizer, exactly as training and evaluation decode.
Neither serialises requests: ``RemoteEngine`` sends each at once and the engine (``vllm serve``) batches them;
``LocalEngine`` gathers whatever requests are waiting into one ``generate`` call.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from duet_verl.inference import Sampling
from duet_verl.inference.backends import Generation


class EngineError(Exception):
    """The engine failed a request (HTTP ``status``: 502 for a broken reply, 400 for a refused prompt)."""

    status = 502


class EngineUnavailableError(EngineError):
    """The engine cannot be reached or has stopped: the server answers 503."""

    status = 503


class Engine(Protocol):
    name: str  # "large" or "small", for errors and /health

    async def generate(self, prompt: list[int], sampling: Sampling, seed: int, stop_ids=()) -> Generation: ...

    def stream(self, prompt: list[int], sampling: Sampling, seed: int) -> AsyncIterator[str | Generation]:
        """Text deltas as they are generated, then the whole ``Generation``."""
        ...

    async def health(self) -> str | None:
        """None when the engine serves, else why not."""
        ...

    async def close(self) -> None: ...


class RemoteEngine:
    """An OpenAI-compatible server (``vllm serve``) for one model, driven through ``/v1/completions`` with token
    ids in and out (vLLM's ``return_token_ids``), so the prompt is the one training rendered."""

    def __init__(self, name: str, base_url: str, tokenizer, timeout_s: float = 600.0):
        import httpx

        self.name, self.base_url, self.tokenizer = name, base_url.rstrip("/"), tokenizer
        self.client = httpx.AsyncClient(base_url=self.base_url, timeout=httpx.Timeout(timeout_s, connect=10.0))
        self.model: str | None = None

    @staticmethod
    async def served_model(base_url: str) -> tuple[str, str]:
        """The engine's served model name and the path it loaded (``/v1/models``: ``id``, ``root``)."""
        import httpx

        try:
            async with httpx.AsyncClient(timeout=30.0) as client:
                reply = await client.get(base_url.rstrip("/") + "/v1/models")
                reply.raise_for_status()
                model = reply.json()["data"][0]
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as error:
            message = f"no OpenAI-compatible engine answers at {base_url}/v1/models: {error!r}"
            raise EngineUnavailableError(message) from error
        return model["id"], model.get("root") or model["id"]

    def _body(self, prompt, sampling: Sampling, seed: int, stop_ids, stream: bool) -> dict:
        greedy = sampling.temperature <= 0
        return {
            "model": self.model,
            "prompt": list(prompt),
            "max_tokens": sampling.max_new_tokens,
            "temperature": 0.0 if greedy else sampling.temperature,
            "top_p": 1.0 if greedy else sampling.top_p,
            "top_k": -1 if greedy or not sampling.top_k else sampling.top_k,
            "seed": int(seed) % (2**31),
            "stop_token_ids": list(stop_ids),
            "skip_special_tokens": True,
            "return_token_ids": True,
            "stream": stream,
        }

    def _generation(self, token_ids: list[int]) -> Generation:
        return Generation(list(token_ids), self.tokenizer.decode(token_ids, skip_special_tokens=True))

    def _failure(self, error: Exception) -> EngineError:
        import httpx

        if isinstance(error, httpx.TransportError):
            return EngineUnavailableError(f"the {self.name} model's engine at {self.base_url} is down: {error!r}")
        return EngineError(f"the {self.name} model's engine at {self.base_url} failed: {error!r}")

    async def _refused(self, reply) -> EngineError:
        text = (await reply.aread()).decode(errors="replace")[:500]
        error = EngineError(f"the {self.name} model's engine refused the request ({reply.status_code}): {text}")
        error.status = 400 if reply.status_code < 500 else 502
        return error

    async def generate(self, prompt, sampling, seed, stop_ids=()) -> Generation:
        import httpx

        try:
            reply = await self.client.post("/v1/completions", json=self._body(prompt, sampling, seed, stop_ids, False))
            if reply.status_code != 200:
                raise await self._refused(reply)
            return self._generation(reply.json()["choices"][0]["token_ids"])
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as error:
            raise self._failure(error) from error

    async def stream(self, prompt, sampling, seed):
        import httpx

        token_ids: list[int] = []
        try:
            body = self._body(prompt, sampling, seed, (), True)
            async with self.client.stream("POST", "/v1/completions", json=body) as reply:
                if reply.status_code != 200:
                    raise await self._refused(reply)
                async for line in reply.aiter_lines():
                    if not line.startswith("data: ") or line == "data: [DONE]":
                        continue
                    choice = json.loads(line[len("data: ") :])["choices"][0]
                    token_ids += choice.get("token_ids") or []
                    if choice.get("text"):
                        yield choice["text"]
        except (httpx.HTTPError, KeyError, IndexError, ValueError) as error:
            raise self._failure(error) from error
        yield self._generation(token_ids)

    async def health(self) -> str | None:
        import httpx

        try:
            reply = await self.client.get("/health", timeout=5.0)
        except httpx.HTTPError as error:
            return f"unreachable at {self.base_url}: {error!r}"
        return None if reply.status_code == 200 else f"{self.base_url}/health answered {reply.status_code}"

    async def close(self) -> None:
        await self.client.aclose()


@dataclass
class _Job:
    prompt: list[int]
    sampling: Sampling
    seed: int
    stop_ids: tuple[int, ...]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future


class LocalEngine:
    """A generator (``duet_verl.inference.backends``: transformers or in-process vLLM) on a thread of its own.

    Requests that wait while a batch runs form the next batch (up to ``max_batch``; one ``generate`` call per
    sampling setting), so concurrent requests share the model instead of queueing one by one.
    """

    def __init__(self, name: str, generator, max_batch: int = 32):
        self.name, self.generator, self.max_batch = name, generator, max_batch
        self.last_error: str | None = None
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name=f"duet-{name}-engine", daemon=True)
        self._thread.start()

    async def generate(self, prompt, sampling, seed, stop_ids=()) -> Generation:
        if not self._thread.is_alive():
            raise EngineUnavailableError(f"the {self.name} model's engine has stopped")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._jobs.put(_Job(list(prompt), sampling, seed, tuple(stop_ids), loop, future))
        return await future

    async def stream(self, prompt, sampling, seed):
        """The whole answer as one delta: a batched ``generate`` returns all of it at once."""
        generation = await self.generate(prompt, sampling, seed)
        if generation.text:
            yield generation.text
        yield generation

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            batch = [job]
            while len(batch) < self.max_batch:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self._jobs.put(None)  # close() after this batch
                    break
                batch.append(job)
            groups: dict[tuple, list[_Job]] = {}
            for job in batch:
                groups.setdefault((job.sampling, job.stop_ids), []).append(job)
            for (sampling, stop_ids), jobs in groups.items():
                self._run(jobs, sampling, stop_ids)

    def _run(self, jobs: list[_Job], sampling: Sampling, stop_ids: tuple[int, ...]) -> None:
        start = time.perf_counter()
        try:
            outputs = self.generator.generate(
                [job.prompt for job in jobs], sampling.max_new_tokens, sampling.temperature, sampling.top_p,
                sampling.top_k, [job.seed for job in jobs], stop_ids,
            )  # fmt: skip
            self.last_error = None
            results = outputs
        except Exception as error:  # noqa: BLE001 - every waiting request gets the failure, the thread goes on
            self.last_error = f"its last batch failed after {time.perf_counter() - start:.1f}s: {error!r}"
            failure = EngineError(f"the {self.name} model's engine failed: {error!r}")
            failure.status = 503
            results = [failure] * len(jobs)
        for job, result in zip(jobs, results, strict=True):
            job.loop.call_soon_threadsafe(_settle, job.future, result)

    async def health(self) -> str | None:
        if not self._thread.is_alive():
            return "its engine thread has stopped"
        return self.last_error

    async def close(self) -> None:
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join)
        self.generator.close()


def _settle(future: asyncio.Future, result) -> None:
    if future.done():  # the caller went away (a closed connection cancels its request)
        return
    if isinstance(result, Exception):
        future.set_exception(result)
    else:
        future.set_result(result)
