"""m's prompts: the question plus M's signal (guided) or the question alone (baseline), within a token budget.

Templates (docs/method.md, "Prompts"), chosen by name (``duet.small_prompt_template``):

- ``paper``: the authors' raw text ``"user\\n" + q + "\\nassistant\\n<think>\\n" + s + "\\n</think>"``,
  tokenized without special tokens, for faithful reproduction (no chat special tokens around the turns);
- ``chat_think``: m's own chat template, the question as the user turn and the signal pre-filled as the
  assistant's thinking block; the text ends after ``</think>\\n\\n`` so m continues with the answer;
- ``baseline``: m's chat template, the question only, thinking off (for the marginal-utility ``r_m``).

A prompt budget is met by shortening the signal only, never the question or the template. The signal's
*end* is kept: M's thinking converges on its result at the end (the final computation, checks, the answer
it reached), which is what m needs to write the answer, while the opening mostly restates the problem m
reads anyway. This also matches what the authors' left-truncation of the whole prompt kept.
"""

from __future__ import annotations

from dataclasses import dataclass

# Appended to every math question in M's prompt (docs/method.md, "Prompts"): the data_prep files, the tiny and world
# fixtures and the server's default --large-instruction. m reads the question without it.
MATH_INSTRUCTION = " Let's think step by step and output the final answer within \\boxed{}."
TEMPLATES = ("paper", "chat_think", "baseline")
SMALL_QUESTIONS = ("bare", "as_prompted")  # what m reads as the question (small_question)


def small_question(bare: str | None, messages, form: str = "bare") -> str:
    """The question m reads: the bare question (``extra_info.question``, as in training) or, ``as_prompted`` or
    without a bare question, the last user message of M's prompt, the dataset's answer instruction included (the
    authors' form for AIME, AMC and MATH: docs/method.md, "Prompts")."""
    if bare and form == "bare":
        return str(bare)
    users = [m["content"] for m in messages if m.get("role") == "user"]
    if not users:
        raise ValueError("a row has neither extra_info.question nor a user message to show the small model")
    return str(users[-1])


@dataclass(frozen=True)
class SmallPrompt:
    token_ids: list[int]
    text: str  # the rendered prompt; tokenizing it without special tokens gives ``token_ids``
    signal_tokens_kept: int  # tokens of the signal (tokenized on its own) that are in the prompt
    signal_tokens_cut: int  # tokens cut from the signal's start to meet the budget

    @property
    def truncated(self) -> bool:
        return self.signal_tokens_cut > 0


def _encode(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _chat_think_text(tokenizer, question: str, signal: str) -> str:
    """The chat template's rendering of a finished thinking block, cut where the answer would start."""
    messages = [
        {"role": "user", "content": question},
        {"role": "assistant", "content": "", "reasoning_content": signal},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False, continue_final_message=True)
    if signal.strip() and signal.strip() not in text:
        # the template ignores ``reasoning_content``: put the thinking block in the content instead
        messages[1] = {"role": "assistant", "content": f"<think>\n{signal}\n</think>\n\n"}
        try:
            text = tokenizer.apply_chat_template(messages, tokenize=False, continue_final_message=True)
        except ValueError:  # transformers refuses when the template deletes part of the final message
            text = ""
        if signal.strip() not in text:
            raise ValueError("m's chat template drops the assistant's thinking; use the 'paper' template instead")
    return text


def _render_text(tokenizer, template: str, question: str, signal: str) -> str:
    if template == "paper":
        return "user\n" + question + "\nassistant\n<think>\n" + signal + "\n</think>"
    if template == "chat_think":
        return _chat_think_text(tokenizer, question, signal)
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True, enable_thinking=False
    )


def _signal_tail(tokenizer, signal_ids: list[int], keep: int) -> str:
    if keep <= 0:
        return ""
    # a cut inside a multi-byte character decodes to U+FFFD: drop it rather than show m a broken character
    return tokenizer.decode(signal_ids[-keep:], skip_special_tokens=False).lstrip("\ufffd").lstrip()


def render_small_prompt(
    tokenizer, template: str, question: str, signal: str | None, max_prompt_tokens: int | None = None
) -> SmallPrompt:
    """Render and tokenize m's prompt; keep the signal's end if the whole does not fit ``max_prompt_tokens``.

    ``signal`` is required for ``paper``/``chat_think`` ("" for an empty one) and must be None for
    ``baseline``. The result never exceeds the budget, and keeps within a few tokens of the longest signal
    tail that fits (token counts of text pieces are not exactly additive, so each candidate is re-rendered).
    Raises ValueError for an unknown template, or when the question and template alone exceed the budget.
    """
    if template not in TEMPLATES:
        raise ValueError(f"unknown small-model prompt template {template!r}; valid: {list(TEMPLATES)}")
    if template == "baseline":
        if signal is not None:
            raise ValueError("the 'baseline' template shows m the question only: pass signal=None")
        signal = ""
    elif signal is None:
        raise ValueError(f"the {template!r} template needs a signal (pass '' for an empty one)")
    signal = signal.strip()
    if max_prompt_tokens is not None and max_prompt_tokens <= 0:
        raise ValueError(f"max_prompt_tokens must be > 0, got {max_prompt_tokens}")

    text = _render_text(tokenizer, template, question, signal)
    token_ids = _encode(tokenizer, text)
    signal_ids = _encode(tokenizer, signal) if signal else []
    if max_prompt_tokens is None or len(token_ids) <= max_prompt_tokens:
        return SmallPrompt(token_ids, text, len(signal_ids), 0)

    bare_text = _render_text(tokenizer, template, question, "")
    bare_ids = _encode(tokenizer, bare_text)
    if len(bare_ids) > max_prompt_tokens:
        raise ValueError(
            f"m's prompt: the question and the {template!r} template alone need {len(bare_ids)} tokens > the "
            f"budget of {max_prompt_tokens}; the question is never cut, so raise the budget or filter the question"
        )
    # Start from the additive estimate and step down by the overshoot: usually one or two renders.
    keep = min(len(signal_ids), max_prompt_tokens - len(bare_ids))
    while keep > 0:
        text = _render_text(tokenizer, template, question, _signal_tail(tokenizer, signal_ids, keep))
        token_ids = _encode(tokenizer, text)
        overshoot = len(token_ids) - max_prompt_tokens
        if overshoot <= 0:
            return SmallPrompt(token_ids, text, keep, len(signal_ids) - keep)
        keep -= overshoot
    return SmallPrompt(bare_ids, bare_text, 0, len(signal_ids))
