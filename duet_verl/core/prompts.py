"""m's prompts: the question plus M's signal (guided) or the question alone (baseline), within a token budget.

Templates (DUET.md "Prompts"):
- ``paper``: the authors' raw text ``"user\\n" + q + "\\nassistant\\n<think>\\n" + s + "\\n</think>"``, tokenized
  without special tokens, for faithful reproduction;
- ``chat_think``: m's chat template with the question as the user turn and the signal pre-filled as the
  assistant's thinking block (``<think>\\n s \\n</think>\\n\\n``), so m continues with the answer;
- ``baseline``: m's chat template with the question only and thinking off (for the marginal-utility r_m).

The budget is met by shortening the signal only, never the question or the template. The signal's *end* is
kept: M's thinking converges towards its result at the end, which is what m needs to write the answer,
while the opening usually restates the problem that m sees anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

TEMPLATES = ("paper", "chat_think", "baseline")


@dataclass(frozen=True)
class SmallPrompt:
    token_ids: list[int]
    text: str
    signal_tokens_kept: int
    signal_tokens_cut: int

    @property
    def truncated(self) -> bool:
        return self.signal_tokens_cut > 0


def _render_text(tokenizer, template: str, question: str, signal: str) -> str:
    if template == "paper":
        return "user\n" + question + "\nassistant\n<think>\n" + signal + "\n</think>"
    messages = [{"role": "user", "content": question}]
    if template == "baseline":
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
        )
    prefix = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=True)
    return prefix + "<think>\n" + signal.strip("\n") + "\n</think>\n\n"


def _encode(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def render_small_prompt(
    tokenizer, template: str, question: str, signal: str | None, max_prompt_tokens: int | None = None
) -> SmallPrompt:
    """Render and tokenize m's prompt; shorten the signal (from its start) until it fits ``max_prompt_tokens``."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown small-model prompt template {template!r}; valid: {list(TEMPLATES)}")
    signal = "" if template == "baseline" or signal is None else signal
    text = _render_text(tokenizer, template, question, signal)
    ids = _encode(tokenizer, text)
    signal_ids = _encode(tokenizer, signal) if signal else []
    if max_prompt_tokens is None or len(ids) <= max_prompt_tokens:
        return SmallPrompt(ids, text, len(signal_ids), 0)
    bare_ids = _encode(tokenizer, _render_text(tokenizer, template, question, ""))
    if len(bare_ids) > max_prompt_tokens:
        raise ValueError(
            f"the question and the {template!r} template alone need {len(bare_ids)} tokens, more than m's prompt "
            f"budget of {max_prompt_tokens} (duet.small_prompt_length): raise the budget; the question is never cut"
        )
    best = SmallPrompt(bare_ids, _render_text(tokenizer, template, question, ""), 0, len(signal_ids))
    low, high = 1, len(signal_ids) - 1  # binary search for the longest signal tail that fits
    while low <= high:
        keep = (low + high) // 2
        tail = tokenizer.decode(signal_ids[-keep:], skip_special_tokens=False)
        candidate_text = _render_text(tokenizer, template, question, tail)
        candidate = _encode(tokenizer, candidate_text)
        if len(candidate) <= max_prompt_tokens:
            best = SmallPrompt(candidate, candidate_text, keep, len(signal_ids) - keep)
            low = keep + 1
        else:
            high = keep - 1
    return best
