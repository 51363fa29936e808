"""Score an answer against the ground truth: 1.0 or 0.0 plus the extracted prediction (DUET.md, step 5).

Routed by ``data_source`` (lower-case substring patterns; ``register_scorer`` adds more):
- math (MATH-500, AIME, AMC, DeepScaleR, DAPO, GSM8K, ...): the last ``\\boxed{...}`` / ``\\fbox{...}``,
  equal after normalisation, else equivalent by ``math-verify``;
- GPQA: the last ``Answer: X`` letter, A-D.

Model output is parsed, never evaluated as code. math-verify's own timeout relies on ``signal.alarm`` and only
works in a main thread, while verl's reward loop scores from worker threads; so it runs in a child process
with a hard per-answer time bound, and answers too long to parse are compared as normalised strings only.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from multiprocessing import get_context


@dataclass(frozen=True)
class AnswerScore:
    score: float
    prediction: str | None


Scorer = Callable[[str, str, float], AnswerScore]
MAX_VERIFY_CHARS = 1000  # longer predictions or ground truths skip math-verify (string comparison only)


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` or ``\\fbox{...}`` (nested braces), or of ``\\boxed 5``."""
    starts = [m for m in re.finditer(r"\\(?:boxed|fbox)", text)]
    for match in reversed(starts):
        rest = text[match.end() :]
        if rest.startswith("{"):
            depth = 0
            for i, char in enumerate(rest):
                depth += char == "{"
                depth -= char == "}"
                if depth == 0:
                    return rest[1:i]
            continue  # unbalanced: try an earlier one
        spaced = re.match(r"\s+([^\s$]+)", rest)
        if spaced:
            return spaced.group(1)
    return None


def normalize_math(answer: str) -> str:
    """Cheap canonical form: no spaces, ``\\left``/``\\right``, ``$``, ``\\!``, ``\\text{}`` wrapper or end dot."""
    answer = re.sub(r"\\text\{(.*?)\}", r"\1", answer)
    for token in ("\\left", "\\right", "\\!", "\\,", "\\;", "$", " "):
        answer = answer.replace(token, "")
    answer = answer.replace("dfrac", "frac").replace("tfrac", "frac").rstrip(".")
    if re.fullmatch(r"-?\d+\.0+", answer):
        answer = answer.split(".")[0]
    if re.fullmatch(r"-?0*\d+", answer):
        answer = str(int(answer))
    return answer


@functools.lru_cache(maxsize=4096)
def _parse_in_child(latex: str, timeout_s: int):
    from math_verify import parse

    return parse(f"${latex}$", parsing_timeout=timeout_s)


def _verify_in_child(gold: str, prediction: str, timeout_s: int) -> bool:
    from math_verify import verify

    gold_parsed, pred_parsed = _parse_in_child(gold, timeout_s), _parse_in_child(prediction, timeout_s)
    return bool(gold_parsed and pred_parsed and verify(gold_parsed, pred_parsed, timeout_seconds=timeout_s))


class _Verifier:
    """One child process running math-verify; a call that overruns its bound kills and replaces it."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"))
            self._pool.submit(_verify_in_child, "1", "1", 5).result()  # start-up (imports) is not timed
        return self._pool

    def equivalent(self, gold: str, prediction: str, timeout_s: float) -> bool | None:
        """True/False, or None when math-verify did not answer within ``timeout_s``."""
        with self._lock:
            pool = self._ensure_pool()
            future = pool.submit(_verify_in_child, gold, prediction, max(1, math.ceil(timeout_s)))
            try:
                return future.result(timeout=timeout_s)
            except FutureTimeout:
                for process in list(getattr(pool, "_processes", {}).values()):
                    process.kill()
                pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
                return None
            except Exception:
                return False


_VERIFIER = _Verifier()


def score_math(response: str, ground_truth: str, timeout_s: float = 5.0) -> AnswerScore:
    prediction = last_boxed(response)
    if prediction is None:
        return AnswerScore(0.0, None)
    if normalize_math(prediction) == normalize_math(ground_truth):
        return AnswerScore(1.0, prediction)
    if len(prediction) > MAX_VERIFY_CHARS or len(ground_truth) > MAX_VERIFY_CHARS:
        return AnswerScore(0.0, prediction)
    return AnswerScore(1.0 if _VERIFIER.equivalent(ground_truth, prediction, timeout_s) else 0.0, prediction)


GPQA_ANSWER = re.compile(r"answer\s*:\s*\**\s*\(?([A-D])\)?(?![A-Za-z])", re.IGNORECASE)


def score_gpqa(response: str, ground_truth: str, timeout_s: float = 5.0) -> AnswerScore:
    matches = GPQA_ANSWER.findall(response)
    if not matches:
        return AnswerScore(0.0, None)
    prediction = matches[-1].upper()
    return AnswerScore(float(prediction == ground_truth.strip().upper()), prediction)


_ROUTES: list[tuple[str, Scorer]] = [("gpqa", score_gpqa)] + [
    (pattern, score_math) for pattern in ("math", "aime", "amc", "deepscaler", "dapo", "gsm8k", "olympiad", "tiny_math")
]


def register_scorer(pattern: str, scorer: Scorer) -> None:
    """Route data sources containing ``pattern`` (case-insensitive) to ``scorer``; checked before built-ins."""
    _ROUTES.insert(0, (pattern.lower(), scorer))


def scorer_for(data_source: str) -> Scorer:
    source = data_source.lower()
    for pattern, scorer in _ROUTES:
        if pattern in source:
            return scorer
    raise ValueError(
        f"no DUET scorer for data_source {data_source!r}; known patterns: {[p for p, _ in _ROUTES]}; "
        "register one with duet_verl.core.scoring.register_scorer(pattern, scorer)"
    )


def score_answer(data_source: str, response: str, ground_truth: str, timeout_s: float = 5.0) -> AnswerScore:
    """1.0/0.0 and the extracted prediction for one answer, by the rule of its ``data_source``."""
    return scorer_for(data_source)(response, str(ground_truth), timeout_s)
