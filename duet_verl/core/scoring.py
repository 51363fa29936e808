"""Score one m answer against the ground truth: 1.0 or 0.0 plus the extracted prediction (docs/method.md, "Scoring").

Routed by ``data_source`` (case-insensitive substring patterns, user patterns first, see ``register_scorer``):

- ``gpqa``: the last ``Answer: X`` letter, A-D (the simple-evals format the GPQA prompt asks for);
- ``math``, ``aime``, ``amc``, ``deepscaler``, ``dapo``, ``olympiad``, ``tiny_math``: the last
  ``\\boxed{...}`` / ``\\fbox{...}``; equal after a conservative normalisation, equal as plain numbers, or else
  equivalent according to ``math-verify``;
- ``gsm8k``: the same, or without a box the number after the last ``####`` (verl's own GSM8K format).

Model output is parsed, never evaluated as code. Timing: math-verify's own timeout relies on ``signal.alarm``,
which only works in a main thread, while verl's reward loop scores from executor threads; and some answers
(``9^{9^{9}}``) hang inside C big-integer code where no signal handler runs. So math-verify runs in child
processes (``_math_verify_worker.py``) and a call that overruns ``timeout_s`` kills its child and scores 0.0.
Answers longer than ``MAX_VERIFY_CHARS`` are compared as normalised strings only.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import re
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path


@dataclass(frozen=True)
class AnswerScore:
    score: float
    prediction: str | None  # None: no answer could be extracted
    method: str = ""  # how the score was decided: no_answer, exact, numeric, math_verify, too_long, timeout, ...


Scorer = Callable[[str, str, float], "AnswerScore | float"]

MAX_VERIFY_CHARS = 400  # longest ground truth in MATH-500 is 53 chars; longer predictions are string-compared
WORKER_SCRIPT = Path(__file__).with_name("_math_verify_worker.py")
WORKER_START_TIMEOUT_S = 120.0  # importing sympy can be slow on a busy node; not part of a call's time bound
SOFT_TIMEOUT_FRACTION = 0.8  # the child gives up by itself at this fraction of the bound and stays alive


# ---------------------------------------------------------------------------------------------- extraction
_BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (nested and escaped braces) or ``\\boxed 5``.

    None when there is none, or when the last one never closes (m was cut off while writing its answer: an
    earlier box is an intermediate result, not the answer). Linear time in ``len(text)``.
    """
    for match in reversed(list(_BOX_COMMAND.finditer(text))):
        position = match.end()
        while position < len(text) and text[position] in " \t":
            position += 1
        if position < len(text) and text[position] == "{":
            return _braced(text, position)
        if position > match.end():  # "\boxed 5": up to the next whitespace or "$"
            token = re.match(r"[^\s$]+", text[position:])
            if token:
                return token.group(0)
        # "\boxed" without an argument ("\boxed." in prose): look at an earlier one
    return None


def _braced(text: str, open_at: int) -> str | None:
    depth, position = 0, open_at
    while position < len(text):
        char = text[position]
        if char == "\\":
            position += 2  # \{ and \} are literal braces
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1 : position]
        position += 1
    return None


_SPACING = re.compile(r"\\[!,;: ]|\\left(?![A-Za-z])|\\right(?![A-Za-z])|\$|\s+")
_TEXT_WRAPPER = re.compile(r"^\\(?:text|textbf|mathrm|mbox)\{(.*)\}$")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def normalize_math(answer: str) -> str:
    """Conservative canonical form for the fast path: no whitespace, ``$``, spacing commands,
    ``\\left``/``\\right``, ``\\dfrac``/``\\tfrac`` → ``\\frac``, a whole-answer ``\\text{}`` unwrapped and no
    final full stop. Only rewrites that cannot make two different answers equal."""
    answer = _SPACING.sub("", answer).rstrip(".")
    answer = answer.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    wrapped = _TEXT_WRAPPER.match(answer)
    return wrapped.group(1) if wrapped else answer


def _as_number(normalized: str) -> Fraction | None:
    if _THOUSANDS.fullmatch(normalized):
        normalized = normalized.replace(",", "")
    if len(normalized) <= 100 and _PLAIN_NUMBER.fullmatch(normalized):
        return Fraction(normalized)
    return None


# ---------------------------------------------------------------------------------------------- math-verify
class _WorkerProcess:
    """One math-verify child. Started at construction; ``ask`` waits for it to be ready on first use."""

    def __init__(self):
        bootstrap = (
            "import json, runpy, sys; sys.path[:] = json.loads(sys.argv[1]); "
            "runpy.run_path(sys.argv[2], run_name='__main__')"
        )
        # -I and an explicit sys.path: the worker must not see duet_verl/core (whose signal.py shadows the stdlib)
        search_path = [p for p in sys.path if p and Path(p).resolve() != WORKER_SCRIPT.parent]
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-c", bootstrap, json.dumps(search_path), str(WORKER_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
        )
        self.ready = False

    def _read_line(self, deadline: float) -> dict | None:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([self.process.stdout], [], [], remaining)[0]:
            return None
        line = self.process.stdout.readline()  # replies are single short lines written in one go
        try:
            return json.loads(line)
        except ValueError:  # EOF (the child died) or not a reply
            return None

    def ask(self, gold: str, prediction: str, timeout_s: float) -> dict | None:
        """The worker's reply, or None if it did not reply within ``timeout_s`` (then it is dead)."""
        if not self.ready:
            if self._read_line(time.monotonic() + WORKER_START_TIMEOUT_S) != {"ready": True}:
                self.kill()
                raise RuntimeError(f"the math-verify worker ({WORKER_SCRIPT}) failed to start; see its stderr")
            self.ready = True
        request = {"gold": gold, "prediction": prediction, "soft_timeout_s": SOFT_TIMEOUT_FRACTION * timeout_s}
        deadline = time.monotonic() + timeout_s
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            reply = self._read_line(deadline)
        except (BrokenPipeError, ValueError):
            reply = None
        if reply is None:
            self.kill()
        return reply

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            stream.close()


class _WorkerPool:
    """Up to ``size`` children, each serving one calling thread at a time (verl's reward loop calls from many).

    Waiting for a free child is queueing and does not count against a call's time bound; a child killed for
    overrunning is replaced at once, so its successor starts up while other answers are scored.
    """

    def __init__(self, size: int):
        self.size = size
        self._idle: list[_WorkerProcess] = []
        self._count = 0
        self._available = threading.Condition()

    def _acquire(self) -> _WorkerProcess:
        with self._available:
            while not self._idle and self._count >= self.size:
                self._available.wait()
            if self._idle:
                return self._idle.pop()
            self._count += 1
        try:
            return _WorkerProcess()
        except BaseException:
            self._release(None)
            raise

    def _release(self, worker: _WorkerProcess | None) -> None:
        replacement = None
        if worker is not None and not worker.alive:  # killed for overrunning: start its successor now
            try:
                replacement = _WorkerProcess()
            except OSError:
                replacement = None
        with self._available:
            if worker is not None and worker.alive:
                self._idle.append(worker)
            elif replacement is not None:
                self._idle.append(replacement)
            else:
                self._count -= 1
            self._available.notify()

    def ask(self, gold: str, prediction: str, timeout_s: float) -> dict | None:
        worker = self._acquire()
        try:
            return worker.ask(gold, prediction, timeout_s)
        except BaseException:
            worker.kill()
            worker = None
            raise
        finally:
            self._release(worker)

    def close(self) -> None:
        with self._available:
            for worker in self._idle:
                worker.kill()
            self._count -= len(self._idle)
            self._idle.clear()


_POOL = _WorkerPool(int(os.environ.get("DUET_MATH_VERIFY_WORKERS", "0")) or min(4, os.cpu_count() or 1))
atexit.register(_POOL.close)


class _UndecidedError(Exception):
    """math-verify gave no verdict (timeout or error); not cached."""


@functools.lru_cache(maxsize=65536)
def _math_verify_equal(gold: str, prediction: str, timeout_s: float) -> bool:
    reply = _POOL.ask(gold, prediction, timeout_s)
    if reply is None or "timeout" in reply or "error" in reply:
        raise _UndecidedError("timeout" if reply is None or "timeout" in reply else "error")
    return bool(reply["equal"])


# ---------------------------------------------------------------------------------------------- scorers
def score_math(response: str, ground_truth: str, timeout_s: float = 5.0) -> AnswerScore:
    """Last boxed answer vs the ground truth; see the module docstring for the order of checks."""
    prediction = last_boxed(response)
    if prediction is None:
        return AnswerScore(0.0, None, "no_answer")
    pred_norm, gold_norm = normalize_math(prediction), normalize_math(ground_truth)
    if not pred_norm:
        return AnswerScore(0.0, prediction, "empty")
    if pred_norm == gold_norm:
        return AnswerScore(1.0, prediction, "exact")
    pred_number, gold_number = _as_number(pred_norm), _as_number(gold_norm)
    if pred_number is not None and gold_number is not None:
        return AnswerScore(float(pred_number == gold_number), prediction, "numeric")
    if len(prediction) > MAX_VERIFY_CHARS or len(ground_truth) > MAX_VERIFY_CHARS:
        return AnswerScore(0.0, prediction, "too_long")
    try:
        equal = _math_verify_equal(ground_truth, prediction, float(timeout_s))
    except _UndecidedError as undecided:
        return AnswerScore(0.0, prediction, str(undecided))
    return AnswerScore(float(equal), prediction, "math_verify")


# "Answer" (any case), optional markdown bold, ":", optional "$", "\boxed{"/"\text{", "(" and one capital A-D
# not followed by a letter ("Answer: Because" is no "B"). Each optional part starts with its own character,
# so a long run of spaces or asterisks cannot make the regex backtrack quadratically.
_GPQA_ANSWER = re.compile(
    r"(?i:answer)\s*(?:\*+\s*)?[:：]\s*(?:\*+\s*)?(?:\$\s*)?(?:\\(?:boxed|text|textbf|mathrm)\{\s*)?(?:\(\s*)?"
    r"([A-D])(?![A-Za-z0-9])"
)


def score_gpqa(response: str, ground_truth: str, timeout_s: float = 5.0) -> AnswerScore:
    """The letter of the last ``Answer: X`` line vs the ground-truth letter (``"C"``, ``"(C)"``, ``"c"``)."""
    gold = ground_truth.strip().strip("()").strip().upper()
    if gold not in ("A", "B", "C", "D"):
        raise ValueError(f"GPQA ground truth must be a letter A-D, got {ground_truth!r}")
    prediction = None
    for match in _GPQA_ANSWER.finditer(response):
        prediction = match.group(1)
    if prediction is None:
        return AnswerScore(0.0, None, "no_answer")
    return AnswerScore(float(prediction == gold), prediction, "letter")


_HASHES_ANSWER = re.compile(r"####\s*\$?\s*([-+]?[\d,]*\.?\d+)")


def score_gsm8k(response: str, ground_truth: str, timeout_s: float = 5.0) -> AnswerScore:
    """GSM8K: the last boxed answer, as for math, or, without one, the number after the last ``####`` (the answer
    line of GSM8K's own solutions, which verl's GSM8K preprocessing asks the model to write)."""
    if last_boxed(response) is None:
        numbers = _HASHES_ANSWER.findall(response)
        if numbers:
            result = score_math(f"\\boxed{{{numbers[-1].replace(',', '')}}}", ground_truth, timeout_s)
            return AnswerScore(result.score, result.prediction, f"hashes_{result.method}")
    return score_math(response, ground_truth, timeout_s)


# ---------------------------------------------------------------------------------------------- routing
MATH_PATTERNS = ("math", "aime", "amc", "deepscaler", "dapo", "olympiad", "tiny_math")
_BUILTIN_ROUTES: list[tuple[str, str, Scorer]] = [("gpqa", "gpqa", score_gpqa), ("gsm8k", "gsm8k", score_gsm8k)] + [
    (pattern, "math", score_math) for pattern in MATH_PATTERNS
]
_USER_ROUTES: list[tuple[str, str, Scorer]] = []


def register_scorer(pattern: str, scorer: Scorer, name: str | None = None) -> None:
    """Route every ``data_source`` containing ``pattern`` (case-insensitive) to ``scorer``.

    ``scorer(response, ground_truth, timeout_s)`` returns an ``AnswerScore`` (or a float score). User
    patterns are checked before the built-in ones, the latest first; registering a pattern again replaces it.
    """
    pattern = pattern.lower()
    if not pattern:
        raise ValueError("register_scorer needs a non-empty pattern")
    _USER_ROUTES[:] = [route for route in _USER_ROUTES if route[0] != pattern]
    _USER_ROUTES.insert(0, (pattern, name or getattr(scorer, "__name__", pattern), scorer))


def _route(data_source: str) -> tuple[str, Scorer]:
    source = str(data_source).lower()
    for pattern, name, scorer in _USER_ROUTES + _BUILTIN_ROUTES:
        if pattern in source:
            return name, scorer
    known = [pattern for pattern, _, _ in _USER_ROUTES + _BUILTIN_ROUTES]
    raise ValueError(
        f"no DUET scorer for data_source {data_source!r}; known patterns: {known}; "
        "register one with duet_verl.core.register_scorer(pattern, scorer)"
    )


def scorer_for(data_source: str) -> str:
    """Name of the scorer ``data_source`` is routed to (``"gpqa"``, ``"math"`` or a registered name)."""
    return _route(data_source)[0]


def score_answer(data_source: str, response: str, ground_truth: str, timeout_s: float = 5.0) -> AnswerScore:
    """Score one answer by the rule of its ``data_source``: 1.0/0.0 and the extracted prediction.

    Thread-safe. Returns within about ``timeout_s`` (plus, once per process, the math-verify worker's start).
    """
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    _, scorer = _route(data_source)
    result = scorer(response, str(ground_truth), timeout_s)
    return result if isinstance(result, AnswerScore) else AnswerScore(float(result), None, "custom")
