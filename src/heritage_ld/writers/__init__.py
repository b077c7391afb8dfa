"""Output formats, one module each, found through one registry.

A format registers a name, a media type, a file extension, ``record`` (one record's triples ->
bytes, used by ``heritage-ld map`` and per-record files) and ``dataset`` (the publication ->
files in the output folder). ``write_all`` runs them into a staging folder and swaps it with
``output/`` in one atomic step, so readers see the old output or the new one, never half.
"""
from __future__ import annotations

import ctypes
import importlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from ..pipeline import Publication


@dataclass(frozen=True)
class Format:
    name: str
    media_type: str
    extension: str
    description: str
    dataset: Callable[["Publication", Path], None]
    record: Callable[["Publication", list[tuple[str, str, str]], str], bytes] | None = None


FORMATS: dict[str, Format] = {}
_MODULES = ("rdf", "jsonld", "edm", "void", "report")


def register(fmt: Format) -> Format:
    FORMATS[fmt.name] = fmt
    return fmt


def formats() -> dict[str, Format]:
    for m in _MODULES:
        importlib.import_module(f"{__name__}.{m}")
    return FORMATS


def write_all(pub: "Publication", out: Path, state: str = "",
              before_swap: Callable[[], object] | None = None) -> None:
    """Write every format into a staging folder, then swap it in for ``out``.

    ``state`` is stored as ``.state`` (what the output was made from); ``before_swap`` runs once
    the staging folder is complete (the catalog commits there)."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    _recover(out)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it 0700; the published folder must be readable
    try:
        for fmt in formats().values():
            fmt.dataset(pub, staging)
        (staging / ".state").write_text(state)
        _fsync_tree(staging)
        if before_swap:
            before_swap()
        swap(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            fd = os.open(os.path.join(dirpath, f), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def swap(new: Path, out: Path) -> None:
    """Make ``new`` the content of ``out``. Linux: one renameat2(RENAME_EXCHANGE); else two renames
    with a ``.previous`` folder that ``_recover`` restores if a crash falls between them."""
    if out.exists():
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            rc = libc.renameat2(_AT_FDCWD, os.fsencode(new), _AT_FDCWD, os.fsencode(out), _RENAME_EXCHANGE)
            if rc == 0:
                return  # `new` now holds the old output and is removed by the caller
        except (AttributeError, OSError):
            pass
        previous = out.with_name(f".{out.name}.previous")
        shutil.rmtree(previous, ignore_errors=True)
        os.rename(out, previous)
        os.rename(new, out)
        shutil.rmtree(previous, ignore_errors=True)
    else:
        os.rename(new, out)


def _recover(out: Path) -> None:
    previous = out.with_name(f".{out.name}.previous")
    if previous.exists() and not out.exists():
        os.rename(previous, out)
    for stale in out.parent.glob(f".{out.name}.staging-*"):
        shutil.rmtree(stale, ignore_errors=True)
