import time

import pytest

from duet_verl.core import last_boxed, register_scorer, score_answer
from duet_verl.core.scoring import AnswerScore, scorer_for


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so \\boxed{5}", "5"),
        ("\\boxed{1} then \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)"),
        ("\\fbox{42}", "42"),
        ("\\boxed 7 is it", "7"),
        ("no box here", None),
        ("\\boxed{unclosed", None),
        ("\\boxed{2} and \\boxed{unclosed", "2"),
    ],
)
def test_last_boxed(text, expected):
    assert last_boxed(text) == expected


@pytest.mark.parametrize(
    ("source", "response", "truth", "score"),
    [
        ("math500", "thus \\boxed{\\frac{1}{2}}", "\\frac12", 1.0),
        ("math500", "thus \\boxed{0.5}", "\\frac{1}{2}", 1.0),
        ("aime24", "\\boxed{033}", "33", 1.0),
        ("amc23", "\\boxed{27}", "27.0", 1.0),
        ("gsm8k", "\\boxed{1,234}", "1234", 1.0),
        ("deepscaler", "\\boxed{x^2+1}", "1+x^2", 1.0),
        ("math500", "\\boxed{6}", "5", 0.0),
        ("math500", "the answer is 5", "5", 0.0),
        ("gpqa_diamond", "reasoning...\nAnswer: C", "C", 1.0),
        ("gpqa_diamond", "Answer: (b)", "B", 1.0),
        ("gpqa_diamond", "Answer: A ... wait. Answer: D", "D", 1.0),
        ("gpqa_diamond", "Answer: A", "B", 0.0),
        ("gpqa_diamond", "I think it is C", "C", 0.0),
    ],
)
def test_score_answer(source, response, truth, score):
    assert score_answer(source, response, truth).score == score


def test_prediction_is_reported():
    assert score_answer("math500", "\\boxed{6}", "5") == AnswerScore(0.0, "6")
    assert score_answer("gpqa", "Answer: B", "B") == AnswerScore(1.0, "B")


def test_unknown_source_names_itself():
    with pytest.raises(ValueError, match="'mystery_bench'"):
        score_answer("mystery_bench", "\\boxed{1}", "1")


def test_registered_scorer_takes_precedence():
    register_scorer("my_exact", lambda response, truth, timeout_s: AnswerScore(float(response == truth), response))
    assert score_answer("my_exact_set", "yes", "yes").score == 1.0
    assert scorer_for("my_exact_set") is not scorer_for("math500")


def test_output_is_never_evaluated(tmp_path):
    marker = tmp_path / "pwned"
    payload = f"\\boxed{{__import__('os').system('touch {marker}')}}"
    assert score_answer("math500", payload, "0").score == 0.0
    assert not marker.exists()


@pytest.mark.parametrize(
    "response",
    [
        "\\boxed{" + "(" * 5000 + "1" + ")" * 5000 + "}",
        "\\boxed{" + "x^" * 3000 + "2}",
        "\\boxed{" + "\\frac{1}{" * 300 + "2" + "}" * 300 + "}",
        "\\boxed{9^{9^{9^{9^{9}}}}}",
    ],
)
def test_adversarial_answers_return_within_the_time_bound(response):
    start = time.perf_counter()
    result = score_answer("math500", response, "1", timeout_s=2.0)
    assert time.perf_counter() - start < 2.0 + 1.5
    assert result.score in (0.0, 1.0)
