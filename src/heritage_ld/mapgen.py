"""Generated code for mappings: each compiled mapping file as Python source, one function per entity.

``mapping._Compiler`` checks a mapping file and describes it with the plain classes below (the
blocks of ``subjects``, their properties and value specs); ``generate`` writes that description as
straight-line Python: field access inlined, transforms called directly, literals escaped inline,
values that repeat (those a transform makes) remembered. ``codegen.compile_cached`` compiles a
source once per process and digest. The source is what runs: ``heritage-ld map --show-code ENTITY`` prints it,
and a traceback shows its lines.
"""
from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from .codegen import Writer

Steps = tuple[tuple[str, bool], ...]   # a field path as (name, is a list) steps
Fn = tuple[str, Callable]               # a named function (transform, table or test)
RDF_TYPE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"


# -- what a mapping file says, checked ---------------------------------------------------------

@dataclass(eq=False)
class Field:
    """A field placeholder of a template: ``{path|t1|t2}``."""
    path: str
    chain: tuple[Fn, ...]
    raw: bool            # kept as given (IRI transforms, text templates), else one percent-encoded segment


@dataclass(eq=False)
class Template:
    """``{base}article/{id}``: constants, ``base``/``id``/``rid``/``config.KEY`` placeholders and fields."""
    text: str
    parts: list          # str constants, Field, or ("base",), ("id",) encoded, ("rid",) as is, ("config", KEY)
    scheme_check: bool = False          # the data gives the scheme: only allowed ones
    scheme_path: str | None = None      # the field named when it is not

    @property
    def fields(self) -> list[Field]:
        return [p for p in self.parts if isinstance(p, Field)]


@dataclass(eq=False)
class Cond:
    """``when``: ``present``/``absent``/``test``/``equals`` on a field, or ``not`` another condition."""
    kind: str
    path: str = ""
    test: Fn | None = None
    allowed: frozenset = frozenset()
    inner: "Cond | None" = None


@dataclass(eq=False)
class Spec:
    """A value spec: ``literal`` (from a field, ``value``, ``config`` or ``template``), ``uri``, ``link``
    or ``ref``, under a condition (applied item by item over ``scope``, the list it shares with the value)."""
    kind: str
    path: str | None = None              # the field(s) named in problems
    source: str = "field"                # literal: field | value | config | template
    const: str | None = None             # literal: the constant (value) or configuration key (config)
    template: Template | None = None     # uri, literal template
    chain: tuple[Fn, ...] = ()
    lang: Any = None                     # literal: a fixed tag, None, or LangField
    datatype: str | None = None
    auto: bool = False
    integer: bool = False
    targets: tuple[str, ...] = ()        # link
    ref: str = ""                        # ref: the subject block
    when: Cond | None = None
    scope: Steps = ()


@dataclass(eq=False)
class LangField:
    """``language: {field: F, default: D}``."""
    path: str
    default: Any


@dataclass(eq=False)
class ClassSpec:
    """A class taken from a field: through ``map`` (a table), or a name in ``ns``."""
    path: str
    table: dict[str, str] | None = None
    ns: str = ""
    allowed: list[str] = field(default_factory=list)
    default: str | None = None


@dataclass(eq=False)
class Property:
    predicate: str           # N-Triples term
    field: str | None        # source field named in reports
    spec: Spec
    iri: bool                # produces IRIs (uri, link, ref) rather than literals
    slot: int = 0            # properties with equal value specs share a slot: computed once a record


@dataclass(eq=False)
class Block:
    """One subject of ``subjects``."""
    name: str
    uri: Template
    classes: list[str]                  # fixed class terms
    class_specs: list[ClassSpec]        # class terms from the record
    properties: list[Property]
    when: Cond | None
    scope: Steps = ()    # the list its URI template reads: one subject per item, described by that item

    def groups(self) -> list[tuple[int, Spec, list[str]]]:
        """(slot, spec, predicates) in the order of the properties: equal specs computed once."""
        by_slot: dict[int, tuple[Spec, list[str]]] = {}
        for p in self.properties:
            by_slot.setdefault(p.slot, (p.spec, []))[1].append(p.predicate)
        return [(slot, spec, preds) for slot, (spec, preds) in by_slot.items()]


# -- the generator --------------------------------------------------------------------------------

LITERAL_MEMO = 4096   # literal terms remembered per value spec with a transform (then afresh)


def _comment(s: str) -> str:
    """``s`` on one line, its control characters escaped (a NUL cannot be in Python source)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", " ".join(s.split()))


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _text(s: str) -> str:
    """``s`` as the inside of a single-quoted (f-)string literal."""
    return (s.encode("unicode_escape").decode("ascii").replace("'", "\\'")
            .replace("{", "{{").replace("}", "}}"))


class _Out:
    """Where a spec's objects go: appended to the list ``var``, or straight into the record's
    triples, one per predicate of subject ``S`` (where no other subject takes them again)."""

    def __init__(self, w: Writer, var: str | None, predicates: list[str] = ()) -> None:
        self.w, self.var, self.predicates = w, var, predicates

    def put(self, term: str) -> None:
        if self.var:
            self.w(f"{self.var}.append({term})")
            return
        if len(self.predicates) > 1 and not term.isidentifier():
            self.w(f"o = {term}")
            term = "o"
        for p in self.predicates:
            self.w(f"add((S, {p!r}, {term}))")


class Generator:
    """The source of one entity's mapping and the names it uses (``namespace``)."""

    def __init__(self, entity: str, path: str, runtime: dict[str, Any], path_getter: Callable,
                 iri_schemes: frozenset[str], id_paths: dict[str, str]) -> None:
        self.entity, self.path, self.id_paths = entity, path, id_paths
        self.known: dict[str, str] = {}   # entities linked to -> the variable holding their known ids
        # IRIs starting so need no scheme check (``check_schemes`` allows their schemes)
        self.usual_schemes = tuple(f"{x}://" for x in ("http", "https") if x in iri_schemes)
        self.namespace: dict[str, Any] = dict(runtime)
        self.path_getter = path_getter
        self.w = Writer()
        self._consts: dict[tuple, str] = {}
        self.shown: dict[str, str] = {}      # name -> what it is, for the header
        self.languages: dict[tuple, str] = {}   # language fields of the record -> the variable holding
                                                # (tag, @tag), or the problem, once worked out

    # constants of the generated module: functions, getters, tables, memos
    def const(self, value: Any, hint: str, key: tuple | None = None, shown: str | None = None) -> str:
        """The name of ``value`` in the generated module (``shown``: how its header describes it)."""
        key = key or (hint, id(value))
        name = self._consts.get(key)
        if name is None and callable(value):
            name = next((k for k, v in self.namespace.items() if v is value), None)
        if name is None:
            base = "".join(c if c.isascii() and c.isalnum() else "_" for c in hint).strip("_") or "c"
            if not base.isidentifier() or keyword.iskeyword(base):
                base = f"c_{base}"
            name, n = base, 1
            while name in self.namespace:
                n += 1
                name = f"{base}_{n}"
            self.namespace[name] = value
            self.shown[name] = shown or _describe(value)
        self._consts[key] = name
        return name

    def literal_value(self, value: Any, hint: str) -> str:
        """``value`` written in the source where it is text or None, else a name for it."""
        return repr(value) if value is None or value.__class__ is str else self.const(value, hint)

    def fn(self, named: Fn, kind: str = "t") -> str:
        return self.const(named[1], f"{kind}_{named[0]}", (kind, named[0], id(named[1])))

    def getter(self, path: str) -> str:
        return self.const(self.path_getter(path), "get_" + path.replace("[]", "").replace(".", "_"), ("get", path),
                          f"the values at {path} (heritage_ld.mapping.path_getter)")

    # -- expressions and statements -------------------------------------------------------------
    def values(self, path: str, d: str) -> str:
        """A list of all values at ``path`` in the object ``d`` (as ``mapping.path_getter`` gives them):
        an expression for one step, else statements walking the objects, and the variable they set."""
        names = [step.removesuffix("[]") for step in path.split(".")]
        w = self.w
        x = w.fresh("x")
        last = (f"[] if {x} is None else [v for v in {x} if v is not None and v != ''] if isinstance({x}, list) "
                f"else [] if {x} == '' else [{x}]")
        if len(names) == 1:
            return f"([] if ({x} := {d}.get({names[0]!r})) is None else [v for v in {x} if v is not None and v != '']" \
                   f" if isinstance({x}, list) else [] if {x} == '' else [{x}])"
        out = w.fresh("values")
        w(f"{x} = {d}.get({names[0]!r})")
        depth = w.depth
        for name in names[1:]:
            w(f"if isinstance({x}, dict):")
            w.depth += 1
            w(f"{x} = {x}.get({name!r})")
        w(f"{out} = {last}")
        for _ in names[1:]:
            w.depth -= 1
            with w.block(f"elif {x} is None:"):
                w(f"{out} = []")
            with w.block("else:  # a list walked into, or nothing"):
                w(f"{out} = {self.getter(path)}({d})")
        assert w.depth == depth
        return out

    def cond(self, c: Cond, d: str) -> str:
        """An expression: the condition ``c`` on ``d``."""
        if c.kind == "not":
            return f"not ({self.cond(c.inner, d)})"
        vals = self.values(c.path, d)
        if c.kind == "present":
            return f"bool({vals})"
        if c.kind == "absent":
            return f"not {vals}"
        if c.kind == "test":
            return f"passes({vals}, {self.fn(c.test, 'test')}, {c.path!r})"
        return f"equals({vals}, {self.const(c.allowed, 'one_of')})"

    def chain(self, chain: tuple[Fn, ...], path: str | None, s: str, original: str, skip: str,
              typed: str | None = None) -> None:
        """Statements putting ``s`` through the transforms; ``skip`` where one gives no value."""
        w = self.w
        if original == s and len(chain) > 1:
            w(f"original = {s}")
            original = "original"
        for named in chain:
            with w.block("try:"):  # the transform, directly
                w(f"r = {self.fn(named)}({s})")
            with w.block("except TransformError as e:"):
                w(f"raise ValueIssue({path!r}, short({s}), str(e)) from None")
            with w.block("if r.__class__ is Noted:"):
                w(f"notes.append(ValueIssue({path!r}, short({original}), r.note))")
                w("r = r.value")
            with w.block("if r is None:"):
                w(skip)
            if typed:
                with w.block("if isinstance(r, Typed):"):
                    w(f"{s} = r.lex")
                    w(f"{typed} = r.datatype")
                with w.block("else:"):
                    w(f"{s} = r")
            else:
                w(f"{s} = r.lex if isinstance(r, Typed) else r")

    def template(self, t: Template, d: str, out: str) -> None:
        """Statements setting ``out`` to the template's strings on ``d``: every combination of its
        fields' values, in order."""
        w = self.w
        names: list[str] = []
        for f in t.fields:
            vals = w.fresh("F")
            names.append(vals)
            w(f"{vals} = []")
            with w.block(f"for v in {self.values(f.path, d)}:"):
                w(f"s = (v if v.isprintable() else check_chars({f.path!r}, v)) if v.__class__ is str "
                  f"else scalar({f.path!r}, v)")
                self.chain(f.chain, f.path, "s", "s", "continue")
                w(f"{vals}.append(s)" if f.raw else f"{vals}.append(segment(s))")
        if not names:
            w(f"{out} = [{self._fstring(t.parts, [])}]")
        elif len(t.parts) == 1:
            w(f"{out} = {names[0]}")
        else:
            items = [w.fresh("x") for _ in names]
            loops = " ".join(f"for {x} in {n}" for x, n in zip(items, names))
            if not any(isinstance(p, tuple) and p[0] == "config" for p in t.parts):
                w(f"{out} = [{self._fstring(t.parts, items)} {loops}]")
            else:  # configuration values are joined as text, as str.join does
                w(f"{out} = [''.join(({self._joined(t.parts, items)})) {loops}]")
        if t.scheme_check and not self.usual_schemes:
            w(f"check_schemes({out}, {t.scheme_path!r})")
        elif t.scheme_check:
            with w.block(f"for u in {out}:"):
                with w.block(f"if not u.startswith({self.usual_schemes!r}):"):
                    w(f"check_schemes((u,), {t.scheme_path!r})")

    def _ctx(self, part: tuple) -> str:
        if part[0] == "config":
            return f"config[{self.const(part[1], 'key_' + part[1], ('key', part[1]))}]"
        return {"base": "base", "id": "id_seg", "rid": "rid"}[part[0]]

    def _fstring(self, parts: list, items: list[str]) -> str:
        fields = iter(items)
        out = []
        for p in parts:
            if isinstance(p, str):
                out.append(_text(p))
            else:
                out.append("{" + (next(fields) if isinstance(p, Field) else self._ctx(p)) + "}")
        return "f'" + "".join(out) + "'"

    def _joined(self, parts: list, items: list[str]) -> str:
        fields = iter(items)
        return ", ".join(repr(p) if isinstance(p, str) else next(fields) if isinstance(p, Field) else self._ctx(p)
                         for p in parts) + ","

    # -- value specs ----------------------------------------------------------------------------
    def spec(self, spec: Spec, d: str, out: _Out, links: str) -> None:
        """Statements appending the spec's objects on ``d`` to ``out`` (ValueIssue: a problem)."""
        w = self.w
        if spec.when is None:
            self.value(spec, d, out, links)
        elif not spec.scope:
            with w.block(f"if {self.cond(spec.when, d)}:"):
                self.value(spec, d, out, links)
        else:
            item, got = w.fresh("item"), w.fresh("got")
            with w.block(f"for {item} in each_item({d}, {self.const(spec.scope, 'scope')}):"):
                with w.block(f"if {self.cond(spec.when, item)}:"):
                    w(f"{got} = []")
                    self.value(spec, item, _Out(w, got), links)
                    with w.block(f"for o in {got}:"):
                        with w.block(f"if o not in {out.var}:"):
                            out.put("o")

    def value(self, spec: Spec, d: str, out: _Out, links: str) -> None:
        w = self.w
        if spec.kind == "ref":
            with w.block("for k, v in subjects.items():"):
                with w.block(f"if k == {spec.ref!r} or k.startswith({spec.ref + '['!r}):"):
                    out.put("f'<{v}>'")
        elif spec.kind == "uri":
            u = w.fresh("U")
            self.template(spec.template, d, u)
            with w.block(f"for v in {u}:"):
                with w.block("if ENCODED_SCHEME.match(v) or not is_iri(v):"):
                    w(f"checked_iri(v, {spec.path!r})")
                out.put("f'<{v}>'")
        elif spec.kind == "link":
            self.link(spec, d, out, links)
        else:
            self.literal(spec, d, out)

    def link(self, spec: Spec, d: str, out: _Out, links: str) -> None:
        w, path, targets = self.w, spec.path, spec.targets
        with w.block(f"for v in {self.values(path, d)}:"):
            with w.block("if isinstance(v, dict):  # an embedded record: link by its id"):
                id_path = self.id_paths.get(targets[0], ".")
                if len(targets) == 1 and "." not in id_path and "[" not in id_path:
                    w(f"i = v.get({id_path!r})")
                    w(f"i = (i.strip() or None) if i.__class__ is str else mappings.record_id({targets[0]!r}, v)")
                elif len(targets) == 1:
                    w(f"i = mappings.record_id({targets[0]!r}, v)")
                else:
                    w("i = None")
                    with w.block(f"for t in {targets!r}:"):
                        with w.block("if i := mappings.record_id(t, v):"):
                            w("break")
                with w.block("if not i:"):
                    w(f"raise ValueIssue({path!r}, short(None), 'embedded record has no id')")
                w("v = i")
            w(f"s = v if v.__class__ is str else scalar({path!r}, v)")
            self.chain(spec.chain, path, "s", "s", "continue")
            if len(targets) == 1:
                t = targets[0]
                ids = self.known.setdefault(t, f"known_{len(self.known)}")
                with w.block(f"if known is None or s in {ids}:"):
                    with w.block(f"if iri := iri_for({t!r}, s, base):"):
                        out.put("f'<{iri}>'")
                with w.block("else:"):
                    w(f"{links}.append(ValueIssue({path!r}, s, f'links to {_text(t)} {{s!r}}, which is not among "
                      "the records read: add it or fix the id'))")
            else:
                with w.block(f"if iri := link_many({targets!r}, s, {path!r}, known, base, {links}, iri_for):"):
                    out.put("iri")

    def literal(self, spec: Spec, d: str, out: _Out) -> None:
        w = self.w
        where = spec.path or "value"
        if spec.source == "field":
            path = spec.path
            if "." in path:
                w(f"vs = texts({self.values(path, d)}, {path!r})")
            else:
                w(f"v = {d}.get({path.removesuffix('[]')!r})")
                with w.block("if v.__class__ is str:"):
                    w("vs = (v,) if v else ()")
                with w.block("elif v is None:"):
                    w("vs = ()")
                with w.block("else:"):
                    w(f"vs = texts({self.getter(path)}({d}), {path!r})")
        elif spec.source == "value":
            w(f"vs = ({spec.const!r},)")
        elif spec.source == "config":
            w(f"vs = ({self._ctx(('config', spec.const))},)")
        else:
            self.template(spec.template, d, "vs")
        dynamic = isinstance(spec.lang, LangField)
        memo = self.const({}, f"memo_{spec.path or spec.source}", shown="{}: value -> term, for values that recur") \
            if spec.chain and not dynamic else None
        if dynamic:
            w("tag = UNSET")
        with w.block("for v in vs:"):
            if memo:
                w(f"t = {memo}.get(v)")
                with w.block("if t is not None:"):
                    out.put("t")
                    w("continue")
            with w.block("if not v.isprintable():   # as the source has it: a transform may hide it"):
                w(f"check_chars({where!r}, v)")
            w("s = v")
            if spec.chain:
                if memo:
                    w("noted = len(notes)")
                if spec.auto:
                    w("typed = None")
                self.chain(spec.chain, spec.path, "s", "v", "continue", "typed" if spec.auto else None)
                with w.block("if not s.isprintable():"):
                    w(f"check_chars({where!r}, s)")
            with w.block("if ('<' in s or '&' in s) and (m := MARKUP.search(s)):"):
                w(f"markup({where!r}, s, m)")
            if spec.integer:
                with w.block("if not INTEGER.fullmatch(s.strip()):"):
                    w(f"raise ValueIssue({spec.path!r}, short(s), f'{{s!r}} is not a whole number')")
            if dynamic:
                self.language(spec.lang, d)
            with w.block("if '\"' in s or '\\\\' in s or '\\n' in s or '\\r' in s:"):
                w("s = escape(s)")
            if dynamic:
                w("t = f'\"{s}\"{sfx}'")
            elif spec.auto and spec.chain:
                w("t = f'\"{s}\"' if not typed or typed == XSD_STRING else f'\"{s}\"^^<{typed}>'")
            else:
                w(f"t = f'\"{{s}}\"{_text(literal_suffix(spec.lang, spec.datatype))}'")
            if memo:
                with w.block("if len(notes) == noted:"):
                    with w.block(f"if len({memo}) >= {LITERAL_MEMO}:"):
                        w(f"{memo}.clear()")
                    w(f"{memo}[v] = t")
            out.put("t")

    def language(self, lang: LangField, d: str) -> None:
        """Statements setting ``tag`` (and ``sfx``, its ``@tag``) once a spec, where a value needs it;
        for the record itself, worked out once a record (a problem is raised again for each spec)."""
        w = self.w
        with w.block("if tag is UNSET:"):
            if d != "rec":
                self._language(lang, d, "tag")
                w("sfx = lang_suffix(tag) if tag else ''")
                return
            var = self.languages.setdefault((lang.path, repr(lang.default)), f"language_{len(self.languages)}")
            with w.block(f"if {var} is UNSET:"):
                with w.block("try:"):
                    self._language(lang, d, "tag")
                    w(f"{var} = tag, lang_suffix(tag) if tag else ''")
                with w.block("except ValueIssue as e:"):
                    w(f"{var} = e")
            with w.block(f"if {var}.__class__ is ValueIssue:"):
                w(f"raise {var}")
            w(f"tag, sfx = {var}")

    def _language(self, lang: LangField, d: str, tag: str) -> None:
        w = self.w
        w(f"lv = {self.values(lang.path, d)}")
        with w.block("if not lv:"):
            w(f"{tag} = {self.literal_value(lang.default, 'default_language')}")
        with w.block("else:"):
            with w.block("try:"):
                w(f"{tag} = t_language(scalar({lang.path!r}, lv[0]))")
            with w.block("except TransformError as e:"):
                w(f"raise ValueIssue({lang.path!r}, short(lv[0]), str(e)) from None")

    # -- the record function -----------------------------------------------------------------------
    def slot(self, spec: Spec, d: str, objects: str | None, problems: str, predicates: list[str]) -> None:
        """Statements computing one spec's ``objects`` (None: its triples added at once) and
        ``problems``; its notes (and any left from the subjects' templates) become Info issues on
        the subject and its first predicate. A problem drops every value of the spec."""
        w = self.w
        predicate = predicates[0]
        links = w.fresh("linked") if spec.kind == "link" else None
        if links:
            w(f"{links} = []")
        if objects is None:
            w("mark = len(triples)")
        with w.block("try:"):
            if objects is not None:
                w(f"{objects} = []")
            self.spec(spec, d, _Out(w, objects, predicates), links or "None")
        with w.block("except ValueIssue as e:"):
            if objects is None:
                w("del triples[mark:]")
                w(f"{problems} = (e,)")
            else:
                w(f"{objects}, {problems} = [], (e,)")
        if links:
            with w.block(f"if {links}:"):
                w(f"{problems} += tuple({links})")
        with w.block("if notes:"):
            w(f"issues.extend([note(record, e, focus, {predicate[1:-1]!r}) for e in notes])")
            w("notes = []")

    def subject(self, b: Block, var: str, scoped: bool) -> None:
        """Statements finding the block's subject (one per item where ``scoped``): the first IRI
        of its template that is an IRI."""
        w = self.w
        d = "item" if scoped else "rec"
        with w.block("try:"):
            if b.when is not None and scoped:
                with w.block(f"if not ({self.cond(b.when, d)}):"):
                    w("continue")
            elif b.when is not None:
                w(f"if {self.cond(b.when, d)}:")
                w.depth += 1
            u = w.fresh("U")
            self.template(b.uri, d, u)
            with w.block(f"for u in {u}:"):
                with w.block("if ENCODED_SCHEME.match(u):"):
                    w("checked_iri(u, None)")
                with w.block("if is_iri(u):"):
                    with w.block("if u not in subjects.values():"):
                        if scoped:
                            w(f"subjects[{b.name!r} if n == 0 else f'{_text(b.name)}[{{n}}]'] = u")
                            w("n += 1")
                        else:
                            w(f"subjects[{b.name!r}] = u")
                    w(f"{var}.append((u, item))" if scoped else f"{var} = u")
                    w("break")
            with w.block("else:"):   # values, but none an IRI: said, not a subject silently left out
                with w.block(f"if {u}:"):
                    w(f"checked_iri({u}[0], None)")
            if b.when is not None and not scoped:
                w.depth -= 1
        with w.block("except ValueIssue as e:"):
            w("issues.append(issue(record, e))")

    def classes(self, b: Block, s: str, iri: str, d: str) -> None:
        w = self.w
        for c in b.classes:
            w(f"add(({s}, {RDF_TYPE!r}, {c!r}))")
        for cs in b.class_specs:
            vals = self.values(cs.path, d)
            with w.block("try:"):
                if cs.table is not None:
                    w(f"C = class_map({vals}, {cs.path!r}, {self.const(cs.table, 'classes')})")
                else:
                    w(f"C = class_name({vals}, {cs.path!r}, {cs.ns!r}, {self.const(cs.allowed, 'allowed')}, "
                      f"{self.literal_value(cs.default, 'default_class')})")
            with w.block("except ValueIssue as e:"):
                w(f"issues.append(issue(record, e, {iri}, {RDF_TYPE[1:-1]!r}))")
            with w.block("else:"):
                with w.block("for c in C:"):
                    w(f"add(({s}, {RDF_TYPE!r}, c))")

    def record_function(self, blocks: list[Block]) -> None:
        w = self.w
        with w.block("def map_record(record, ctx):"):
            w(f"# map one {self.entity} record: a bad value drops that value and becomes an Issue")
            w("rec = record.data")
            w("base, config, rid, known, mappings = ctx.base, ctx.config, ctx.record_id, ctx.known, ctx.mappings")
            w("iri_for = mappings.iri_for")
            w("id_seg = segment(rid)")
            w("issues = []")
            w("triples = []")
            w("add = triples.append")
            w("subjects = {}")
            w("notes = []   # what transforms noted: Info issues of the next value computed")
            w("LANGUAGES")
            w("KNOWN")
            w("")
            w("# -- the subjects: which resources the record describes")
            subject_vars = []
            for b in blocks:
                var = w.fresh("subject")
                subject_vars.append(var)
                w(f"# {_comment(b.name)}: {_comment(b.uri.text)}")
                if b.scope:
                    w(f"{var} = []   # (IRI, the item describing it)")
                    w("n = 0")
                    with w.block(f"for item in each_item(rec, {self.const(b.scope, 'scope')}):"):
                        self.subject(b, var, True)
                else:
                    w(f"{var} = None")
                    self.subject(b, var, False)
            w("")
            w("# -- their classes and properties")
            computed: set[int] = set()
            uses: dict[int, int] = {}   # the record's blocks reading each slot
            for b in blocks:
                for slot, spec, _preds in ([] if b.scope else b.groups()):
                    uses[slot] = uses.get(slot, 0) + 1
            shared = sorted(uses)
            kept = [s for s in shared if uses[s] > 1]
            if kept:
                w(" = ".join(f"objects_{s}" for s in kept) + " = None   # read by several subjects, once a record")
            if shared:
                w(" = ".join(f"problems_{s}" for s in shared) + " = ()")
            for b, var in zip(blocks, subject_vars):
                w(f"# {_comment(b.name)}")
                header, d = (f"for focus, item in {var}:", "item") if b.scope else (f"if {var} is not None:", "rec")
                with w.block(header):
                    if not b.scope:
                        w(f"focus = {var}")
                    w("S = f'<{focus}>'")
                    self.classes(b, "S", "focus", d)
                    own: dict[int, str] = {}
                    for slot, spec, preds in b.groups():
                        w(f"# {', '.join(preds)}")
                        if b.scope:   # the item's own values
                            objects, problems = w.fresh("own_objects") if spec.scope else None, w.fresh("own_problems")
                            own[slot] = problems
                            w(f"{problems} = ()")
                            self.slot(spec, d, objects, problems, preds)
                        elif uses[slot] == 1:
                            objects, problems = f"objects_{slot}" if spec.scope else None, f"problems_{slot}"
                            self.slot(spec, d, objects, problems, preds)
                        else:
                            objects, problems = f"objects_{slot}", f"problems_{slot}"
                            if slot in computed:
                                with w.block(f"if {objects} is None:"):
                                    self.slot(spec, d, objects, problems, preds)
                            else:
                                self.slot(spec, d, objects, problems, preds)
                                computed.add(slot)
                        if objects is not None:
                            with w.block(f"for o in {objects}:"):
                                for p in preds:
                                    w(f"add((S, {p!r}, o))")
                    problems_of = own if b.scope else {p.slot: f"problems_{p.slot}" for p in b.properties}
                    if b.properties:
                        names = list(dict.fromkeys(problems_of[p.slot] for p in b.properties))
                        with w.block(f"if {' or '.join(names)}:   # problems, in property order"):
                            for p in b.properties:
                                with w.block(f"for e in {problems_of[p.slot]}:"):
                                    w(f"issues.append(issue(record, e, focus, {p.predicate[1:-1]!r}))")
            w("return Mapped(record, sorted(set(triples)), issues, subjects)")
        at = w.lines.index("    KNOWN")
        if self.known:
            w.lines[at: at + 1] = [f"    {var} = None if known is None else known.get({t!r}, ())   # ids of {t} records"
                                   for t, var in self.known.items()]
        else:
            del w.lines[at]
        at = w.lines.index("    LANGUAGES")
        if self.languages:
            w.lines[at] = "    " + " = ".join(self.languages.values()) + " = UNSET   # the record's language tags"
        else:
            del w.lines[at]

    def primary_function(self, b: Block) -> None:
        w = self.w
        with w.block("def primary_iris(rec, base, config, rid):"):
            w(f"# the IRIs of the main subject ({_comment(b.name)}: {_comment(b.uri.text)}) of the record rec")
            w("notes = []")
            w("id_seg = segment(rid)")
            self.template(b.uri, "rec", "U")
            w("return U")


def literal_suffix(lang: str | None, datatype: str | None) -> str:
    """What follows the quoted text of a literal with a fixed language (``@en``) or datatype."""
    from . import terms
    return terms.literal("", lang, datatype)[2:]


def generate(entity: str, path: str, blocks: list[Block], runtime: dict[str, Any], path_getter: Callable,
             iri_schemes: frozenset[str], id_paths: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """(source, namespace) of an entity's mapping: ``map_record(record, ctx) -> Mapped`` and
    ``primary_iris(rec, base, config, rid)`` (the main subject's IRIs, for links)."""
    g = Generator(entity, path, runtime, path_getter, iri_schemes, id_paths)
    g.record_function(blocks)
    g.w("")
    g.w("")
    g.primary_function(blocks[0])
    body = [line for line in g.w.lines if "id_seg = segment(rid)" not in line
            or sum("id_seg" in x for x in g.w.lines) > 2]
    head = [f"# Generated by heritage-ld from {path} (entity {entity}): what the mapping does, as Python.",
            "# The runtime's names are those of heritage_ld.mapping.RUNTIME; the others:"]
    head += [f"#   {k}: {_comment(v)}" for k, v in g.shown.items()]
    return "\n".join(head + ["", ""] + body) + "\n", g.namespace


def _describe(v: Any) -> str:
    if callable(v):
        return f"{getattr(v, '__module__', '')}.{getattr(v, '__qualname__', repr(v))}".lstrip(".")
    text = repr(v)
    return text if len(text) <= 100 else text[:97] + "..."


