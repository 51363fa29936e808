"""No dangling references: every relative file path that the README, the docs, docstrings, comments and error
messages mention exists, and every markdown link resolves (file and #anchor).

A path is resolved against the repository root, the mentioning file's folder, and the installed packages (for
``verl/...``-style citations of verl's source). Placeholders (``OUT/``, ``DIR/``, ``X.sh``) and file names a run
writes (``summary.md``) are not paths; notes outside the repository (``shared/``) may only be read by the tests
that skip without them.
"""

from __future__ import annotations

import re
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(sysconfig.get_paths()["purelib"])
SUFFIXES = {".py", ".md", ".sh", ".sbatch", ".yaml", ".yml", ".toml"}
SKIP_PARTS = {".git", "outputs", "duet_verl.egg-info", "__pycache__"}
# tests that read ../shared/fixtures when it is there, and skip without it
MAY_CITE_SHARED = {"tests/conftest.py", "tests/data_prep/test_prep_shared_fixtures.py"}

FILE_PATH = re.compile(
    r"(?<![\w/$.~<{-])((?:\.\./)*(?:[A-Za-z_][\w.-]*/)+[\w.-]*\w\.(?:md|py|sh|sbatch|yaml|yml|toml|png|jinja|json))\b"
)
NOTE_NAME = re.compile(r"(?<![\w/.-])([A-Z][A-Z_]+\.md)\b")  # DUET.md, VERL_NOTES.md: notes, not outputs
# placeholders, and huggingface/... inside a checkpoint folder
PLACEHOLDER = re.compile(r"(^|/)([A-Z]+|SCRIPTDIR|\.\.\.)/|(^|/)X\.\w+$|^huggingface/")
MD_LINK = re.compile(r"\]\(([^)\s]+)\)")


def project_files() -> list[Path]:
    return sorted(
        path
        for path in ROOT.rglob("*")
        if path.is_file()
        and path.suffix in SUFFIXES
        and path != Path(__file__).resolve()  # its examples dangle on purpose
        and not any(part in SKIP_PARTS or part.startswith(".venv") for part in path.relative_to(ROOT).parts)
    )


def resolves(ref: str, mentioned_in: Path) -> bool:
    return any((base / ref).exists() for base in (ROOT, mentioned_in.parent, SITE))


def dangling_paths(path: Path) -> list[str]:
    relative = str(path.relative_to(ROOT))
    found = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        refs = [m.group(1) for m in FILE_PATH.finditer(line)] + [m.group(1) for m in NOTE_NAME.finditer(line)]
        for ref in refs:
            if "shared/" in ref and relative in MAY_CITE_SHARED:
                continue
            if PLACEHOLDER.search(ref) or ("shared/" not in ref and resolves(ref, path)):
                continue
            found.append(f"{relative}:{number}: {ref}")
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(markdown: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", markdown.read_text(), flags=re.S)
    return {slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def broken_links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    found = []
    for target in MD_LINK.findall(text):
        if re.match(r"[a-z]+://|mailto:", target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part) if file_part else path
        if not linked.exists():
            found.append(f"{path.relative_to(ROOT)}: ({target}): no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            found.append(f"{path.relative_to(ROOT)}: ({target}): no heading #{anchor} in {linked.name}")
    return found


def test_every_mentioned_file_exists():
    dangling = [ref for path in project_files() for ref in dangling_paths(path)]
    assert not dangling, "dangling references:\n" + "\n".join(dangling)


def test_every_markdown_link_resolves():
    markdown = [path for path in project_files() if path.suffix == ".md"]
    assert ROOT / "README.md" in markdown
    broken = [link for path in markdown for link in broken_links(path)]
    assert not broken, "broken links:\n" + "\n".join(broken)


@pytest.mark.parametrize(
    ("line", "dangling"),
    [
        ("see docs/nowhere.md for more", True),
        ("DUET.md, step 5", True),
        ("the notes in ../shared/DUET.md", True),
        ("see docs/clusters.md", False),
        ("verl/utils/checkpoint/fsdp_checkpoint_manager.py:213", False),
        ("writes OUT/summary.md and DIR/x.png", False),
        ("mounted at /shared/data/duet.md", False),
    ],
)
def test_the_scanner_tells_dangling_from_resolvable(tmp_path, line, dangling):
    probe = ROOT / "tests" / "_reference_probe.md"
    probe.write_text(line + "\n")
    try:
        assert bool(dangling_paths(probe)) == dangling
    finally:
        probe.unlink()
