"""duet-verl: DUET (joint GRPO training of a capable model M and a lightweight model m) on verl 0.9.1."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("duet-verl")
except PackageNotFoundError:  # a checkout on the path, not installed
    __version__ = "0+unknown"
