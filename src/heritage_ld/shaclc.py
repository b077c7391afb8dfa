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
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Iterable, Sequence

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
    """One record's graph over N-Triples terms: subject -> predicate -> objects (no repeats); the reverse
    index and the class closures are built when first needed."""

    def __init__(self, triples: Iterable[Triple]) -> None:
        self.triples = set(triples)
        self.sp: dict[str, dict[str, list[str]]] = {}
        for s, p, o in self.triples:
            preds = self.sp.get(s)
            if preds is None:
                self.sp[s] = {p: [o]}
            elif (objs := preds.get(p)) is None:
                preds[p] = [o]
            else:
                objs.append(o)
        self._op: dict[str, dict[str, list[str]]] | None = None
        self._supers: dict[str, set[str]] = {}

    @property
    def op(self) -> dict[str, dict[str, list[str]]]:
        """object -> predicate -> subjects."""
        if self._op is None:
            self._op = {}
            for s, p, o in self.triples:
                self._op.setdefault(o, {}).setdefault(p, []).append(s)
        return self._op

    def objects(self, s: str, p: str) -> Values:
        preds = self.sp.get(s)
        return preds.get(p, ()) if preds else ()

    def subjects(self, p: str, o: str) -> Values:
        return self.op.get(o, {}).get(p, ())

    def superclasses(self, cls: str) -> set[str]:
        """``cls`` and the classes it is an rdfs:subClassOf, transitively."""
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
        return any(cls in self.superclasses(t) for t in self.objects(node, RDF_TYPE))


def nt(node: rdflib.term.Node) -> str:
    return node.n3()


@lru_cache(maxsize=100_000)
def to_rdflib(term: str) -> rdflib.term.Node:
    if term.startswith("<"):
        return URIRef(term[1:-1])
    if term.startswith("_:"):
        return BNode(term[2:])
    lex, lang, dt = split_literal(term)
    return Literal(lex, lang=lang, datatype=URIRef(dt) if dt else None)


def datatype_ok(term: str, dt: URIRef) -> bool:
    """pyshacl's sh:datatype test for one value (ill-typed literals fail)."""
    if term.startswith('"'):
        tail = term[term.rindex('"') + 1:]
        if not tail.startswith("^^"):  # plain or language-tagged: the lexical form cannot matter
            term = '""' + tail
    return _datatype_ok(term, dt)


@lru_cache(maxsize=100_000)
def _datatype_ok(term: str, dt: URIRef) -> bool:
    v = to_rdflib(term)
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


Failure = tuple[str | None, str, rdflib.term.Node]   # (value, component IRI, shape)
Check = Callable[[Graph, str, Values], list[Failure]]  # (graph, focus, value nodes) -> failures


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
        cs.checks, cs.empty_checks = self.constraints(node, path is not None)
        cs.properties = [self.shape(p) for p in g.objects(node, SH.property)]
        if isinstance(path, URIRef) and not cs.empty_checks and not cs.properties:
            cs.predicate = nt(path)
        return cs

    def path(self, node) -> tuple[Callable[[Graph, str], Values], str | None]:
        g = self.g
        if isinstance(node, URIRef):
            p = nt(node)
            return (lambda graph, f: graph.objects(f, p)), str(node)
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

    def constraints(self, node, is_property: bool) -> tuple[list[Check], list[Check]]:
        """The checks of a shape, in order, and those of them that can fail when there are no value nodes."""
        g, out, on_empty = self.g, [], []
        v = lambda p: g.value(node, p)
        comp = lambda name: str(COMPONENT[name])

        def per_value(name: str, ok: Callable[[Graph, str], bool]) -> Check:
            c = comp(name)
            return lambda graph, f, vals: [(x, c, node) for x in vals if not ok(graph, x)]

        def add(check: Check) -> None:
            out.append(check)
            on_empty.append(check)

        if (x := v(SH.minCount)) is not None:
            n, c = int(x), comp("minCount")
            add(lambda graph, f, vals, n=n, c=c: [(None, c, node)] if len(vals) < n else [])
        if (x := v(SH.maxCount)) is not None:
            n, c = int(x), comp("maxCount")
            out.append(lambda graph, f, vals, n=n, c=c: [(None, c, node)] if len(vals) > n else [])
        if (x := v(SH.datatype)) is not None:
            out.append(per_value("datatype", lambda graph, t, dt=x: datatype_ok(t, dt)))
        if (x := v(SH.nodeKind)) is not None:
            kinds = {SH.IRI: "I", SH.Literal: "L", SH.BlankNode: "B", SH.BlankNodeOrIRI: "BI",
                     SH.BlankNodeOrLiteral: "BL", SH.IRIOrLiteral: "IL"}[x]
            kind = lambda t: "I" if t.startswith("<") else "B" if t.startswith("_:") else "L"
            out.append(per_value("nodeKind", lambda graph, t, k=kinds: kind(t) in k))
        for x in g.objects(node, SH["class"]):
            cls = nt(x)
            out.append(per_value("class", lambda graph, t, cls=cls: not t.startswith('"') and graph.is_instance(t, cls)))
        if (x := v(SH["in"])) is not None:
            allowed = {nt(i) for i in self.lst(x)}
            out.append(per_value("in", lambda graph, t: t in allowed))
        for x in g.objects(node, SH.hasValue):
            want, c = nt(x), comp("hasValue")
            if is_property:
                add(lambda graph, f, vals, want=want, c=c: [] if want in vals else [(None, c, node)])
            else:
                out.append(lambda graph, f, vals, want=want, c=c: [] if f == want else [(f, c, node)])
        if (x := v(SH.pattern)) is not None:
            flags = 0
            for ch in str(v(SH.flags) or ""):
                flags |= {"i": re.I, "m": re.M, "s": re.S, "x": re.X}.get(ch, 0)
            rx = re.compile(str(x), flags)
            out.append(per_value("pattern", lambda graph, t: not t.startswith("_:")
                                 and bool(rx.search(_string(t)))))
        if (x := v(SH.minLength)) is not None:
            n = int(x)
            out.append(per_value("minLength", lambda graph, t, n=n: not t.startswith("_:") and len(_string(t)) >= n))
        if (x := v(SH.maxLength)) is not None:
            n = int(x)
            out.append(per_value("maxLength", lambda graph, t, n=n: not t.startswith("_:") and len(_string(t)) <= n))
        if (x := v(SH.languageIn)) is not None:
            ranges = [str(i) for i in self.lst(x)]
            out.append(per_value("languageIn", lambda graph, t: t.startswith('"')
                                 and bool(split_literal(t)[1]) and _lang_matches(split_literal(t)[1], ranges)))
        if (x := v(SH.uniqueLang)) is not None and bool(x.toPython()):
            def unique(graph: Graph, f: str, vals: Values, c: str = comp("uniqueLang")) -> list[Failure]:
                seen, dup = set(), set()
                for t in vals:
                    if t.startswith('"') and (lang := split_literal(t)[1]):
                        (dup if lang.lower() in seen else seen).add(lang.lower())
                return [(None, c, node) for _ in dup]
            out.append(unique)
        for x in g.objects(node, SH.node):
            inner = self.shape(x)
            out.append(per_value("node", lambda graph, t, inner=inner: inner.conforms(graph, t)))
        if (x := v(SH["not"])) is not None:
            inner = self.shape(x)
            out.append(per_value("not", lambda graph, t, inner=inner: not inner.conforms(graph, t)))
        for key, test in (("and", all), ("or", any)):
            for x in g.objects(node, SH[key]):
                members = [self.shape(i) for i in self.lst(x)]
                out.append(per_value(key, lambda graph, t, m=members, test=test: test(s.conforms(graph, t) for s in m)))
        for x in g.objects(node, SH.xone):
            members = [self.shape(i) for i in self.lst(x)]
            out.append(per_value("xone", lambda graph, t, m=members: sum(s.conforms(graph, t) for s in m) == 1))
        for key in ("equals", "disjoint"):
            for x in g.objects(node, SH[key]):
                p, c = nt(x), comp(key)

                def pair(graph: Graph, f: str, vals: Values, p=p, key=key, c=c) -> list[Failure]:
                    other = set(graph.objects(f, p))
                    mine = set(vals)
                    if key == "equals":
                        return [(t, c, node) for t in sorted(mine ^ other)]
                    return [(t, c, node) for t in sorted(mine & other)]
                (add if key == "equals" else out.append)(pair)
        return out, on_empty


def _string(term: str) -> str:
    """The lexical form of a literal, the IRI of an IRI term."""
    if term.startswith("<"):
        return term[1:-1]
    end = term.rindex('"')
    return term[1:end] if "\\" not in term else split_literal(term)[0]


_NONE: dict[str, list[str]] = {}


class CompiledShape:
    def __init__(self, node: rdflib.term.Node) -> None:
        self.node = node
        self.deactivated = False
        self.severity = "Violation"
        self.message: str | None = None
        self.path_fn: Callable[[Graph, str], Values] | None = None
        self.path_iri: str | None = None
        self.checks: list[Check] = []
        self.empty_checks: list[Check] = []  # the checks that can fail without value nodes
        self.properties: list[CompiledShape] = []
        self.predicate: str | None = None    # set if the shape has no results when the focus lacks this predicate
        self.target_classes: list[str] = []  # of a top-level shape; its other targets:
        self.other_targets: Callable[[Graph], set[str]] | None = None

    def results(self, graph: Graph, focus: str) -> list[Result]:
        if self.deactivated:
            return []
        vals = self.path_fn(graph, focus) if self.path_fn else (focus,)
        out = []
        for check in self.checks if vals else self.empty_checks:
            for value, component, shape in check(graph, focus, vals):
                out.append(Result(focus, self.path_iri, value, component, self.severity, self.message, shape))
        if self.properties:
            preds = graph.sp.get(focus, _NONE)
            for prop in self.properties:
                if prop.predicate is None or prop.predicate in preds:
                    out += prop.results(graph, focus)
        return out

    def conforms(self, graph: Graph, focus: str) -> bool:
        """``not self.results(graph, focus)``, stopping at the first failure."""
        if self.deactivated:
            return True
        vals = self.path_fn(graph, focus) if self.path_fn else (focus,)
        for check in self.checks if vals else self.empty_checks:
            if check(graph, focus, vals):
                return False
        preds = graph.sp.get(focus, _NONE)
        return all(prop.conforms(graph, focus) for prop in self.properties
                   if prop.predicate is None or prop.predicate in preds)


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
        self._other = [(i, s.other_targets) for i, s in enumerate(self.top) if s.other_targets]

    def validate(self, triples: Iterable[Triple], focus_filter: set[str] | None = None) -> list[Result]:
        """Results for every focus node of the graph (or only those in ``focus_filter``), shape by shape."""
        graph = Graph(triples)
        focus: dict[int, set[str]] = {i: found for i, targets in self._other if (found := targets(graph))}
        for s in graph.sp if focus_filter is None else focus_filter:
            for t in graph.objects(s, RDF_TYPE):
                for c in graph.superclasses(t):
                    for i in self.by_class.get(c, ()):
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
