"""Shared fixtures: a private copy of the bundled sample project per test."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT_PARTS = ("heritage-ld.toml", "mapping", "shapes", "sample")


def copy_sample_project(dest: Path) -> Path:
    """Copy heritage-ld.toml, mapping/, shapes/ and sample/ of the repository into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_PARTS:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        else:
            shutil.copy(src, dest / name)
    return dest


@pytest.fixture
def project(tmp_path) -> Path:
    """A copy of the sample project in tmp_path that the test may edit freely."""
    return copy_sample_project(tmp_path)
