"""DUET's pure logic: no Ray, verl or GPU imports; unit-tested in milliseconds and usable from any script."""

from duet_verl.core.grouping import GROUPINGS, small_group_ids
from duet_verl.core.lambda_schedule import LambdaSchedule
from duet_verl.core.prompts import TEMPLATES, SmallPrompt, render_small_prompt
from duet_verl.core.rewards import DuetRewards, compute_duet_rewards, place_on_last_token
from duet_verl.core.scoring import AnswerScore, last_boxed, register_scorer, score_answer
from duet_verl.core.signal import Signal, SignalCase, extract_signal, thinking_token_count

__all__ = [
    "GROUPINGS",
    "TEMPLATES",
    "AnswerScore",
    "DuetRewards",
    "LambdaSchedule",
    "Signal",
    "SignalCase",
    "SmallPrompt",
    "compute_duet_rewards",
    "extract_signal",
    "last_boxed",
    "place_on_last_token",
    "register_scorer",
    "render_small_prompt",
    "score_answer",
    "small_group_ids",
    "thinking_token_count",
]
