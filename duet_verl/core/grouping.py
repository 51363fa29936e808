"""GRPO group ids (DUET.md, step 8): M's group is the n responses to one question; m's group is all n·k answers
of one question (paper, ``question``) or the k answers of one signal (``signal``)."""

from __future__ import annotations

from collections.abc import Sequence

GROUPINGS = ("question", "signal")


def small_group_ids(question_uids: Sequence[str], large_rows: Sequence[int], grouping: str) -> list[str]:
    """Group id of each m answer from its question uid and the M row (signal) it read."""
    if grouping == "question":
        return [str(uid) for uid in question_uids]
    if grouping == "signal":
        return [f"{uid}/{row}" for uid, row in zip(question_uids, large_rows, strict=True)]
    raise ValueError(f"small_grouping={grouping!r}; valid: {list(GROUPINGS)}")
