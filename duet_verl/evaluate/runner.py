"""Evaluate M and m in the modes ``duet``, ``large``, ``small`` and ``concise`` and write records as they come.

The paper compares M alone before training with the trained pair, so two M's take part: ``large`` (M's own
answer, thinking on) and ``concise`` (M with the concise instruction) use base M (``base_large``), ``duet``
(trained m reads trained M's signal) uses trained M (``large``). Without a separate base M both are the same
model, and one M response per question serves both ``large`` and ``duet``. ``small`` is m alone: M's prompt
(with the dataset's answer-format instruction the scorer needs) through m's chat template, thinking off.
Signals, m's prompts in ``duet`` and scoring are those of training (``duet_verl.core``).

Models load on first use, so a resumed run loads only those it still needs; a separate base M runs its modes
first and is released before trained M loads, so that one GPU never holds both. Every finished sample is one
line of ``records.jsonl``, flushed at once; a rerun with the same ``--out`` skips what is there, and reuses a
stored M response when only one of ``duet``/``large`` is missing and they share M.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from duet_verl.core import QWEN3_MARKERS, SMALL_QUESTIONS, score_answer, scorer_for, small_question
from duet_verl.evaluate.metrics import MODES
from duet_verl.inference import LargeOutput, Sampling, answer, chat_prompt, generate, think

BASE_MODES = ("large", "concise")  # M alone: base M

REQUIRED_COLUMNS = ("data_source", "prompt", "reward_model", "extra_info")
# settings that change what a sample is: a resumed run must use the same ones
RESUME_KEYS = (
    "large", "base_large", "small", "small_template", "small_question", "large_sampling", "small_sampling",
    "small_max_prompt_tokens",
)  # fmt: skip
LARGE_FIELDS = ("large_model", "large_text", "large_tokens", "large_thinking_tokens", "large_seconds")


class EvalInputError(ValueError):
    """Bad input found before any model loads: the message says what, where, and what to do."""


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


# ------------------------------------------------------------------------------------------------ validation
def check_model(path: str | None, role: str, flag: str) -> None:
    """A local folder must hold a config and a tokenizer; anything that is not a local path is a hub id."""
    if path is None:
        raise EvalInputError(f"the selected modes need {role}: pass {flag} PATH_OR_HUB_ID")
    local = Path(path).expanduser()
    looks_local = path.startswith(("/", ".", "~")) or local.exists() or path.count("/") != 1
    if not looks_local:
        return
    if not local.is_dir():
        raise EvalInputError(f"{role} ({flag} {path}): no such folder; pass a model folder or a hub id (owner/name)")
    if not (local / "config.json").is_file():
        raise EvalInputError(f"{role} ({flag} {path}): no config.json in the folder; is it a Hugging Face model?")
    if not any((local / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
        raise EvalInputError(f"{role} ({flag} {path}): no tokenizer files in the folder; save the tokenizer beside it")


def _benchmark_name(path: Path, sources: list[str]) -> str:
    return sources[0] if len(sources) == 1 else path.parent.name or path.stem


def load_questions(paths: list[str], max_samples: int | None, modes) -> dict[str, list[Question]]:
    """Read and check every parquet file (columns, data sources, fields) before any model loads."""
    import pandas as pd

    benchmarks: dict[str, list[Question]] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.is_file():
            raise EvalInputError(f"data file {path} does not exist; prepare it with python -m data_prep.<name>")
        try:
            frame = pd.read_parquet(path)
        except Exception as error:  # pyarrow raises several types for a file that is not parquet
            raise EvalInputError(f"data file {path} is not a readable parquet file: {error}") from error
        if len(frame) == 0:
            raise EvalInputError(f"data file {path} has no rows; prepare it again with python -m data_prep.<name>")
        missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
        if missing:
            raise EvalInputError(
                f"data file {path} lacks column(s) {missing} (has {list(frame.columns)}); files from "
                "python -m data_prep.<name> have data_source, prompt, reward_model, extra_info"
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
                    "and M's signal) needs it; prepare the file with python -m data_prep.<name>"
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
        raise EvalInputError(f"--seeds must be >= 1, got {config.seeds}")
    if config.small_question not in SMALL_QUESTIONS:
        raise EvalInputError(f"--small-question must be one of {list(SMALL_QUESTIONS)}, got {config.small_question!r}")
    if "duet" in config.modes or (config.shares_large and any(m in BASE_MODES for m in config.modes)):
        check_model(config.large, "M (the capable model)", "--large")
    if not config.shares_large and any(m in BASE_MODES for m in config.modes):
        check_model(config.base_large, "base M (M alone in large and concise)", "--base-large")
    if needs_small(config.modes):
        check_model(config.small, "m (the small model)", "--small")
    return load_questions(config.data, config.max_samples, config.modes)


# ------------------------------------------------------------------------------------------------ records
class RecordStore:
    """``records.jsonl``: read what a previous run finished (dropping a half-written last line), append new."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / "records.jsonl"
        self.records: dict[tuple, dict] = {}
        if self.path.exists():
            data = self.path.read_bytes()
            lines = data.split(b"\n")
            complete = b"\n".join(lines[:-1]) + b"\n" if len(lines) > 1 else b""
            if lines[-1].strip():  # interrupted in the middle of a line: drop the partial line
                self.path.write_bytes(complete)
            for line in complete.decode().splitlines():
                if line.strip():
                    record = json.loads(line)
                    self.records[self.key(record)] = record
        self._file = self.path.open("a")

    @staticmethod
    def key(record: dict) -> tuple:
        return (record["benchmark"], record["mode"], record["seed"], record["row"])

    def get(self, benchmark, mode, seed, row) -> dict | None:
        return self.records.get((benchmark, mode, seed, row))

    def add(self, record: dict) -> None:
        self.records[self.key(record)] = record
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def check_resume(out_dir: Path, config: EvalConfig) -> None:
    """Refuse to mix samples of different settings in one output folder."""
    current = {k: v for k, v in asdict(config).items() if k in RESUME_KEYS}
    current = json.loads(json.dumps(current))
    path = out_dir / "run_config.json"
    if path.exists():
        previous = json.loads(path.read_text())
        changed = {k: (previous.get(k), current[k]) for k in RESUME_KEYS if previous.get(k) != current[k]}
        if changed:
            raise EvalInputError(
                f"{out_dir} holds a run with other settings (previous, now): {changed}; "
                "use a new --out folder, or delete this one to start over"
            )
    else:
        path.write_text(json.dumps(current, indent=2) + "\n")


# ------------------------------------------------------------------------------------------------ the run
def sample_seed(seed: int, benchmark: str, row: int, role: str) -> int:
    """A stable per-sample seed: the same sample gets the same randomness whatever the batching or resume."""
    return zlib.crc32(f"{seed}/{benchmark}/{row}/{role}".encode())


class Models:
    """Tokenizers and generators of base M (role ``base``), trained M (``large``) and m (``small``).

    Each loads on first use (``make_generator(path, role)``, so tests and backends can differ); ``base`` is the
    ``large`` model itself unless another one was given. ``release`` frees a generator's memory.
    """

    def __init__(self, config: EvalConfig, make_generator: Callable[[str, str], object]):
        self.paths = {"base": config.base_large, "large": config.large, "small": config.small}
        self.shared = config.shares_large
        self._make_generator = make_generator
        self._tokenizers: dict[str, object] = {}
        self._generators: dict[str, object] = {}

    def _key(self, role: str) -> str:
        return "large" if role == "base" and self.shared else role

    def path(self, role: str) -> str:
        return self.paths[self._key(role)]

    def tokenizer(self, role: str):
        key = self._key(role)
        if key not in self._tokenizers:
            from transformers import AutoTokenizer

            self._tokenizers[key] = AutoTokenizer.from_pretrained(self.paths[key])
        return self._tokenizers[key]

    def generator(self, role: str):
        key = self._key(role)
        if key not in self._generators:
            self._generators[key] = self._make_generator(self.paths[key], key)
        return self._generators[key]

    def release(self, role: str) -> None:
        generator = self._generators.pop(self._key(role), None)
        if generator is not None:
            generator.close()


def _base_record(q: Question, mode: str, seed: int) -> dict:
    return {
        "benchmark": q.benchmark,
        "mode": mode,
        "seed": seed,
        "row": q.row,
        "question_id": q.question_id,
        "data_source": q.data_source,
        "question": q.question,
        "ground_truth": q.ground_truth,
        "large_model": None,
        "large_text": None,
        "signal": None,
        "signal_case": None,
        "small_text": None,
        "prediction": None,
        "correct": 0.0,
        "score_method": None,
        "large_tokens": 0,
        "large_thinking_tokens": 0,
        "small_prompt_tokens": 0,
        "signal_tokens_cut": 0,
        "small_tokens": 0,
        "large_seconds": 0.0,
        "small_seconds": 0.0,
    }


def _scored(record: dict, q: Question, text: str) -> dict:
    score = score_answer(q.data_source, text, q.ground_truth)
    record.update(prediction=score.prediction, correct=score.score, score_method=score.method)
    return record


def _large_fields(output: LargeOutput, models: Models, role: str) -> dict:
    return {
        "large_model": models.path(role),
        "large_text": output.text,
        "large_tokens": output.tokens,
        "large_thinking_tokens": output.thinking_tokens,
        "large_seconds": output.seconds,
    }


def _thinking_responses(config, models: Models, store: RecordStore, missing, seed: int, role: str, modes) -> dict:
    """``role``'s M response (thinking on) per missing question of ``modes``: one response serves all ``modes``,
    and one already stored in a record of them is reused. The per-sample seed does not depend on which M
    writes, so base M and trained M answer with the same randomness (paired samples)."""
    questions = {q.row: q for mode in modes for q in missing.get(mode, [])}
    fields: dict[int, dict] = {}
    for row, q in questions.items():
        for mode in modes:
            stored = store.get(q.benchmark, mode, seed, row)
            if stored is not None and stored["large_text"] is not None:
                fields[row] = {k: stored[k] for k in LARGE_FIELDS}
    to_generate = [q for row, q in questions.items() if row not in fields]
    if not to_generate:
        return fields
    seeds = [sample_seed(seed, q.benchmark, q.row, "large") for q in to_generate]
    outputs = think(
        models.generator(role), models.tokenizer(role), [q.messages for q in to_generate], config.large_sampling, seeds,
        markers=config.markers,
    )  # fmt: skip
    for q, output in zip(to_generate, outputs, strict=True):
        fields[q.row] = _large_fields(output, models, role)
    return fields


def run_chunk(
    config: EvalConfig, models: Models, store: RecordStore, chunk: list[Question], seed: int, modes: list[str]
) -> int:
    """Finish every missing sample of ``modes`` in one chunk; returns how many records were written."""
    written = 0
    missing = {mode: [q for q in chunk if store.get(q.benchmark, mode, seed, q.row) is None] for mode in modes}

    writers = {"large": ("large", "duet")} if models.shared else {"base": ("large",), "large": ("duet",)}
    responses: dict[str, dict] = {}
    for role, shared_by in writers.items():
        fields = _thinking_responses(config, models, store, missing, seed, role, shared_by)
        responses.update(dict.fromkeys(shared_by, fields))

    for q in missing.get("large", []):
        record = _base_record(q, "large", seed) | responses["large"][q.row]
        store.add(_scored(record, q, record["large_text"]))
        written += 1

    duet = missing.get("duet", [])
    if duet:  # m reads the signal in M's response: the chain of duet_verl.inference, stage 2
        records = [_base_record(q, "duet", seed) | responses["duet"][q.row] for q in duet]
        questions = [small_question(q.question, q.messages, config.small_question) for q in duet]
        outputs = answer(
            models.generator("small"), models.tokenizer("small"), questions,
            [record["large_text"] for record in records], config.small_sampling,
            [sample_seed(seed, q.benchmark, q.row, "duet") for q in duet],
            config.small_template, config.small_max_prompt_tokens, config.markers,
        )  # fmt: skip
        for q, record, output in zip(duet, records, outputs, strict=True):
            record.update(
                signal=output.signal,
                signal_case=output.signal_case,
                small_prompt_tokens=output.prompt_tokens,
                signal_tokens_cut=output.signal_tokens_cut,
                small_text=output.text,
                small_tokens=output.tokens,
                small_seconds=output.seconds,
            )
            store.add(_scored(record, q, output.text))
            written += 1

    concise = missing.get("concise", [])
    if concise:
        seeds = [sample_seed(seed, q.benchmark, q.row, "concise") for q in concise]
        messages = [q.messages for q in concise]
        outputs = think(
            models.generator("base"), models.tokenizer("base"), messages, config.large_sampling, seeds, concise=True,
            markers=config.markers,
        )  # fmt: skip
        for q, output in zip(concise, outputs, strict=True):
            record = _base_record(q, "concise", seed) | _large_fields(output, models, "base")
            store.add(_scored(record, q, output.text))
            written += 1

    # m alone reads M's prompt: the question with the answer-format instruction (\boxed{}, "Answer: X") that
    # the scorer needs; the bare question (what m reads beside a signal) would underrate m
    small = missing.get("small", [])
    if small:
        prompts = [chat_prompt(models.tokenizer("small"), q.messages, thinking=False) for q in small]
        seeds = [sample_seed(seed, q.benchmark, q.row, "small") for q in small]
        outputs, seconds = generate(models.generator("small"), prompts, config.small_sampling, seeds)
        for q, prompt, generation in zip(small, prompts, outputs, strict=True):
            record = _base_record(q, "small", seed)
            record.update(
                small_text=generation.text,
                small_tokens=len(generation.token_ids),
                small_prompt_tokens=len(prompt),
                small_seconds=seconds,
            )
            store.add(_scored(record, q, generation.text))
            written += 1
    return written


def run(config: EvalConfig, make_generator: Callable[[str, str], object]) -> dict:
    """Validate, load the models, generate what is missing, and write ``summary.json``, tables and plot.

    ``make_generator(model_path, role)`` builds a ``backends.Generator``; role is ``"base"`` (base M, when it is
    another model than trained M), ``"large"`` (trained M) or ``"small"`` (m).
    Returns the summary (``{benchmark: {mode: metrics}}``). Raises ``EvalInputError`` before loading any
    model when the input is bad.
    """
    from duet_verl.evaluate.metrics import summarize
    from duet_verl.evaluate.report import write_reports

    benchmarks = validate(config)
    out_dir = Path(config.out).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    check_resume(out_dir, config)
    store = RecordStore(out_dir)
    try:
        wanted = [
            (q.benchmark, mode, seed, q.row)
            for questions in benchmarks.values()
            for seed in range(config.seeds)
            for q in questions
            for mode in config.modes
        ]
        if any(key not in store.records for key in wanted):
            models = Models(config, make_generator)
            _generate_missing(config, models, store, benchmarks)
    finally:
        store.close()
    selected = {(b, q.row) for b, questions in benchmarks.items() for q in questions}
    records = [
        r
        for r in store.records.values()
        if r["mode"] in config.modes and r["seed"] < config.seeds and (r["benchmark"], r["row"]) in selected
    ]
    summary = summarize(records)
    write_reports(summary, out_dir)
    return summary


def mode_phases(config: EvalConfig) -> list[list[str]]:
    """The modes in the order they run: a separate base M's modes first, so it can go before trained M loads."""
    if config.shares_large:
        return [config.modes]
    phases = [[m for m in config.modes if m in BASE_MODES], [m for m in config.modes if m not in BASE_MODES]]
    return [phase for phase in phases if phase]


def _generate_missing(config: EvalConfig, models: Models, store: RecordStore, benchmarks) -> None:
    from tqdm.auto import tqdm

    for modes in mode_phases(config):
        for benchmark, questions in benchmarks.items():
            total = len(questions) * config.seeds * len(modes)
            done = sum(
                store.get(benchmark, mode, seed, q.row) is not None
                for seed in range(config.seeds)
                for q in questions
                for mode in modes
            )
            desc = f"{benchmark} ({', '.join(modes)})"
            with tqdm(total=total, initial=done, desc=desc, unit="sample", disable=not config.progress) as bar:
                for seed in range(config.seeds):
                    for start in range(0, len(questions), config.chunk_size):
                        chunk = questions[start : start + config.chunk_size]
                        bar.update(run_chunk(config, models, store, chunk, seed, modes))
        if not config.shares_large and set(modes) <= set(BASE_MODES):
            models.release("base")  # before trained M loads
