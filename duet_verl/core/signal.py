"""The reasoning signal: the part of M's decoded response that m gets to read.

One rule covers every case, the one Qwen3's own chat template uses to split a reply into reasoning and answer:
the reasoning ends at the *first* ``</think>`` and starts after the last ``<think>`` before it (if any).
Without ``</think>`` M never left its thinking (cut off) or never entered it, so all it wrote is the signal. The
``case`` says which branch applied so the trainer can log how often M was cut off mid-thought.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

THINK_START = "<think>"
THINK_END = "</think>"
QWEN3_MARKERS = (THINK_START, THINK_END)  # M's thinking markers unless told otherwise (duet.think_start/end)


class SignalCase(str, Enum):
    """How the signal was found in M's response."""

    THINK_BLOCK = "think_block"  # <think> ... </think>: the text between them
    CLOSE_ONLY = "close_only"  # ... </think> without an opening tag: everything before </think>
    UNCLOSED = "unclosed"  # <think> ... never closed (cut off while thinking): everything after <think>
    NO_THINK = "no_think"  # neither tag (truncated, or thinking off): the whole text
    EMPTY = "empty"  # empty or whitespace-only response: the signal is ""


@dataclass(frozen=True)
class Signal:
    text: str
    case: SignalCase

    @property
    def closed(self) -> bool:
        """True when M finished its thinking (a ``</think>`` was found)."""
        return self.case in (SignalCase.THINK_BLOCK, SignalCase.CLOSE_ONLY)

    @property
    def empty(self) -> bool:
        """True when m gets nothing to read: an empty thinking block (``<think>\n\n</think>``) or an empty response.
        A rising share of these is how M's length penalty collapses into guessing (docs/training.md, "Metrics")."""
        return not self.text


def extract_signal(response: str, start_marker: str = THINK_START, end_marker: str = THINK_END) -> Signal:
    """Extract M's reasoning signal from its decoded response (see the module docstring for the rule).

    Cases, with ``a``, ``b`` any text:

    - ``"<think>a</think>b"`` → ``a`` (THINK_BLOCK); text before ``<think>`` and after ``</think>`` is dropped.
    - ``"<think>a</think>b<think>c</think>"`` → ``a``: only the first block is reasoning before the answer.
    - ``"<think>a<think>b</think>"`` → ``b``, as Qwen3's template reads it.
    - ``"a</think>b"`` → ``a`` (CLOSE_ONLY): templates that end the prompt with ``<think>`` (Qwen3-2507
      thinking models, DeepSeek-R1 distills) never show the opening tag in the response.
    - ``"<think>a"`` → ``a`` (UNCLOSED): cut off while thinking; what M thought so far is the signal.
    - ``"a"`` → ``a`` (NO_THINK); ``""`` / whitespace → ``""`` (EMPTY).

    The signal is stripped of surrounding whitespace. ``start_marker``/``end_marker`` replace ``<think>`` and
    ``</think>`` for models that mark their thinking otherwise (``duet.think_start``/``duet.think_end``).
    """
    if not response.strip():
        return Signal("", SignalCase.EMPTY)
    end = response.find(end_marker)
    reasoning = response if end < 0 else response[:end]
    start = reasoning.rfind(start_marker)
    if start >= 0:
        reasoning = reasoning[start + len(start_marker) :]
    if end >= 0:
        case = SignalCase.THINK_BLOCK if start >= 0 else SignalCase.CLOSE_ONLY
    else:
        case = SignalCase.UNCLOSED if start >= 0 else SignalCase.NO_THINK
    return Signal(reasoning.strip(), case)


class ResponseDecoder:
    """Decodes M's responses as ``skip_special_tokens=True`` does, except that the thinking markers stay.

    Qwen3's ``<think>``/``</think>`` are ordinary added tokens and survive that decoding anyway; a model whose
    markers are special tokens would otherwise hand over a response with no visible thinking block, and its whole
    text (answer included) would become the signal.
    """

    def __init__(self, tokenizer, markers: Sequence[str] = QWEN3_MARKERS):
        self.tokenizer = tokenizer
        keep = {marker_token_id(tokenizer, marker) for marker in markers}
        special = set(tokenizer.all_special_ids) | {
            token_id for token_id, token in tokenizer.added_tokens_decoder.items() if token.special
        }
        self.dropped = frozenset(special - keep)
        self.special_markers = frozenset(special & keep)
        self.end_id = marker_token_id(tokenizer, markers[-1])  # where thinking ends; -1 when not one token

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode([i for i in ids if i not in self.dropped], skip_special_tokens=False)

    def restore(self, ids: Sequence[int], text: str) -> str:
        """``text`` (``ids`` decoded with ``skip_special_tokens=True``) with the markers it lost: decoded again
        only when ``ids`` hold a marker that is a special token, else ``text`` as it is."""
        return self.decode(ids) if self.special_markers.intersection(ids) else text

    def batch_decode(self, rows: Sequence[Sequence[int]]) -> list[str]:
        return [self.decode(ids) for ids in rows]


def marker_token_id(tokenizer, marker: str) -> int:
    """The id of ``marker`` when it is one token of ``tokenizer``'s vocabulary, else -1."""
    ids = tokenizer.encode(marker, add_special_tokens=False)
    return ids[0] if len(ids) == 1 else -1


def thinking_token_count(response_ids: Sequence[int], think_end_id: int) -> int:
    """Tokens M spent thinking: up to and including the first ``</think>``, or all of them if it never closed.

    Consistent with ``extract_signal``: the thinking block ends at the first ``</think>``, and a response
    without one is all thinking (truncated). Pass only the valid (unpadded) response ids.
    """
    for position, token in enumerate(response_ids):
        if token == think_end_id:
            return position + 1
    return len(response_ids)
