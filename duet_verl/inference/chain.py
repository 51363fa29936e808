"""The DUET chain at inference: M answers with thinking on, its thinking is the signal, m reads the question and
the signal and answers. Signal extraction, m's prompt and the token counts are ``duet_verl.core``'s, as in
training, so a pair is evaluated (``duet_verl.evaluate``) exactly as it was trained.

``DuetPipeline`` holds one generator per model (``duet_verl.inference.backends``: transformers or vLLM). Its two
stages are also functions, ``think`` and ``answer``, for callers that hold M's response already: evaluation
shares one M response between its ``large`` and ``duet`` modes and loads each model only when needed. Their
per-request pieces (``chat_prompt``, ``large_output``, ``small_prompt``, ``small_output``) are what the server
(``duet_verl.serve``) chains, one request at a time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from duet_verl.core import (
    QWEN3_MARKERS,
    ResponseDecoder,
    Signal,
    SmallPrompt,
    extract_signal,
    render_small_prompt,
    thinking_token_count,
)

CONCISE_INSTRUCTION = (
    "Note that you should keep the reasoning concise: include only essential reasoning steps and avoid "
    "repetition or unnecessary explanations."
)


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int
    temperature: float  # 0: greedy
    top_p: float = 1.0
    top_k: int = 0


@dataclass(frozen=True)
class LargeOutput:
    """M's response to one request."""

    text: str
    tokens: int
    thinking_tokens: int  # up to and including ``</think>`` (all of them without one)
    seconds: float  # generation time of its batch, per request


@dataclass(frozen=True)
class SmallOutput:
    """m's answer to one request, with the signal it read."""

    signal: str
    signal_case: str  # how the signal was found in M's response (``core.signal.SignalCase``)
    prompt_tokens: int
    signal_tokens_cut: int  # signal tokens dropped from its start to fit m's prompt budget
    text: str
    tokens: int
    seconds: float


@dataclass(frozen=True)
class DuetOutput:
    large: LargeOutput
    small: SmallOutput

    @property
    def answer(self) -> str:
        return self.small.text


def chat_prompt(tokenizer, messages: list[dict], thinking: bool, concise: bool = False) -> list[int]:
    """``messages`` through the model's chat template, as token ids; ``concise`` adds the paper's instruction."""
    if concise:
        messages = [dict(m) for m in messages]
        messages[-1]["content"] = messages[-1]["content"] + " " + CONCISE_INSTRUCTION
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=thinking)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def generate(
    generator, prompts: list[list[int]], sampling: Sampling, seeds: list[int], stop_ids: tuple[int, ...] = ()
) -> tuple[list, float]:
    """``generator``'s outputs for ``prompts`` and the seconds per prompt of the batch."""
    if not prompts:
        return [], 0.0
    start = time.perf_counter()
    outputs = generator.generate(
        prompts, sampling.max_new_tokens, sampling.temperature, sampling.top_p, sampling.top_k, seeds, stop_ids
    )
    return outputs, (time.perf_counter() - start) / len(prompts)


def large_output(generation, seconds: float, decoder: ResponseDecoder) -> LargeOutput:
    """M's ``generation`` (``backends.Generation``) as a ``LargeOutput``: its text decoded as training decodes M
    (``decoder``: M's tokenizer and thinking markers, kept even when special) and its thinking tokens counted up
    to the end marker."""
    return LargeOutput(
        text=decoder.restore(generation.token_ids, generation.text),
        tokens=len(generation.token_ids),
        thinking_tokens=thinking_token_count(generation.token_ids, decoder.end_id),
        seconds=seconds,
    )


def small_prompt(
    tokenizer,
    template: str,
    question: str,
    large_text: str,
    max_prompt_tokens: int | None = None,
    markers: tuple[str, str] = QWEN3_MARKERS,
) -> tuple[Signal, SmallPrompt]:
    """The signal in M's response ``large_text`` (between M's thinking ``markers``) and m's prompt built from it
    and the question: the prompt m was trained on (``duet.small_prompt_template``), the signal shortened from its
    start when it does not fit."""
    signal = extract_signal(large_text, *markers)
    return signal, render_small_prompt(tokenizer, template, question, signal.text, max_prompt_tokens)


def small_output(signal: Signal, prompt: SmallPrompt, generation, seconds: float) -> SmallOutput:
    """m's ``generation`` for ``prompt`` as a ``SmallOutput``."""
    return SmallOutput(
        signal=signal.text,
        signal_case=signal.case.value,
        prompt_tokens=len(prompt.token_ids),
        signal_tokens_cut=prompt.signal_tokens_cut,
        text=generation.text,
        tokens=len(generation.token_ids),
        seconds=seconds,
    )


def think(
    generator,
    tokenizer,
    messages: list[list[dict]],
    sampling: Sampling,
    seeds: list[int],
    concise: bool = False,
    markers: tuple[str, str] = QWEN3_MARKERS,
) -> list[LargeOutput]:
    """M's responses with thinking on, one per conversation (stage 1)."""
    prompts = [chat_prompt(tokenizer, m, thinking=True, concise=concise) for m in messages]
    outputs, seconds = generate(generator, prompts, sampling, seeds)
    decoder = ResponseDecoder(tokenizer, markers)
    return [large_output(out, seconds, decoder) for out in outputs]


def answer(
    generator,
    tokenizer,
    questions: list[str],
    large_texts: list[str],
    sampling: Sampling,
    seeds: list[int],
    template: str = "paper",
    max_prompt_tokens: int | None = None,
    markers: tuple[str, str] = QWEN3_MARKERS,
) -> list[SmallOutput]:
    """m's answers, each from its question and the signal in M's response (stage 2, ``small_prompt``)."""
    built = [
        small_prompt(tokenizer, template, question, text, max_prompt_tokens, markers)
        for question, text in zip(questions, large_texts, strict=True)
    ]
    outputs, seconds = generate(generator, [prompt.token_ids for _, prompt in built], sampling, seeds)
    return [small_output(signal, prompt, out, seconds) for (signal, prompt), out in zip(built, outputs, strict=True)]


@dataclass
class DuetPipeline:
    """A trained pair behind one call: ``run`` takes questions (and M's conversations) and returns m's answers
    with M's signals and both models' token counts."""

    large: object  # a generator for M (duet_verl.inference.backends.Generator)
    small: object  # a generator for m
    large_tokenizer: object
    small_tokenizer: object
    large_sampling: Sampling
    small_sampling: Sampling
    small_template: str = "paper"
    small_max_prompt_tokens: int | None = None
    markers: tuple[str, str] = QWEN3_MARKERS  # M's thinking markers

    def run(
        self, questions: list[str], messages: list[list[dict]], large_seeds: list[int], small_seeds: list[int]
    ) -> list[DuetOutput]:
        """``messages[i]`` is M's conversation for ``questions[i]`` (the question with its answer-format
        instruction); m reads the bare question beside the signal, as in training."""
        large = think(
            self.large, self.large_tokenizer, messages, self.large_sampling, large_seeds, markers=self.markers
        )
        small = answer(
            self.small, self.small_tokenizer, questions, [out.text for out in large], self.small_sampling,
            small_seeds, self.small_template, self.small_max_prompt_tokens, self.markers,
        )  # fmt: skip
        return [DuetOutput(large=lo, small=so) for lo, so in zip(large, small, strict=True)]
