"""Stop signals in process: the driver's handlers record the first signal and pass it on once, and
``DuetTrainer.fit`` (on a bare trainer whose step, save and validation are recorded) saves after the step in
flight, skips its validation and returns ``PREEMPTED``. The real run, signalled mid-step through the recipe, is
in tests/train/test_duet_cpu_e2e.py and tests/cluster/test_ray_cluster.py."""

from __future__ import annotations

import os
import signal
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from duet_verl.train.preemption import COMPLETED, PREEMPTED, StopSignals, signal_problems
from duet_verl.train.trainer import DuetTrainer


class Recorder:
    """A stand-in for the ``StopRequest`` actor handle: ``request.remote(name)`` is recorded."""

    def __init__(self):
        self.requests: list[str] = []
        self.request = SimpleNamespace(remote=self.requests.append)


def test_the_first_signal_is_recorded_and_forwarded_once(capfd):
    previous = signal.getsignal(signal.SIGUSR1)
    stop = Recorder()
    with StopSignals(["SIGUSR1", "SIGUSR2"]) as signals:
        signals.forward(stop)
        assert stop.requests == []  # nothing received yet
        os.kill(os.getpid(), signal.SIGUSR2)
        signals.forward(stop)
        os.kill(os.getpid(), signal.SIGUSR1)  # during the save: reported, not forwarded again
        signals.forward(stop)
    assert signals.received == "SIGUSR2" and stop.requests == ["SIGUSR2"]
    err = capfd.readouterr().err
    assert "SIGUSR2 received: the step in flight finishes" in err and "status 75" in err
    assert "SIGUSR1 received while stopping for SIGUSR2" in err
    assert signal.getsignal(signal.SIGUSR1) is previous, "the handlers are put back"


def test_only_catchable_signals_can_be_stop_signals():
    assert signal_problems(["SIGTERM", "SIGINT", "SIGUSR1"]) == []
    problems = signal_problems(["SIGKILL", "SIGNOPE", "TERM"])
    assert len(problems) == 3 and "cannot be caught" in problems[0] and "not a signal name" in problems[1]


def bare_trainer(
    steps: int, save_freq: int, test_freq: int, signal_during: int | None, in_validation: bool = False
) -> DuetTrainer:
    """A DuetTrainer whose step, checkpoint and validation are recorded; the driver's stop signal arrives during
    step ``signal_during`` (0: while the workers start, before training; None: never), or during the validation
    after that step (``in_validation``)."""
    trainer_config = {
        "project_name": "duet_test", "experiment_name": "preemption", "logger": ["console"], "total_epochs": 1,
        "val_before_train": False, "save_freq": save_freq, "test_freq": test_freq, "resume_mode": "disable",
        "n_gpus_per_node": 2, "nnodes": 1,
    }  # fmt: skip
    duet = DuetTrainer.__new__(DuetTrainer)
    duet.config = OmegaConf.create({"trainer": trainer_config, "global_profiler": {"steps": None}})
    duet.total_training_steps = steps
    duet.train_dataloader = [{"batch": i} for i in range(steps)]
    duet.events = []
    duet._duet_step = lambda batch, metrics, timing: duet.events.append(("step", duet.global_steps))
    duet._save_checkpoint = lambda: duet.events.append(("save", duet.global_steps))
    duet._validate = lambda: duet.events.append(("validate", duet.global_steps)) or {}

    def stop_reason() -> str | None:
        kind = "validate" if in_validation else "step"
        done = max((step for event, step in duet.events if event == kind), default=0)
        return "SIGTERM" if signal_during is not None and done >= signal_during else None

    duet._stop_reason = stop_reason
    return duet


def test_a_stop_mid_run_saves_after_the_step_in_flight_and_skips_its_validation():
    duet = bare_trainer(steps=5, save_freq=-1, test_freq=1, signal_during=3)  # no periodic saves at all
    assert duet.fit() == PREEMPTED
    assert duet.events == [("step", 1), ("validate", 1), ("step", 2), ("validate", 2), ("step", 3), ("save", 3)]


@pytest.mark.parametrize("save_freq", [-1, 2])
def test_a_stop_during_validation_saves_that_step_without_another(save_freq):
    """The signal arrives while step 2 validates: step 2 is checkpointed at once (once, also when it was a save
    step); step 3 never starts, so the grace period holds a validation and a save, not a whole step more."""
    duet = bare_trainer(steps=5, save_freq=save_freq, test_freq=2, signal_during=2, in_validation=True)
    assert duet.fit() == PREEMPTED
    periodic = [("save", 2)] if save_freq == 2 else []  # a save step saves before its validation, as always
    asked = [] if periodic else [("save", 2)]
    assert duet.events == [("step", 1), ("step", 2), *periodic, ("validate", 2), *asked]


def test_a_stop_at_a_periodic_save_saves_once():
    duet = bare_trainer(steps=6, save_freq=2, test_freq=-1, signal_during=4)
    assert duet.fit() == PREEMPTED
    assert duet.events == [("step", 1), ("step", 2), ("save", 2), ("step", 3), ("step", 4), ("save", 4)]


def test_a_stop_before_training_saves_nothing():
    duet = bare_trainer(steps=3, save_freq=1, test_freq=1, signal_during=0)
    assert duet.fit() == PREEMPTED and duet.events == []


def test_a_stop_during_the_last_step_lets_the_run_complete():
    duet = bare_trainer(steps=3, save_freq=-1, test_freq=3, signal_during=3)
    assert duet.fit() == COMPLETED
    assert duet.events[-2:] == [("step", 3), ("validate", 3)], "the last step validates and completes as usual"


def test_without_a_stop_the_run_completes():
    duet = bare_trainer(steps=4, save_freq=2, test_freq=-1, signal_during=None)
    assert duet.fit() == COMPLETED
    assert duet.events == [("step", 1), ("step", 2), ("save", 2), ("step", 3), ("step", 4), ("save", 4)]


def test_each_step_logs_verl_throughput_for_both_models(tmp_path, monkeypatch):
    """The step's tokens per model (set by the step) become verl's ``perf/throughput``: tokens / (step s × GPUs)."""
    from duet_verl.experiments.runs import METRICS_FILE, file_logger, read_metrics

    duet = bare_trainer(steps=1, save_freq=-1, test_freq=-1, signal_during=None)
    logger_env, _ = file_logger(tmp_path)
    for name, value in logger_env.items():
        monkeypatch.setenv(name, value)
    duet.config.trainer.logger = ["file"]

    def step(batch, metrics, timing):
        metrics.update({"large/perf/total_num_tokens": 3000, "small/perf/total_num_tokens": 1000})

    duet._duet_step = step
    assert duet.fit() == COMPLETED
    logged = read_metrics(tmp_path / METRICS_FILE)[1]
    seconds = logged["perf/time_per_step"]
    assert seconds == logged["timing_s/step"] > 0
    assert logged["large/perf/throughput"] == pytest.approx(3000 / (seconds * 2), rel=1e-3)
    assert logged["perf/throughput"] == pytest.approx(4000 / (seconds * 2), rel=1e-3)


@pytest.mark.parametrize(
    ("continuous", "windows"),
    [(False, [("start", 2), ("stop", 2), ("start", 3), ("stop", 3), ("start", 5), ("stop", 5)]),
     (True, [("start", 2), ("stop", 3), ("start", 5), ("stop", 5)])],
)  # fmt: skip
def test_profiled_steps_open_windows_on_m_workers_around_the_step(continuous, windows):
    """verl's profiler window, on M's workers only (their processes hold m's workers too): one per profiled step,
    or one per run of consecutive steps; the finish command runs after the last."""
    duet = bare_trainer(steps=6, save_freq=-1, test_freq=-1, signal_during=None)
    duet.config.global_profiler = {"steps": [2, 3, 5], "profile_continuous_steps": continuous}
    run_commands = []

    def start_profile(role, profile_step):
        assert role == "train"
        duet.events.append(("start", profile_step))

    def stop_profile(run_command):
        duet.events.append(("stop", duet.global_steps))
        run_commands.append(run_command)

    workers = SimpleNamespace(start_profile=start_profile, stop_profile=stop_profile)
    duet.large = SimpleNamespace(actor_rollout_wg=workers)
    assert duet.fit() == COMPLETED
    assert [event for event in duet.events if event[0] in ("start", "stop")] == windows
    assert run_commands == [False] * (len(windows) // 2 - 1) + [True]
    order = {event: i for i, event in enumerate(duet.events)}
    assert order[("start", 2)] < order[("step", 2)] < order[windows[1]], "the window holds the whole step"
