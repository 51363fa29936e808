"""Dataset preparation for duet-verl: one module per dataset, each writing verl-ready parquet files.

    python -m duet_verl.data_prep.<name> [--local-path P] [--output-root DIR] [--skip-bad-rows]
    python -m duet_verl.data_prep.prepare_all [--only a,b] [--output-root DIR] [--local-root DIR]

The shared machinery (loading, row building, validation against the DUET scorer, atomic writing) is in
``duet_verl.data_prep.common``; see ``docs/data_prep.md`` for the output layout and how to add a dataset. From a
checkout's root, ``data_prep.<name>`` is the same module (the checkout's ``data_prep/__init__.py``, an alias).
"""

from __future__ import annotations

import importlib

# Module name == output folder name == the rows' ``data_source``. Training sets first, then evaluation sets.
DATASETS = (
    "deepscaler",
    "dapo_math17k",
    "math_lighteval",
    "math500",
    "aime24",
    "aime25",
    "amc23",
    "gpqa_diamond",
    "gsm8k",
)


def get_spec(name: str):
    """The ``DatasetSpec`` of dataset ``name`` (one of ``DATASETS``)."""
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return importlib.import_module(f"duet_verl.data_prep.{name}").SPEC
