"""Prepare every dataset the recipes use (or a subset) in one command.

    python -m duet_verl.data_prep.prepare_all [--only a,b | --exclude a,b] [--output-root DIR] [--local-root DIR]

A dataset that fails (e.g. GPQA without a hub login) does not stop the others; the summary lists it and the
exit status is 1. ``--local-root`` is for offline clusters: dataset NAME is read from ``LOCAL_ROOT/NAME`` (a
folder: per-split files, a hub snapshot or a ``save_to_disk`` folder) or ``LOCAL_ROOT/NAME.<ext>`` (one file,
for one-split datasets), ext one of jsonl/json/parquet/arrow/csv. A dataset missing there is an error, never a
silent fall-back to the hub.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from duet_verl.data_prep import DATASETS, get_spec
from duet_verl.data_prep.common import LOCAL_FORMATS, DataPrepError, add_common_arguments, prepare


def local_source(local_root: str | Path, name: str) -> Path:
    """Where ``--local-root`` keeps dataset ``name``: ``ROOT/name`` (a folder) or ``ROOT/name.<ext>``."""
    root = Path(local_root).expanduser()
    candidates = [root / name] + [root / f"{name}{ext}" for ext in LOCAL_FORMATS]
    found = [path for path in candidates if path.exists()]
    if len(found) != 1:
        wanted = f"{root / name}/ or {root / name}.{{{','.join(ext[1:] for ext in LOCAL_FORMATS)}}}"
        problem = "nothing" if not found else "several candidates: " + ", ".join(map(str, found))
        raise DataPrepError(f"{name}: --local-root needs exactly one of {wanted}; found {problem}")
    return found[0]


def _names(value: str | None) -> list[str]:
    names = [name.strip() for name in (value or "").split(",") if name.strip()]
    unknown = [name for name in names if name not in DATASETS]
    if unknown:
        raise SystemExit(f"error: unknown datasets {unknown}; known: {', '.join(DATASETS)}")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m duet_verl.data_prep.prepare_all", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--only", help=f"comma-separated datasets to prepare (default: all of {', '.join(DATASETS)})")
    parser.add_argument("--exclude", help="comma-separated datasets to leave out")
    parser.add_argument("--local-root", help="read each dataset from LOCAL_ROOT/<name> or LOCAL_ROOT/<name>.<ext>")
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    only, exclude = _names(args.only), _names(args.exclude)
    selected = [name for name in (only or DATASETS) if name not in exclude]

    failed: dict[str, str] = {}
    written: dict[str, dict[str, Path]] = {}
    for name in selected:
        print(f"=== {name}", flush=True)
        try:
            local = local_source(args.local_root, name) if args.local_root else None
            written[name] = prepare(get_spec(name), local, args.output_root, args.skip_bad_rows)
        except DataPrepError as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
            failed[name] = str(error).splitlines()[0]

    print("=== summary")
    for name in selected:
        if name in written:
            print(f"{name}: ok: " + ", ".join(f"{split} -> {path}" for split, path in written[name].items()))
        else:
            print(f"{name}: FAILED: {failed[name]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
