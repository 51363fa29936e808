"""The length-penalty weight λ (DUET.md "λ schedules"), as training state that checkpoints restore."""

from __future__ import annotations

SCHEDULES = ("constant", "adaptive")


class LambdaSchedule:
    """``constant``: λ stays λ0. ``adaptive``: after each step λ ← clip(λ + η (mean L / B − 1), min, max).

    A step's penalty uses ``value`` read before that step's ``update``.
    """

    def __init__(
        self,
        schedule: str,
        lambda_init: float,
        eta: float = 0.01,
        length_bound: float = 1000.0,
        clip_min: float = 0.0,
        clip_max: float = 1.0,
    ):
        if schedule not in SCHEDULES:
            raise ValueError(f"lambda_schedule={schedule!r}; valid: {list(SCHEDULES)}")
        if length_bound <= 0:
            raise ValueError(f"length_bound must be > 0, got {length_bound}")
        if not 0.0 <= clip_min <= clip_max:
            raise ValueError(f"lambda_clip_min={clip_min} / lambda_clip_max={clip_max}: need 0 <= min <= max")
        if eta < 0:
            raise ValueError(f"lambda_eta must be >= 0, got {eta}")
        self.schedule = schedule
        self.eta = eta
        self.length_bound = length_bound
        self.clip_min, self.clip_max = clip_min, clip_max
        self._value = float(lambda_init) if schedule == "constant" else self._clip(float(lambda_init))

    def _clip(self, value: float) -> float:
        return min(max(value, self.clip_min), self.clip_max)

    @property
    def value(self) -> float:
        return self._value

    def update(self, mean_length: float) -> float:
        if self.schedule == "adaptive":
            self._value = self._clip(self._value + self.eta * (mean_length / self.length_bound - 1.0))
        return self._value

    def state_dict(self) -> dict:
        return {"schedule": self.schedule, "value": self._value}

    def load_state_dict(self, state: dict) -> None:
        if state["schedule"] != self.schedule:
            raise ValueError(f"checkpoint has a {state['schedule']!r} λ schedule, this run {self.schedule!r}")
        self._value = float(state["value"])
