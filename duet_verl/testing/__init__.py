"""The test harness: the GPU recipes' shape on CPU, servers for tests, test-only plugins.

The worlds and the tiny models moved to :mod:`duet_verl.worlds`, the benchmarks' runner, frontier and M-alone
baseline to :mod:`duet_verl.experiments`; importing one by its old name (``python -m duet_verl.testing.tiny``,
``pkg://duet_verl.testing.tiny``) fails with one line naming the new one.
"""

from __future__ import annotations

import importlib.abc
import sys

MOVED = {
    "tiny": "duet_verl.worlds.tiny",
    "world": "duet_verl.worlds.learning",
    "labour_world": "duet_verl.worlds.labour",
    "warm_start": "duet_verl.worlds.warm_start",
    "labour_pair": "duet_verl.worlds.labour_pair",
    "learning_world": "duet_verl.experiments.runs",
    "frontier": "duet_verl.experiments.frontier",
    "adaptive_penalty": "duet_verl.experiments.adaptive_penalty",
}


class _MovedModules(importlib.abc.MetaPathFinder):
    """Asked last, so only for a name no file answers: a moved module's old name says where it went."""

    def find_spec(self, fullname, path=None, target=None):
        parent, _, name = fullname.rpartition(".")
        if parent == __name__ and name in MOVED:
            raise ModuleNotFoundError(f"{fullname} moved: use {MOVED[name]}", name=fullname)
        return None


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModules())
