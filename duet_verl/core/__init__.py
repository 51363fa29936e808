"""DUET's pure logic: signal extraction, m's prompts, answer scoring, rewards, λ schedule and GRPO groups.

No Ray, verl or GPU imports: everything here is unit-tested on CPU in seconds and usable from any script.
"""

from duet_verl.core.grouping import GROUPINGS, small_group_ids
from duet_verl.core.lambda_schedule import SCHEDULES, LambdaSchedule
from duet_verl.core.prompts import (
    MATH_INSTRUCTION,
    SMALL_QUESTIONS,
    TEMPLATES,
    SmallPrompt,
    render_small_prompt,
    small_question,
)
from duet_verl.core.rewards import (
    LENGTH_MEASURES,
    MARGINAL_UTILITY_MODES,
    DuetRewards,
    compute_duet_rewards,
    place_on_last_token,
    response_lengths,
    thinking_lengths,
)
from duet_verl.core.scoring import AnswerScore, last_boxed, register_scorer, score_answer, scorer_for
from duet_verl.core.signal import (
    QWEN3_MARKERS,
    THINK_END,
    THINK_START,
    ResponseDecoder,
    Signal,
    SignalCase,
    extract_signal,
    marker_token_id,
    thinking_token_count,
)

__all__ = [
    "GROUPINGS",
    "LENGTH_MEASURES",
    "MARGINAL_UTILITY_MODES",
    "MATH_INSTRUCTION",
    "QWEN3_MARKERS",
    "SCHEDULES",
    "SMALL_QUESTIONS",
    "TEMPLATES",
    "THINK_END",
    "THINK_START",
    "AnswerScore",
    "DuetRewards",
    "LambdaSchedule",
    "ResponseDecoder",
    "Signal",
    "SignalCase",
    "SmallPrompt",
    "small_question",
    "compute_duet_rewards",
    "extract_signal",
    "marker_token_id",
    "last_boxed",
    "place_on_last_token",
    "register_scorer",
    "render_small_prompt",
    "response_lengths",
    "score_answer",
    "scorer_for",
    "small_group_ids",
    "thinking_lengths",
    "thinking_token_count",
]
