"""docs/museum.md cannot rot: its files are the ones in docs/museum/, its commands run as written (from the
repository's folder, /tmp/museum being a fresh folder of the test's), exit as the page says (`# exits N`), and
print every output line the page quotes."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "museum.md"
SHARED = ROOT.parent / "shared"
BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[str, str | None, str]]:
    """(language, title or None, text) of each fenced block of the page."""
    out = []
    for m in BLOCK.finditer(PAGE.read_text("utf-8")):
        title = re.search(r'title="([^"]+)"', m.group(2))
        out.append((m.group(1), title.group(1) if title else None, m.group(3)))
    return out


def test_the_page_shows_the_example_files_as_they_are():
    shown = [(lang, title, text) for lang, title, text in blocks() if title]
    assert {t for _l, t, _x in shown} >= {"docs/museum/heritage-ld.toml", "docs/museum/mapping/artwork.yaml",
                                          "docs/museum/mapping/artist.yaml", "docs/museum/export/artworks.json"}
    for lang, title, text in shown:
        actual = (ROOT / title).read_text("utf-8")
        if lang == "json":   # an excerpt: one record of the file
            assert json.loads(text) in json.loads(actual), f"{title}: the record shown is not in the file"
        else:
            assert text == actual, f"{title} differs from what docs/museum.md shows"


def _command(line: str, museum: Path) -> tuple[str, int]:
    """The shell command of a `$ ` line with its expected exit code, run as the page says: heritage-ld and
    python are this environment's, /tmp/museum is the test's folder."""
    cmd = line[2:].replace("/tmp/museum", str(museum))
    m = re.search(r"#\s*exits (\d+)", cmd)
    cmd = re.sub(r"^heritage-ld\b", str(Path(sys.executable).parent / "heritage-ld"), cmd)
    cmd = re.sub(r"^python\b", sys.executable, cmd)
    return cmd, int(m.group(1)) if m else 0


def test_the_page_runs_as_written(tmp_path):
    consoles = [text for lang, _t, text in blocks() if lang == "console"]
    assert consoles
    if "../shared" in PAGE.read_text("utf-8") and not (SHARED / "tools" / "validate_edm.py").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{SHARED} is missing: CI must have ../shared beside the clone")
        pytest.skip(f"{SHARED} not found: the page's last step needs Europeana's validator")
    museum = tmp_path / "museum"
    ran = 0
    for text in consoles:
        steps: list[tuple[str, list[str]]] = []
        for line in text.splitlines():
            if line.startswith("$ "):
                steps.append((line, []))
            elif line.strip():
                steps[-1][1].append(line.replace("/tmp/museum", str(museum)).rstrip())
        for line, shown in steps:
            cmd, code = _command(line, museum)
            run = subprocess.run(["bash", "-c", cmd], cwd=ROOT, capture_output=True, text=True, timeout=300)
            assert run.returncode == code, f"{line}: exit {run.returncode}, the page says {code}\n{run.stdout}{run.stderr}"
            printed = {out.rstrip() for out in run.stdout.splitlines()}
            for out in shown:
                assert out in printed, f"{line}: the page quotes a line it does not print:\n{out}\n--- it printed:\n" \
                                       + run.stdout
            ran += 1
    assert ran >= 5 and (museum / "output" / "edm" / "artwork").is_dir()
    shutil.rmtree(museum)
