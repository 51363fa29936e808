"""``records.jsonl`` and the settings it was written with: a rerun with the same ``--out`` resumes, and one with
other settings is refused."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from duet_verl.evaluate.inputs import EvalInputError

if TYPE_CHECKING:
    from duet_verl.evaluate.config import EvalConfig

# settings that change what a sample is: a resumed run must use the same ones
RESUME_KEYS = (
    "large", "base_large", "small", "small_template", "small_question", "large_sampling", "small_sampling",
    "small_max_prompt_tokens",
)  # fmt: skip


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
    """Refuse to mix samples of different settings in one output folder. A folder whose run wrote no record (it
    failed before its first sample: a model that would not load, say) holds nothing to mix with: the corrected
    command takes it over."""
    current = {k: v for k, v in asdict(config).items() if k in RESUME_KEYS}
    current = json.loads(json.dumps(current))
    path = out_dir / "run_config.json"
    records = out_dir / "records.jsonl"
    if path.exists() and records.exists() and records.stat().st_size > 0:
        previous = json.loads(path.read_text())
        changed = {k: (previous.get(k), current[k]) for k in RESUME_KEYS if previous.get(k) != current[k]}
        if changed:
            raise EvalInputError(
                f"{out_dir} holds a run with other settings (previous, now): {changed}; "
                "use a new --out folder, or delete this one to start over"
            )
    else:
        path.write_text(json.dumps(current, indent=2) + "\n")
