"""Source readers: files of records and bundled vocabularies.

Formats: JSON (one record or an array), JSON Lines, CSV (columns are field paths such as
``author.name``; ``[]`` columns split on a separator), YAML (one record, a list, or several
documents); each also gzip-compressed (``.json.gz``); a folder reads every such file in it and its
sub-folders, and a glob (``export/**/*.json``) the files it matches, in path order.
Each reader yields ``(data, origin)`` where origin names file and line, e.g. ``sample/posts.json:3``.
With ``contentful = true`` a JSON file is a ``contentful space export``: its entries are the records.
JSON Lines and CSV stream: a large export is never loaded whole.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from pathlib import Path
from typing import IO, Any, Callable, Iterator

import yaml

from .config import Config, Source
from .transforms import data_file


class InputError(Exception):
    """Unreadable source data; str() names file and line."""


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def open_text(path: Path) -> IO[str]:
    """The file as UTF-8 text, decompressed when it ends in ``.gz``."""
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


def read_json(path: Path, shown: str, _options: dict) -> Iterator[tuple[Any, str]]:
    """A JSON array of records (each with its line) or a single record object."""
    try:
        with open_text(path) as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError, EOFError) as e:
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


def read_jsonl(path: Path, shown: str, _options: dict) -> Iterator[tuple[Any, str]]:
    """JSON Lines, one record a line, streamed."""
    try:
        with open_text(path) as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        yield json.loads(line), f"{shown}:{n}"
                    except json.JSONDecodeError as e:
                        raise InputError(f"{shown}:{n}:{e.colno}: malformed JSON: {e.msg}") from None
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise InputError(f"{shown}: cannot read: {e}") from None


def _set_path(record: dict, path: str, value: str, separator: str) -> None:
    """Put a CSV cell at a field path: ``author.name`` nests; ``about[]`` splits on the separator."""
    steps = path.split(".")
    cur = record
    for step in steps[:-1]:
        cur = cur.setdefault(step.removesuffix("[]"), {})
    last = steps[-1]
    if last.endswith("[]"):
        cur[last[:-2]] = [v.strip() for v in value.split(separator) if v.strip()]
    else:
        cur[last] = value


def read_csv(path: Path, shown: str, options: dict) -> Iterator[tuple[Any, str]]:
    """CSV with a header row, streamed. ``columns`` maps header names to field paths."""
    columns: dict[str, str] = options.get("columns", {})
    separator = options.get("list_separator", ";")
    try:
        with open_text(path) as fh:
            reader = csv.DictReader(fh, delimiter=options.get("delimiter", ","))
            unknown = [c for c in columns if c not in (reader.fieldnames or [])]
            if unknown:
                raise InputError(f"{shown}:1: columns {', '.join(map(repr, unknown))} configured but not in the "
                                 f"header ({', '.join(reader.fieldnames or [])})")
            for row in reader:
                if None in row:
                    raise InputError(f"{shown}:{reader.line_num}: more cells than header columns")
                record: dict[str, Any] = {}
                for col, value in row.items():
                    if value not in (None, ""):
                        _set_path(record, columns.get(col, col), value, separator)
                yield record, f"{shown}:{reader.line_num}"
    except csv.Error as e:
        raise InputError(f"{shown}: malformed CSV: {e}") from None
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise InputError(f"{shown}: cannot read: {e}") from None


def read_yaml(path: Path, shown: str, _options: dict) -> Iterator[tuple[Any, str]]:
    """YAML: one record, a list of records, or several ``---`` documents."""
    try:
        with open_text(path) as fh:
            loader = yaml.SafeLoader(fh)
            try:
                while loader.check_node():
                    node = loader.get_node()
                    line = node.start_mark.line + 1
                    if isinstance(node, yaml.SequenceNode):
                        for n, item in enumerate(node.value, 1):
                            yield loader.construct_document(item), f"{shown}:{item.start_mark.line + 1} (record {n})"
                    else:
                        yield loader.construct_document(node), f"{shown}:{line}"
            finally:
                loader.dispose()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise InputError(f"{shown}:{mark.line + 1 if mark else '?'}: malformed YAML: {getattr(e, 'problem', e)}") from None
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise InputError(f"{shown}: cannot read: {e}") from None


def read_builtin(name: str) -> Iterator[tuple[Any, str]]:
    if name != "rights":
        raise InputError(f"builtin:{name}: unknown built-in source (known: builtin:rights)")
    for i, s in enumerate(data_file("rights.json")["statements"], 1):
        yield s, f"builtin:rights (statement {i})"


READERS = {".json": read_json, ".jsonl": read_jsonl, ".ndjson": read_jsonl, ".csv": read_csv,
           ".yaml": read_yaml, ".yml": read_yaml}


def _reader(path: Path):
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-1:] == [".gz"]:
        suffixes = suffixes[:-1]
    return READERS.get(suffixes[-1] if suffixes else "")


def read(config: Config, source: Source, warn: Callable[[str], None] = lambda _m: None) -> Iterator[tuple[Any, str]]:
    """Records of one configured source; a record that is not an object is an InputError. ``warn``
    gets what a reader wants said about the source as a whole."""
    if source.path.startswith("builtin:"):
        yield from read_builtin(source.path[8:])
        return
    if source.is_http:
        from .httpsource import HttpOptions, HttpSource
        opts = HttpOptions.from_config({"url": source.path, **source.options}, config.root,
                                       f"heritage-ld.toml source {source.path}")
        for data, origin in HttpSource(opts).records():
            if not isinstance(data, dict):
                raise InputError(f"{origin}: a record must be an object, got {type(data).__name__}")
            yield data, origin
        return
    for f in _files(config, source):
        records = _reader(f)(f, _shown(config, f), source.options)
        if source.options.get("contentful"):
            records = _contentful_export(f, _shown(config, f), records, source.options, warn)
        for data, origin in records:
            if not isinstance(data, dict):
                raise InputError(f"{origin}: a record must be an object (key: value), got {type(data).__name__}")
            yield data, origin


def _contentful_export(path: Path, shown: str, records: Iterator[tuple[Any, str]], options: dict,
                       warn: Callable[[str], None]) -> Iterator[tuple[Any, str]]:
    """The entries of a ``contentful space export`` file (see ``contentful``)."""
    from .contentful import ContentfulError, read_export
    if _reader(path) is not read_json:
        raise InputError(f"{shown}: a Contentful space export is a .json file")
    for export, _origin in records:
        try:
            yield from read_export(export, shown, options, warn)
        except ContentfulError as e:
            raise InputError(str(e)) from None


def _files(config: Config, source: Source) -> list[Path]:
    """The files of a file, folder or glob source, in reading order: by path, folder by folder
    (``a/000/x.json`` before ``a/001/x.json`` before ``b.json``); hidden files and folders are skipped."""
    if _is_glob(source.path):
        return _glob(config.root, source.path)
    path = config.root / source.path
    if path.is_dir():
        return _in_order(path, path.rglob("*"))
    if path.is_file():
        if not _reader(path):
            raise InputError(f"{source.path}: unsupported file type (supported: "
                             f"{', '.join(READERS)}, each optionally .gz)")
        return [path]
    raise InputError(f"{source.path}: file not found")


def _is_glob(path: str) -> bool:
    return any(c in path for c in "*?[")


def _glob(root: Path, pattern: str) -> list[Path]:
    """The readable files matching ``pattern`` (``export/**/*.json``: ``**`` is any depth of folders)."""
    parts = Path(pattern).parts
    fixed = next(i for i, part in enumerate(parts) if _is_glob(part))
    base = root.joinpath(*parts[:fixed])
    if not base.is_dir():
        raise InputError(f"{Path(*parts[:fixed]) if fixed else '.'}/: folder not found (source {pattern})")
    return _in_order(base, base.glob(str(Path(*parts[fixed:]))), named=set(parts[fixed:]))


def _in_order(base: Path, found, named: set[str] = frozenset()) -> list[Path]:
    """The readable files of ``found`` (paths under ``base``), sorted by their path parts; hidden files
    and folders are left out unless ``named`` (a glob's parts) names them."""
    keep = []
    for p in found:
        rel = p.relative_to(base).parts
        if not any(part.startswith(".") and part not in named for part in rel) and p.is_file() and _reader(p):
            keep.append((rel, p))
    return [p for _rel, p in sorted(keep)]


def empty_reason(config: Config, source: Source) -> str:
    """Why a source may have read no record, for the warning that says so."""
    if source.is_http:
        return "the API returned no items"
    if source.options.get("contentful"):
        kind = source.options.get("content_type")
        return f"the export holds no published entry{f' of content type {kind!r}' if kind else ''}"
    if _is_glob(source.path):
        files = _glob(config.root, source.path)
        return "no file matches the pattern" if not files else f"its {len(files)} matching file(s) hold no record"
    path = config.root / source.path
    if path.is_dir():
        return (f"the folder and its sub-folders hold no {', '.join(READERS)} file" if not _files(config, source)
                else "its files hold no record")
    return "the file holds no record"


def _shown(config: Config, f: Path) -> str:
    return str(f.relative_to(config.root)) if f.is_relative_to(config.root) else str(f)


def fingerprint(config: Config) -> str | None:
    """A digest of the configured sources and the bytes of their files: equal fingerprints read
    equal records, so a run can tell "nothing changed" without parsing. None where a source is
    read over HTTP (only reading it tells) or a file cannot be read (reading it reports why)."""
    h = hashlib.sha256()
    try:
        for source in config.sources:
            if source.is_http:
                return None
            h.update(repr((source.entity, source.path, source.linked_only, sorted(source.options.items()))).encode())
            if source.path.startswith("builtin:"):
                continue  # bundled data: in the code digest
            for f in _files(config, source):
                h.update(f"\x1e{_shown(config, f)}\x1f".encode())
                with f.open("rb") as fh:
                    while block := fh.read(1 << 20):
                        h.update(block)
    except (InputError, OSError):
        return None
    return h.hexdigest()
