"""The models of an evaluation, each loaded on first use and released when its modes are done."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from duet_verl.evaluate.config import EvalConfig


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
