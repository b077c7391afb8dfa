"""SHACL Core compiled to per-record checks, with pyshacl's semantics.

``compile_shapes`` turns a shapes graph into Python closures that check one record's small graph
(its triples plus those of the records it links to) held as N-Triples strings: no RDF library on
the per-record path. Supported: targets (targetClass, targetSubjectsOf, targetObjectsOf,
targetNode), paths (predicate, inverse, sequence, alternative), minCount, maxCount, datatype,
nodeKind, class, in, hasValue, pattern (+ flags), minLength, maxLength, languageIn, uniqueLang,
node, and, or, not, xone, equals, disjoint, closed is not. A top-level shape using anything else is
validated by pyshacl itself (said once). Datatype checks build an rdflib Literal per distinct typed
literal (cached) so ill-typed values count exactly as in pyshacl. The differential tests
(tests/test_shaclc.py) compare results with pyshacl.

Speed: a record's triples are indexed once (subject -> predicate -> objects); top-level shapes are
found through their target classes; property shapes with a predicate path are evaluated inline;
``conforms`` stops at the first failure; costly tests that depend on the value term alone (patterns,
nested shapes without graph lookups) are memoised.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Callable, Collection, Iterable, NamedTuple, Sequence

import rdflib
from rdflib import RDF, RDFS, BNode, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import SH, XSD

from .terms import RDF_TYPE, Triple, split_literal

log = logging.getLogger(__name__)

SUPPORTED = {SH.targetClass, SH.targetSubjectsOf, SH.targetObjectsOf, SH.targetNode, SH.path, SH.property,
             SH.minCount, SH.maxCount, SH.datatype, SH.nodeKind, SH["class"], SH["in"], SH.hasValue, SH.pattern,
             SH.flags, SH.minLength, SH.maxLength, SH.languageIn, SH.uniqueLang, SH.node, SH["and"], SH["or"],
             SH["not"], SH.xone, SH.equals, SH.disjoint, SH.severity, SH.message, SH.name, SH.description,
             SH.deactivated, SH.order, SH.group, SH.defaultValue, RDF.type, RDFS.comment, RDFS.label}
COMPONENT = {k: SH[v] for k, v in {
    "minCount": "MinCountConstraintComponent", "maxCount": "MaxCountConstraintComponent",
    "datatype": "DatatypeConstraintComponent", "nodeKind": "NodeKindConstraintComponent",
    "class": "ClassConstraintComponent", "in": "InConstraintComponent", "hasValue": "HasValueConstraintComponent",
    "pattern": "PatternConstraintComponent", "minLength": "MinLengthConstraintComponent",
    "maxLength": "MaxLengthConstraintComponent", "languageIn": "LanguageInConstraintComponent",
    "uniqueLang": "UniqueLangConstraintComponent", "node": "NodeConstraintComponent",
    "and": "AndConstraintComponent", "or": "OrConstraintComponent", "not": "NotConstraintComponent",
    "xone": "XoneConstraintComponent", "equals": "EqualsConstraintComponent",
    "disjoint": "DisjointConstraintComponent"}.items()}


SUBCLASS_OF = "<http://www.w3.org/2000/01/rdf-schema#subClassOf>"
Values = Sequence[str]      # the value nodes of a focus node, without repeats
_NONE: dict[str, list[str]] = {}  # the predicates of a node that is no subject


@dataclass(frozen=True)
class Result:
    focus: str                 # N-Triples term
    path: str | None           # predicate IRI (simple paths) or None
    value: str | None          # N-Triples term
    component: str             # constraint component IRI
    severity: str              # Violation | Warning | Info
    message: str | None
    shape: rdflib.term.Node    # the shape holding the constraint


class Graph:
    """One record's graph over N-Triples terms: subject -> predicate -> objects (no repeats, in the order
    given); the reverse index and the class closures are built when first needed."""

    def __init__(self, triples: Iterable[Triple]) -> None:
        self.sp: dict[str, dict[str, list[str]]] = {}
        sp, get = self.sp, self.sp.get
        for s, p, o in triples:
            preds = get(s)
            if preds is None:
                sp[s] = {p: [o]}
            elif (objs := preds.get(p)) is None:
                preds[p] = [o]
            elif o not in objs:
                objs.append(o)
        self._op: dict[str, dict[str, list[str]]] | None = None
        self._supers: dict[str, set[str]] = {}

    @property
    def op(self) -> dict[str, dict[str, list[str]]]:
        """object -> predicate -> subjects."""
        if self._op is None:
            self._op = {}
            for s, preds in self.sp.items():
                for p, objs in preds.items():
                    for o in objs:
                        self._op.setdefault(o, {}).setdefault(p, []).append(s)
        return self._op

    def objects(self, s: str, p: str) -> Values:
        return self.sp.get(s, _NONE).get(p, ())

    def subjects(self, p: str, o: str) -> Values:
        return self.op.get(o, {}).get(p, ())

    def superclasses(self, cls: str) -> Collection[str]:
        """``cls`` and the classes it is an rdfs:subClassOf, transitively."""
        if SUBCLASS_OF not in self.sp.get(cls, _NONE):
            return (cls,)
        out = self._supers.get(cls)
        if out is None:
            out, todo = {cls}, [cls]
            while todo:
                for c in self.objects(todo.pop(), SUBCLASS_OF):
                    if c not in out:
                        out.add(c)
                        todo.append(c)
            self._supers[cls] = out
        return out

    def is_instance(self, node: str, cls: str) -> bool:
        for t in self.objects(node, RDF_TYPE):
            if cls in self.superclasses(t):
                return True
        return False


def nt(node: rdflib.term.Node) -> str:
    return node.n3()


@lru_cache(maxsize=10_000)
def to_rdflib(term: str) -> rdflib.term.Node:
    if term.startswith("<"):
        return URIRef(term[1:-1])
    if term.startswith("_:"):
        return BNode(term[2:])
    lex, lang, dt = split_literal(term)
    return Literal(lex, lang=lang, datatype=URIRef(dt) if dt else None)


def datatype_ok(term: str, dt: str) -> bool:
    """pyshacl's sh:datatype test for one value, ``dt`` a datatype IRI (ill-typed literals fail)."""
    if term.startswith('"'):
        tail = term[term.rindex('"') + 1:]
        if not tail.startswith("^^"):  # plain or language-tagged: the lexical form cannot matter
            term = '""' + tail
    return _datatype_ok(term, dt)


@lru_cache(maxsize=10_000)
def _datatype_ok(term: str, iri: str) -> bool:
    v, dt = to_rdflib(term), URIRef(iri)
    if not isinstance(v, Literal):
        return False
    if v.datatype == dt:
        if getattr(v, "ill_typed", None) is True:
            return False
        return _actual(v, dt)
    if dt == RDFS.Literal:
        return True
    if dt == RDFS.Datatype and v.datatype:
        return True
    if v.datatype is None and v.language is None and dt == XSD.string:
        return _actual(v, dt)
    if dt == RDF.langString and v.language:
        return _actual(v, dt)
    return False


def _actual(v: Literal, dt: URIRef) -> bool:
    import datetime as d
    from decimal import Decimal
    value = v.value
    checks = {XSD.string: (str, bytes), RDF.langString: (str, bytes), XSD.integer: int, XSD.float: float,
              XSD.decimal: Decimal, XSD.boolean: bool, XSD.date: d.date, XSD.time: d.time, XSD.dateTime: d.datetime}
    return isinstance(value, checks[dt]) if dt in checks else True


def _lang_matches(lang: str, ranges: list[str]) -> bool:
    lang = lang.lower()
    return any(r == "*" or lang == r.lower() or lang.startswith(r.lower() + "-") for r in ranges)


class Unsupported(Exception):
    pass


Test = Callable[[Graph, str], bool]                         # does one value node pass?
SetCheck = Callable[[Graph, str, Values], Sequence[str | None]]  # (graph, focus, values) -> failing values


class Constraint(NamedTuple):
    """One constraint of a shape: a ``test`` of each value node, or a ``check`` of them all."""
    component: str              # constraint component IRI
    test: Test | None
    check: SetCheck | None


NODE_KIND: dict[rdflib.term.Node, Test] = {  # N-Triples: IRIs start with "<", blank nodes with "_:"
    SH.IRI: lambda graph, t: t.startswith("<"),
    SH.BlankNode: lambda graph, t: t.startswith("_:"),
    SH.Literal: lambda graph, t: not t.startswith(("<", "_:")),
    SH.BlankNodeOrIRI: lambda graph, t: t.startswith(("<", "_:")),
    SH.BlankNodeOrLiteral: lambda graph, t: not t.startswith("<"),
    SH.IRIOrLiteral: lambda graph, t: not t.startswith("_:"),
}


class Compiler:
    def __init__(self, shapes: rdflib.Graph) -> None:
        self.g = shapes
        self.cache: dict[rdflib.term.Node, "CompiledShape"] = {}

    def lst(self, node) -> list:
        return list(Collection(self.g, node))

    def shape(self, node: rdflib.term.Node) -> "CompiledShape":
        if node in self.cache:
            return self.cache[node]
        cs = CompiledShape(node)
        self.cache[node] = cs  # before compiling: recursive shapes
        g = self.g
        for p in set(g.predicates(node)):
            if p not in SUPPORTED:
                raise Unsupported(f"{p} on {node}")
        cs.deactivated = (node, SH.deactivated, Literal(True)) in g
        sev = g.value(node, SH.severity)
        cs.severity = str(sev).rsplit("#", 1)[1] if sev else "Violation"
        msg = g.value(node, SH.message)
        cs.message = str(msg) if msg is not None else None
        path = g.value(node, SH.path)
        if path is not None:
            cs.path_fn, cs.path_iri = self.path(path)
        cs.constraints, cs.empty_constraints, pure = self.constraints(node, path is not None)
        cs.properties = [self.shape(p) for p in g.objects(node, SH.property)]
        cs.plan = ([cs] if cs.constraints else []) + cs.properties
        if isinstance(path, URIRef) and not cs.properties and not cs.deactivated:
            cs.predicate = nt(path)
        cs.pure = path is None and not cs.properties and all(c in pure for c in cs.constraints)
        return cs

    def path(self, node) -> tuple[Callable[[Graph, str], Values], str | None]:
        g = self.g
        if isinstance(node, URIRef):
            p = nt(node)
            return (lambda graph, f: graph.sp.get(f, _NONE).get(p, ())), str(node)
        inv = g.value(node, SH.inversePath)
        if inv is not None:
            inner, _ = self.path(inv)
            if not isinstance(inv, URIRef):
                raise Unsupported("complex inverse path")
            p = nt(inv)
            return (lambda graph, f: graph.subjects(p, f)), None
        alt = g.value(node, SH.alternativePath)
        if alt is not None:
            parts = [self.path(x)[0] for x in self.lst(alt)]
            return (lambda graph, f: list(dict.fromkeys(v for fn in parts for v in fn(graph, f)))), None
        if (node, RDF.first, None) in g:
            parts = [self.path(x)[0] for x in self.lst(node)]

            def seq(graph: Graph, f: str) -> Values:
                current: Values = [f]
                for fn in parts:
                    current = list(dict.fromkeys(v for c in current for v in fn(graph, c)))
                return current
            return seq, None
        raise Unsupported(f"path {node}")

    def constraints(self, node, is_property: bool) -> tuple[list[Constraint], list[Constraint], list[Constraint]]:
        """The constraints of a shape, in order; those of them that can fail without value nodes; those that
        depend on the value term alone (tests that are costly are memoised)."""
        g, out, on_empty, pure = self.g, [], [], []
        v = lambda p: g.value(node, p)

        def test(name: str, ok: Test, term_only: bool = True, memo: bool = False) -> None:
            out.append(Constraint(str(COMPONENT[name]), _memoised(ok) if term_only and memo else ok, None))
            if term_only:
                pure.append(out[-1])

        def check(name: str, fn: SetCheck, can_fail_empty: bool = False) -> None:
            out.append(Constraint(str(COMPONENT[name]), None, fn))
            if can_fail_empty:
                on_empty.append(out[-1])

        def shapes(lst) -> tuple[list[CompiledShape], bool]:
            members = [self.shape(i) for i in self.lst(lst)]
            return members, all(m.pure for m in members)

        if (x := v(SH.minCount)) is not None:
            check("minCount", lambda graph, f, vals, n=int(x): (None,) if len(vals) < n else (), True)
        if (x := v(SH.maxCount)) is not None:
            check("maxCount", lambda graph, f, vals, n=int(x): (None,) if len(vals) > n else ())
        if (x := v(SH.datatype)) is not None:
            test("datatype", lambda graph, t, dt=str(x): datatype_ok(t, dt))
        if (x := v(SH.nodeKind)) is not None:
            test("nodeKind", NODE_KIND[x])
        for x in g.objects(node, SH["class"]):
            test("class", lambda graph, t, cls=nt(x): not t.startswith('"') and graph.is_instance(t, cls), False)
        if (x := v(SH["in"])) is not None:
            allowed = {nt(i) for i in self.lst(x)}
            test("in", lambda graph, t: t in allowed)
        for x in g.objects(node, SH.hasValue):
            if is_property:
                check("hasValue", lambda graph, f, vals, want=nt(x): () if want in vals else (None,), True)
            else:
                check("hasValue", lambda graph, f, vals, want=nt(x): () if f == want else (f,))
                pure.append(out[-1])
        if (x := v(SH.pattern)) is not None:
            flags = 0
            for ch in str(v(SH.flags) or ""):
                flags |= {"i": re.I, "m": re.M, "s": re.S, "x": re.X}.get(ch, 0)
            rx = re.compile(str(x), flags)
            test("pattern", lambda graph, t: not t.startswith("_:") and rx.search(_string(t)) is not None, memo=True)
        if (x := v(SH.minLength)) is not None:
            test("minLength", lambda graph, t, n=int(x): not t.startswith("_:") and len(_string(t)) >= n)
        if (x := v(SH.maxLength)) is not None:
            test("maxLength", lambda graph, t, n=int(x): not t.startswith("_:") and len(_string(t)) <= n)
        if (x := v(SH.languageIn)) is not None:
            ranges = [str(i) for i in self.lst(x)]
            test("languageIn", lambda graph, t: t.startswith('"')
                 and bool(split_literal(t)[1]) and _lang_matches(split_literal(t)[1], ranges))
        if (x := v(SH.uniqueLang)) is not None and bool(x.toPython()):
            def unique(graph: Graph, f: str, vals: Values) -> Sequence[str | None]:
                seen, dup = set(), set()
                for t in vals:
                    if t.startswith('"') and (lang := split_literal(t)[1]):
                        (dup if lang.lower() in seen else seen).add(lang.lower())
                return [None] * len(dup)
            check("uniqueLang", unique)
        for x in g.objects(node, SH.node):
            inner = self.shape(x)
            test("node", inner.conforms, inner.pure, memo=True)
        if (x := v(SH["not"])) is not None:
            inner = self.shape(x)
            test("not", lambda graph, t, inner=inner: not inner.conforms(graph, t), inner.pure, memo=True)
        for x in g.objects(node, SH["and"]):
            members, term_only = shapes(x)
            test("and", partial(_all_conform, members), term_only, memo=True)
        for x in g.objects(node, SH["or"]):
            members, term_only = shapes(x)
            test("or", partial(_any_conforms, members), term_only, memo=True)
        for x in g.objects(node, SH.xone):
            members, term_only = shapes(x)
            test("xone", lambda graph, t, m=members: sum(s.conforms(graph, t) for s in m) == 1, term_only, memo=True)
        for key in ("equals", "disjoint"):
            for x in g.objects(node, SH[key]):
                def pair(graph: Graph, f: str, vals: Values, p=nt(x), key=key) -> Sequence[str | None]:
                    other = set(graph.objects(f, p))
                    return sorted(set(vals) ^ other if key == "equals" else set(vals) & other)
                check(key, pair, key == "equals")
        return out, on_empty, pure


def _memoised(test: Test, size: int = 10_000) -> Test:
    """``test`` remembered per value term (it must not depend on the graph); forgets all when full."""
    known: dict[str, bool] = {}

    def memo(graph: Graph, t: str) -> bool:
        ok = known.get(t)
        if ok is None:
            if len(known) >= size:
                known.clear()
            ok = known[t] = test(graph, t)
        return ok
    return memo


def _all_conform(shapes: list["CompiledShape"], graph: Graph, t: str) -> bool:
    """sh:and: does ``t`` conform to each of ``shapes``?"""
    for s in shapes:
        if not s.conforms(graph, t):
            return False
    return True


def _any_conforms(shapes: list["CompiledShape"], graph: Graph, t: str) -> bool:
    """sh:or: does ``t`` conform to one of ``shapes``?"""
    for s in shapes:
        if s.conforms(graph, t):
            return True
    return False


def _string(term: str) -> str:
    """The lexical form of a literal, the IRI of an IRI term."""
    if term.startswith("<"):
        return term[1:-1]
    end = term.rindex('"')
    return term[1:end] if "\\" not in term else split_literal(term)[0]


class CompiledShape:
    def __init__(self, node: rdflib.term.Node) -> None:
        self.node = node
        self.deactivated = False
        self.severity = "Violation"
        self.message: str | None = None
        self.path_fn: Callable[[Graph, str], Values] | None = None
        self.path_iri: str | None = None
        self.constraints: list[Constraint] = []
        self.empty_constraints: list[Constraint] = []  # those that can fail without value nodes
        self.properties: list[CompiledShape] = []
        self.plan: list[CompiledShape] = []  # what results() evaluates: itself if it has constraints, then properties
        self.pure = False                    # conformance depends on the focus term alone (not on the graph)
        self.predicate: str | None = None    # the path, if a predicate and the shape has no nested properties
        self.target_classes: list[str] = []  # of a top-level shape; its other targets:
        self.other_targets: Callable[[Graph], set[str]] | None = None

    def results(self, graph: Graph, focus: str) -> list[Result]:
        if self.deactivated:
            return []
        out: list[Result] = []
        preds = graph.sp.get(focus, _NONE)
        for shape in self.plan:
            if shape is self:
                vals = self.path_fn(graph, focus) if self.path_fn else (focus,)
            elif shape.predicate is None:
                out += shape.results(graph, focus)
                continue
            else:
                vals = preds.get(shape.predicate, ())
            for component, test, check in shape.constraints if vals else shape.empty_constraints:
                if test is None:
                    for value in check(graph, focus, vals):
                        out.append(shape._result(focus, value, component))
                else:
                    for x in vals:
                        if not test(graph, x):
                            out.append(shape._result(focus, x, component))
        return out

    def _result(self, focus: str, value: str | None, component: str) -> Result:
        return Result(focus, self.path_iri, value, component, self.severity, self.message, self.node)

    def conforms(self, graph: Graph, focus: str) -> bool:
        """``not self.results(graph, focus)``, stopping at the first failure."""
        if self.deactivated:
            return True
        vals = self.path_fn(graph, focus) if self.path_fn else (focus,)
        for _component, test, check in self.constraints if vals else self.empty_constraints:
            if test is None:
                if check(graph, focus, vals):
                    return False
            else:
                for x in vals:
                    if not test(graph, x):
                        return False
        if self.properties:
            preds = graph.sp.get(focus, _NONE)
            for prop in self.properties:
                if (prop.predicate is None or prop.empty_constraints or prop.predicate in preds) \
                        and not prop.conforms(graph, focus):
                    return False
        return True


@dataclass
class CompiledShapes:
    top: list[CompiledShape]
    fallback: rdflib.Graph | None        # shapes pyshacl must validate itself (None: all compiled)
    fallback_nodes: set[rdflib.term.Node]
    by_class: dict[str, list[int]] = field(init=False)  # target class -> indices in ``top``

    def __post_init__(self) -> None:
        self.by_class = {}
        for i, shape in enumerate(self.top):
            for c in shape.target_classes:
                self.by_class.setdefault(c, []).append(i)
        self._other: list[tuple[int, Callable[[Graph], set[str]]]] = [
            (i, s.other_targets) for i, s in enumerate(self.top) if s.other_targets]

    def validate(self, triples: Iterable[Triple], focus_filter: set[str] | None = None) -> list[Result]:
        """Results for every focus node of the graph (or only those in ``focus_filter``), shape by shape."""
        graph = Graph(triples)
        focus: dict[int, set[str]] = {i: found for i, targets in self._other if (found := targets(graph))}
        by_class, sp = self.by_class, graph.sp
        for s in sp if focus_filter is None else focus_filter:
            for t in sp.get(s, _NONE).get(RDF_TYPE, ()):
                for c in graph.superclasses(t):
                    for i in by_class.get(c, ()):
                        focus.setdefault(i, set()).add(s)
        out: list[Result] = []
        for i in sorted(focus):
            shape = self.top[i]
            for f in sorted(focus[i]):
                if focus_filter is None or f in focus_filter:
                    out += shape.results(graph, f)
        return out


def compile_shapes(shapes: rdflib.Graph) -> CompiledShapes:
    """Compile every shape with a target; unsupported ones go to the pyshacl fallback graph."""
    comp = Compiler(shapes)
    targeted = set()
    for p in (SH.targetClass, SH.targetSubjectsOf, SH.targetObjectsOf, SH.targetNode):
        targeted.update(shapes.subjects(p, None))
    top, unsupported = [], set()
    for node in sorted(targeted, key=str):
        try:
            cs = comp.shape(node)
        except Unsupported as e:
            log.warning("shape %s uses %s, which the fast validator does not compile: pyshacl validates it", node, e)
            unsupported.add(node)
            continue
        cs.target_classes = [nt(c) for c in shapes.objects(node, SH.targetClass)]
        cs.other_targets = _other_targets(shapes, node)
        top.append(cs)
    fallback = None
    if unsupported:
        fallback = rdflib.Graph()
        for node in unsupported:
            _copy_closure(shapes, node, fallback)
    return CompiledShapes(top, fallback, unsupported)


def _other_targets(g: rdflib.Graph, node) -> Callable[[Graph], set[str]] | None:
    """The focus nodes of ``node`` by targetSubjectsOf, targetObjectsOf and targetNode (None: it has none)."""
    subj_of = [nt(p) for p in g.objects(node, SH.targetSubjectsOf)]
    obj_of = [nt(p) for p in g.objects(node, SH.targetObjectsOf)]
    nodes = {nt(n) for n in g.objects(node, SH.targetNode)}
    if not (subj_of or obj_of or nodes):
        return None

    def targets(graph: Graph) -> set[str]:
        out = set(nodes)
        for p in subj_of:
            out |= {s for s, preds in graph.sp.items() if p in preds}
        for p in obj_of:
            out |= {o for o, preds in graph.op.items() if p in preds}
        return out
    return targets


def _copy_closure(src: rdflib.Graph, node, dst: rdflib.Graph) -> None:
    todo, seen = [node], set()
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        for p, o in src.predicate_objects(n):
            dst.add((n, p, o))
            if isinstance(o, BNode) or (o, RDF.type, None) in src or p in (SH.node, SH.property):
                todo.append(o)
