import gc
import math
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from duet_verl.core import AnswerScore, last_boxed, register_scorer, score_answer, scorer_for, scoring


@pytest.mark.parametrize(
    ("text", "boxed"),
    [
        ("so the answer is \\boxed{5}.", "5"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)"),
        ("first \\boxed{1} then \\boxed{2}", "2"),
        ("\\fbox{7}", "7"),
        ("\\boxed{1} and finally \\fbox{8}", "8"),
        ("$\\boxed 5$", "5"),
        ("\\boxed 42 is it", "42"),
        ("\\boxed {9}", "9"),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),  # escaped braces do not count
        ("\\boxed{\\left\\{1, 2\\right.}", "\\left\\{1, 2\\right."),
        ("\\boxed{}", ""),
        ("no box here", None),
        ("", None),
        ("\\boxed{3} then cut off \\boxed{\\frac{1}{", None),  # the last box never closes: no answer
        ("\\boxed{4}. Remember to use \\boxed.", "4"),  # "\boxed" without an argument is prose
        ("\\boxedx{3}", None),
        ("\\boxed{a{b{c}d}e}", "a{b{c}d}e"),
    ],
)
def test_last_boxed(text, boxed):
    assert last_boxed(text) == boxed


def boxed(answer: str) -> str:
    return f"Let me think. The answer is $\\boxed{{{answer}}}$."


@pytest.mark.parametrize(
    ("prediction", "truth", "score", "method"),
    [
        ("5", "5", 1.0, "exact"),
        ("\\dfrac{1}{2}", "\\frac{1}{2}", 1.0, "exact"),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})", 1.0, "exact"),
        ("\\text{Monday}", "Monday", 1.0, "exact"),
        ("27", "27.0", 1.0, "numeric"),  # AMC copies with float answers
        ("033", "33", 1.0, "numeric"),
        ("58500", "58,500", 1.0, "numeric"),
        ("0.5", ".5", 1.0, "numeric"),
        ("6", "5", 0.0, "numeric"),
        ("5.01", "5", 0.0, "numeric"),
        ("0.5", "\\frac{1}{2}", 1.0, "math_verify"),
        ("(3,\\pi/2)", "\\left( 3, \\frac{\\pi}{2} \\right)", 1.0, "math_verify"),
        ("(x+1)^2", "x^2+2x+1", 1.0, "math_verify"),
        ("\\frac{2}{3}", "\\frac{1}{2}", 0.0, "math_verify"),
        ("\\sqrt{2}", "\\sqrt{3}", 0.0, "math_verify"),
        ("[1,2)", "[1,2]", 0.0, "math_verify"),
        ("", "5", 0.0, "empty"),
    ],
)
def test_math_scores(prediction, truth, score, method):
    result = score_answer("HuggingFaceH4/MATH-500", boxed(prediction), truth)
    assert result == AnswerScore(score, prediction, method)


@pytest.mark.parametrize(
    ("response", "truth", "score", "prediction"),
    [
        ("The answer is 5.", "5", 0.0, None),  # math answers must be boxed
        ("\\boxed{4} hmm, no: \\boxed{5}", "5", 1.0, "5"),
        ("\\boxed{5} hmm, no: \\boxed{4}", "5", 0.0, "4"),
        ("#### 18\n\\boxed{18}", "18", 1.0, "18"),  # GSM8K ground truths are plain numbers
        ("\\fbox{-1}", "-1", 1.0, "-1"),
    ],
)
def test_math_extraction_rules(response, truth, score, prediction):
    result = score_answer("math500", response, truth)
    assert (result.score, result.prediction) == (score, prediction)


@pytest.mark.parametrize(
    ("response", "truth", "score", "method"),
    [
        ("3 + 4 = 7 apples.\n#### 7", "7", 1.0, "hashes_exact"),  # verl's own GSM8K format: the answer after ####
        ("#### 1,234", "1234", 1.0, "hashes_exact"),  # the thousands separator dropped
        ("#### 5\nso \\boxed{6}", "6", 1.0, "exact"),  # a box wins over the hashes
        ("#### 8", "7", 0.0, "hashes_numeric"),
        ("The answer is 7.", "7", 0.0, "no_answer"),
    ],
)
def test_gsm8k_answers_after_hashes_are_scored(response, truth, score, method):
    """verl's GSM8K parquet asks for the answer after '####'; scored as math, every such answer was 0."""
    result = score_answer("openai/gsm8k", response, truth)
    assert (result.score, result.method) == (score, method)


@pytest.mark.parametrize(
    ("response", "prediction"),
    [
        ("reasoning...\nAnswer: C", "C"),
        ("**Answer:** B", "B"),
        ("Answer: **D**", "D"),
        ("Answer: (A)", "A"),
        ("answer: $C$", "C"),
        ("ANSWER:B", "B"),
        ("Answer: \\boxed{D}", "D"),
        ("Answer: A is tempting, but... Answer: D", "D"),  # the last one
        ("Answer: Because the field is uniform", None),  # no letter, not "B"
        ("Answer: c", None),  # letters are capitals
        ("Answer: E", None),
        ("The answer is C", None),  # the format asked for is "Answer: X"
        ("", None),
    ],
)
def test_gpqa_extraction(response, prediction):
    result = score_answer("gpqa_diamond", response, "C")
    assert result.prediction == prediction
    assert result.score == (1.0 if prediction == "C" else 0.0)


@pytest.mark.parametrize("truth", ["C", "(C)", " c ", "C"])
def test_gpqa_ground_truth_forms(truth):
    assert score_answer("gpqa", "Answer: C", truth).score == 1.0


@pytest.mark.parametrize("truth", ["E", "", "C and D", "3"])
def test_gpqa_bad_ground_truth_is_an_error(truth):
    with pytest.raises(ValueError, match="GPQA ground truth must be a letter A-D"):
        score_answer("gpqa", "Answer: C", truth)


@pytest.mark.parametrize(
    ("data_source", "name"),
    [
        ("Idavidrein/gpqa", "gpqa"),
        ("GPQA-Diamond", "gpqa"),
        ("HuggingFaceH4/MATH-500", "math"),
        ("DigitalLearningGmbH/MATH-lighteval", "math"),
        ("aime24", "math"),
        ("AIME_2025", "math"),
        ("amc23", "math"),
        ("agentica-org/DeepScaleR-Preview-Dataset", "math"),
        ("math_dapo", "math"),
        ("openai/gsm8k", "gsm8k"),
        ("olympiadbench", "math"),
        ("tiny_math", "math"),
    ],
)
def test_routing(data_source, name):
    assert scorer_for(data_source) == name


@pytest.mark.parametrize("data_source", ["hellaswag", "", "mmlu_pro"])
def test_unknown_data_source_names_it(data_source):
    with pytest.raises(ValueError, match=rf"no DUET scorer for data_source {data_source!r}.*register_scorer"):
        score_answer(data_source, "\\boxed{1}", "1")


@pytest.fixture
def user_routes(monkeypatch):
    monkeypatch.setattr(scoring, "_USER_ROUTES", [])


def test_register_scorer_adds_a_route_checked_before_built_ins(user_routes):
    def exact_words(response, truth, timeout_s):
        return AnswerScore(float(response.strip() == truth), response.strip(), "words")

    register_scorer("trivia", exact_words)
    assert scorer_for("my_trivia_set") == "exact_words"
    assert score_answer("my_trivia_set", " Paris ", "Paris") == AnswerScore(1.0, "Paris", "words")
    register_scorer("gsm8k", lambda response, truth, timeout_s: 0.25, name="shaped")  # a float result
    assert scorer_for("openai/gsm8k") == "shaped"
    assert score_answer("openai/gsm8k", "\\boxed{1}", "1") == AnswerScore(0.25, None, "custom")
    assert scorer_for("aime24") == "math"


def test_model_output_is_never_run_as_code(tmp_path):
    marker = tmp_path / "executed"
    payload = f"__import__('os').system('touch {marker}')"
    for source in ("math500", "gpqa"):
        result = score_answer(source, f"\\boxed{{{payload}}} Answer: {payload}", "A" if source == "gpqa" else "0")
        assert result.score == 0.0
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------- time bounds
# CI is a loaded 2-core machine: wall-clock bounds here sit far above normal and catch hangs, not slowdowns;
# speed is bounded by complexity instead. Absolute timings: benchmarks/bench_scoring_limits.py.
HANG_S = 10.0  # far above the < 1 s these calls take, far below the forever they would take without a bound


def worker_pids():
    return {worker.process.pid for worker in scoring._POOL._idle}


def ready_worker():
    """A call that reaches a worker (the cache emptied first), so that no worker's start-up is timed."""
    scoring._math_verify_equal.cache_clear()
    assert score_answer("math500", boxed("\\frac{2}{4}"), "0.5").method == "math_verify"


def test_adversarial_answer_returns_within_the_time_bound(monkeypatch):
    ready_worker()
    # the child gives up at 0.5 s, the parent would kill it at 2.5 s: room for a busy CPU between the two
    monkeypatch.setattr(scoring, "SOFT_TIMEOUT_FRACTION", 0.2)
    before = worker_pids()
    start = time.monotonic()
    result = score_answer("math500", boxed("9^{9^{9^{9}}}"), "5", timeout_s=2.5)
    assert time.monotonic() - start < HANG_S
    assert result == AnswerScore(0.0, "9^{9^{9^{9}}}", "timeout")
    assert worker_pids() == before  # the child's own soft deadline fired: it was not killed


def test_a_worker_that_ignores_its_soft_deadline_is_killed_and_replaced(monkeypatch):
    """The parent's hard bound: with the child's own deadline pushed past it, the parent must kill it."""
    ready_worker()
    monkeypatch.setattr(scoring, "SOFT_TIMEOUT_FRACTION", 1000.0)  # the child would give up after 500 s
    before = worker_pids()
    start = time.monotonic()
    result = score_answer("math500", boxed("7^{7^{7^{7}}}"), "5", timeout_s=0.5)
    assert time.monotonic() - start < HANG_S
    assert result.method == "timeout"
    assert len(worker_pids() - before) == 1  # killed and replaced
    assert score_answer("math500", boxed("\\frac{3}{6}"), "0.5").score == 1.0  # a fresh worker answers


def least_cpu_seconds(call, repeats: int) -> float:
    """Least CPU time of this thread over ``repeats`` calls, collector off: neither other processes' load nor
    the collector's passes over the rest of the heap count, only the work of the call itself."""
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        best = math.inf
        for _ in range(repeats):
            start = time.thread_time()
            call()
            best = min(best, time.thread_time() - start)
        return best
    finally:
        if enabled:
            gc.enable()


@pytest.mark.parametrize(
    ("make", "size"),
    [
        (lambda n: "\\boxed{" + "1+" * n + "1}", 300_000),  # huge answer
        (lambda n: "\\boxed{" + "{" * n, 200_000),  # unclosed, deeply nested
        (lambda n: "\\boxed." * n + "\\boxed{5}", 100_000),  # many false starts
        (lambda n: "Answer" + " " * n + "x", 200_000),  # GPQA regex backtracking bait
        (lambda n: "Answer:" + "*" * n, 200_000),
    ],
    ids=["huge_answer", "unclosed_nested", "false_starts", "spaces", "asterisks"],
)
def test_huge_inputs_cost_linear_time(make, size):
    """10x the input must cost well under the 100x of a quadratic scan (regex backtracking, rescans per box)."""

    def score(response):
        score_answer("math500", response, "5", timeout_s=1.0)
        score_answer("gpqa", response, "A", timeout_s=1.0)

    small, large = make(size // 10), make(size)
    ratio = least_cpu_seconds(lambda: score(large), 3) / least_cpu_seconds(lambda: score(small), 5)
    assert ratio < 30


def test_huge_answer_is_compared_as_a_string_only():
    answer = "1+" * 1000 + "1"
    assert score_answer("math500", boxed(answer), "2001") == AnswerScore(0.0, answer, "too_long")
    assert score_answer("math500", boxed(answer), answer).score == 1.0


def test_scores_from_many_threads_at_once():
    """verl's reward loop scores in executor threads, where signal-based timeouts cannot work."""
    cases = [(f"\\frac{{{2 * i}}}{{{4 * i}}}", "0.5", 1.0) for i in range(1, 13)]
    cases += [(f"\\frac{{{i}}}{{{i + 1}}}", "1", 0.0) for i in range(1, 13)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda c: score_answer("math500", boxed(c[0]), c[1], timeout_s=5.0), cases))
    assert [r.score for r in results] == [c[2] for c in cases]
    assert all(r.method == "math_verify" for r in results)


def test_a_worker_that_cannot_start_is_an_error_not_a_zero(monkeypatch, tmp_path):
    """Silently scoring 0.0 for every answer would train on wrong rewards."""
    broken = tmp_path / "broken_worker.py"
    broken.write_text("raise SystemExit(3)\n")
    monkeypatch.setattr(scoring, "WORKER_SCRIPT", broken)
    monkeypatch.setattr(scoring, "_POOL", scoring._WorkerPool(1))
    with pytest.raises(RuntimeError, match="math-verify worker .* failed to start"):
        score_answer("math500", boxed("\\frac{7}{9}"), "0.7")
    assert scoring._POOL._count == 0  # the slot is free again


@pytest.mark.parametrize("timeout_s", [0, -1.0])
def test_timeout_must_be_positive(timeout_s):
    with pytest.raises(ValueError, match="timeout_s must be > 0"):
        score_answer("math500", boxed("1"), "1", timeout_s=timeout_s)
