"""The length-penalty weight λ (docs/method.md, "λ schedules"): training state that checkpoints save and restore.

- ``constant``: λ stays ``lambda_init`` (the authors ran λ = 1.0 in one run).
- ``adaptive`` (authors' default): after each training step ``λ ← clip(λ + η · (mean L / B − 1), min, max)``:
  λ grows while M's responses are longer than the bound B and shrinks while they are shorter.

A step's penalty uses ``value`` read *before* that step's ``update``.
"""

from __future__ import annotations

import math

SCHEDULES = ("constant", "adaptive")


def _finite(name: str, value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


class LambdaSchedule:
    """λ for the length penalty: :meth:`from_config` builds it from the ``duet`` config."""

    def __init__(
        self,
        schedule: str,
        lambda_init: float = 0.0,
        eta: float = 0.01,
        length_bound: float = 1000.0,
        clip_min: float = 0.0,
        clip_max: float = 1.0,
    ):
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule={schedule!r}; valid: {list(SCHEDULES)}")
        lambda_init = _finite("lambda_init", lambda_init)
        eta = _finite("eta", eta)
        length_bound = _finite("length_bound", length_bound)
        clip_min, clip_max = _finite("clip_min", clip_min), _finite("clip_max", clip_max)
        if length_bound <= 0:
            raise ValueError(f"length_bound must be > 0, got {length_bound}")
        if eta < 0:
            raise ValueError(f"eta must be >= 0, got {eta}")
        if not 0.0 <= clip_min <= clip_max:
            raise ValueError(f"clip_min={clip_min} / clip_max={clip_max}: need 0 <= clip_min <= clip_max")
        if lambda_init < 0:
            raise ValueError(f"lambda_init must be >= 0 (a negative λ rewards length), got {lambda_init}")
        if schedule == "adaptive" and not clip_min <= lambda_init <= clip_max:
            raise ValueError(f"lambda_init={lambda_init} lies outside [clip_min, clip_max] = [{clip_min}, {clip_max}]")
        self.schedule = schedule
        self.lambda_init = lambda_init
        self.eta = eta
        self.length_bound = length_bound
        self.clip_min, self.clip_max = clip_min, clip_max
        self._value = lambda_init
        self.num_updates = 0

    @classmethod
    def from_config(cls, duet) -> LambdaSchedule:
        """From the ``duet.*`` fields (a ``DuetConfig``): ``lambda_schedule``, ``lambda_init``, ``lambda_eta``,
        ``length_bound``, ``lambda_clip_min``, ``lambda_clip_max``."""
        return cls(
            schedule=duet.lambda_schedule,
            lambda_init=duet.lambda_init,
            eta=duet.lambda_eta,
            length_bound=duet.length_bound,
            clip_min=duet.lambda_clip_min,
            clip_max=duet.lambda_clip_max,
        )

    @property
    def value(self) -> float:
        """λ for the current step's penalty."""
        return self._value

    def update(self, mean_length: float) -> float:
        """End of a training step: feed the batch's mean penalised length L, get the next step's λ."""
        mean_length = _finite("mean_length", mean_length)
        if mean_length < 0:
            raise ValueError(f"mean_length must be >= 0, got {mean_length}")
        if self.schedule == "adaptive":
            step = self._value + self.eta * (mean_length / self.length_bound - 1.0)
            self._value = min(max(step, self.clip_min), self.clip_max)
        self.num_updates += 1
        return self._value

    def state_dict(self) -> dict:
        return {"schedule": self.schedule, "value": self._value, "num_updates": self.num_updates}

    def load_state_dict(self, state: dict) -> None:
        """Continue from a checkpoint. The schedule must match; a constant λ must equal ``lambda_init``
        (a changed config would otherwise be silently overridden by the checkpoint, or vice versa)."""
        if state["schedule"] != self.schedule:
            raise ValueError(f"checkpoint has a {state['schedule']!r} λ schedule, this run {self.schedule!r}")
        value = _finite("value", state["value"])
        if self.schedule == "constant" and value != self.lambda_init:
            raise ValueError(f"checkpoint has constant λ={value} but lambda_init={self.lambda_init}")
        self._value = value
        self.num_updates = int(state.get("num_updates", 0))

    def __repr__(self) -> str:
        return f"LambdaSchedule({self.schedule!r}, value={self._value}, updates={self.num_updates})"
