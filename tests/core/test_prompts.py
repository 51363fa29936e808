from pathlib import Path

import pytest

from duet_verl.core import render_small_prompt
from duet_verl.testing.tiny import chat_template

QUESTION = "What is 2 + 3?"
SIGNAL = "First add two and three. The sum is five, so the answer is 5."


def test_shipped_chat_template_is_the_real_qwen3_one(shared_fixtures: Path):
    assert chat_template() == (shared_fixtures / "qwen3" / "chat_template.jinja").read_text()


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("paper", f"user\n{QUESTION}\nassistant\n<think>\n{SIGNAL}\n</think>"),
        (
            "chat_think",
            f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n<think>\n{SIGNAL}\n</think>\n\n",
        ),
        ("baseline", f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"),
    ],
)
def test_templates_render_from_the_real_chat_template(tiny_tokenizer, template, expected):
    prompt = render_small_prompt(tiny_tokenizer, template, QUESTION, SIGNAL, max_prompt_tokens=None)
    assert prompt.text == expected
    assert prompt.token_ids == tiny_tokenizer(expected, add_special_tokens=False)["input_ids"]
    assert not prompt.truncated


def test_paper_template_has_no_special_tokens(tiny_tokenizer):
    prompt = render_small_prompt(tiny_tokenizer, "paper", QUESTION, SIGNAL)
    special = set(tiny_tokenizer.all_special_ids)
    assert not special & set(prompt.token_ids)


@pytest.mark.parametrize("template", ["paper", "chat_think"])
@pytest.mark.parametrize("budget_slack", [0, 3, 10])
def test_budget_shortens_the_signal_from_its_start_never_the_question(tiny_tokenizer, template, budget_slack):
    bare = render_small_prompt(tiny_tokenizer, template, QUESTION, "")
    budget = len(bare.token_ids) + budget_slack
    prompt = render_small_prompt(tiny_tokenizer, template, QUESTION, SIGNAL, max_prompt_tokens=budget)
    assert len(prompt.token_ids) <= budget
    assert QUESTION in prompt.text
    full = len(tiny_tokenizer(SIGNAL, add_special_tokens=False)["input_ids"])
    assert prompt.signal_tokens_kept + prompt.signal_tokens_cut == full
    assert prompt.truncated
    if prompt.signal_tokens_kept:
        kept = prompt.text.split("<think>\n")[1].split("\n</think>")[0]
        assert SIGNAL.endswith(kept), "the end of the signal is kept"


def test_question_that_does_not_fit_is_an_error(tiny_tokenizer):
    with pytest.raises(ValueError, match="question is never cut"):
        render_small_prompt(tiny_tokenizer, "paper", QUESTION * 20, SIGNAL, max_prompt_tokens=10)


def test_unknown_template(tiny_tokenizer):
    with pytest.raises(ValueError, match="translator"):
        render_small_prompt(tiny_tokenizer, "translator", QUESTION, SIGNAL)
