"""``python -m duet_verl.evaluate``'s settings, one dataclass read by the input checks, the model cache, the resume
store and the runner."""

from __future__ import annotations

from dataclasses import dataclass, field

from duet_verl.core import QWEN3_MARKERS
from duet_verl.inference import Sampling


@dataclass
class EvalConfig:
    data: list[str]
    out: str
    modes: list[str]
    large: str | None = None  # trained M (duet)
    small: str | None = None
    base_large: str | None = None  # base M (large, concise); None: the same model as ``large``
    small_template: str = "paper"
    small_question: str = "bare"  # m's question in duet: extra_info.question, or M's user message ("as_prompted")
    large_sampling: Sampling = field(default_factory=lambda: Sampling(16384, 0.6, 0.95, 20))
    small_sampling: Sampling = field(default_factory=lambda: Sampling(2048, 0.0))
    small_max_prompt_tokens: int | None = None
    markers: tuple[str, str] = QWEN3_MARKERS  # M's thinking markers (duet.think_start, duet.think_end)
    seeds: int = 1
    max_samples: int | None = None
    chunk_size: int = 64
    progress: bool = True

    def __post_init__(self):
        if self.base_large is None:
            self.base_large = self.large

    @property
    def shares_large(self) -> bool:
        """Base M is trained M: one M response per question serves both ``large`` and ``duet``."""
        return self.base_large == self.large
