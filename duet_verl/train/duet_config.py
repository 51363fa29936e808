"""The ``duet:`` config section as named fields, each documented once, and the yaml section and docs table
rendered from them. Start-up checks live in ``config_checks``, the per-model views of the config in
``model_views``.
"""

from __future__ import annotations

import sys
import textwrap
from dataclasses import MISSING, dataclass, field, fields

from omegaconf import DictConfig

from duet_verl.core import TEMPLATES, THINK_END, THINK_START

LARGE, SMALL = "large", "small"
SMALL_BLOCK = "small_actor_rollout_ref"
BASELINE_TEMPLATE = "baseline"
GUIDED_TEMPLATES = tuple(t for t in TEMPLATES if t != BASELINE_TEMPLATE)  # what duet.small_prompt_template may be


class DuetConfigError(ValueError):
    """An invalid DUET configuration, raised before any worker starts; the message names the keys."""


def _key(default, meaning: str, paper: str | None = None):
    """A ``duet.*`` key: its default, what it means, and the paper's value where the paper fixes one."""
    return field(default=default, metadata={"meaning": meaning, "paper": paper})


@dataclass(frozen=True)
class DuetConfig:
    """``config.duet`` with types. Each key is documented here and only here: the yaml's ``duet:`` section and the
    table in docs/training.md are rendered from these fields (``python -m duet_verl.train.duet_config [yaml|markdown]``)
    and tests/train/test_duet_config.py keeps them equal."""

    length_bound: float = _key(
        1000, "B: length bound in M tokens; the penalty is λ·L/B, linear in every token.", "1000"
    )
    lambda_schedule: str = _key(
        "adaptive",
        '"constant", or "adaptive": λ ← clip(λ + η (mean L / B − 1), clip_min, clip_max) after each step.',
        "adaptive",
    )
    lambda_init: float = _key(0.0, "λ0: the penalty weight of the first step.", "0.0 adaptive, 1.0 constant")
    lambda_eta: float = _key(0.01, "η: step size of the adaptive schedule.", "0.01")
    lambda_clip_min: float = _key(0.0, "Lower clip of λ under the adaptive schedule.")
    lambda_clip_max: float = _key(1.0, "Upper clip of λ under the adaptive schedule.")
    marginal_utility: str = _key(
        "per_signal",
        '"off" (R_M = r_Mm − penalty), "per_signal" (fresh baseline m answers for every M response, R_M −= r_m) '
        'or "per_prompt" (k baseline answers per question; under GRPO it trains exactly like "off").',
        "per_signal",
    )
    small_rollouts_per_signal: int = _key(
        4, "k: m answers sampled per signal; also the baseline answers per signal or question.", "4"
    )
    small_prompt_template: str = _key(
        "paper",
        '"paper" (the authors\' raw text, no special tokens) or "chat_think" (m\'s chat template with the signal '
        "as the assistant's thinking block).",
        "paper",
    )
    length_measure: str = _key(
        "response", 'Which M length the penalty counts: "response" (the whole response) or "thinking" (up to '
        "</think>).", "response",
    )  # fmt: skip
    think_start: str = _key(
        THINK_START,
        "M's start-of-thinking marker (Qwen3's); the signal is the text after it. A chat template may put it in "
        "the prompt, so M's response need not show it.",
    )
    think_end: str = _key(
        THINK_END,
        "M's end-of-thinking marker (Qwen3's); the signal ends before it and thinking lengths count up to it. "
        "Kept when M's responses are decoded even if it is a special token; one token of M's vocabulary for "
        'length_measure "thinking".',
    )
    small_grouping: str = _key(
        "question",
        'm\'s GRPO groups: "question" (all n·k answers of a question) or "signal" (the k answers of one signal).',
        "question",
    )
    train_small: bool = _key(True, "Train m (true) or keep it frozen (false: m only generates and scores).", "true")
    small_prompt_length: int | None = _key(
        None,
        "m's prompt budget in tokens (question + template + signal), also m's rollout.prompt_length; at least M's "
        "prompt + response length (data.max_prompt_length + data.max_response_length, the default when null). A "
        "signal that still does not fit is shortened from its start (the question never is).",
    )
    val_small_rollouts_per_signal: int = _key(1, "m answers per signal in validation (m answers greedily).", "1")
    val_small_question: str = _key(
        "bare",
        'The question m reads in validation: "bare" (extra_info.question, as in training) or "as_prompted" (M\'s '
        "user message, the dataset's answer instruction included: the authors' form for AIME, AMC and MATH).",
        "as_prompted",
    )
    stop_signals: tuple[str, ...] = _key(
        ("SIGTERM", "SIGINT", "SIGUSR1"),
        "Signals on which the driver finishes the step in flight, writes a checkpoint and exits with status 75, "
        "for the scheduler to requeue (docs/clusters.md, Preemption).",
    )
    damaged_checkpoint: str = _key(
        "error",
        "When the checkpoint a resume would load is damaged (a file missing or truncated, a tracker naming no "
        'intact folder): "error" (stop before loading, naming the file and the newest intact checkpoint) or '
        '"last_intact" (move it aside and resume from that one, saying so).',
    )

    @classmethod
    def from_config(cls, config: DictConfig) -> DuetConfig:
        duet = config.duet
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(duet) - known)
        if unknown:
            raise DuetConfigError(f"unknown keys under duet: {unknown}; known: {sorted(known)}")
        values = {name: duet[name] for name in known}
        values["stop_signals"] = tuple(values["stop_signals"])
        if values["small_prompt_length"] is None:
            values["small_prompt_length"] = config.data.max_prompt_length + config.data.max_response_length
        return cls(**values)

    @property
    def needs_baseline(self) -> bool:
        return self.marginal_utility != "off"


def _yaml_value(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, tuple):
        return f"[{', '.join(map(str, value))}]"
    return str(value).lower() if isinstance(value, bool) else str(value)


def yaml_section() -> str:
    """The ``duet:`` section of ``duet_verl/config/duet_trainer.yaml``: every key with its meaning as a comment."""
    lines = [
        "# DUET's own keys, documented in DuetConfig (duet_verl/train/duet_config.py): edit them there; this section",
        "# is its output (`python -m duet_verl.train.duet_config`), checked by tests/train/test_duet_config.py.",
        "duet:",
    ]
    for key in fields(DuetConfig):
        meaning = key.metadata["meaning"] + (f" Paper: {key.metadata['paper']}." if key.metadata["paper"] else "")
        lines += textwrap.wrap(meaning, width=116, initial_indent="  # ", subsequent_indent="  # ")
        lines += [f"  {key.name}: {_yaml_value(key.default)}", ""]
    return "\n".join(lines[:-1]) + "\n"


def markdown_table() -> str:
    """The ``duet.*`` table of docs/training.md."""
    rows = ["| key | default | paper | meaning |", "|---|---|---|---|"]
    for key in fields(DuetConfig):
        assert key.default is not MISSING, key.name
        meaning = key.metadata["meaning"].replace("|", "\\|").replace("<", "&lt;")
        rows.append(f"| `{key.name}` | {_yaml_value(key.default)} | {key.metadata['paper'] or ''} | {meaning} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    # python -m duet_verl.train.duet_config [yaml|markdown]: the duet.* keys as the yaml section or the docs table
    print(markdown_table() if sys.argv[1:] == ["markdown"] else yaml_section(), end="")
