"""duet-verl as a user installs it: the wheel built from a checkout's tracked files, in a scratch virtualenv.

The virtualenv borrows the test environment's other packages (verl, torch, ...: nothing is downloaded) through a
``.pth`` line added after the wheel is installed; that line puts the environment's site-packages on the path
without running its ``.pth`` files, so the checkout's editable install stays out and ``duet_verl`` comes from the
wheel only. Run its ``python`` outside the checkout (``python -m`` puts the working directory first on the path).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

PIP = (sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet")  # this environment's pip, offline use


def tracked_copy(root: Path, destination: Path) -> Path:
    """``root``'s files as a clone of it would have them once committed: tracked files (uncommitted edits included)
    and new files git does not ignore; nothing else."""
    listing = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    files = subprocess.run(listing, cwd=root, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, files):
        source = root / name.decode()
        if source.is_file():
            target = destination / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def build_wheel(root: Path, out: Path) -> Path:
    """The wheel of ``root``'s files (``tracked_copy``), built with this environment's setuptools (no build
    isolation: offline)."""
    source = tracked_copy(root, out / "source")
    subprocess.run([*PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", str(out / "dist"), str(source)],
                   check=True, cwd=out)  # fmt: skip
    (wheel,) = (out / "dist").glob("duet_verl-*.whl")
    return wheel


def wheel_python(wheel: Path, out: Path) -> Path:
    """The ``python`` of a scratch virtualenv under ``out`` with ``wheel`` installed and this environment's other
    packages borrowed."""
    venv.create(out / "venv", with_pip=False)
    python = out / "venv" / "bin" / "python"
    subprocess.run(
        [*PIP, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)], check=True, cwd=out
    )
    scratch = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    borrowed = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (Path(scratch) / "borrowed_test_env.pth").write_text("".join(f"{path}\n" for path in borrowed))
    return python
