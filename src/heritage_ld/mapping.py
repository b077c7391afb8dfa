"""Declarative mappings: ``mapping/*.yaml`` compiled once into per-record functions record -> triples.

The language is documented in ``docs/mapping.md``. Loading checks every key, prefix, field path,
transform and template and reports ``file:line: key: problem``. The checked file is described by
``mapgen``'s classes, from which ``mapgen`` generates one Python function per entity building
N-Triples strings (see ``terms``): no RDF library, and no interpretation of specs, on the per-record path.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import yaml

from . import mapgen, terms
from .codegen import compile_cached
from .mapgen import Block, ClassSpec, Cond, Field, Fn, LangField, Property, Spec, Steps, Template
from .sources import BoundedComposer, check_aliases
from .terms import RDF_TYPE, Triple
from .transforms import FIELD_TESTS, IRI_TRANSFORMS, TESTS, TRANSFORMS, Noted, Typed, TransformError, segment


class MappingError(Exception):
    """A mapping file that cannot be used; str() names file, line and key."""

    def __init__(self, file: Path | str, line: int | None, key: str, message: str):
        self.file, self.line, self.key = str(file), line, key
        super().__init__(f"{file}:{line or '?'}: {key}: {message}")


@dataclass
class Issue:
    """One problem in one record: what the validation report shows an editor."""
    entity: str
    record_id: str
    source: str
    field: str | None
    value: str | None
    message: str
    severity: str = "Violation"          # Violation | Warning | Info (SHACL severities), or a shape's own IRI
    focus: str | None = None             # IRI of the resource concerned
    predicate: str | None = None         # property IRI concerned
    component: str | None = None         # SHACL constraint component (or heritage-ld check) IRI
    channel: str = "all"                 # "all" holds the record back; "edm" only from EDM outputs

    @property
    def holds_back(self) -> bool:
        """Violations hold a record back, and so do severities of a shape's own (as pyshacl counts
        them: only Warning and Info let a record conform)."""
        return self.severity not in RELAXED


RELAXED = ("Warning", "Info")


@dataclass
class Record:
    entity: str
    id: str
    data: dict[str, Any]
    source: str                          # "sample/posts.json:3 (record 1) > author[0]"


@dataclass
class Mapped:
    record: Record
    triples: list[Triple]
    issues: list[Issue]
    subjects: dict[str, str]             # subject block name -> IRI


class ValueIssue(Exception):
    def __init__(self, field: str | None, value: Any, message: str):
        self.field, self.value, self.message = field, value, message


# -- YAML with line numbers ----------------------------------------------------------------

class _YDict(dict):
    line: int = 0
    key_lines: dict[str, int]


class _Loader(BoundedComposer, yaml.SafeLoader):
    cut_deep = False  # a mapping nested too deep is an error, not a value


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _YDict:
    loader.flatten_mapping(node)
    d = _YDict()
    d.line, d.key_lines = node.start_mark.line + 1, {}
    for k_node, v_node in node.value:
        key = loader.construct_object(k_node, deep=True)
        if key in d:
            raise MappingError(loader.name, k_node.start_mark.line + 1, str(key), "duplicate key")
        d[key] = loader.construct_object(v_node, deep=True)
        d.key_lines[key] = k_node.start_mark.line + 1
    return d


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: Path) -> Any:
    """Parse a YAML file keeping line numbers; syntax errors become MappingError."""
    try:
        text = path.read_text("utf-8")
        loader = _Loader(text)
        loader.name = str(path)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            check_aliases(node)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        raise MappingError(path, mark.line + 1 if mark else None, "syntax",
                           f"{getattr(e, 'problem', None) or e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise MappingError(path, None, "file", str(e)) from None


# -- field paths ---------------------------------------------------------------------------

Getter = Callable[[Any], list[Any]]


def _walk(data: Any, names: tuple[str, ...]) -> list[Any]:
    """All values at the path steps ``names``; a list is walked into, a missing step yields nothing."""
    values = [data]
    for name in names:
        nxt: list[Any] = []
        for v in values:
            if isinstance(v, dict) and v.get(name) is not None:
                x = v[name]
                nxt.extend(x if isinstance(x, list) else [x])
            elif isinstance(v, list):  # tolerate a list where a single value was declared
                nxt.extend(i[name] for i in v if isinstance(i, dict) and i.get(name) is not None)
        values = nxt
    return [v for v in values if v is not None and v != ""]


def path_getter(path: str) -> Getter:
    """data -> all values at a dotted path such as ``author[].name`` (``[]`` marks a list, see ``_walk``).

    The returned function takes a shortcut while the path meets only objects, the usual case."""
    names = tuple(step.removesuffix("[]") for step in path.split("."))
    if len(names) == 1:
        name = names[0]

        def get1(data: Any) -> list[Any]:
            if not isinstance(data, dict):
                return _walk(data, names)
            v = data.get(name)
            if v is None:
                return []
            if isinstance(v, list):
                return [x for x in v if x is not None and x != ""]
            return [] if v == "" else [v]
        return get1

    def get(data: Any) -> list[Any]:
        v = data
        for name in names:
            if not isinstance(v, dict):
                return _walk(data, names) if isinstance(v, list) else []
            v = v.get(name)
            if v is None:
                return []
        if isinstance(v, list):
            return [x for x in v if x is not None and x != ""]
        return [] if v == "" else [v]
    return get


def scalar(path: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ValueIssue(path, _short(value), f"field {path!r} holds {type(value).__name__}, expected text or a number")


def _short(value: Any) -> str:
    s = str(value)
    return s if len(s) <= 80 else s[:77] + "..."


_MARKUP = re.compile(r"<\s*/?\s*[A-Za-z][A-Za-z0-9:-]*(\s[^<>]*)?/?>|&[a-zA-Z]+;|&#\d+;")


def check_chars(path: str | None, value: str) -> str:
    """``value`` as taken from the source, if it has no control character, lone surrogate or
    non-character (``terms.UNUSABLE``); checked before any transform could hide one."""
    if value.isprintable():   # no control character, surrogate or non-character is printable
        return value
    if problem := terms.unusable_char(value):
        raise ValueIssue(path, _short(value), f"{problem}: remove it in the source")
    return value


def texts(vals: list[Any], path: str) -> list[str]:
    """``vals`` (from ``path_getter``) as text (``scalar``), all checked before any is used."""
    for v in vals:
        if v.__class__ is not str:
            return [scalar(path, v) for v in vals]
    return vals


def same(value: Any) -> Any:
    """The form ``equals`` and tables compare: true/false whatever their spelling or type ("True",
    true, "FALSE"), numbers and other text as text, exactly; None stays None (a missing field)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        low = value.strip().lower()
        return low if low in ("true", "false") else value
    return str(value)


def _steps(path: str) -> Steps:
    return tuple((step.removesuffix("[]"), step.endswith("[]")) for step in path.split("."))


def _list_scope(*paths: str) -> Steps:
    """The steps all ``paths`` share, up to and including the last list step among them (or ())."""
    common: list[tuple[str, bool]] = []
    for group in zip(*(_steps(p) for p in paths)):
        if any(g != group[0] for g in group):
            break
        common.append(group[0])
    while common and not common[-1][1]:
        common.pop()
    return tuple(common)


def each_item(data: Any, steps: Steps) -> list[Any]:
    """One shallow copy of ``data`` per item of the lists along ``steps``, in which each of those
    lists holds only that item: conditions and values then see one item at a time."""
    if not steps:
        return [data]
    (name, _), rest = steps[0], steps[1:]
    if not isinstance(data, dict) or data.get(name) is None:
        return []
    v = data[name]
    if isinstance(v, list):
        return [{**data, name: [sub]} for item in v if item is not None and item != ""
                for sub in each_item(item, rest)]
    return [{**data, name: sub} for sub in each_item(v, rest)]


_ENCODED_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/?%2F", re.IGNORECASE)


def checked_iri(v: str, fields: str | None) -> str:
    """``v`` if it is an absolute IRI whose scheme is not followed by a percent-encoded '/' (a URL
    from the data put through a template without ``|iri``: never published)."""
    if _ENCODED_SCHEME.match(v):
        raise ValueIssue(fields, _short(v), f"{_short(v)!r} is a URL whose '//' was percent-encoded: take "
                         f"the field as given with {{{fields or 'field'}|iri}} (or |https for //host/path URLs)")
    if not terms.is_iri(v):
        raise ValueIssue(None, v, f"{v!r} is not an absolute IRI")
    return v


def _freeze(node: Any) -> Any:
    """A hashable key equal for equal value specs (types kept: 1, 1.0 and true differ)."""
    if isinstance(node, dict):
        return tuple((k, _freeze(v)) for k, v in node.items())
    if isinstance(node, list):
        return ("[]",) + tuple(_freeze(v) for v in node)
    return type(node).__name__, node


# -- what generated code calls ----------------------------------------------------------------

def _markup(path: str, value: str, m: re.Match) -> None:
    raise ValueIssue(path, _short(value), f"contains markup {m.group()!r}: give plain text "
                     "(the CMS export should strip HTML)")


def _passes(vals: list[Any], test: Callable[[str], bool], path: str) -> bool:
    """A ``when: {test: ...}``: some value passes."""
    for v in vals:
        if test(v if v.__class__ is str else scalar(path, v)):
            return True
    return False


def _equals(vals: list[Any], allowed: frozenset) -> bool:
    """A ``when: {equals: ...}``: some value is allowed (None: there is none)."""
    if not vals:
        return None in allowed
    return any(same(v) in allowed for v in vals)


def _class_map(vals: list[Any], path: str, table: dict[str, str]) -> list[str]:
    out = []
    for v in vals:
        s = scalar(path, v)
        if s not in table:
            raise ValueIssue(path, s, f"{s!r} is not one of {', '.join(table)}")
        out.append(table[s])
    return out


def _class_name(vals: list[Any], path: str, ns: str, allowed: list[str], default: str | None) -> list[str]:
    names = [scalar(path, v) for v in vals] or ([default] if default else [])
    for s in names:
        if allowed and s not in allowed:
            raise ValueIssue(path, s, f"type {s!r} is not one of {', '.join(allowed)}")
        if not _LOCAL_NAME.fullmatch(s):
            raise ValueIssue(path, _short(s), f"type {s!r} is not a class name")
    return [f"<{ns}{s}>" for s in names]


def _link_many(targets: tuple[str, ...], rid: str, path: str, known: Any, base: str, problems: list[ValueIssue],
               iri_for: Callable[[str, str, str], str | None]) -> str | None:
    """The link to the record ``rid`` of one of ``targets`` (or None, and why in ``problems``)."""
    found = targets if known is None else [t for t in targets if rid in known.get(t, ())]
    if not found:
        problems.append(ValueIssue(path, rid, f"links to {' or '.join(targets)} {rid!r}, which is not among the "
                                   "records read: add it or fix the id"))
        return None
    if len(found) > 1 and known is not None:
        problems.append(ValueIssue(path, rid, f"id {rid!r} is ambiguous: it exists as {' and '.join(found)}"))
        return None
    iri = iri_for(found[0], rid, base)
    return f"<{iri}>" if iri else None


_UNSET = object()


# -- the compiler ----------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
IRI_SCHEMES = ("http", "https")  # schemes of IRIs taken from data; heritage-ld.toml may add others
_SPEC_KEYS = {"field", "transform", "language", "datatype", "value", "uri", "link", "ref", "config", "when",
              "template"}
_CONTEXT_PLACEHOLDERS = ("base", "id")
_LOCAL_NAME = re.compile(r"[A-Za-z_][\w.-]*")
_INTEGER = re.compile(r"[+-]?\d+")


@dataclass
class Context:
    base: str
    config: dict[str, str]
    record_id: str
    known: dict[str, set[str]] | None     # ids per entity, for link checks (None: do not check)
    mappings: "Mappings"


def _check_schemes(allowed: frozenset[str]) -> Callable[[list[str], str | None], None]:
    def check(out: list[str], path: str | None) -> None:
        """IRIs whose scheme is not ``allowed`` (javascript:, file:, data:...) are a ValueIssue."""
        for v in out:
            scheme, colon, _rest = v.partition(":")
            if colon and scheme.lower() not in allowed and _SCHEME.fullmatch(scheme):
                raise ValueIssue(path, _short(v), f"{v!r} is not an IRI consumers can dereference: scheme "
                                 f"{scheme!r} is not one of {', '.join(sorted(allowed))} (others can be "
                                 "allowed with iri_schemes in [project] of heritage-ld.toml)")
    return check


# The names generated code uses besides its own (``mapgen``): checks, transforms' result types, helpers.
RUNTIME: dict[str, Any] = {
    "ValueIssue": ValueIssue, "TransformError": TransformError, "Typed": Typed, "Noted": Noted, "Mapped": Mapped,
    "short": _short, "scalar": scalar, "texts": texts, "check_chars": check_chars, "markup": _markup,
    "MARKUP": _MARKUP, "INTEGER": _INTEGER, "escape": terms.escape, "lang_suffix": terms.lang_suffix,
    "XSD_STRING": terms.XSD + "string", "is_iri": terms.is_iri, "checked_iri": checked_iri,
    "ENCODED_SCHEME": _ENCODED_SCHEME, "segment": segment, "each_item": each_item, "passes": _passes,
    "equals": _equals, "class_map": _class_map, "class_name": _class_name, "link_many": _link_many,
    "t_language": TRANSFORMS["language"], "UNSET": _UNSET,
}


def template_fields(text: str) -> list[str]:
    """The field paths a template's placeholders read (not base, id, config.x)."""
    names = [m.group(1).split("|")[0].strip() for m in _PLACEHOLDER.finditer(text)]
    return [n for n in names if n not in _CONTEXT_PLACEHOLDERS and not n.startswith("config.")]


class _Compiler:
    """Compiles one mapping file; every error names file, line and key."""

    def __init__(self, path: Path, prefixes: dict[str, str], config_keys: Iterable[str],
                 iri_schemes: Iterable[str] = IRI_SCHEMES):
        self.path, self.prefixes, self.config_keys = path, prefixes, set(config_keys)
        self.iri_schemes = frozenset(s.lower() for s in iri_schemes)
        self.fields: set[str] = set()
        self.link_targets: list[tuple[str, int]] = []   # (entity, line), checked once all files are loaded
        self.tables: dict[str, Callable[[str], str | None]] = {}   # the file's ``tables``, usable as transforms

    def error(self, node: Any, key: str, message: str) -> MappingError:
        line = node.key_lines.get(key, node.line) if isinstance(node, _YDict) else None
        return MappingError(self.path, line, key, message)

    def expect_dict(self, node: Any, where: str, parent: Any, key: str) -> _YDict:
        if not isinstance(node, _YDict):
            raise self.error(parent, key, f"{where} must be a mapping (key: value), got {node!r}")
        return node

    def check_keys(self, node: _YDict, allowed: set[str], where: str) -> None:
        for key in node:
            if key not in allowed:
                raise self.error(node, key, f"unknown key in {where}; allowed: {', '.join(sorted(allowed))}")

    def curie(self, value: Any, node: Any, key: str) -> str:
        if not isinstance(value, str) or ":" not in value:
            raise self.error(node, key, f"{value!r} is not a prefixed name such as dc:title")
        prefix, local = value.split(":", 1)
        if prefix not in self.prefixes:
            raise self.error(node, key, f"unknown prefix {prefix!r} in {value!r}; known: "
                             + ", ".join(sorted(self.prefixes)) + " (mapping/prefixes.yaml)")
        if not _LOCAL_NAME.fullmatch(local):
            raise self.error(node, key, f"{value!r}: {local!r} is not a valid local name")
        return self.prefixes[prefix] + local

    def check_field(self, path: Any, node: Any, key: str) -> str:
        if not isinstance(path, str) or not re.fullmatch(r"[@\w]+(\[\])?(\.[@\w]+(\[\])?)*", path):
            raise self.error(node, key, f"{path!r} is not a field path such as name, author[].name")
        plain = path.replace("[]", "")
        if not any(plain == f or plain.startswith(f + ".") or f.startswith(plain + ".") for f in self.fields):
            raise self.error(node, key, f"unknown field {path!r}; declared fields: {', '.join(sorted(self.fields))}")
        return path

    def check_transforms(self, names: Any, node: Any, key: str) -> list[Fn]:
        names = names if isinstance(names, list) else [names]
        out = []
        for name in names:
            fn = self.tables.get(name) if isinstance(name, str) else None
            fn = fn or (TRANSFORMS.get(name) if isinstance(name, str) else None)
            if fn is None:
                raise self.error(node, key, f"unknown transform {name!r}; known: {', '.join(sorted(TRANSFORMS))}"
                                 + (f"; tables of this file: {', '.join(sorted(self.tables))}" if self.tables else ""))
            out.append((name, fn))
        return out

    # -- tables ----------------------------------------------------------------------------
    def table(self, name: Any, spec: Any, node: _YDict) -> Callable[[str], str | None]:
        """A ``tables`` entry as a transform: ``{key: value}`` compared as ``equals`` does, or a list of
        rules ``{equals|contains|match: X, value: Y}`` and ``{default: Y}`` tried in order."""
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise self.error(node, str(name), f"{name!r} is not a table name (lower case, e.g. credit_rights)")
        if name in TRANSFORMS:
            raise self.error(node, name, f"table {name!r} has the name of a transform: choose another name")
        where = f"table {name!r} ({self.path}:{node.key_lines.get(name, node.line)})"
        rules: list[tuple[str, Any, str | None]] = []    # (kind, operand, value)
        if isinstance(spec, _YDict):
            rules = [("equals", same(k), self.table_value(v, spec, str(k))) for k, v in spec.items()]
        elif isinstance(spec, list) and spec:
            for rule in spec:
                rule = self.expect_dict(rule, f"a rule of table {name}", node, name)
                kinds = [k for k in ("equals", "contains", "match", "default") if k in rule]
                allowed = {"default"} if kinds == ["default"] else {kinds[0], "value"} if len(kinds) == 1 else set()
                if not allowed or set(rule) != allowed:
                    raise self.error(rule, next(iter(rule), name), "a table rule is {equals: X, value: Y}, "
                                     "{contains: X, value: Y}, {match: REGEX, value: Y} or {default: Y}")
                kind = kinds[0]
                operand = rule[kind]
                if kind == "match":
                    try:
                        operand = re.compile(str(operand), re.IGNORECASE)
                    except re.error as e:
                        raise self.error(rule, "match", f"not a regular expression: {e}") from None
                elif kind == "contains":
                    operand = str(operand).lower()
                elif kind == "equals":
                    operand = same(operand)
                rules.append((kind, operand, self.table_value(rule.get("value", rule.get("default")), rule, kind)))
        else:
            raise self.error(node, name, "a table is a mapping {source value: result} or a list of rules")

        def lookup(value: str) -> str | None:
            key, low = same(value), value.lower()
            for kind, operand, result in rules:
                if (kind == "default" or (kind == "equals" and key == operand)
                        or (kind == "contains" and operand in low) or (kind == "match" and operand.search(value))):
                    return result
            raise TransformError(f"{value!r} is not in {where}: add a row for it, or a default")
        return lookup

    def table_value(self, value: Any, node: Any, key: str) -> str | None:
        if value is not None and not isinstance(value, (str, int, float)):
            raise self.error(node, key, f"a table gives text (or null for no value), got {value!r}")
        return None if value is None else scalar(key, value)

    # -- templates -----------------------------------------------------------------------
    def template(self, text: Any, node: Any, key: str, encode: bool = True) -> Template:
        """``{base}article/{id}``, ``{url|iri}``, ``{sameAs[]|iri}``, ``{config.x}`` -> IRI strings
        (field values percent-encoded as one path segment unless ``encode`` is false: text templates).

        Every combination of the placeholders' values, in order; a template of constants and
        context placeholders only (base, id, config) always gives one IRI."""
        if not isinstance(text, str):
            raise self.error(node, key, f"template must be text, got {text!r}")
        if _PLACEHOLDER.sub("", text).count("{") or _PLACEHOLDER.sub("", text).count("}"):
            raise self.error(node, key, f"malformed template {text!r}: unbalanced braces")
        parts: list = []
        pos = 0
        lists = 0
        for m in _PLACEHOLDER.finditer(text):
            parts.append(text[pos:m.start()])
            parts.append(self.placeholder(m.group(1), text, node, key, encode))
            lists += "[]" in m.group(1)
            pos = m.end()
        parts.append(text[pos:])
        if lists > 1:
            raise self.error(node, key, f"template {text!r} uses more than one list field")
        first = _PLACEHOLDER.match(text)
        if encode and first and template_fields(first.group(0)) \
                and first.group(1).split("|")[-1].strip() not in IRI_TRANSFORMS:
            raise self.error(node, key, f"template {text!r} starts with a field, which would be percent-encoded "
                             f"as a path segment (https:%2F%2F...): write {{{first.group(1)}|iri}}, or "
                             f"{{{first.group(1)}|https}} for //host/path URLs")
        tpl = Template(text, [p for p in parts if p != ""])
        first = _PLACEHOLDER.search(text)
        lead = first and first.group(1).split("|")[0].strip()
        if first and ":" not in text[:first.start()] and lead != "base" and not lead.startswith("config."):
            # the data gives the scheme (e.g. "{url|iri}"): only schemes consumers can dereference
            tpl.scheme_check, tpl.scheme_path = True, None if lead == "id" else lead
        return tpl

    def placeholder(self, expr: str, text: str, node: Any, key: str, encode: bool = True) -> tuple | Field:
        """``("base",)``, ``("id",)`` (percent-encoded), ``("rid",)`` (as is), ``("config", KEY)``, or a Field."""
        name, *tnames = [s.strip() for s in expr.split("|")]
        if not name:
            raise self.error(node, key, f"malformed template {text!r}: empty placeholder")
        if name == "base":
            return ("base",)
        if name == "id":
            return ("id",) if encode else ("rid",)
        if name.startswith("config."):
            ck = name[7:]
            if ck not in self.config_keys:
                raise self.error(node, key, f"unknown configuration key {ck!r} in {text!r}")
            return ("config", ck)
        path = self.check_field(name, node, key)
        chain = tuple(self.check_transforms(tnames, node, key)) if tnames else ()
        raw = not encode or (bool(tnames) and tnames[-1] in IRI_TRANSFORMS)
        return Field(path, chain, raw)

    # -- conditions ------------------------------------------------------------------------
    def when(self, spec: Any, node: Any, key: str) -> tuple[Cond, list[str]]:
        """A condition, and the field paths it reads (see ``scoped``).

        ``{field: F, test: T}`` (a value passes test T; ``present`` / ``absent``: F has a value / none),
        ``{field: F, equals: [v, null]}`` (a value equals one of them, compared by ``same``; null: F is
        missing) and ``{not: CONDITION}``."""
        spec = self.expect_dict(spec, "when", node, key)
        if "not" in spec:
            self.check_keys(spec, {"not"}, "when (with not)")
            inner, paths = self.when(spec["not"], spec, "not")
            return Cond("not", inner=inner), paths
        self.check_keys(spec, {"field", "test", "equals"}, "when")
        path = self.check_field(spec.get("field"), spec, "field")
        if ("test" in spec) == ("equals" in spec):
            raise self.error(spec, "field", "when needs one of 'test' or 'equals' (or is {not: ...})")
        if "test" in spec:
            name = spec["test"]
            if name in FIELD_TESTS:
                return Cond(name, path), [path]
            if name not in TESTS:
                raise self.error(spec, "test", f"unknown test {name!r}; known: "
                                 f"{', '.join(sorted(set(TESTS) | FIELD_TESTS))}")
            return Cond("test", path, test=(name, TESTS[name])), [path]
        raw = spec["equals"] if isinstance(spec["equals"], list) else [spec["equals"]]
        for v in raw:
            if v is not None and not isinstance(v, (str, int, float)):
                raise self.error(spec, "equals", f"equals compares text, numbers, true/false or null, got {v!r}")
        return Cond("equals", path, allowed=frozenset(same(v) for v in raw)), [path]

    @staticmethod
    def scoped(spec: Spec, cond: Cond | None, cond_paths: list[str], value_paths: list[str]) -> Spec:
        """``spec`` under the condition ``cond``. Where the condition and the value read the same list
        (``contributors[].role`` and ``contributors[].id``), both are applied item by item."""
        if cond is not None:
            spec.when = cond
            spec.scope = next((sc for vp in value_paths for cp in cond_paths if (sc := _list_scope(vp, cp))), ())
        return spec

    # -- value specs -----------------------------------------------------------------------
    def values(self, spec: Any, node: Any, key: str, blocks: set[str]) -> Spec:
        if isinstance(spec, str):
            spec = _YDict(field=spec)
            spec.line, spec.key_lines = node.key_lines.get(key, 0) if isinstance(node, _YDict) else 0, {}
        spec = self.expect_dict(spec, f"the value of {key}", node, key)
        self.check_keys(spec, _SPEC_KEYS, f"the value of {key}")
        kinds = [k for k in ("field", "value", "uri", "link", "ref", "config", "template") if k in spec]
        if len(kinds) != 1 and not (kinds == ["link", "field"] or kinds == ["field", "link"]):
            raise self.error(spec, kinds[1] if len(kinds) > 1 else key,
                             "give exactly one of field, value, template, uri, link, ref, config")
        kind = "link" if "link" in spec else kinds[0]
        not_here = {"uri": {"transform", "language", "datatype"}, "ref": {"transform", "language", "datatype"},
                    "link": {"language", "datatype"}}.get(kind, set()) & set(spec)
        if not_here:
            bad = sorted(not_here)[0]
            raise self.error(spec, bad, f"{bad!r} does not apply to a {kind} value (it makes an IRI)")
        cond, cond_paths = self.when(spec["when"], spec, "when") if "when" in spec else (None, [])
        value_paths = [spec["field"]] if isinstance(spec.get("field"), str) else \
            template_fields(spec[kind]) if kind in ("uri", "template") and isinstance(spec[kind], str) else []
        return self.scoped(self.value_spec(spec, blocks), cond, cond_paths, value_paths)

    def value_spec(self, spec: _YDict, blocks: set[str]) -> Spec:
        if "link" in spec:
            return self.link(spec)
        if "ref" in spec:
            ref = spec["ref"]
            if ref not in blocks:
                raise self.error(spec, "ref", f"unknown subject {ref!r}; subjects here: {', '.join(sorted(blocks))}")
            return Spec("ref", ref=ref)
        if "uri" in spec:
            return Spec("uri", ",".join(template_fields(spec["uri"])) or None,
                        template=self.template(spec["uri"], spec, "uri"))
        return self.literal(spec)

    def link(self, spec: _YDict) -> Spec:
        targets = spec["link"] if isinstance(spec["link"], list) else [spec["link"]]
        for t in targets:
            if not isinstance(t, str) or not re.fullmatch(r"[a-z][a-z0-9_-]*", t):
                raise self.error(spec, "link", f"{t!r} is not an entity name")
            self.link_targets.append((t, spec.key_lines.get("link", spec.line)))
        path = self.check_field(spec.get("field"), spec, "field")
        chain = self.check_transforms(spec["transform"], spec, "transform") if "transform" in spec else []
        return Spec("link", path, chain=tuple(chain), targets=tuple(targets))

    def language(self, spec: _YDict) -> LangField | str | None:
        """The language of a literal spec: a fixed tag, None, or a field (and a default)."""
        lang_spec = spec.get("language")
        if lang_spec is None or isinstance(lang_spec, str):
            return self.tag(lang_spec, spec, "language")
        ls = self.expect_dict(lang_spec, "language", spec, "language")
        self.check_keys(ls, {"field", "default"}, "language")
        return LangField(self.check_field(ls.get("field"), ls, "field"), self.tag(ls.get("default"), ls, "default"))

    def tag(self, tag: Any, spec: _YDict, key: str) -> str | None:
        """``tag`` if it is a language tag (or None)."""
        try:
            if tag is not None and not isinstance(tag, str):
                raise ValueError
            terms.literal("", tag)
        except ValueError:
            raise self.error(spec, key, f"{tag!r} is not a language tag") from None
        return tag

    def literal(self, spec: _YDict) -> Spec:
        if spec.get("language") is not None and spec.get("datatype") is not None:
            raise self.error(spec, "datatype", "a literal has a language or a datatype, not both")
        lang = self.language(spec)
        dt_spec = spec.get("datatype")
        datatype: str | None = None
        if dt_spec not in (None, "auto"):
            datatype = self.curie(dt_spec, spec, "datatype")
        integer = datatype is not None and datatype.endswith(("#integer", "#long", "#int", "#nonNegativeInteger"))
        out = Spec("literal", lang=lang, datatype=datatype, auto=dt_spec == "auto", integer=integer)
        if "value" in spec:
            v = spec["value"]
            if not isinstance(v, (str, int, float)):
                raise self.error(spec, "value", f"a constant must be text or a number, got {v!r}")
            out.source, out.const = "value", scalar("value", v)
        elif "config" in spec:
            ck = spec["config"]
            if ck not in self.config_keys:
                raise self.error(spec, "config", f"unknown configuration key {ck!r}; known: {', '.join(sorted(self.config_keys))}")
            out.source, out.const = "config", ck
        elif "template" in spec:
            out.source, out.template = "template", self.template(spec["template"], spec, "template", encode=False)
            out.path = ",".join(template_fields(spec["template"])) or None
        else:
            out.path = self.check_field(spec["field"], spec, "field")
        out.chain = tuple(self.check_transforms(spec["transform"], spec, "transform")) if "transform" in spec else ()
        return out

    # -- classes and subject blocks ---------------------------------------------------------
    def classes(self, spec: Any, node: Any) -> tuple[list[str], list[ClassSpec]]:
        """Fixed class terms, and one spec per class entry taken from the record, so a bad
        class value drops only that class."""
        items = spec if isinstance(spec, list) else [spec]
        fixed: list[str] = []
        dynamic: list[ClassSpec] = []
        for item in items:
            if isinstance(item, str):
                fixed.append(f"<{self.curie(item, node, 'class')}>")
                continue
            item = self.expect_dict(item, "a class", node, "class")
            self.check_keys(item, {"field", "namespace", "allowed", "default", "map"}, "class")
            path = self.check_field(item.get("field"), item, "field")
            if "map" in item:
                table = {k: f"<{self.curie(v, item['map'], k)}>" for k, v in self.expect_dict(item["map"], "map", item, "map").items()}
                dynamic.append(ClassSpec(path, table=table))
                continue
            ns = item.get("namespace")
            if ns not in self.prefixes:
                raise self.error(item, "namespace", f"unknown prefix {ns!r}")
            allowed = item.get("allowed") or []
            default = item.get("default")
            if not isinstance(allowed, list):
                raise self.error(item, "allowed", f"allowed must be a list of class names, got {allowed!r}")
            if allowed and default and default not in allowed:
                raise self.error(item, "default", f"default {default!r} is not one of the allowed classes")
            for a in allowed + ([default] if default else []):
                self.curie(f"{ns}:{a}", item, "allowed")
            dynamic.append(ClassSpec(path, ns=self.prefixes[ns], allowed=allowed, default=default))
        return fixed, dynamic


_MAPPING_CONSTRAINT = "https://w3id.org/heritage-ld#MappingConstraint"


def _issue(entity: str, record: Record, e: ValueIssue, focus: str | None = None, predicate: str | None = None,
           severity: str = "Violation") -> Issue:
    return Issue(entity, record.id, record.source, e.field, e.value, e.message, severity,
                 focus=focus, predicate=predicate, component=_MAPPING_CONSTRAINT)


@dataclass
class EntityMapping:
    """One compiled mapping file: its description (``blocks``) and the code generated from it."""
    entity: str
    path: Path
    id_path: str
    embedded: list[tuple[str, str, list[str]]]       # (field path, entity, fields the child inherits)
    blocks: list[Block]
    fields_by_predicate: dict[str, str]   # "predicate IRI" and "subject-block predicate IRI" -> source field
    predicates: set[str]
    digest: str = ""
    links: list[tuple[str, int]] = field(default_factory=list)   # link targets (entity, line)
    iri_schemes: frozenset[str] = frozenset(IRI_SCHEMES)          # schemes of IRIs taken from data
    source: str = ""                      # the generated Python (``heritage-ld map --show-code``)
    map: Callable[[Record, Context], Mapped] = field(init=False, repr=False)
    primary_iris: Callable[[dict, str, dict, str], list[str]] = field(init=False, repr=False)

    def generate(self, id_paths: dict[str, str]) -> None:
        """Generate and compile the code (``id_paths``: the id field of each entity, for links)."""
        runtime = {**RUNTIME, "check_schemes": _check_schemes(self.iri_schemes),
                   "issue": lambda record, e, focus=None, predicate=None: _issue(self.entity, record, e, focus, predicate),
                   "note": lambda record, e, focus, predicate: _issue(self.entity, record, e, focus, predicate, "Info")}
        self.source, namespace = mapgen.generate(self.entity, str(self.path), self.blocks, runtime, path_getter,
                                                 self.iri_schemes, id_paths)
        try:
            code = compile_cached(self.source, f"mapping {self.entity} {self.path.name}")
        except (SyntaxError, ValueError) as e:   # a bug of the generator, not of the file: said, not a traceback
            raise MappingError(self.path, None, "subjects", f"generated code does not compile ({e}): a heritage-ld "
                               "bug; `heritage-ld map --show-code` shows the code, please report it") from None
        exec(code, namespace)
        self.map, self.primary_iris = namespace["map_record"], namespace["primary_iris"]

    def object_kinds(self) -> dict[str, set[bool]]:
        """predicate IRI -> {True if some value is an IRI, False if some value is a literal}."""
        kinds: dict[str, set[bool]] = {}
        for b in self.blocks:
            for p in b.properties:
                kinds.setdefault(p.predicate[1:-1], set()).add(p.iri)
        return kinds


class Mappings:
    """All mapping files of a project, compiled."""

    TOP_KEYS = {"entity", "id", "fields", "embedded", "tables", "subjects"}
    MEMO_LIMIT = 65536  # main-subject IRIs remembered per Mappings (then the memo starts afresh)

    def __init__(self, folder: Path, config_keys: Iterable[str], iri_schemes: Iterable[str] = IRI_SCHEMES):
        import hashlib
        self.folder = folder
        self.iri_schemes = tuple(iri_schemes)
        prefix_file = folder / "prefixes.yaml"
        raw = load_yaml(prefix_file) if prefix_file.exists() else {}
        if not isinstance(raw, dict):
            raise MappingError(prefix_file, 1, "prefixes", "must map prefix to namespace IRI")
        for k, v in raw.items():
            if not isinstance(v, str) or not terms.is_iri(v):
                raise MappingError(prefix_file, raw.key_lines.get(k), k, f"{v!r} is not a namespace IRI")
        self.prefixes: dict[str, str] = dict(raw)
        self.entities: dict[str, EntityMapping] = {}
        files = sorted(p for p in folder.glob("*.yaml") if p.name != "prefixes.yaml")
        if not files:
            raise MappingError(folder, None, "mapping", "no mapping files (*.yaml) found")
        for path in files:
            m = self._compile(path, set(config_keys))
            m.digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
            if m.entity in self.entities:
                raise MappingError(path, 1, "entity", f"entity {m.entity!r} is also mapped in {self.entities[m.entity].path}")
            self.entities[m.entity] = m
        for m in self.entities.values():
            for path, ent, _inherit in m.embedded:
                if ent not in self.entities:
                    raise MappingError(m.path, None, "embedded", f"unknown entity {ent!r}")
            for ent, line in m.links:
                if ent not in self.entities:
                    raise MappingError(m.path, line, "link", f"unknown entity {ent!r}; mapped entities: "
                                       + ", ".join(sorted(self.entities)))
        for m in self.entities.values():
            m.generate({e: other.id_path for e, other in self.entities.items()})
        self._ids = {e: path_getter(m.id_path) for e, m in self.entities.items()}
        self._id_steps = {e: m.id_path.replace("[]", "").split(".") for e, m in self.entities.items()}
        # per entity: (field path, getter, child entity, its id field, fields the child inherits)
        self._embedded = {e: [(path, path_getter(path), child, self.entities[child].id_path, inherit)
                              for path, child, inherit in m.embedded] for e, m in self.entities.items()}
        self._iris: dict[tuple[str, str, str], str | None] = {}

    def _compile(self, path: Path, config_keys: set[str]) -> EntityMapping:
        doc = load_yaml(path)
        c = _Compiler(path, self.prefixes, config_keys, self.iri_schemes)
        if not isinstance(doc, _YDict):
            raise MappingError(path, 1, "mapping", "a mapping file is a YAML mapping with entity, id, fields, subjects")
        c.check_keys(doc, self.TOP_KEYS, "a mapping file")
        for key in ("entity", "id", "fields", "subjects"):
            if key not in doc:
                raise MappingError(path, doc.line, key, f"missing required key {key!r}")
        entity = doc["entity"]
        if not isinstance(entity, str) or not re.fullmatch(r"[a-z][a-z0-9_-]*", entity):
            raise c.error(doc, "entity", f"{entity!r} is not an entity name (lower case, e.g. article)")
        if not isinstance(doc["fields"], list) or not all(isinstance(f, str) for f in doc["fields"]):
            raise c.error(doc, "fields", "fields must be a list of field paths")
        c.fields = {f.replace("[]", "") for f in doc["fields"]}
        id_path = c.check_field(doc["id"], doc, "id")
        embedded = []
        for item in doc.get("embedded") or []:
            item = c.expect_dict(item, "an embedded entry", doc, "embedded")
            c.check_keys(item, {"field", "entity", "inherit"}, "embedded")
            inherit = item.get("inherit") or []
            if not isinstance(inherit, list):
                raise c.error(item, "inherit", "inherit is a list of top-level fields")
            embedded.append((c.check_field(item.get("field"), item, "field"), item.get("entity"),
                             [c.check_field(f, item, "inherit") for f in inherit]))
        tables = c.expect_dict(doc.get("tables") or _YDict(), "tables", doc, "tables")
        for name, spec in tables.items():
            c.tables[name] = c.table(name, spec, tables)
        subjects = c.expect_dict(doc["subjects"], "subjects", doc, "subjects")
        names = set(subjects)
        blocks = []
        by_pred: dict[str, str] = {}
        slots: dict[Any, tuple[int, Spec]] = {}   # equal value specs share one slot (computed once)
        for name, bspec in subjects.items():
            bspec = c.expect_dict(bspec, f"subject {name}", subjects, name)
            c.check_keys(bspec, {"uri", "class", "properties", "when"}, f"subject {name}")
            if "uri" not in bspec:
                raise c.error(subjects, name, "a subject needs a uri template")
            props = []
            for pkey, pspec in c.expect_dict(bspec.get("properties") or _YDict(), "properties", bspec, "properties").items():
                pred = c.curie(pkey, bspec["properties"], pkey)
                for spec in pspec if isinstance(pspec, list) else [pspec]:
                    checked = c.values(spec, bspec["properties"], pkey, names)
                    slot, checked = slots.setdefault(_freeze({"field": spec} if isinstance(spec, str) else spec),
                                                     (len(slots), checked))
                    fld = spec if isinstance(spec, str) else (spec.get("field") if isinstance(spec, dict) else None)
                    for kind in ("uri", "template"):
                        if not fld and isinstance(spec, dict) and isinstance(spec.get(kind), str):
                            fld = ",".join(template_fields(spec[kind])) or None
                    for k in (pred, f"{name} {pred}"):   # every field the property reads, once
                        if fld and fld not in (by_pred.get(k) or "").split(","):
                            by_pred[k] = f"{by_pred[k]},{fld}" if by_pred.get(k) else fld
                        else:
                            by_pred.setdefault(k, fld)
                    is_iri = isinstance(spec, dict) and bool({"uri", "link", "ref"} & set(spec))
                    props.append(Property(f"<{pred}>", fld, checked, is_iri, slot))
            fixed, dynamic = c.classes(bspec.get("class") or [], bspec)
            uri = c.template(bspec["uri"], bspec, "uri")
            lists = [f for f in template_fields(bspec["uri"]) if "[]" in f]
            blocks.append(Block(name, uri, fixed, dynamic, props,
                                 c.when(bspec["when"], bspec, "when")[0] if "when" in bspec else None,
                                 _list_scope(lists[0]) if lists else ()))
        return EntityMapping(entity, path, id_path, embedded, blocks, by_pred,
                             {p for p in by_pred if " " not in p} | {RDF_TYPE[1:-1]},
                             links=c.link_targets, iri_schemes=c.iri_schemes)

    # -- ids and links ---------------------------------------------------------------------
    def record_id(self, entity: str, data: dict) -> str | None:
        vals = self._ids[entity](data)
        if vals and isinstance(vals[0], (str, int)):
            return str(vals[0]).strip() or None
        return None

    def iri_for(self, entity: str, record_id: str, base: str) -> str | None:
        """The IRI of a record's main subject (first subject block) from its id alone."""
        key = (entity, record_id, base)
        iri = self._iris.get(key, "")
        if iri != "":
            return iri
        fake: dict[str, Any] = {}
        cur = fake
        steps = self._id_steps[entity]
        for s in steps[:-1]:
            cur = cur.setdefault(s, {})
        cur[steps[-1]] = record_id
        try:
            uris = self.entities[entity].primary_iris(fake, base, {}, record_id)
        except ValueIssue:
            uris = []
        if len(self._iris) >= self.MEMO_LIMIT:
            self._iris.clear()
        iri = self._iris[key] = uris[0] if uris else None
        return iri

    # -- records ---------------------------------------------------------------------------
    def extract(self, entity: str, data: dict, source: str,
                parent: tuple[str, str] | None = None) -> Iterator[tuple[str, str | None, dict, str]]:
        """Yield (entity, id, data, source) for a source record and every record embedded in it.

        An embedded object holding more than its id is a record of its own; the parent keeps a
        link to it by id. The embedded record learns its parent in ``_embeddedIn.<entity>[]`` and
        takes the ``inherit`` fields it lacks from the parent (an image the article's language).
        """
        rid = self.record_id(entity, data)
        if parent:
            data = {**data, "_embeddedIn": {parent[0]: [parent[1]]}}
        yield entity, rid, data, source
        if rid is None:
            return
        for path, get, child_entity, id_field, inherit in self._embedded[entity]:
            for i, child in enumerate(get(data)):
                if isinstance(child, dict) and len(child) > (id_field in child):  # more than its id
                    child = {**{f: data[f] for f in inherit if f in data}, **child}
                    yield from self.extract(child_entity, child, f"{source} > {path.replace('[]', f'[{i}]')}",
                                            (entity, rid))
