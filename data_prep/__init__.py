"""The checkout's name for :mod:`duet_verl.data_prep`: ``data_prep.<name>`` *is* ``duet_verl.data_prep.<name>``.

The dataset scripts ship inside the package (``python -m duet_verl.data_prep.prepare_all``, the form the recipes and
docs use, which works wherever duet-verl is installed). From a checkout's root the short names keep working as
before: ``python -m data_prep.prepare_all``, ``python -m data_prep.gsm8k``, ``from data_prep.common import ...``.

How: a finder, asked after the others, answers ``data_prep.<name>`` with a loader that puts the real module in
``sys.modules`` under the short name too (one module object: one ``DatasetSpec`` class, one ``DataPrepError``, and a
monkeypatch on either name is seen by both), and that hands ``python -m`` the real module's code to run as
``__main__``. It is one file with no list to keep in step with ``DATASETS``, where a shim per dataset would repeat
every module name and, re-exporting with ``import *``, give two modules that only share their public objects.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

from duet_verl.data_prep import DATASETS, get_spec

__all__ = ["DATASETS", "get_spec"]

TARGET = "duet_verl.data_prep"


class _Alias(importlib.abc.Loader):
    """Loads ``data_prep.<name>`` as the module ``duet_verl.data_prep.<name>`` itself."""

    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        return None  # a placeholder, replaced in sys.modules by exec_module

    def exec_module(self, module) -> None:
        # The import system returns whatever sys.modules holds under the name once exec_module is done.
        sys.modules[module.__name__] = importlib.import_module(self.target)

    def get_code(self, fullname: str):
        """``python -m data_prep.<name>``: runpy runs this code as ``__main__``, the real module's code."""
        return importlib.util.find_spec(self.target).loader.get_code(self.target)


class _AliasFinder(importlib.abc.MetaPathFinder):
    """Asked last, so only for a name no file answers: ``data_prep.<name>`` when ``duet_verl.data_prep`` has it."""

    def find_spec(self, fullname, path=None, target=None):
        parent, _, name = fullname.rpartition(".")
        if parent != __name__:
            return None
        real = importlib.util.find_spec(f"{TARGET}.{name}")
        if real is None:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(real.name), origin=real.origin)


if not any(isinstance(finder, _AliasFinder) for finder in sys.meta_path):
    sys.meta_path.append(_AliasFinder())
