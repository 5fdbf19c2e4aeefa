"""The repository is self-contained: no file points outside it, and every citation of the
physics notes names a section that exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _tracked_text_files() -> list[Path]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    names = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split()  # fmt: skip
    files = []
    for name in names:
        path = REPO / name
        if path.is_file() and path.suffix not in (".png", ".pdf", ".nc"):
            try:
                files.append((path, path.read_text()))
            except UnicodeDecodeError:
                continue
    return files


def test_no_file_points_outside_the_repository():
    outside = re.compile(r"\.\./shared|PHYSICS\.md|DESIGN\.md|/work/")
    me = Path(__file__).resolve()
    found = [f"{p.relative_to(REPO)}:{i + 1}: {line.strip()}"
             for p, text in _tracked_text_files() if p != me
             for i, line in enumerate(text.splitlines()) if outside.search(line)]  # fmt: skip
    assert not found, "\n".join(found)


def test_every_physics_citation_names_an_existing_section():
    notes = (REPO / "docs/physics.md").read_text()
    sections = set(re.findall(r"^##+ (\d+(?:\.\d+)?)[ .]", notes, re.M))
    assert {"1", "2", "3", "4", "5", "1.4", "1.6", "2.2"} <= sections, sections
    cite = re.compile(r"docs/physics\.md,?\s+sections?\s+(\d+(?:\.\d+)?)(?:\s*(?:and|-)\s*(\d+))?")
    bad, count = [], 0
    for path, text in _tracked_text_files():
        flat = re.sub(r"\s+", " ", text)  # citations wrap across lines
        for match in cite.finditer(flat):
            count += 1
            for number in filter(None, match.groups()):
                if number not in sections:
                    bad.append(f"{path.relative_to(REPO)}: {match.group(0)}")
    assert count > 30 and not bad, (count, bad)
    for path, text in _tracked_text_files():
        for name in re.findall(r"\bdocs/[\w.-]+\.md\b", text):
            assert (REPO / name).is_file(), f"{path.relative_to(REPO)} cites missing {name}"
