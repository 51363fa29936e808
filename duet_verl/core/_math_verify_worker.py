"""Child process that runs math-verify for ``duet_verl.core.scoring`` (one JSON request per line on stdin).

Runs as a script (never imported by the package). Why a process: math-verify's own timeout uses
``signal.alarm``, which only works in a main thread, and some inputs (``9^{9^{9}}``) hang inside C big-integer
arithmetic where no signal handler ever runs. Here the work runs in this process's main thread under a soft
``setitimer`` deadline (answers "timeout" and stays alive); the parent kills the process at the hard deadline.

Only ``LatexExtractionConfig`` is used: math-verify's plain-expression extraction calls sympy's ``parse_expr``,
which evaluates Python code, and model output must never be evaluated as code.

Protocol: request ``{"gold": str, "prediction": str, "soft_timeout_s": float}``; reply ``{"equal": bool}``
plus ``"timeout": true`` or ``"error": str`` when it could not decide. The first line written is ``{"ready": true}``.
"""

import json
import logging
import signal
import sys


class _Overrun(BaseException):
    """Raised by the soft deadline. A BaseException, so math-verify's ``except Exception`` cannot swallow it."""


_armed = False


def _on_alarm(signum, frame):
    if _armed:
        raise _Overrun()


def main() -> None:
    global _armed
    out, sys.stdout = sys.stdout, sys.stderr  # stdout carries the protocol only; stray prints go to stderr
    logging.disable(logging.WARNING)  # math-verify logs every timeout/parse failure; the parent reports
    from functools import lru_cache

    from math_verify import LatexExtractionConfig, parse, verify

    config = [LatexExtractionConfig()]

    @lru_cache(maxsize=4096)
    def parsed(answer: str):
        return parse("\\boxed{" + answer + "}", extraction_config=config, parsing_timeout=None)

    def equivalent(gold: str, prediction: str) -> bool:
        gold_parsed, prediction_parsed = parsed(gold), parsed(prediction)
        if not gold_parsed or not prediction_parsed:
            return False
        return bool(verify(gold_parsed, prediction_parsed, timeout_seconds=None))

    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; we exit when stdin closes
    equivalent("1", "1")  # warm up imports and regex compilation before saying ready
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            try:
                _armed = True
                signal.setitimer(signal.ITIMER_REAL, max(float(request["soft_timeout_s"]), 1e-3))
                reply = {"equal": equivalent(request["gold"], request["prediction"])}
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                _armed = False
        except _Overrun:
            reply = {"equal": False, "timeout": True}
        except Exception as error:  # a parser bug on odd input must not kill the worker
            reply = {"equal": False, "error": f"{type(error).__name__}: {error}"[:300]}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
