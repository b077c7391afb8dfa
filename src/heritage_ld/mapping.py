"""Declarative mappings: ``mapping/*.yaml`` compiled once into per-record functions record -> triples.

The language is documented in ``docs/mapping.md``. Loading checks every key, prefix, field path,
transform and template and reports ``file:line: key: problem``. The compiled form is plain Python
closures building N-Triples strings (see ``terms``): no RDF library on the per-record path.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import yaml

from . import terms
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
    if value.isascii() and value.isprintable():
        return value
    if problem := terms.unusable_char(value):
        raise ValueIssue(path, _short(value), f"{problem}: remove it in the source")
    return value


def check_text(path: str, value: str) -> str:
    """``check_chars``, and no HTML markup."""
    check_chars(path, value)
    if ("<" in value or "&" in value) and (m := _MARKUP.search(value)):
        raise ValueIssue(path, _short(value), f"contains markup {m.group()!r}: give plain text "
                         "(the CMS export should strip HTML)")
    return value


def _texts(path: str) -> Callable[[Any], list[str]]:
    """data -> the values at ``path`` as text (``scalar``), all checked before any is used."""
    get = path_getter(path)
    name = None if "." in path else path.removesuffix("[]")

    def texts(data: Any) -> list[str]:
        if name is not None and data.__class__ is dict:  # shortcut: one non-empty text
            v = data.get(name)
            if v.__class__ is str and v:
                return [v]
        vals = get(data)
        for v in vals:
            if v.__class__ is not str:
                return [scalar(path, v) for v in vals]
        return vals
    return texts


Chain = Callable[[str, "Context"], tuple[str | None, str | None]]


def _chain(fns: list[Callable], path: str | None) -> Chain | None:
    """(str, ctx) -> (result or None for "no value", datatype of the last Typed result or None)
    through the transforms ``fns``; a transform's note (``Noted``) goes to ``ctx.notes``."""
    if not fns:
        return None

    def run(s: str, ctx: "Context") -> tuple[str | None, str | None]:
        dt = None
        original = s
        for fn in fns:
            try:
                r = fn(s)
            except TransformError as e:
                raise ValueIssue(path, _short(s), str(e)) from None
            if r.__class__ is Noted:
                ctx.notes.append(ValueIssue(path, _short(original), r.note))
                r = r.value
            if r is None:
                return None, None
            if isinstance(r, Typed):
                s, dt = r.lex, r.datatype
            else:
                s = r
        return s, dt
    return run


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


Steps = tuple[tuple[str, bool], ...]   # a field path as (name, is a list) steps


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


# -- the compiler ----------------------------------------------------------------------------

Values = Callable[[dict, "Context"], list[str]]
Template = Callable[[dict, "Context"], list[str]]
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
IRI_SCHEMES = ("http", "https")  # schemes of IRIs taken from data; heritage-ld.toml may add others
_SPEC_KEYS = {"field", "transform", "language", "datatype", "value", "uri", "link", "ref", "config", "when",
              "template"}
_CONTEXT_PLACEHOLDERS = ("base", "id")
_LOCAL_NAME = re.compile(r"[A-Za-z_][\w.-]*")
_INTEGER = re.compile(r"[+-]?\d+")
_LITERAL_MEMO = 4096  # literal terms remembered per value spec with a fixed language (then afresh)


@dataclass
class Context:
    base: str
    config: dict[str, str]
    record_id: str
    known: dict[str, set[str]] | None     # ids per entity, for link checks (None: do not check)
    mappings: "Mappings"
    subjects: dict[str, str] = field(default_factory=dict)
    link_issues: list[ValueIssue] = field(default_factory=list)
    notes: list[ValueIssue] = field(default_factory=list)     # what transforms approximated (Info)


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

    def check_transforms(self, names: Any, node: Any, key: str) -> list[Callable]:
        names = names if isinstance(names, list) else [names]
        out = []
        for name in names:
            fn = self.tables.get(name) if isinstance(name, str) else None
            fn = fn or (TRANSFORMS.get(name) if isinstance(name, str) else None)
            if fn is None:
                raise self.error(node, key, f"unknown transform {name!r}; known: {', '.join(sorted(TRANSFORMS))}"
                                 + (f"; tables of this file: {', '.join(sorted(self.tables))}" if self.tables else ""))
            out.append(fn)
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
        parts: list[str | Callable[[Context], str] | Template] = []
        fields: list[Template] = []
        pos = 0
        lists = 0
        for m in _PLACEHOLDER.finditer(text):
            parts.append(text[pos:m.start()])
            parts.append(self.placeholder(m.group(1), text, node, key, fields, encode))
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
        parts = [p for p in parts if p != ""]
        first = _PLACEHOLDER.search(text)
        lead = first and first.group(1).split("|")[0].strip()
        if first and ":" not in text[:first.start()] and lead != "base" and not lead.startswith("config."):
            # the data gives the scheme (e.g. "{url|iri}"): only schemes consumers can dereference
            return self.scheme_checked(self.combine(parts, fields), None if lead == "id" else lead)
        return self.combine(parts, fields)

    @staticmethod
    def combine(parts: list, fields: list[Template]) -> Template:
        if not fields:  # one IRI: constants (which hold no braces) and context placeholders
            fmt = "".join(p if p.__class__ is str else "{}" for p in parts)
            fns = [p for p in parts if p.__class__ is not str]
            return lambda rec, ctx: [fmt.format(*[f(ctx) for f in fns])]
        if parts == fields:
            return fields[0]

        def run(rec: dict, ctx: Context) -> list[str]:
            pieces = [[p] if p.__class__ is str else p(rec, ctx) if p in fields else [p(ctx)] for p in parts]
            return ["".join(combo) for combo in itertools.product(*pieces)]
        return run

    def scheme_checked(self, tpl: Template, path: str | None) -> Template:
        """``tpl``, whose IRIs must have one of the allowed schemes (``iri_schemes``); another one
        (javascript:, file:, data:...) is a ValueIssue."""
        allowed = self.iri_schemes

        def run(rec: dict, ctx: Context) -> list[str]:
            out = tpl(rec, ctx)
            for v in out:
                scheme, colon, _rest = v.partition(":")
                if colon and scheme.lower() not in allowed and _SCHEME.fullmatch(scheme):
                    raise ValueIssue(path, _short(v), f"{v!r} is not an IRI consumers can dereference: scheme "
                                     f"{scheme!r} is not one of {', '.join(sorted(allowed))} (others can be "
                                     "allowed with iri_schemes in [project] of heritage-ld.toml)")
            return out
        return run

    def placeholder(self, expr: str, text: str, node: Any, key: str,
                    fields: list[Template], encode: bool = True) -> Callable[[Context], str] | Template:
        """ctx -> str for base, id and config.x; (record, ctx) -> strings for a field, added to ``fields``."""
        name, *tnames = [s.strip() for s in expr.split("|")]
        if not name:
            raise self.error(node, key, f"malformed template {text!r}: empty placeholder")
        if name == "base":
            return lambda c: c.base
        if name == "id":
            return (lambda c: segment(c.record_id)) if encode else (lambda c: c.record_id)
        if name.startswith("config."):
            ck = name[7:]
            if ck not in self.config_keys:
                raise self.error(node, key, f"unknown configuration key {ck!r} in {text!r}")
            return lambda c: c.config[ck]
        path = self.check_field(name, node, key)
        get = path_getter(path)
        chain = _chain(self.check_transforms(tnames, node, key) if tnames else [], path)
        raw = not encode or (bool(tnames) and tnames[-1] in IRI_TRANSFORMS)

        def values(rec: dict, ctx: Context) -> list[str]:
            out = []
            for v in get(rec):
                s: str | None = check_chars(path, v) if v.__class__ is str else scalar(path, v)
                if chain:
                    s = chain(s, ctx)[0]
                    if s is None:
                        continue
                out.append(s if raw else segment(s))
            return out
        fields.append(values)
        return values

    # -- conditions ------------------------------------------------------------------------
    def when(self, spec: Any, node: Any, key: str) -> tuple[Callable[[dict], bool], list[str]]:
        """A condition: record -> bool, and the field paths it reads (see ``scoped``).

        ``{field: F, test: T}`` (a value passes test T; ``present`` / ``absent``: F has a value / none),
        ``{field: F, equals: [v, null]}`` (a value equals one of them, compared by ``same``; null: F is
        missing) and ``{not: CONDITION}``."""
        spec = self.expect_dict(spec, "when", node, key)
        if "not" in spec:
            self.check_keys(spec, {"not"}, "when (with not)")
            inner, paths = self.when(spec["not"], spec, "not")
            return (lambda r: not inner(r)), paths
        self.check_keys(spec, {"field", "test", "equals"}, "when")
        path = self.check_field(spec.get("field"), spec, "field")
        get = path_getter(path)
        if ("test" in spec) == ("equals" in spec):
            raise self.error(spec, "field", "when needs one of 'test' or 'equals' (or is {not: ...})")
        if "test" in spec:
            name = spec["test"]
            if name == "present":
                return (lambda r: bool(get(r))), [path]
            if name == "absent":
                return (lambda r: not get(r)), [path]
            if name not in TESTS:
                raise self.error(spec, "test", f"unknown test {name!r}; known: "
                                 f"{', '.join(sorted(set(TESTS) | FIELD_TESTS))}")
            fn = TESTS[name]

            def test(r: dict) -> bool:
                for v in get(r):
                    if fn(v if v.__class__ is str else scalar(path, v)):
                        return True
                return False
            return test, [path]
        raw = spec["equals"] if isinstance(spec["equals"], list) else [spec["equals"]]
        for v in raw:
            if v is not None and not isinstance(v, (str, int, float)):
                raise self.error(spec, "equals", f"equals compares text, numbers, true/false or null, got {v!r}")
        allowed = {same(v) for v in raw}

        def equals(r: dict) -> bool:
            vals = get(r)
            if not vals:
                return None in allowed
            return any(same(v) in allowed for v in vals)
        return equals, [path]

    def scoped(self, fn: Values, cond: Callable[[dict], bool] | None, cond_paths: list[str],
               value_paths: list[str]) -> Values:
        """``fn`` under the condition ``cond``. Where the condition and the value read the same list
        (``contributors[].role`` and ``contributors[].id``), both are applied item by item."""
        if cond is None:
            return fn
        scope = next((sc for vp in value_paths for cp in cond_paths if (sc := _list_scope(vp, cp))), ())
        if not scope:
            return lambda r, c: fn(r, c) if cond(r) else []

        def per_item(r: dict, c: Context) -> list[str]:
            out: list[str] = []
            for item in each_item(r, scope):
                if cond(item):
                    out.extend(o for o in fn(item, c) if o not in out)
            return out
        return per_item

    # -- value specs -----------------------------------------------------------------------
    def values(self, spec: Any, node: Any, key: str, blocks: set[str]) -> Values:
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
        return self.scoped(self.value_fn(spec, kind, blocks), cond, cond_paths, value_paths)

    def value_fn(self, spec: _YDict, kind: str, blocks: set[str]) -> Values:
        if "link" in spec:
            fn = self.link(spec)
        elif "ref" in spec:
            ref = spec["ref"]
            if ref not in blocks:
                raise self.error(spec, "ref", f"unknown subject {ref!r}; subjects here: {', '.join(sorted(blocks))}")
            item = f"{ref}["
            fn = lambda r, c: [f"<{v}>" for k, v in c.subjects.items() if k == ref or k.startswith(item)]
        elif "uri" in spec:
            tpl = self.template(spec["uri"], spec, "uri")
            fields = ",".join(template_fields(spec["uri"])) or None

            def fn(r: dict, c: Context) -> list[str]:
                return [f"<{checked_iri(v, fields)}>" for v in tpl(r, c)]
        else:
            fn = self.literal(spec)
        return fn

    def link(self, spec: _YDict) -> Values:
        targets = spec["link"] if isinstance(spec["link"], list) else [spec["link"]]
        for t in targets:
            if not isinstance(t, str) or not re.fullmatch(r"[a-z][a-z0-9_-]*", t):
                raise self.error(spec, "link", f"{t!r} is not an entity name")
            self.link_targets.append((t, spec.key_lines.get("link", spec.line)))
        path = self.check_field(spec.get("field"), spec, "field")
        get = path_getter(path)
        chain = _chain(self.check_transforms(spec["transform"], spec, "transform") if "transform" in spec else [],
                       path)

        def fn(rec: dict, ctx: Context) -> list[str]:
            out = []
            for v in get(rec):
                if isinstance(v, dict):  # an embedded record: link by its id
                    rid = None
                    for t in targets:
                        if rid := ctx.mappings.record_id(t, v):
                            break
                    if not rid:
                        raise ValueIssue(path, _short(None), "embedded record has no id")
                    v = rid
                s = v if v.__class__ is str else scalar(path, v)
                if chain:
                    s = chain(s, ctx)[0]
                    if s is None:
                        continue
                if iri := ctx.mappings.link_iri(targets, s, path, ctx):
                    out.append(iri)
            return out
        return fn

    def language(self, spec: _YDict) -> Callable[[dict], str | None] | str | None:
        """The language of a literal spec: a fixed tag, None, or record -> tag (or the default)."""
        lang_spec = spec.get("language")
        if lang_spec is None or isinstance(lang_spec, str):
            try:
                terms.literal("", lang_spec)
            except ValueError:
                raise self.error(spec, "language", f"{lang_spec!r} is not a language tag") from None
            return lang_spec
        ls = self.expect_dict(lang_spec, "language", spec, "language")
        self.check_keys(ls, {"field", "default"}, "language")
        lpath = self.check_field(ls.get("field"), ls, "field")
        get = path_getter(lpath)
        default = ls.get("default")
        lang_fn = TRANSFORMS["language"]

        def lang(r: dict) -> str | None:
            vals = get(r)
            if not vals:
                return default
            try:
                return lang_fn(scalar(lpath, vals[0]))
            except TransformError as e:
                raise ValueIssue(lpath, _short(vals[0]), str(e)) from None
        return lang

    def literal(self, spec: _YDict) -> Values:
        if spec.get("language") is not None and spec.get("datatype") is not None:
            raise self.error(spec, "datatype", "a literal has a language or a datatype, not both")
        lang = self.language(spec)
        dt_spec = spec.get("datatype")
        datatype: str | None = None
        if dt_spec not in (None, "auto"):
            datatype = self.curie(dt_spec, spec, "datatype")
        auto = dt_spec == "auto"
        integer = datatype is not None and datatype.endswith(("#integer", "#long", "#int", "#nonNegativeInteger"))

        sources: Callable[[dict, Context], list[str]] | None = None   # None: texts(record)
        texts = None
        if "value" in spec:
            v = spec["value"]
            if not isinstance(v, (str, int, float)):
                raise self.error(spec, "value", f"a constant must be text or a number, got {v!r}")
            const = [scalar("value", v)]
            sources = lambda r, c: const
            path = None
        elif "config" in spec:
            ck = spec["config"]
            if ck not in self.config_keys:
                raise self.error(spec, "config", f"unknown configuration key {ck!r}; known: {', '.join(sorted(self.config_keys))}")
            sources = lambda r, c: [c.config[ck]]
            path = None
        elif "template" in spec:
            sources = self.template(spec["template"], spec, "template", encode=False)
            path = ",".join(template_fields(spec["template"])) or None
        else:
            path = self.check_field(spec["field"], spec, "field")
            texts = _texts(path)
        chain = _chain(self.check_transforms(spec["transform"], spec, "transform") if "transform" in spec else [],
                       path)
        # what follows the quoted text when the language is fixed: @lang, ^^<datatype> or nothing
        suffix = terms.literal("", lang if isinstance(lang, str) else None, datatype)[2:]
        where = path or "value"

        # with a fixed language the term depends on the value alone: remember recent ones (not where
        # a transform noted something: the note is made again for each record)
        memo: dict[str, str] | None = None if callable(lang) else {}

        def fn(rec: dict, ctx: Context) -> list[str]:
            out = []
            tag: Any = lang
            for v in texts(rec) if texts else sources(rec, ctx):
                if memo is not None and (term := memo.get(v)) is not None:
                    out.append(term)
                    continue
                s: str | None = check_chars(where, v)   # as the source has it: a transform may hide it
                dt = datatype
                noted = len(ctx.notes)
                if chain:
                    s, typed = chain(v, ctx)
                    if s is None:
                        continue
                    if auto and typed:
                        dt = typed
                check_text(where, s)   # markup, in what the transforms made of it
                if integer and not _INTEGER.fullmatch(s.strip()):
                    raise ValueIssue(path, _short(s), f"{s!r} is not a whole number")
                if callable(tag):
                    tag = tag(rec)  # once a record, where the first value needs it
                if dt is not datatype or tag is not lang:
                    term = terms.literal(s, tag, dt)
                else:
                    term = terms.quoted(s) + suffix
                if memo is not None and len(ctx.notes) == noted:
                    if len(memo) >= _LITERAL_MEMO:
                        memo.clear()
                    memo[v] = term
                out.append(term)
            return out
        return fn

    # -- classes and subject blocks ---------------------------------------------------------
    def classes(self, spec: Any, node: Any) -> tuple[list[str], list[Callable[[dict], list[str]]]]:
        """Fixed class terms, and one function per class entry taken from the record, so a bad
        class value drops only that class."""
        items = spec if isinstance(spec, list) else [spec]
        fixed: list[str] = []
        dynamic: list[Callable[[dict], list[str]]] = []
        for item in items:
            if isinstance(item, str):
                fixed.append(f"<{self.curie(item, node, 'class')}>")
                continue
            item = self.expect_dict(item, "a class", node, "class")
            self.check_keys(item, {"field", "namespace", "allowed", "default", "map"}, "class")
            path = self.check_field(item.get("field"), item, "field")
            get = path_getter(path)
            if "map" in item:
                table = {k: f"<{self.curie(v, item['map'], k)}>" for k, v in self.expect_dict(item["map"], "map", item, "map").items()}

                def dyn(r: dict, path=path, get=get, table=table) -> list[str]:
                    out = []
                    for v in get(r):
                        s = scalar(path, v)
                        if s not in table:
                            raise ValueIssue(path, s, f"{s!r} is not one of {', '.join(table)}")
                        out.append(table[s])
                    return out
            else:
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

                def dyn(r: dict, path=path, get=get, ns=self.prefixes[ns], allowed=allowed, default=default) -> list[str]:
                    vals = [scalar(path, v) for v in get(r)] or ([default] if default else [])
                    for s in vals:
                        if allowed and s not in allowed:
                            raise ValueIssue(path, s, f"type {s!r} is not one of {', '.join(allowed)}")
                        if not _LOCAL_NAME.fullmatch(s):
                            raise ValueIssue(path, _short(s), f"type {s!r} is not a class name")
                    return [f"<{ns}{s}>" for s in vals]
            dynamic.append(dyn)
        return fixed, dynamic


@dataclass
class _Property:
    predicate: str           # N-Triples term
    field: str | None        # source field named in reports
    values: Values
    iri: bool                # produces IRIs (uri, link, ref) rather than literals
    slot: int = 0            # properties with equal value specs share a slot: computed once a record


@dataclass
class _Block:
    name: str
    uri: Template
    classes: list[str]                           # fixed class terms
    class_fns: list[Callable[[dict], list[str]]]  # class terms from the record
    properties: list[_Property]
    when: Callable[[dict], bool] | None
    scope: Steps = ()    # the list its URI template reads: one subject per item, described by that item
    groups: list[tuple[int, Values, tuple[str, ...]]] = field(init=False)   # (slot, values, predicates)

    def __post_init__(self) -> None:
        by_slot: dict[int, tuple[Values, list[str]]] = {}
        for p in self.properties:
            by_slot.setdefault(p.slot, (p.values, []))[1].append(p.predicate)
        self.groups = [(slot, values, tuple(preds)) for slot, (values, preds) in by_slot.items()]


_MAPPING_CONSTRAINT = "https://w3id.org/heritage-ld#MappingConstraint"
_RDF_TYPE_IRI = RDF_TYPE[1:-1]


@dataclass
class EntityMapping:
    """One compiled mapping file."""
    entity: str
    path: Path
    id_path: str
    embedded: list[tuple[str, str, list[str]]]       # (field path, entity, fields the child inherits)
    blocks: list[_Block]
    fields_by_predicate: dict[str, str]   # "predicate IRI" and "subject-block predicate IRI" -> source field
    predicates: set[str]
    digest: str = ""
    links: list[tuple[str, int]] = field(default_factory=list)   # link targets (entity, line)
    slots: int = 0                                                # distinct value specs (see _Property.slot)

    def object_kinds(self) -> dict[str, set[bool]]:
        """predicate IRI -> {True if some value is an IRI, False if some value is a literal}."""
        kinds: dict[str, set[bool]] = {}
        for b in self.blocks:
            for p in b.properties:
                kinds.setdefault(p.predicate[1:-1], set()).add(p.iri)
        return kinds

    def _issue(self, record: Record, e: ValueIssue, focus: str | None = None,
               predicate: str | None = None) -> Issue:
        return Issue(self.entity, record.id, record.source, e.field, e.value, e.message,
                     focus=focus, predicate=predicate, component=_MAPPING_CONSTRAINT)

    def _objects(self, record: Record, values: Values, rec: dict, ctx: Context, subject: str, predicate: str,
                 issues: list[Issue]) -> tuple[list[str], tuple[ValueIssue, ...]]:
        """The objects of one value spec and its problems; its notes become Info issues at once."""
        try:
            objects, problems = values(rec, ctx), ()
        except ValueIssue as e:
            objects, problems = [], (e,)
        if ctx.link_issues:
            problems += tuple(ctx.link_issues)
            ctx.link_issues = []
        if ctx.notes:
            for e in ctx.notes:
                note = self._issue(record, e, subject, predicate)
                note.severity = "Info"
                issues.append(note)
            ctx.notes = []
        return objects, problems

    def map(self, record: Record, ctx: Context) -> Mapped:
        """Map one record. A bad value drops that value and becomes an Issue; never the whole record."""
        triples: list[Triple] = []
        add = triples.append
        issues: list[Issue] = []
        rec = record.data
        subjects: dict[str, str] = {}
        ctx.subjects, ctx.link_issues, ctx.notes = subjects, [], []
        active: list[tuple[_Block, str, dict | None]] = []   # (block, subject, the item describing it)
        for block in self.blocks:
            n = 0
            for item in each_item(rec, block.scope) if block.scope else (rec,):
                try:
                    if block.when and not block.when(item):
                        continue
                    uris = block.uri(item, ctx)
                    for u in uris:
                        if terms.is_iri(checked_iri(u, None) if _ENCODED_SCHEME.match(u) else u):
                            if u not in subjects.values():
                                subjects[block.name if n == 0 else f"{block.name}[{n}]"] = u
                                n += 1
                            active.append((block, u, item if block.scope else None))
                            break
                except ValueIssue as e:
                    issues.append(self._issue(record, e))
        # per slot (properties with equal value specs): objects, computed when first needed; problems
        done: list[list[str] | None] = [None] * self.slots
        failed: dict[int, tuple[ValueIssue, ...]] = {}
        for block, subject, item in active:
            s = f"<{subject}>"
            data = rec if item is None else item
            for c in block.classes:
                add((s, RDF_TYPE, c))
            for classes in block.class_fns:
                try:
                    for c in classes(data):
                        add((s, RDF_TYPE, c))
                except ValueIssue as e:
                    issues.append(self._issue(record, e, subject, _RDF_TYPE_IRI))
            own: dict[int, tuple[ValueIssue, ...]] = {}   # an item's subject: its own values and problems
            for slot, values, predicates in block.groups:
                if item is not None:
                    objects, own[slot] = self._objects(record, values, item, ctx, subject, predicates[0][1:-1],
                                                       issues)
                elif (objects := done[slot]) is None:
                    objects, problems = self._objects(record, values, rec, ctx, subject, predicates[0][1:-1], issues)
                    if problems:
                        failed[slot] = problems
                    done[slot] = objects
                for o in objects:
                    for p in predicates:
                        add((s, p, o))
            problems_of = own if item is not None else failed
            if problems_of:  # issues in property order
                for prop in block.properties:
                    for e in problems_of.get(prop.slot, ()):
                        issues.append(self._issue(record, e, subject, prop.predicate[1:-1]))
        return Mapped(record, sorted(set(triples)), issues, subjects)


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
        self._primary = {e: m.blocks[0] for e, m in self.entities.items()}
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
        slots: dict[Any, tuple[int, Values]] = {}   # equal value specs share one slot and function
        for name, bspec in subjects.items():
            bspec = c.expect_dict(bspec, f"subject {name}", subjects, name)
            c.check_keys(bspec, {"uri", "class", "properties", "when"}, f"subject {name}")
            if "uri" not in bspec:
                raise c.error(subjects, name, "a subject needs a uri template")
            props = []
            for pkey, pspec in c.expect_dict(bspec.get("properties") or _YDict(), "properties", bspec, "properties").items():
                pred = c.curie(pkey, bspec["properties"], pkey)
                for spec in pspec if isinstance(pspec, list) else [pspec]:
                    fn = c.values(spec, bspec["properties"], pkey, names)
                    slot, fn = slots.setdefault(_freeze({"field": spec} if isinstance(spec, str) else spec),
                                                (len(slots), fn))
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
                    props.append(_Property(f"<{pred}>", fld, fn, is_iri, slot))
            fixed, dynamic = c.classes(bspec.get("class") or [], bspec)
            uri = c.template(bspec["uri"], bspec, "uri")
            lists = [f for f in template_fields(bspec["uri"]) if "[]" in f]
            blocks.append(_Block(name, uri, fixed, dynamic, props,
                                 c.when(bspec["when"], bspec, "when")[0] if "when" in bspec else None,
                                 _list_scope(lists[0]) if lists else ()))
        return EntityMapping(entity, path, id_path, embedded, blocks, by_pred,
                             {p for p in by_pred if " " not in p} | {RDF_TYPE[1:-1]},
                             links=c.link_targets, slots=len(slots))

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
        ctx = Context(base, {}, record_id, None, self)
        fake: dict[str, Any] = {}
        cur = fake
        steps = self._id_steps[entity]
        for s in steps[:-1]:
            cur = cur.setdefault(s, {})
        cur[steps[-1]] = record_id
        try:
            uris = self._primary[entity].uri(fake, ctx)
        except ValueIssue:
            uris = []
        if len(self._iris) >= self.MEMO_LIMIT:
            self._iris.clear()
        iri = self._iris[key] = uris[0] if uris else None
        return iri

    def link_iri(self, targets: list[str], record_id: str, path: str, ctx: Context) -> str | None:
        known = ctx.known
        if known is None:
            found = targets
        elif len(targets) == 1:
            found = targets if record_id in known.get(targets[0], ()) else []
        else:
            found = [t for t in targets if record_id in known.get(t, ())]
        if not found:
            ctx.link_issues.append(ValueIssue(path, record_id, f"links to {' or '.join(targets)} {record_id!r}, "
                                              "which is not among the records read: add it or fix the id"))
            return None
        if len(found) > 1 and known is not None:
            ctx.link_issues.append(ValueIssue(path, record_id, f"id {record_id!r} is ambiguous: it exists as "
                                              f"{' and '.join(found)}"))
            return None
        iri = self.iri_for(found[0], record_id, ctx.base)
        return f"<{iri}>" if iri else None

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
