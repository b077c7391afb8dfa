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
import re
from pathlib import Path
from typing import IO, Any, Callable, Iterator

import yaml

from . import terms
from .config import Config, Source
from .transforms import data_file


class InputError(Exception):
    """Unreadable source data; str() names file and line."""


MAX_DEPTH = 100            # objects and lists a record may nest
MAX_DIGITS = 4300          # digits of a whole number (Python's int conversion limit)
ALIAS_BUDGET = 10_000      # values YAML aliases may add to a document when expanded
# What stands for a part of a record that cannot be read (``usable`` reports it); the lone
# surrogate makes a record holding one fail the pipeline's fast canonical encoding.
TOO_DEEP = "\udbff(nested too deep)"
TOO_LONG = "\udbff(number too long)"


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def parse_json(text: str | bytes) -> Any:
    """``json.loads``, with what is nested deeper than MAX_DEPTH replaced by TOO_DEEP and whole
    numbers longer than MAX_DIGITS by TOO_LONG (a RecursionError or ValueError otherwise)."""
    try:
        value = json.loads(text)
        if isinstance(text, str) and text.count("{") + text.count("[") <= MAX_DEPTH:
            return value   # cannot nest deeper than it has brackets
        return _bound(value)
    except json.JSONDecodeError:
        raise
    except (RecursionError, ValueError):  # nested too deep, or a number too long for int()
        pass
    if isinstance(text, bytes):
        text = text.decode(json.detect_encoding(text))
    return _slow_decode(text, 0)[0]


def _decode(dec: json.JSONDecoder, text: str, pos: int) -> tuple[Any, int]:
    """``raw_decode`` of one record at ``pos``, bounded as ``parse_json``."""
    try:
        obj, end = dec.raw_decode(text, pos)
        return _bound(obj), end
    except json.JSONDecodeError:
        raise
    except (RecursionError, ValueError):
        return _slow_decode(text, pos)


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?')


def _slow_decode(text: str, pos: int) -> tuple[Any, int]:
    """The JSON value at ``pos`` (and where it ends), its parts nested too deep and its numbers
    too long replaced in the text before parsing: for what ``json`` itself cannot parse."""
    out, depth, cut, last = [], 0, None, pos
    for m in _TOKEN.finditer(text, pos):
        tok = m.group()
        if tok in "[{":
            depth += 1
            if depth == MAX_DEPTH + 1 and cut is None:
                out.append(text[last:m.start()])
                cut = m.start()
        elif tok in "]}":
            depth -= 1
            if depth == MAX_DEPTH and cut is not None:
                out.append(json.dumps(TOO_DEEP))
                cut, last = None, m.end()
        elif cut is None and tok[0] != '"' and len(tok) > MAX_DIGITS and tok.lstrip("-").isdigit():
            out.append(text[last:m.start()] + json.dumps(TOO_LONG))
            last = m.end()
        if depth <= 0:
            out.append(text[last:m.end()])
            end = m.end()
            break
    else:
        raise json.JSONDecodeError("unexpected end of data", text, len(text))
    return json.loads("".join(out)), end


def _bound(value: Any) -> Any:
    """``value`` with what is nested deeper than MAX_DEPTH replaced (in place) by TOO_DEEP."""
    level = [value] if value.__class__ is dict or value.__class__ is list else []
    for _depth in range(1, MAX_DEPTH):   # containers level by level
        level = [x for v in level for x in (v.values() if v.__class__ is dict else v)
                 if x.__class__ is dict or x.__class__ is list]
        if not level:
            return value
    for v in level:   # at MAX_DEPTH: their containers go
        for k in (list(v) if v.__class__ is dict else range(len(v))):
            if v[k].__class__ is dict or v[k].__class__ is list:
                v[k] = TOO_DEEP
    return value


def _escaped(text: str) -> str:
    """``text`` with what UTF-8 cannot encode (lone surrogates) written as ``\\udXXX``."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _abridged(path: str) -> str | None:
    return path if len(path) <= 60 else path[:40] + "..." + path[-16:] if path else None


def usable(data: Any) -> tuple[Any, list[tuple[str | None, str | None, str]]]:
    """(a copy of a record that can be stored and digested, [(field, value, problem)]) for a record
    that cannot be as read: parts nested too deep, numbers too long, text that UTF-8 cannot encode
    (lone surrogates, written as escapes in the copy), field names that are not text."""
    problems: list[tuple[str | None, str | None, str]] = []

    def clean(v: Any, where: str, depth: int) -> Any:
        if isinstance(v, str):
            if v == TOO_DEEP:
                problems.append((_abridged(where), None, f"nested more than {MAX_DEPTH} levels deep: flatten it in "
                                 "the source"))
                return None
            if v == TOO_LONG:
                problems.append((where or None, None, f"a whole number with more than {MAX_DIGITS} digits: give "
                                 "it as text"))
                return None
            shown = _escaped(v)
            if shown != v:
                problems.append((where or None, shown if len(shown) <= 80 else shown[:77] + "...",
                                 f"{terms.unusable_char(v)}: fix the text in the source"))
            return shown
        if isinstance(v, (dict, list)):
            if depth >= MAX_DEPTH:
                problems.append((_abridged(where), None, f"nested more than {MAX_DEPTH} levels deep: flatten it in "
                                 "the source"))
                return None
            if isinstance(v, list):
                return [clean(x, f"{where}[{i}]", depth + 1) for i, x in enumerate(v)]
            out = {}
            for k, x in v.items():
                name = _escaped(k) if isinstance(k, str) else repr(k)
                inner = f"{where}.{name}" if where else name
                if not isinstance(k, str):
                    problems.append((inner, None, f"field name {k!r} is not text: quote it in the source"))
                    continue
                if name != k:
                    problems.append((inner, None, f"the field name {terms.unusable_char(k)}: fix it in the source"))
                out[name] = clean(x, inner, depth + 1)
            return out
        return v

    return clean(data, "", 0), problems


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
            obj, end = _decode(dec, text, pos)
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
            obj, end = _decode(dec, text, pos)
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
                        yield parse_json(line), f"{shown}:{n}"
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
            for col in reader.fieldnames or []:
                if columns.get(col, col).count(".") >= MAX_DEPTH:
                    raise InputError(f"{shown}:1: column {_abridged(col)!r} nests more than {MAX_DEPTH} levels "
                                     "deep: map it to a shorter field path (columns)")
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


class BoundedComposer:
    """A YAML loader mixin: what is nested deeper than MAX_DEPTH becomes the scalar TOO_DEEP
    (``cut_deep``) or a ComposerError; ``check_aliases`` then bounds what aliases add."""
    cut_deep = True
    _depth = 0

    def compose_node(self, parent, index):
        if self._depth >= MAX_DEPTH and self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent):
            start = self.get_event()
            if not self.cut_deep:
                raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep",
                                                  start.start_mark)
            nesting = 1
            while nesting:
                event = self.get_event()
                if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                    nesting += 1
                elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                    nesting -= 1
            return yaml.ScalarNode("tag:yaml.org,2002:str", TOO_DEEP, start.start_mark, event.end_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def check_aliases(node: yaml.Node) -> None:
    """A YAMLError unless the document ``node`` is a tree once its aliases are expanded (no alias
    inside its own anchor), at most MAX_DEPTH deep and larger by at most ALIAS_BUDGET values: a
    few hundred bytes of aliases can otherwise stand for gigabytes ("billion laughs")."""
    size: dict[int, int] = {}     # node -> values once expanded
    depth: dict[int, int] = {}    # node -> levels of nesting once expanded (a scalar: 0)
    entered: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    while stack:
        n, done = stack.pop()
        nested = isinstance(n, (yaml.MappingNode, yaml.SequenceNode))
        kids = ([k for pair in n.value for k in pair] if isinstance(n, yaml.MappingNode) else n.value) if nested else []
        if not done:
            if id(n) in size:
                continue
            if id(n) in entered:
                raise yaml.composer.ComposerError(None, None, "an alias refers to a node that contains it",
                                                  n.start_mark)
            entered.add(id(n))
            stack.append((n, True))
            stack.extend((k, False) for k in kids if id(k) not in size)
            continue
        size[id(n)] = 1 + sum(size[id(k)] for k in kids)
        depth[id(n)] = nested + max((depth[id(k)] for k in kids), default=0)
        if size[id(n)] - len(size) > ALIAS_BUDGET:
            problem = f"its aliases expand it by more than {ALIAS_BUDGET} values"
        elif depth[id(n)] > MAX_DEPTH:
            problem = f"its aliases nest it more than {MAX_DEPTH} levels deep"
        else:
            continue
        raise yaml.composer.ComposerError(None, None, f"{problem}: write the values out", n.start_mark)


class RecordLoader(BoundedComposer, yaml.SafeLoader):
    """SafeLoader for records: nesting and aliases bounded; dates and mapping keys stay the text
    they are written as (a record's fields are text, as in JSON); numbers too long are TOO_LONG."""

    def construct_mapping(self, node, deep=False):
        self.flatten_mapping(node)
        out = {}
        for k, v in node.value:
            if not isinstance(k, yaml.ScalarNode):
                raise yaml.constructor.ConstructorError(None, None, "a field name must be text", k.start_mark)
            out[k.value] = self.construct_object(v, deep=deep)
        return out

    def construct_yaml_int(self, node):
        digits = sum(c.isdigit() for c in node.value)
        return TOO_LONG if digits > MAX_DIGITS else super().construct_yaml_int(node)


RecordLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_scalar)
RecordLoader.add_constructor("tag:yaml.org,2002:int", RecordLoader.construct_yaml_int)


def read_yaml(path: Path, shown: str, _options: dict) -> Iterator[tuple[Any, str]]:
    """YAML: one record, a list of records, or several ``---`` documents."""
    try:
        with open_text(path) as fh:
            loader = RecordLoader(fh)
            try:
                while loader.check_node():
                    node = loader.get_node()
                    check_aliases(node)
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


def plain_json(config: Config, source: Source) -> bool:
    """Whether every record of ``source`` is exactly what ``parse_json`` gives (keys text, JSON
    values, at most MAX_DEPTH deep): its files are all JSON or JSON Lines, not a Contentful export."""
    if source.path.startswith("builtin:") or source.is_http or source.options.get("contentful"):
        return False
    try:
        return all(_reader(f) in (read_json, read_jsonl) for f in _files(config, source))
    except InputError:
        return False


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
    """The file as reports name it (a name that is not UTF-8 with its bytes escaped)."""
    return _escaped(str(f.relative_to(config.root)) if f.is_relative_to(config.root) else str(f))


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
