from pathlib import Path

import pytest

from duet_verl.core import TEMPLATES, render_small_prompt
from duet_verl.worlds.tiny import chat_template

QUESTION = "What is 2 + 3?"
SIGNAL = "First add two and three. The sum is five, so the answer is 5."
LONG_SIGNAL = "START of the reasoning. " + " ".join(f"step {i} adds {i} to the total." for i in range(60)) + " END five"


def encode(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


class TemplateOverride:
    """The tiny tokenizer with another chat template, to test templates other than Qwen3's."""

    def __init__(self, tokenizer, template):
        self.tokenizer, self.template = tokenizer, template

    def __call__(self, text, **kwargs):
        return self.tokenizer(text, **kwargs)

    def decode(self, ids, **kwargs):
        return self.tokenizer.decode(ids, **kwargs)

    def apply_chat_template(self, messages, **kwargs):
        return self.tokenizer.apply_chat_template(messages, chat_template=self.template, **kwargs)


def test_shipped_chat_template_is_the_real_qwen3_one(shared_fixtures: Path):
    assert chat_template() == (shared_fixtures / "qwen3" / "chat_template.jinja").read_text()


@pytest.mark.parametrize(
    ("template", "signal", "expected"),
    [
        ("paper", SIGNAL, f"user\n{QUESTION}\nassistant\n<think>\n{SIGNAL}\n</think>"),
        ("paper", "", f"user\n{QUESTION}\nassistant\n<think>\n\n</think>"),
        (
            "chat_think",
            SIGNAL,
            f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n<think>\n{SIGNAL}\n</think>\n\n",
        ),
        ("chat_think", "", f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"),
        ("baseline", None, f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"),
    ],
)
def test_templates_render_from_the_real_chat_template(tiny_tokenizer, template, signal, expected):
    prompt = render_small_prompt(tiny_tokenizer, template, QUESTION, signal, max_prompt_tokens=None)
    assert prompt.text == expected
    assert prompt.token_ids == encode(tiny_tokenizer, expected)
    assert (prompt.signal_tokens_cut, prompt.truncated) == (0, False)
    assert prompt.signal_tokens_kept == len(encode(tiny_tokenizer, signal or ""))


def test_chat_think_is_the_templates_own_rendering_of_a_finished_thinking_turn(tiny_tokenizer):
    """m continues exactly where Qwen3's template would put the answer after this thinking block."""
    conversation = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": "The answer is 5.", "reasoning_content": SIGNAL},
    ]
    full = tiny_tokenizer.apply_chat_template(conversation, tokenize=False)
    prompt = render_small_prompt(tiny_tokenizer, "chat_think", QUESTION, SIGNAL)
    assert full == prompt.text + "The answer is 5.<|im_end|>\n"


def test_paper_template_has_no_chat_special_tokens(tiny_tokenizer):
    prompt = render_small_prompt(tiny_tokenizer, "paper", QUESTION, SIGNAL)
    assert not set(tiny_tokenizer.all_special_ids) & set(prompt.token_ids)
    chat = render_small_prompt(tiny_tokenizer, "chat_think", QUESTION, SIGNAL)
    assert tiny_tokenizer.convert_tokens_to_ids("<|im_start|>") in chat.token_ids  # the check can fail


def test_signal_is_stripped_of_surrounding_whitespace(tiny_tokenizer):
    padded = render_small_prompt(tiny_tokenizer, "paper", QUESTION, f"\n\n  {SIGNAL} \n")
    assert padded.text == render_small_prompt(tiny_tokenizer, "paper", QUESTION, SIGNAL).text


@pytest.mark.parametrize("template", ["paper", "chat_think"])
@pytest.mark.parametrize("spare", [0, 1, 5, 40, 150])
def test_budget_shortens_only_the_signal_and_keeps_its_end(tiny_tokenizer, template, spare):
    bare = render_small_prompt(tiny_tokenizer, template, QUESTION, "")
    budget = len(bare.token_ids) + spare
    full_signal_tokens = len(encode(tiny_tokenizer, LONG_SIGNAL))
    assert full_signal_tokens > spare + 10  # the signal really has to be cut

    prompt = render_small_prompt(tiny_tokenizer, template, QUESTION, LONG_SIGNAL, max_prompt_tokens=budget)

    assert len(prompt.token_ids) <= budget
    assert prompt.token_ids == encode(tiny_tokenizer, prompt.text)
    assert QUESTION in prompt.text and "START" not in prompt.text
    assert prompt.truncated and prompt.signal_tokens_kept + prompt.signal_tokens_cut == full_signal_tokens
    assert prompt.signal_tokens_kept >= spare - 3  # within a few tokens of the most that fits
    kept = prompt.text.split("<think>\n")[1].split("\n</think>")[0]
    assert LONG_SIGNAL.endswith(kept) and (kept != "" or spare < 5)  # the signal's end, never its start
    # the template around the signal is intact
    before, after = bare.text.split("<think>\n")[0], bare.text.split("</think>")[1]
    assert prompt.text.startswith(before + "<think>\n") and prompt.text.endswith("</think>" + after)


@pytest.mark.parametrize("template", ["paper", "chat_think"])
def test_budget_boundary(tiny_tokenizer, template):
    full = render_small_prompt(tiny_tokenizer, template, QUESTION, LONG_SIGNAL)
    exact = render_small_prompt(tiny_tokenizer, template, QUESTION, LONG_SIGNAL, len(full.token_ids))
    assert exact == full and not exact.truncated
    short = render_small_prompt(tiny_tokenizer, template, QUESTION, LONG_SIGNAL, len(full.token_ids) - 1)
    assert short.truncated and len(short.token_ids) <= len(full.token_ids) - 1
    assert short.signal_tokens_cut <= 3


@pytest.mark.parametrize("template", list(TEMPLATES))
def test_question_alone_over_budget_is_an_error_not_a_cut(tiny_tokenizer, template):
    signal = None if template == "baseline" else SIGNAL
    bare = render_small_prompt(tiny_tokenizer, template, QUESTION, None if signal is None else "")
    needed = len(bare.token_ids)
    with pytest.raises(ValueError, match=rf"{needed} tokens > the budget of {needed - 1}"):
        render_small_prompt(tiny_tokenizer, template, QUESTION, signal, max_prompt_tokens=needed - 1)
    fits = render_small_prompt(tiny_tokenizer, template, QUESTION, signal, max_prompt_tokens=needed)
    assert fits.token_ids == bare.token_ids and fits.signal_tokens_kept == 0


def test_long_question_is_kept_whole_and_the_signal_dropped(tiny_tokenizer):
    question = "What is " + " + ".join(str(i) for i in range(80)) + "?"
    bare = render_small_prompt(tiny_tokenizer, "chat_think", question, "")
    prompt = render_small_prompt(tiny_tokenizer, "chat_think", question, SIGNAL, len(bare.token_ids))
    assert question in prompt.text
    assert prompt.signal_tokens_kept == 0 and prompt.signal_tokens_cut == len(encode(tiny_tokenizer, SIGNAL))


def test_cut_inside_a_multibyte_character_leaves_no_replacement_character(tiny_tokenizer):
    signal = "é😀ü" * 60
    bare = render_small_prompt(tiny_tokenizer, "paper", QUESTION, "")
    for spare in range(1, 12):
        prompt = render_small_prompt(tiny_tokenizer, "paper", QUESTION, signal, len(bare.token_ids) + spare)
        assert "\ufffd" not in prompt.text and len(prompt.token_ids) <= len(bare.token_ids) + spare


@pytest.mark.parametrize(
    ("template", "signal", "budget", "message"),
    [
        (
            "raw",
            SIGNAL,
            None,
            r"unknown small-model prompt template 'raw'; valid: \['paper', 'chat_think', 'baseline'\]",
        ),
        ("baseline", SIGNAL, None, "signal=None"),
        ("paper", None, None, "needs a signal"),
        ("chat_think", None, None, "needs a signal"),
        ("paper", SIGNAL, 0, "max_prompt_tokens must be > 0"),
    ],
)
def test_bad_arguments(tiny_tokenizer, template, signal, budget, message):
    with pytest.raises(ValueError, match=message):
        render_small_prompt(tiny_tokenizer, template, QUESTION, signal, budget)


PLAIN_TEMPLATE = (
    "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% if not loop.last %}[end]{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}[assistant]{% endif %}"
)
DROPS_THINKING = (
    "{% for m in messages %}[{{ m.role }}]{{ m.content.split('</think>')[-1] }}"
    "{% if not loop.last %}[end]{% endif %}{% endfor %}"
)


def test_chat_think_with_a_template_without_reasoning_content_inlines_the_block(tiny_tokenizer):
    tokenizer = TemplateOverride(tiny_tokenizer, PLAIN_TEMPLATE)
    prompt = render_small_prompt(tokenizer, "chat_think", QUESTION, SIGNAL)
    assert prompt.text == f"[user]{QUESTION}[end][assistant]<think>\n{SIGNAL}\n</think>\n\n"


def test_chat_think_with_a_template_that_drops_thinking_is_an_error(tiny_tokenizer):
    with pytest.raises(ValueError, match="drops the assistant's thinking"):
        render_small_prompt(TemplateOverride(tiny_tokenizer, DROPS_THINKING), "chat_think", QUESTION, SIGNAL)
