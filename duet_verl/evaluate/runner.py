"""Evaluate M and m in the modes ``duet``, ``large``, ``small`` and ``concise`` and write records as they come.

Per benchmark, seed and chunk of questions: M answers once with thinking on, and that one response serves
both ``large`` (scored from M's own text) and ``duet`` (m reads its signal); ``concise`` is M again with the
concise instruction; ``small`` is m alone (its chat template, thinking off, the ``baseline`` template).
Signals, m's prompts and scoring are those of training (``duet_verl.core``). Every finished sample is one line
of ``records.jsonl``, flushed at once; a rerun with the same ``--out`` skips what is there, and reuses a
stored M response when only one of ``duet``/``large`` is missing.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from duet_verl.core import extract_signal, render_small_prompt, score_answer, scorer_for, thinking_token_count
from duet_verl.evaluate.metrics import MODES

CONCISE_INSTRUCTION = (
    "Note that you should keep the reasoning concise: include only essential reasoning steps and avoid "
    "repetition or unnecessary explanations."
)
REQUIRED_COLUMNS = ("data_source", "prompt", "reward_model", "extra_info")
# settings that change what a sample is: a resumed run must use the same ones
RESUME_KEYS = ("large", "small", "small_template", "large_sampling", "small_sampling", "small_max_prompt_tokens")


class EvalInputError(ValueError):
    """Bad input found before any model loads: the message says what, where, and what to do."""


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int
    temperature: float
    top_p: float = 1.0
    top_k: int = 0


@dataclass
class EvalConfig:
    data: list[str]
    out: str
    modes: list[str]
    large: str | None = None
    small: str | None = None
    small_template: str = "paper"
    large_sampling: Sampling = field(default_factory=lambda: Sampling(16384, 0.6, 0.95, 20))
    small_sampling: Sampling = field(default_factory=lambda: Sampling(2048, 0.0))
    small_max_prompt_tokens: int | None = None
    seeds: int = 1
    max_samples: int | None = None
    chunk_size: int = 64
    progress: bool = True


@dataclass(frozen=True)
class Question:
    benchmark: str
    row: int  # position in the file: the resume key
    question_id: str
    data_source: str
    messages: list[dict]
    question: str
    ground_truth: str


def needs_large(modes) -> bool:
    return any(m in ("duet", "large", "concise") for m in modes)


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
            if question is None and needs_small(modes):
                raise EvalInputError(
                    f"data file {path}, row {row}: extra_info.question is missing, and m's modes (duet, small) need "
                    "it; prepare the file with python -m data_prep.<name>"
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
    if needs_large(config.modes):
        check_model(config.large, "M (the capable model)", "--large")
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
    """Tokenizers and generators of M and m (built by ``make_generator`` so tests and backends can differ)."""

    def __init__(self, config: EvalConfig, make_generator: Callable[[str, str], object]):
        from transformers import AutoTokenizer

        self.large = self.small = self.large_tokenizer = self.small_tokenizer = None
        if needs_large(config.modes):
            self.large_tokenizer = AutoTokenizer.from_pretrained(config.large)
            self.large = make_generator(config.large, "large")
            think_end = self.large_tokenizer.convert_tokens_to_ids("</think>")
            self.think_end_id = think_end if think_end != self.large_tokenizer.unk_token_id else -1
        if needs_small(config.modes):
            self.small_tokenizer = AutoTokenizer.from_pretrained(config.small)
            self.small = make_generator(config.small, "small")


def _large_prompt(tokenizer, messages: list[dict], concise: bool) -> list[int]:
    if concise:
        messages = [dict(m) for m in messages]
        messages[-1]["content"] = messages[-1]["content"] + " " + CONCISE_INSTRUCTION
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, enable_thinking=True)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _generate(generator, prompts, sampling: Sampling, seeds) -> tuple[list, float]:
    if not prompts:
        return [], 0.0
    start = time.perf_counter()
    outputs = generator.generate(
        prompts, sampling.max_new_tokens, sampling.temperature, sampling.top_p, sampling.top_k, seeds
    )
    return outputs, (time.perf_counter() - start) / len(prompts)


def _base_record(q: Question, mode: str, seed: int) -> dict:
    return {
        "benchmark": q.benchmark,
        "mode": mode,
        "seed": seed,
        "row": q.row,
        "question_id": q.question_id,
        "data_source": q.data_source,
        "ground_truth": q.ground_truth,
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


def _large_fields(generation, models: Models, seconds: float) -> dict:
    return {
        "large_text": generation.text,
        "large_tokens": len(generation.token_ids),
        "large_thinking_tokens": thinking_token_count(generation.token_ids, models.think_end_id),
        "large_seconds": seconds,
    }


def run_chunk(config: EvalConfig, models: Models, store: RecordStore, chunk: list[Question], seed: int) -> int:
    """Finish every missing (mode, question) of one chunk; returns how many records were written."""
    written = 0
    missing = {mode: [q for q in chunk if store.get(q.benchmark, mode, seed, q.row) is None] for mode in config.modes}

    # M, thinking on: one response for both `large` and `duet`, reused from a stored record when there is one
    thinking = {q.row: q for mode in ("large", "duet") for q in missing.get(mode, [])}
    large_fields: dict[int, dict] = {}
    for row, q in thinking.items():
        for mode in ("large", "duet"):
            stored = store.get(q.benchmark, mode, seed, row)
            if stored is not None and stored["large_text"] is not None:
                keys = ("large_text", "large_tokens", "large_thinking_tokens", "large_seconds")
                large_fields[row] = {k: stored[k] for k in keys}
    to_generate = [q for row, q in thinking.items() if row not in large_fields]
    prompts = [_large_prompt(models.large_tokenizer, q.messages, concise=False) for q in to_generate]
    seeds = [sample_seed(seed, q.benchmark, q.row, "large") for q in to_generate]
    outputs, seconds = _generate(models.large, prompts, config.large_sampling, seeds)
    for q, generation in zip(to_generate, outputs, strict=True):
        large_fields[q.row] = _large_fields(generation, models, seconds)

    for q in missing.get("large", []):
        record = _base_record(q, "large", seed) | large_fields[q.row]
        store.add(_scored(record, q, record["large_text"]))
        written += 1

    duet = missing.get("duet", [])
    if duet:
        records, prompts = [], []
        for q in duet:
            record = _base_record(q, "duet", seed) | large_fields[q.row]
            signal = extract_signal(record["large_text"])
            prompt = render_small_prompt(
                models.small_tokenizer, config.small_template, q.question, signal.text, config.small_max_prompt_tokens
            )
            record.update(
                signal=signal.text,
                signal_case=signal.case.value,
                small_prompt_tokens=len(prompt.token_ids),
                signal_tokens_cut=prompt.signal_tokens_cut,
            )
            records.append(record)
            prompts.append(prompt.token_ids)
        seeds = [sample_seed(seed, q.benchmark, q.row, "duet") for q in duet]
        outputs, seconds = _generate(models.small, prompts, config.small_sampling, seeds)
        for q, record, generation in zip(duet, records, outputs, strict=True):
            record.update(small_text=generation.text, small_tokens=len(generation.token_ids), small_seconds=seconds)
            store.add(_scored(record, q, generation.text))
            written += 1

    concise = missing.get("concise", [])
    prompts = [_large_prompt(models.large_tokenizer, q.messages, concise=True) for q in concise]
    seeds = [sample_seed(seed, q.benchmark, q.row, "concise") for q in concise]
    outputs, seconds = _generate(models.large, prompts, config.large_sampling, seeds)
    for q, generation in zip(concise, outputs, strict=True):
        record = _base_record(q, "concise", seed) | _large_fields(generation, models, seconds)
        store.add(_scored(record, q, generation.text))
        written += 1

    small = missing.get("small", [])
    prompts = [render_small_prompt(models.small_tokenizer, "baseline", q.question, None).token_ids for q in small]
    seeds = [sample_seed(seed, q.benchmark, q.row, "small") for q in small]
    outputs, seconds = _generate(models.small, prompts, config.small_sampling, seeds)
    for q, generation in zip(small, outputs, strict=True):
        record = _base_record(q, "small", seed)
        record.update(
            small_text=generation.text,
            small_tokens=len(generation.token_ids),
            small_prompt_tokens=len(prompts[small.index(q)]),
            small_seconds=seconds,
        )
        store.add(_scored(record, q, generation.text))
        written += 1
    return written


def run(config: EvalConfig, make_generator: Callable[[str, str], object]) -> dict:
    """Validate, load the models, generate what is missing, and write ``summary.json``, tables and plot.

    ``make_generator(model_path, role)`` builds a ``backends.Generator``; role is ``"large"`` or ``"small"``.
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


def _generate_missing(config: EvalConfig, models: Models, store: RecordStore, benchmarks) -> None:
    from tqdm.auto import tqdm

    for benchmark, questions in benchmarks.items():
        total = len(questions) * config.seeds * len(config.modes)
        done = sum(
            store.get(benchmark, mode, seed, q.row) is not None
            for seed in range(config.seeds)
            for q in questions
            for mode in config.modes
        )
        with tqdm(total=total, initial=done, desc=benchmark, unit="sample", disable=not config.progress) as bar:
            for seed in range(config.seeds):
                for start in range(0, len(questions), config.chunk_size):
                    bar.update(run_chunk(config, models, store, questions[start : start + config.chunk_size], seed))
