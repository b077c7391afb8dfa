"""Generated Python source (compiled mappings, ``mapgen``; compiled shapes, ``shaclc``): written line by line
(``Writer``) and compiled once a process per digest (``compile_cached``), with its lines registered for
tracebacks and debuggers (``linecache``, file name ``<heritage-ld KIND DIGEST>``)."""
from __future__ import annotations

import hashlib
import itertools
import linecache
from contextlib import contextmanager
from types import CodeType
from typing import Iterator

_CODE: dict[str, CodeType] = {}   # file name -> its code
_KEPT = 64                        # codes kept a process (tests compile many projects): then the older half goes


class Writer:
    """Lines of Python source, indented, and fresh local names."""

    def __init__(self, depth: int = 0) -> None:
        self.lines: list[str] = []
        self.depth = depth
        self._names = itertools.count(1)

    def __call__(self, line: str) -> None:
        self.lines.append("    " * self.depth + line)

    @contextmanager
    def block(self, head: str) -> Iterator[None]:
        self(head)
        self.depth += 1
        yield
        self.depth -= 1

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self._names)}"


def source_digest(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def compile_cached(source: str, kind: str) -> CodeType:
    """The code of ``source`` (``kind``: what it is, for its file name), compiled once a process."""
    name = f"<heritage-ld {kind} {source_digest(source)}>"
    code = _CODE.get(name)
    if code is None:
        if len(_CODE) >= _KEPT:
            for old in list(_CODE)[:_KEPT // 2]:
                linecache.cache.pop(old, None)
                del _CODE[old]
        code = _CODE[name] = compile(source, name, "exec")
    if name not in linecache.cache:   # (again after linecache.clearcache())
        linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    return code
