"""Moved to ``duet_verl.inference.backends``: the generators serve evaluation and serving alike."""

import warnings

from duet_verl.inference.backends import Generation, Generator, HFGenerator, VLLMGenerator

__all__ = ["Generation", "Generator", "HFGenerator", "VLLMGenerator"]

warnings.warn(
    "duet_verl.evaluate.backends has moved: import from duet_verl.inference.backends", FutureWarning, stacklevel=2
)
