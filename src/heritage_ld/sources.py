"""Source readers: files of records (JSON array or object, JSON Lines) and bundled vocabularies.

Each reader yields ``(data, origin)`` where origin names file and line, e.g. ``sample/posts.json:3``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from .config import Config, Source
from .transforms import data_file


class InputError(Exception):
    """Unreadable source data; str() names file and line."""


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def read_json(path: Path, shown: str) -> Iterator[tuple[Any, str]]:
    """A JSON array of records (each with its line) or a single record object."""
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{shown}: cannot read: {e}") from None
    dec = json.JSONDecoder()
    pos = len(text) - len(text.lstrip())
    try:
        if not text[pos:pos + 1] == "[":
            obj, end = dec.raw_decode(text, pos)
            if text[end:].strip():
                raise json.JSONDecodeError("extra data after the record", text, end + len(text[end:]) - len(text[end:].lstrip()))
            yield obj, f"{shown}:{_line(text, pos)}"
            return
        pos += 1
        n = 0
        while True:
            while pos < len(text) and text[pos] in " \t\r\n":
                pos += 1
            if text[pos:pos + 1] == "]":
                break
            if n and text[pos:pos + 1] != ",":
                raise json.JSONDecodeError("expected ',' or ']' between records", text, pos)
            if n:
                pos += 1
                while pos < len(text) and text[pos] in " \t\r\n":
                    pos += 1
            obj, end = dec.raw_decode(text, pos)
            n += 1
            yield obj, f"{shown}:{_line(text, pos)} (record {n})"
            pos = end
    except json.JSONDecodeError as e:
        raise InputError(f"{shown}:{e.lineno}:{e.colno}: malformed JSON: {e.msg}") from None
    except IndexError:
        raise InputError(f"{shown}: malformed JSON: unexpected end of file") from None


def read_jsonl(path: Path, shown: str) -> Iterator[tuple[Any, str]]:
    """JSON Lines, one record a line, streamed."""
    try:
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        yield json.loads(line), f"{shown}:{n}"
                    except json.JSONDecodeError as e:
                        raise InputError(f"{shown}:{n}:{e.colno}: malformed JSON: {e.msg}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{shown}: cannot read: {e}") from None


def read_builtin(name: str) -> Iterator[tuple[Any, str]]:
    if name != "rights":
        raise InputError(f"builtin:{name}: unknown built-in source (known: builtin:rights)")
    for i, s in enumerate(data_file("rights.json")["statements"], 1):
        yield s, f"builtin:rights (statement {i})"


READERS = {".json": read_json, ".jsonl": read_jsonl, ".ndjson": read_jsonl}


def read(config: Config, source: Source) -> Iterator[tuple[Any, str]]:
    """Records of one configured source; a record that is not a JSON object is an InputError."""
    if source.path.startswith("builtin:"):
        yield from read_builtin(source.path[8:])
        return
    path = config.root / source.path
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise InputError(f"{source.path}: unsupported file type (supported: {', '.join(READERS)})")
    if not path.is_file():
        raise InputError(f"{source.path}: file not found")
    for data, origin in reader(path, source.path):
        if not isinstance(data, dict):
            raise InputError(f"{origin}: a record must be a JSON object, got {type(data).__name__}")
        yield data, origin
