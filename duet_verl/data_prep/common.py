"""Shared machinery of the dataset scripts: hub-or-local loading, verl rows, scorer validation, atomic writes.

A dataset module declares a ``DatasetSpec`` (hub id, config, splits, data_source, ...) whose
``convert(raw_row) -> (question, ground_truth, extra)`` turns one source row into the bare question m sees,
the ground truth in the form the DUET scorer expects and a few provenance strings. ``prepare`` does the rest:

1. load each split from the hub (``datasets.load_dataset``) or from a local file or folder;
2. convert every row and build verl's row (``build_row``);
3. check every row with the DUET scorer: a response holding exactly the ground truth must score 1.0, so a
   ground truth the scorer cannot read (unbalanced braces, a letter outside A-D, ...) never reaches training;
4. report every row that fails 2-3 (dataset, split, row index, reason) and write nothing, unless
   ``skip_bad_rows`` (then the skipped rows are also listed in ``<name>/bad_rows.jsonl``): no silent drops;
5. write ``<output_root>/<name>/<split>.parquet`` atomically and print the row counts.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from duet_verl.core.prompts import MATH_INSTRUCTION

DEFAULT_OUTPUT_ROOT = "~/data/duet"
# How each scorer reads an answer: the response used to check that the scorer accepts a ground truth.
GOLD_RESPONSES: dict[str, Callable[[str], str]] = {
    "math": lambda ground_truth: f"\\boxed{{{ground_truth}}}",
    "gsm8k": lambda ground_truth: f"\\boxed{{{ground_truth}}}",
    "gpqa": lambda ground_truth: f"Answer: {ground_truth}",
}
# Local formats and the ``datasets`` builder that reads each (the one the hub would use for the same file).
LOCAL_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".arrow": "arrow", ".csv": "csv"}
# metadata a hub snapshot or save_to_disk folder may hold beside the data (never rows)
METADATA_FILES = {"dataset_infos.json", "dataset_info.json", "dataset_dict.json", "state.json"}
RESERVED_EXTRA_KEYS = ("split", "index", "question")
MAX_PRINTED_BAD_ROWS = 50
PROGRESS_EVERY = 10_000
VALIDATION_TIMEOUT_S = 10.0

Converted = tuple[str, str, dict[str, Any]]


class DataPrepError(Exception):
    """A dataset could not be prepared; the message says why and what to do. Nothing was written."""


class SchemaError(DataPrepError):
    """The source lacks a column the converter needs: every row would fail, so stop at once."""


class BadRowError(ValueError):
    """Raised by a converter for one row that cannot be converted (missing answer, empty question, ...)."""


def math_prompt(question: str) -> str:
    """M's user message for a math question (docs/method.md, "Prompts"): the question and the ``\\boxed{}``
    instruction."""
    return question + MATH_INSTRUCTION


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset script declares; ``prepare`` needs nothing else."""

    name: str  # module name, output folder and --local-root entry
    hub_id: str
    config: str | None
    splits: Mapping[str, str]  # output split -> hub split (AIME's only hub split "train" is our "test")
    data_source: str  # what the DUET scorer routes by
    ability: str
    convert: Callable[[dict], Converted]
    make_prompt: Callable[[str], str] = math_prompt  # M's user message
    scorer: str = "math"  # the scorer ``data_source`` must route to (checked before anything is loaded)
    gated: bool = False  # the hub needs a login and accepted terms


@dataclass(frozen=True)
class BadRowReport:
    dataset: str
    split: str
    index: int  # position in the source split (0-based), so the row can be found in the source
    reason: str

    def __str__(self) -> str:
        return f"bad row: dataset={self.dataset} split={self.split} index={self.index}: {self.reason}"


# ---------------------------------------------------------------------------------------------- converter helpers
def field(row: Mapping[str, Any], *names: str) -> Any:
    """The value of the first of ``names`` that is a column and not None (None when all such are None).

    Several names cover copies of a dataset that spell a column differently (``Problem``/``problem``). A row
    with none of them as a column means the source has another layout: a SchemaError, not a bad row.
    """
    present = [name for name in names if name in row]
    if not present:
        raise SchemaError(f"none of the columns {list(names)} is in the source (its columns: {sorted(row)})")
    for name in present:
        if row[name] is not None:
            return row[name]
    return None


def text_field(row: Mapping[str, Any], *names: str, what: str) -> str:
    """``field`` as a stripped string; a missing or blank value is a bad row."""
    value = field(row, *names)
    value = "" if value is None or value != value else str(value).strip()  # value != value: NaN (csv gaps)
    if not value:
        raise BadRowError(f"empty {what} (column {' / '.join(names)})")
    return value


_DECIMAL = re.compile(r"[+-]?\d+(?:\.\d+)?")


def number_answer(value: Any, what: str = "answer") -> str:
    """A plain number in its shortest form: ``27.0`` -> ``27``, ``033`` -> ``33``, ``+5`` -> ``5``.

    Anything that is not a plain decimal (LaTeX, intervals, ``1,234``) is returned stripped and unchanged:
    a comma may separate a list of answers, so only a caller that knows better (GSM8K) removes it.
    """
    if value is None or isinstance(value, bool):
        raise BadRowError(f"missing {what}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:  # NaN: how pandas/csv spell a missing value
            raise BadRowError(f"missing {what}")
        return str(int(value)) if value.is_integer() else repr(value)
    answer = str(value).strip()
    if not answer:
        raise BadRowError(f"empty {what}")
    if _DECIMAL.fullmatch(answer):
        integer, _, fraction = answer.partition(".")
        if not fraction.strip("0"):
            return str(int(integer))
        return answer.lstrip("+")
    return answer


def integer_answer(value: Any, what: str = "answer") -> str:
    """An integer answer (AIME: 0-999); anything else is a bad row."""
    answer = number_answer(value, what)
    if not re.fullmatch(r"-?\d+", answer):
        raise BadRowError(f"{what} {value!r} is not an integer")
    return answer


# ---------------------------------------------------------------------------------------------- loading
def load_splits(spec: DatasetSpec, splits: Sequence[str], local_path: str | Path | None) -> dict[str, list[dict]]:
    """Raw rows of each output split in ``splits``: from the hub, or from ``local_path`` when given."""
    if local_path is not None:
        return _load_local(spec, Path(local_path).expanduser(), splits)
    return {split: _load_hub(spec, spec.splits[split]) for split in splits}


def _load_hub(spec: DatasetSpec, hub_split: str) -> list[dict]:
    import datasets

    where = f"{spec.hub_id}" + (f" (config {spec.config})" if spec.config else "") + f", split {hub_split}"
    print(f"{spec.name}: loading {where} from the Hugging Face hub", flush=True)
    try:
        dataset = datasets.load_dataset(spec.hub_id, spec.config, split=hub_split)
    except Exception as error:
        hint = "Offline? Download it once and pass --local-path (see docs/data_prep.md)."
        if spec.gated:
            hint = (
                f"{spec.hub_id} is gated: accept its terms at https://huggingface.co/datasets/{spec.hub_id} "
                "and log in (`hf auth login`, or set HF_TOKEN). " + hint
            )
        raise DataPrepError(f"{spec.name}: could not load {where}: {type(error).__name__}: {error}\n{hint}") from error
    return dataset.to_list()


def _load_local(spec: DatasetSpec, path: Path, splits: Sequence[str]) -> dict[str, list[dict]]:
    if not path.exists():
        raise DataPrepError(f"{spec.name}: local path {path} does not exist")
    if path.is_file():
        if len(splits) != 1:
            raise DataPrepError(
                f"{spec.name}: {path} is one file but splits {list(splits)} are to be prepared: give a folder "
                "with a file per split (named after the split, e.g. train.jsonl, test.parquet) or choose one "
                "with --splits"
            )
        return {splits[0]: _read_files(spec, [path])}
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        return _load_saved(spec, path, splits)
    if spec.config and (path / spec.config).is_dir():  # a hub snapshot with one folder per config
        path = path / spec.config
    files = sorted(
        file
        for file in path.rglob("*")
        if file.suffix in LOCAL_FORMATS
        and file.name not in METADATA_FILES
        and file.is_file()
        and not any(part.startswith(".") for part in file.relative_to(path).parts)
    )
    return {split: _read_files(spec, _files_of_split(spec, path, files, split)) for split in splits}


def _matches(path: Path, root: Path, names: set[str]) -> bool:
    """``train.jsonl``, ``train-00000-of-00001.parquet`` and ``train/part-0.parquet`` all belong to ``train``."""
    stem = path.name[: -len(path.suffix)]
    folders = path.relative_to(root).parts[:-1]
    return any(stem == name or stem.startswith(name + "-") or name in folders for name in names)


def _files_of_split(spec: DatasetSpec, root: Path, files: list[Path], split: str) -> list[Path]:
    matched = [file for file in files if _matches(file, root, {split, spec.splits[split]})]
    if not matched and len(spec.splits) == 1:
        # one-split datasets: a file named after the config (gpqa_diamond.csv), or the folder's only file
        matched = [file for file in files if spec.config and _matches(file, root, {spec.config})]
        matched = matched or (files if len(files) == 1 else [])
    if not matched:
        listing = ", ".join(str(file.relative_to(root)) for file in files) or "none"
        raise DataPrepError(
            f"{spec.name}: no file for split {split!r} in {root} (data files found: {listing}); name it after "
            f"the split ({split}.jsonl, {split}.parquet, {split}-00000-of-00001.parquet, ...)"
        )
    if len({file.suffix for file in matched}) > 1:
        raise DataPrepError(f"{spec.name}: split {split!r} matches files of several formats: {matched}")
    return matched


def _read_files(spec: DatasetSpec, files: list[Path]) -> list[dict]:
    """Rows of local files, read by the ``datasets`` builder the hub uses (same types as a hub load)."""
    import datasets

    builder = LOCAL_FORMATS.get(files[0].suffix)
    if builder is None:
        raise DataPrepError(f"{spec.name}: {files[0]} is not one of {sorted(LOCAL_FORMATS)}")
    print(f"{spec.name}: reading {', '.join(map(str, files))}", flush=True)
    datasets.disable_progress_bars()
    # a throwaway cache: local files are re-read each run, and nothing is left in ~/.cache
    with tempfile.TemporaryDirectory(prefix="duet-data-prep-") as cache:
        try:
            dataset = datasets.load_dataset(builder, data_files=[str(f) for f in files], split="train", cache_dir=cache)
            return dataset.to_list()
        except Exception as error:
            raise DataPrepError(f"{spec.name}: could not read {files}: {type(error).__name__}: {error}") from error
        finally:
            datasets.enable_progress_bars()


def _load_saved(spec: DatasetSpec, path: Path, splits: Sequence[str]) -> dict[str, list[dict]]:
    """A folder written by ``Dataset(Dict).save_to_disk``."""
    import datasets

    print(f"{spec.name}: reading {path} (saved with save_to_disk)", flush=True)
    saved = datasets.load_from_disk(str(path))
    if isinstance(saved, datasets.Dataset):
        if len(splits) != 1:
            raise DataPrepError(f"{spec.name}: {path} holds one split but {list(splits)} are to be prepared")
        return {splits[0]: saved.to_list()}
    result = {}
    for split in splits:
        key = next((name for name in (split, spec.splits[split]) if name in saved), None)
        if key is None:
            raise DataPrepError(f"{spec.name}: {path} has splits {list(saved)}, none of them {split!r}")
        result[split] = saved[key].to_list()
    return result


# ---------------------------------------------------------------------------------------------- rows
def build_row(spec: DatasetSpec, split: str, index: int, question: str, ground_truth: str, extra: dict) -> dict:
    """One row in verl's schema; ``extra_info.question`` is the bare question that m sees."""
    question, ground_truth = str(question).strip(), str(ground_truth).strip()
    if not question:
        raise BadRowError("empty question")
    if not ground_truth:
        raise BadRowError("empty ground truth")
    clash = set(extra) & set(RESERVED_EXTRA_KEYS)
    if clash:
        raise ValueError(f"{spec.name}: convert() returned reserved extra_info keys {sorted(clash)}")
    return {
        "data_source": spec.data_source,
        "prompt": [{"role": "user", "content": spec.make_prompt(question)}],
        "ability": spec.ability,
        "reward_model": {"style": "rule", "ground_truth": ground_truth},
        "extra_info": {
            "split": split,
            "index": index,
            "question": question,
            **{key: "" if value is None else str(value) for key, value in extra.items()},
        },
    }


def check_row(spec: DatasetSpec, row: dict) -> None:
    """The DUET scorer must mark the ground truth itself as correct, or no answer could ever earn reward."""
    from duet_verl.core.scoring import score_answer

    ground_truth = row["reward_model"]["ground_truth"]
    try:
        result = score_answer(row["data_source"], GOLD_RESPONSES[spec.scorer](ground_truth), ground_truth,
                              timeout_s=VALIDATION_TIMEOUT_S)  # fmt: skip
    except ValueError as error:  # e.g. a GPQA ground truth that is not a letter
        raise BadRowError(f"the DUET scorer rejects the ground truth {ground_truth!r}: {error}") from error
    if result.score != 1.0:
        raise BadRowError(f"the DUET scorer does not accept the ground truth {ground_truth!r} ({result.method})")


def convert_split(spec: DatasetSpec, split: str, raw_rows: list[dict]) -> tuple[list[dict], list[BadRowReport]]:
    """verl rows of one split and a report for each row that could not be converted or failed the check."""
    rows, bad = [], []
    total = len(raw_rows)
    print(f"{spec.name}: {split}: converting {total} rows", flush=True)
    for index, raw in enumerate(raw_rows):
        if index and index % PROGRESS_EVERY == 0:
            print(f"{spec.name}: {split}: {index}/{total}", flush=True)
        try:
            question, ground_truth, extra = spec.convert(raw)
            row = build_row(spec, split, index, question, ground_truth, extra)
            check_row(spec, row)
        except BadRowError as error:
            bad.append(BadRowReport(spec.name, split, index, str(error)))
            continue
        except SchemaError as error:
            raise SchemaError(f"{spec.name}: {split}: {error}") from error
        except Exception as error:  # a bug or a value of an unexpected type: say where
            raise DataPrepError(f"{spec.name}: {split}: row {index}: {type(error).__name__}: {error}") from error
        rows.append(row)
    return rows, bad


# ---------------------------------------------------------------------------------------------- writing
def _schema(rows: list[dict]):
    import pyarrow as pa

    extra_keys = sorted({key for row in rows for key in row["extra_info"]} - set(RESERVED_EXTRA_KEYS))
    extra_info = [("split", pa.string()), ("index", pa.int64()), ("question", pa.string())]
    return pa.schema(
        [
            ("data_source", pa.string()),
            ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
            ("ability", pa.string()),
            ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
            ("extra_info", pa.struct(extra_info + [(key, pa.string()) for key in extra_keys])),
        ]
    )


@contextlib.contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one step (``os.replace``).

    A crash leaves at most a hidden ``.<name>.<pid>.tmp`` file, never a truncated ``path``: a reader sees the
    old file or the complete new one. The temporary file is created normally, so the umask applies to it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield temporary
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    with contextlib.suppress(OSError):  # make the rename itself durable (best effort: not every FS allows it)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def write_parquet(rows: list[dict], path: Path) -> None:
    """Write verl rows to ``path`` atomically, with one explicit schema for every dataset."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=_schema(rows))
    with atomic_path(path) as temporary:
        pq.write_table(table, temporary)


def _write_bad_rows(bad: list[BadRowReport], path: Path) -> None:
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as out:
        for report in bad:
            out.write(json.dumps(report.__dict__, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------------------------------------- driver
def prepare(
    spec: DatasetSpec,
    local_path: str | Path | None = None,
    output_root: str | Path = DEFAULT_OUTPUT_ROOT,
    skip_bad_rows: bool = False,
    splits: Sequence[str] | None = None,
) -> dict[str, Path]:
    """Prepare ``spec``'s splits and return the written parquet path of each. Raises DataPrepError."""
    from duet_verl.core.scoring import scorer_for

    splits = list(spec.splits) if not splits else list(splits)
    unknown = [split for split in splits if split not in spec.splits]
    if unknown:
        raise DataPrepError(f"{spec.name}: unknown splits {unknown}; it has {list(spec.splits)}")
    routed = scorer_for(spec.data_source)
    if routed != spec.scorer:
        raise DataPrepError(f"{spec.name}: data_source {spec.data_source!r} routes to {routed!r}, not {spec.scorer!r}")

    raw = load_splits(spec, splits, local_path)
    converted = {split: convert_split(spec, split, raw[split]) for split in splits}
    bad = [report for split in splits for report in converted[split][1]]
    for report in bad[:MAX_PRINTED_BAD_ROWS]:
        print(report, file=sys.stderr)
    if len(bad) > MAX_PRINTED_BAD_ROWS:
        print(f"... and {len(bad) - MAX_PRINTED_BAD_ROWS} more bad rows", file=sys.stderr)
    out_dir = Path(output_root).expanduser().absolute() / spec.name
    if bad and not skip_bad_rows:
        raise DataPrepError(
            f"{spec.name}: {len(bad)} bad rows (listed above); nothing written. "
            "Fix the source, or pass --skip-bad-rows to leave them out."
        )
    empty = [split for split in splits if not converted[split][0]]
    if empty:
        raise DataPrepError(f"{spec.name}: no usable rows in split(s) {empty}; nothing written")

    written = {}
    for split in splits:
        written[split] = out_dir / f"{split}.parquet"
        write_parquet(converted[split][0], written[split])
    bad_rows_path = out_dir / "bad_rows.jsonl"
    if bad:
        _write_bad_rows(bad, bad_rows_path)
        print(f"{spec.name}: skipped {len(bad)} bad rows (--skip-bad-rows); listed in {bad_rows_path}")
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(bad_rows_path)  # a list from an earlier run would no longer describe these files
    for split in splits:
        print(f"{spec.name}: {split}: {len(converted[split][0])} rows -> {written[split]}")
    return written


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output-root",
        default=DEFAULT_OUTPUT_ROOT,
        help="files go to OUTPUT_ROOT/<name>/<split>.parquet (default: %(default)s)",
    )
    parser.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="leave out rows that cannot be converted (they are still reported) instead of failing",
    )


def main(spec: DatasetSpec, argv: Sequence[str] | None = None) -> int:
    """Command line of one dataset script; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog=f"python -m duet_verl.data_prep.{spec.name}",
        description=f"Prepare {spec.hub_id}"
        + (f" ({spec.config})" if spec.config else "")
        + f" as verl parquet files: splits {', '.join(spec.splits)}, data_source {spec.data_source!r}.",
    )
    parser.add_argument(
        "--local-path",
        help="read this file or folder (jsonl/json/parquet/arrow/csv, a hub snapshot or a save_to_disk folder) "
        "instead of the hub",
    )
    parser.add_argument("--splits", help=f"comma-separated subset of: {', '.join(spec.splits)} (default: all)")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    splits = [split.strip() for split in args.splits.split(",") if split.strip()] if args.splits else None
    try:
        prepare(spec, args.local_path, args.output_root, args.skip_bad_rows, splits)
    except DataPrepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
