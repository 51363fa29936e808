"""``python -m duet_verl.evaluate``'s input checks, all before any model loads: modes, models and data files, each
error saying what was wrong, where, and what to do."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from duet_verl import cli
from duet_verl.cli import UsageError
from duet_verl.core import SMALL_QUESTIONS, scorer_for
from duet_verl.evaluate.metrics import MODES

if TYPE_CHECKING:
    from duet_verl.evaluate.config import EvalConfig

BASE_MODES = ("large", "concise")  # M alone: base M
REQUIRED_COLUMNS = ("data_source", "prompt", "reward_model", "extra_info")


class EvalInputError(UsageError):
    """Bad input found before any model loads: the message says what, where, and what to do."""


@dataclass(frozen=True)
class Question:
    benchmark: str
    row: int  # position in the file: the resume key
    question_id: str
    data_source: str
    messages: list[dict]
    question: str
    ground_truth: str


def needs_small(modes) -> bool:
    return any(m in ("duet", "small") for m in modes)


def check_model(path: str | None, role: str, flag: str) -> None:
    """``duet_verl.cli.check_model``, its error an ``EvalInputError``."""
    try:
        cli.check_model(path, role, flag)
    except UsageError as error:
        raise EvalInputError(str(error)) from error


def _benchmark_name(path: Path, sources: list[str]) -> str:
    return sources[0] if len(sources) == 1 else path.parent.name or path.stem


def load_questions(paths: list[str], max_samples: int | None, modes) -> dict[str, list[Question]]:
    """Read and check every parquet file (columns, data sources, fields) before any model loads."""
    import pandas as pd

    benchmarks: dict[str, list[Question]] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.is_file():
            raise EvalInputError(
                f"data file {path} does not exist; prepare it with python -m duet_verl.data_prep.<name>"
            )
        try:
            frame = pd.read_parquet(path)
        except Exception as error:  # pyarrow raises several types for a file that is not parquet
            raise EvalInputError(f"data file {path} is not a readable parquet file: {error}") from error
        if len(frame) == 0:
            raise EvalInputError(
                f"data file {path} has no rows; prepare it again with python -m duet_verl.data_prep.<name>"
            )
        missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
        if missing:
            raise EvalInputError(
                f"data file {path} lacks column(s) {missing} (has {list(frame.columns)}); files from "
                "python -m duet_verl.data_prep.<name> have data_source, prompt, reward_model, extra_info"
            )
        sources = sorted({str(s) for s in frame["data_source"]})
        for source in sources:
            try:
                scorer_for(source)
            except ValueError as error:
                raise EvalInputError(
                    f"data file {path}: no scorer for data_source {source!r} ({error}); register one with "
                    "duet_verl.core.register_scorer or fix the data_source"
                ) from error
        name = _benchmark_name(path, sources)
        while name in benchmarks:
            name += "_"
        if max_samples is not None:
            frame = frame.iloc[:max_samples]
        questions = []
        for row, record in enumerate(frame.to_dict("records")):
            extra = record["extra_info"] or {}
            ground_truth = (record["reward_model"] or {}).get("ground_truth")
            messages = [dict(m) for m in record["prompt"]] if record["prompt"] is not None else []
            if ground_truth is None or not messages:
                raise EvalInputError(f"data file {path}, row {row}: no reward_model.ground_truth or empty prompt")
            question = extra.get("question")
            if question is None and "duet" in modes:
                raise EvalInputError(
                    f"data file {path}, row {row}: extra_info.question is missing, and duet (m reads the question "
                    "and M's signal) needs it; prepare the file with python -m duet_verl.data_prep.<name>"
                )
            index = extra.get("index")
            questions.append(
                Question(
                    name,
                    row,
                    str(index if index is not None else row),
                    str(record["data_source"]),
                    messages,
                    str(question or ""),
                    str(ground_truth),
                )
            )
        benchmarks[name] = questions
    return benchmarks


def validate(config: EvalConfig) -> dict[str, list[Question]]:
    unknown = [m for m in config.modes if m not in MODES]
    if unknown or not config.modes:
        raise EvalInputError(f"unknown mode(s) {unknown}; choose from {list(MODES)}")
    if config.seeds < 1:
        raise EvalInputError(f"--samples must be >= 1, got {config.seeds}")
    if config.small_question not in SMALL_QUESTIONS:
        raise EvalInputError(f"--small-question must be one of {list(SMALL_QUESTIONS)}, got {config.small_question!r}")
    if "duet" in config.modes or (config.shares_large and any(m in BASE_MODES for m in config.modes)):
        check_model(config.large, "M (the capable model)", "--large")
    if not config.shares_large and any(m in BASE_MODES for m in config.modes):
        check_model(config.base_large, "base M (M alone in large and concise)", "--base-large")
    if needs_small(config.modes):
        check_model(config.small, "m (the small model)", "--small")
    return load_questions(config.data, config.max_samples, config.modes)
