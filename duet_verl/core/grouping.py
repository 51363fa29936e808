"""GRPO group ids (docs/method.md, "GRPO groups"). GRPO normalises each reward within its group, so the group
decides what a response is compared against.

- M: the n responses to one question (the question's uid, verl's own GRPO index: nothing to compute here).
- m, ``question`` (paper, inferred from the authors' code): all n·k guided answers of one question, so m is
  also credited for answering better from one signal than from another;
- m, ``signal``: the k answers that read one signal, so m is only compared with itself on the same signal.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

GROUPINGS = ("question", "signal")


def small_group_ids(question_uids: Sequence, large_rows: Sequence[int], grouping: str) -> np.ndarray:
    """Group id of each m answer from its question uid and the M row (signal) it read."""
    if grouping == "question":
        ids = [str(uid) for uid in question_uids]
    elif grouping == "signal":
        if len(question_uids) != len(large_rows):
            raise ValueError(f"{len(question_uids)} question uids but {len(large_rows)} M rows")
        ids = [f"{uid}/{int(row)}" for uid, row in zip(question_uids, large_rows, strict=True)]
    else:
        raise ValueError(f"small_grouping={grouping!r}; valid: {list(GROUPINGS)}")
    return np.array(ids, dtype=object)
