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


def generated_project(dest: Path, articles: int, seed: int = 6) -> Path:
    """A project of ``articles`` generated articles (benchmarks/generate.py: ~2.6 records an article) in ``dest``."""
    import sys
    if str(ROOT / "benchmarks") not in sys.path:
        sys.path.insert(0, str(ROOT / "benchmarks"))
    import generate
    generate.generate(dest, articles, seed=seed)
    return dest


def copy_published(src: Path, dest: Path, fresh: bool = False) -> Path:
    """A copy of the published project ``src`` (``output`` stays a link to its tree); ``fresh``: without its
    output, catalog and memo, as if never published."""
    ignore = shutil.ignore_patterns("output", ".output-*", ".heritage-ld") if fresh else None
    return Path(shutil.copytree(src, dest, symlinks=True, ignore=ignore))


def counted_on_close(monkeypatch, cls: type, made: str, copied: str) -> dict[str, tuple[int, int]]:
    """file name -> (``made``, ``copied``) of each ``cls`` (a dump writer with a ``path``) as it closes."""
    seen: dict[str, tuple[int, int]] = {}
    close = cls.close

    def counted(self, *args) -> None:
        close(self, *args)
        seen[self.path.name] = (getattr(self, made), getattr(self, copied))
    monkeypatch.setattr(cls, "close", counted)
    return seen


@pytest.fixture
def project(tmp_path) -> Path:
    """A copy of the sample project in tmp_path that the test may edit freely."""
    return copy_sample_project(tmp_path)


class Listener:
    """A real TCP listener on 127.0.0.1 that records every connection made to it (and what was sent), and
    answers each with ``reply`` (raw HTTP) if given; for checking that nothing reaches a given address."""

    def __init__(self, reply: bytes = b"") -> None:
        import socket
        import threading
        self.reply, self.received = reply, []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/sparql"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    self.received.append(conn.recv(65536))
                    if self.reply:
                        conn.sendall(self.reply)
                except OSError:
                    self.received.append(b"")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def listener():
    """A Listener that must (usually) receive nothing; closed after the test."""
    found = Listener()
    yield found
    found.close()
