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

import zlib
from collections.abc import Callable
from pathlib import Path

from duet_verl.core import score_answer, small_question
from duet_verl.evaluate.config import EvalConfig
from duet_verl.evaluate.inputs import BASE_MODES, Question, validate
from duet_verl.evaluate.models import Models
from duet_verl.evaluate.store import RecordStore, check_resume
from duet_verl.inference import LargeOutput, answer, chat_prompt, generate, think

LARGE_FIELDS = ("large_model", "large_text", "large_tokens", "large_thinking_tokens", "large_seconds")


# ------------------------------------------------------------------------------------------------ the run
def sample_seed(seed: int, benchmark: str, row: int, role: str) -> int:
    """A stable per-sample seed: the same sample gets the same randomness whatever the batching or resume."""
    return zlib.crc32(f"{seed}/{benchmark}/{row}/{role}".encode())


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
