"""What duet-verl's command lines share: argument types that refuse nonsense while parsing, the checks that run
before any model loads (vLLM installed, a hub model reachable), and one line per mistake: ``error: ...`` and a
non-zero exit, the traceback only with ``--debug`` or ``DUET_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

USAGE_EXIT_CODE = 2  # a mistake in the command: nothing ran (argparse's own status)


class UsageError(ValueError):
    """A mistake in the command, found before anything ran: the message says what, where, and what to do."""


def _number(kind, test: Callable, wanted: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"{text} is not {wanted}")
        return value

    parse.__name__ = wanted  # argparse names the type in its message
    return parse


positive_int = _number(int, lambda v: v >= 1, "a whole number ≥ 1")
non_negative_float = _number(float, lambda v: v >= 0, "a number ≥ 0")
fraction = _number(float, lambda v: 0 < v <= 1, "a number in (0, 1]")
port = _number(int, lambda v: 1 <= v <= 65535, "a port (1–65535)")
top_k = _number(int, lambda v: v >= -1, "a whole number ≥ -1 (0 or -1: off)")  # verl's and vLLM's: 0 / -1 off


class Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every flag's default in ``--help``; descriptions keep their line breaks."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse with every default in ``--help`` and a mistake in one line (argparse prints its whole usage first)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, formatter_class=Formatter, **kwargs)

    def error(self, message: str):
        self.exit(USAGE_EXIT_CODE, f"error: {message} ({self.prog} --help lists the flags)\n")


def require_vllm() -> None:
    if importlib.util.find_spec("vllm") is None:
        raise UsageError(
            "--backend vllm needs vLLM, which is not installed here (GPU nodes: pip install -e '.[gpu]', or the "
            "docker image); on a CPU pass --backend hf"
        )


def looks_local(path: str) -> bool:
    """A model path meant as a folder on disk (anything else, ``owner/name``, is a hub id)."""
    return path.startswith(("/", ".", "~")) or Path(path).expanduser().exists() or path.count("/") != 1


def check_hub_model(model_id: str, role: str, flag: str) -> None:
    """A hub id must be in the local cache, or reachable on the hub: found out now, not after other models load."""
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache
    from huggingface_hub.utils import GatedRepoError, RepositoryNotFoundError

    if isinstance(try_to_load_from_cache(model_id, "config.json"), str):
        return
    where = f"{role} ({flag} {model_id})"
    if constants.HF_HUB_OFFLINE:
        raise UsageError(
            f"{where}: not in the local Hugging Face cache ({constants.HF_HUB_CACHE}) and HF_HUB_OFFLINE is set: "
            f"download it first (hf download {model_id}), or pass a model folder"
        )
    try:
        hf_hub_download(model_id, "config.json", etag_timeout=10)
    except (RepositoryNotFoundError, GatedRepoError) as error:
        raise UsageError(f"{where}: no such model on the hub, or no access to it ({type(error).__name__}); check "
                         "the id (owner/name), or pass a model folder") from error  # fmt: skip
    except Exception as error:  # no network, a proxy, a timeout: whatever huggingface_hub raises
        raise UsageError(f"{where}: not in the local cache, and the hub could not be reached ({error}); download "
                         "it first (hf download), or pass a model folder") from error  # fmt: skip


def check_model(path: str | None, role: str, flag: str) -> None:
    """A local folder must hold a config and a tokenizer; anything that is not a local path is a hub id, which must
    be in the local cache or reachable on the hub. The evaluation and serving commands check their models here."""
    if path is None:
        raise UsageError(f"the selected modes need {role}: pass {flag} PATH_OR_HUB_ID")
    local = Path(path).expanduser()
    if not looks_local(path):
        check_hub_model(path, role, flag)
        return
    if not local.is_dir():
        raise UsageError(f"{role} ({flag} {path}): no such folder; pass a model folder or a hub id (owner/name)")
    if not (local / "config.json").is_file():
        raise UsageError(f"{role} ({flag} {path}): no config.json in the folder; is it a Hugging Face model?")
    if not any((local / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
        raise UsageError(f"{role} ({flag} {path}): no tokenizer files in the folder; save the tokenizer beside it")


def debugging(args: argparse.Namespace | None = None) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get("DUET_DEBUG") == "1"


def report(error: BaseException, args: argparse.Namespace | None = None, usage: bool = True) -> int:
    """``error`` as one line on stderr (the traceback too when debugging); the exit status to return."""
    if debugging(args):
        traceback.print_exception(error)
    detail = str(error) if usage else f"{type(error).__name__}: {error}"
    hint = "" if debugging(args) else " (--debug or DUET_DEBUG=1 shows the traceback)"
    print(f"error: {detail.splitlines()[0] if detail else type(error).__name__}{hint}", file=sys.stderr)
    for line in detail.splitlines()[1:]:
        print(f"  {line}", file=sys.stderr)
    return USAGE_EXIT_CODE if usage else 1
