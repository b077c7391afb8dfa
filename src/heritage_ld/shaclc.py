"""SHACL Core compiled to per-record checks, with pyshacl's semantics.

``compile_shapes`` turns a shapes graph into Python closures that check one record's small graph
(its triples plus those of the records it links to) held as N-Triples strings: no RDF library on
the per-record path. Supported: targets (targetClass, implicit class targets, targetSubjectsOf,
targetObjectsOf, targetNode), every SHACL path, property shapes nested at any depth, minCount,
maxCount, datatype, nodeKind, class, in, hasValue, pattern (+ flags), minLength, maxLength,
languageIn, uniqueLang, node, and, or, not, xone, equals, disjoint, closed, min/maxInclusive and
min/maxExclusive (with pyshacl's literal comparison). A top-level shape using anything else
(qualifiedValueShape, lessThan, SPARQL, a malformed value...) is validated by pyshacl itself, one
message naming the shape and the feature.
Datatype checks build an rdflib Literal per distinct typed literal (cached) so ill-typed values
count exactly as in pyshacl. The W3C SHACL Core suite (tests/test_shacl_w3c.py) and the
differential tests (tests/test_shaclc.py) compare results with the standard and with pyshacl.

Which focus nodes a record validates (``Targets.select``): those its own triples select. A class
target takes the subjects of its own rdf:type triples (rdfs:subClassOf from the record's graph);
sh:targetSubjectsOf p the subjects, sh:targetObjectsOf p the objects, of its own p triples; a
sh:targetNode the node where it is a subject of the record's triples, or, when no triple in the
record's graph describes it (a literal, an IRI only linked to), where the record's triples use it.

Speed: a record's triples are indexed once (subject -> predicate -> objects); top-level shapes are
found through their target classes; property shapes with a predicate path are evaluated inline;
``conforms`` stops at the first failure; costly tests that depend on the value term alone (patterns,
nested shapes without graph lookups) are memoised.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Callable, Iterable, Iterator, NamedTuple, Sequence

import rdflib
from pyshacl.rdfutil.compare import compare_literal
from rdflib import RDF, RDFS, BNode, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import SH, XSD

from .terms import RDF_TYPE, Triple, split_literal

log = logging.getLogger(__name__)

TARGETS = (SH.targetClass, SH.targetSubjectsOf, SH.targetObjectsOf, SH.targetNode)
SUPPORTED = {*TARGETS, SH.path, SH.property,
             SH.minCount, SH.maxCount, SH.datatype, SH.nodeKind, SH["class"], SH["in"], SH.hasValue, SH.pattern,
             SH.flags, SH.minLength, SH.maxLength, SH.languageIn, SH.uniqueLang, SH.node, SH["and"], SH["or"],
             SH["not"], SH.xone, SH.equals, SH.disjoint, SH.severity, SH.message, SH.name, SH.description,
             SH.deactivated, SH.order, SH.group, SH.defaultValue, SH.closed, SH.ignoredProperties,
             SH.minInclusive, SH.minExclusive, SH.maxInclusive, SH.maxExclusive}
COMPONENT = {k: SH[v] for k, v in {
    "minCount": "MinCountConstraintComponent", "maxCount": "MaxCountConstraintComponent",
    "datatype": "DatatypeConstraintComponent", "nodeKind": "NodeKindConstraintComponent",
    "class": "ClassConstraintComponent", "in": "InConstraintComponent", "hasValue": "HasValueConstraintComponent",
    "pattern": "PatternConstraintComponent", "minLength": "MinLengthConstraintComponent",
    "maxLength": "MaxLengthConstraintComponent", "languageIn": "LanguageInConstraintComponent",
    "uniqueLang": "UniqueLangConstraintComponent", "node": "NodeConstraintComponent",
    "and": "AndConstraintComponent", "or": "OrConstraintComponent", "not": "NotConstraintComponent",
    "xone": "XoneConstraintComponent", "equals": "EqualsConstraintComponent",
    "disjoint": "DisjointConstraintComponent", "minInclusive": "MinInclusiveConstraintComponent",
    "minExclusive": "MinExclusiveConstraintComponent", "maxInclusive": "MaxInclusiveConstraintComponent",
    "maxExclusive": "MaxExclusiveConstraintComponent"}.items()}
RANGES: dict[str, Callable[[int], bool]] = {  # how a value may compare with the bound
    "minInclusive": lambda c: c >= 0, "minExclusive": lambda c: c > 0,
    "maxInclusive": lambda c: c <= 0, "maxExclusive": lambda c: c < 0}


SUBCLASS_OF = "<http://www.w3.org/2000/01/rdf-schema#subClassOf>"
RDFS_RESOURCE = "<http://www.w3.org/2000/01/rdf-schema#Resource>"
CLOSED = str(SH.ClosedConstraintComponent)
Values = Sequence[str]      # the value nodes of a focus node, without repeats
_NONE: dict[str, list[str]] = {}  # the predicates of a node that is no subject


@dataclass(frozen=True)
class Result:
    focus: str                 # N-Triples term
    path: rdflib.term.Node | None  # the sh:path of the shape (a node of the shapes graph), None for node shapes
    value: str | None          # N-Triples term
    component: str             # constraint component IRI
    severity: str              # severity_text(): Violation | Warning | Info | another severity IRI
    message: str | None
    shape: rdflib.term.Node    # the shape holding the constraint

    @property
    def predicate(self) -> str | None:
        """The path's IRI if it is a predicate path."""
        return str(self.path) if isinstance(self.path, URIRef) else None


SH_NS = "http://www.w3.org/ns/shacl#"
SEVERITIES = {str(SH.Violation), str(SH.Warning), str(SH.Info)}


def severity_text(node: rdflib.term.Node) -> str:
    """sh:Violation, sh:Warning and sh:Info by name, any other severity by its IRI."""
    text = str(node)
    return text[len(SH_NS):] if text in SEVERITIES else text


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

    def superclasses(self, cls: str) -> set[str] | tuple[str]:
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
    lex, lang, dt = split_literal(term)  # as written: "01"^^xsd:integer stays "01" (it is not the term "1")
    return Literal(lex, lang=lang, datatype=URIRef(dt) if dt else None, normalize=False)


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


def _in_range(bound: Literal, ok: Callable[[int], bool], graph: Graph, t: str) -> bool:
    """sh:minInclusive and the like: is ``t`` a literal that compares with ``bound`` so that ``ok``? As in
    pyshacl (whose comparison it uses): a string only with a string; what does not compare fails."""
    if not t.startswith('"'):
        return False
    v = to_rdflib(t)
    if isinstance(v.value, str) != isinstance(bound.value, str):
        return False
    try:
        return ok(compare_literal(v, bound))
    except (TypeError, NotImplementedError):
        return False


def _lang_matches(lang: str, ranges: list[str]) -> bool:
    lang = lang.lower()
    return any(r == "*" or lang == r.lower() or lang.startswith(r.lower() + "-") for r in ranges)


class Unsupported(Exception):
    """A construct the compiler leaves to pyshacl; str() names it ("sh:closed")."""


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


PathFn = Callable[[Graph, str], Values]
PROPERTY_ONLY = {SH.minCount, SH.maxCount, SH.uniqueLang, SH.lessThan, SH.lessThanOrEquals,
                 SH.qualifiedValueShape}
PATH_KINDS = {SH.inversePath, SH.alternativePath, SH.zeroOrMorePath, SH.oneOrMorePath, SH.zeroOrOnePath}


class Compiler:
    def __init__(self, shapes: rdflib.Graph) -> None:
        self.g = shapes
        self.cache: dict[rdflib.term.Node, "CompiledShape"] = {}
        self.parameters = {p for c in shapes.subjects(RDF.type, SH.ConstraintComponent)  # SHACL-SPARQL's
                           for param in shapes.objects(c, SH.parameter) for p in shapes.objects(param, SH.path)}

    def lst(self, node) -> list:
        items = list(Collection(self.g, node))
        if node != RDF.nil and not items:
            raise Unsupported(f"a malformed RDF list ({node.n3(self.g.namespace_manager)})")
        return items

    def one(self, node, p):
        """The single value of ``p`` on ``node`` (None: none); several are left to pyshacl."""
        values = list(self.g.objects(node, p))
        if len(values) > 1:
            raise Unsupported(f"several values of {p.n3(self.g.namespace_manager)}")
        return values[0] if values else None

    def shape(self, node: rdflib.term.Node) -> "CompiledShape":
        if node in self.cache:
            return self.cache[node]
        cs = CompiledShape(node)
        self.cache[node] = cs  # before compiling: recursive shapes
        g = self.g
        path = self.one(node, SH.path)
        for p in sorted(set(g.predicates(node))):  # other vocabularies are no constraints, but declared components
            if (p.startswith(SH_NS) or p in self.parameters) and p not in SUPPORTED:
                raise Unsupported(p.n3(g.namespace_manager))
            if path is None and p in PROPERTY_ONLY:
                raise Unsupported(f"{p.n3(g.namespace_manager)} on a node shape")
        deactivated = self.one(node, SH.deactivated)
        if deactivated is not None and not _boolean(deactivated):
            raise Unsupported(f"sh:deactivated {deactivated.n3(g.namespace_manager)}")
        cs.deactivated = deactivated == Literal(True)
        sev = self.one(node, SH.severity)
        if sev is not None and not isinstance(sev, URIRef):
            raise Unsupported(f"sh:severity {sev.n3(g.namespace_manager)}")
        cs.severity = severity_text(sev) if sev is not None else "Violation"
        msg = g.value(node, SH.message)
        cs.message = str(msg) if msg is not None else None
        if path is not None:
            cs.path_fn, cs.path = self.path(path), path
        cs.constraints, cs.empty_constraints, pure = self.constraints(node, path is not None)
        cs.closed = self.closed(node)
        cs.properties = [self.shape(p) for p in g.objects(node, SH.property)]
        if isinstance(path, URIRef) and not cs.properties and not cs.deactivated:
            cs.predicate = nt(path)
        cs.pure = path is None and not cs.properties and cs.closed is None and all(c in pure for c in cs.constraints)
        return cs

    def closed(self, node) -> frozenset[str] | None:
        """sh:closed true: the predicates a value node may have (the IRI paths of the shape's property shapes,
        sh:ignoredProperties); None if the shape is not closed."""
        g, closed = self.g, self.one(node, SH.closed)
        ignored = self.one(node, SH.ignoredProperties)
        if closed is None and ignored is None or closed == Literal(False):
            return None
        if closed != Literal(True):
            raise Unsupported("sh:ignoredProperties without sh:closed" if closed is None
                              else f"sh:closed {closed.n3(g.namespace_manager)}")
        allowed = {nt(p) for prop in g.objects(node, SH.property) for p in g.objects(prop, SH.path)}
        return frozenset(allowed | ({nt(p) for p in self.lst(ignored)} if ignored is not None else set()))

    def path(self, node) -> PathFn:
        """The value nodes of a focus node by the path ``node``."""
        g = self.g
        if isinstance(node, URIRef):
            p = nt(node)
            return lambda graph, f: graph.sp.get(f, _NONE).get(p, ())
        if isinstance(node, Literal):
            raise Unsupported(f"the path {node.n3(g.namespace_manager)}")
        if (node, RDF.first, None) in g:   # a list is a sequence path, whatever else the node has
            parts = [self.path(x) for x in self.lst(node)]
            if len(parts) < 2:
                raise Unsupported("a sequence path of fewer than two members")

            def seq(graph: Graph, f: str) -> Values:
                current: Values = [f]
                for fn in parts:
                    current = list(dict.fromkeys(v for c in current for v in fn(graph, c)))
                return current
            return seq
        kinds = [p for p in g.predicates(node) if p in PATH_KINDS]
        if len(kinds) != 1 or len(list(g.predicate_objects(node))) != 1:
            raise Unsupported(f"the path {_describe_path(g, node)}")
        kind, inner = kinds[0], g.value(node, kinds[0])
        if kind == SH.inversePath:
            if not isinstance(inner, URIRef):  # pyshacl reads ^(p/q) as ^p/^q, SPARQL as ^q/^p
                raise Unsupported("sh:inversePath of a path that is not an IRI")
            p = nt(inner)
            return lambda graph, f: graph.subjects(p, f)
        if kind == SH.alternativePath:
            alts = [self.path(x) for x in self.lst(inner)]
            return lambda graph, f: list(dict.fromkeys(v for fn in alts for v in fn(graph, f)))
        step = self.path(inner)

        def closure(graph: Graph, f: str, zero: bool = kind != SH.oneOrMorePath,
                    once: bool = kind == SH.zeroOrOnePath) -> Values:
            out: dict[str, None] = {f: None} if zero else {}
            todo = [f]
            while todo:
                for v in step(graph, todo.pop()):
                    if v not in out:
                        out[v] = None
                        if not once:
                            todo.append(v)
                if once:
                    break
            return list(out)
        return closure

    def constraints(self, node, is_property: bool) -> tuple[list[Constraint], list[Constraint], list[Constraint]]:
        """The constraints of a shape, in order; those of them that can fail without value nodes; those that
        depend on the value term alone (tests that are costly are memoised)."""
        g, out, on_empty, pure = self.g, [], [], []
        v = lambda p: self.one(node, p)

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

        def integer(p) -> int | None:
            x = v(p)
            if x is not None and not (isinstance(x, Literal) and x.datatype == XSD.integer
                                      and isinstance(x.value, int) and x.value >= 0):
                raise Unsupported(f"{p.n3(g.namespace_manager)} {x.n3(g.namespace_manager)}")
            return None if x is None else x.value

        def iri(p, x) -> None:
            if not isinstance(x, URIRef):
                raise Unsupported(f"{p.n3(g.namespace_manager)} {x.n3(g.namespace_manager)}")

        if (n := integer(SH.minCount)) is not None:
            check("minCount", lambda graph, f, vals, n=n: (None,) if len(vals) < n else (), True)
        if (n := integer(SH.maxCount)) is not None:
            check("maxCount", lambda graph, f, vals, n=n: (None,) if len(vals) > n else ())
        if (x := v(SH.datatype)) is not None:
            iri(SH.datatype, x)
            test("datatype", lambda graph, t, dt=str(x): datatype_ok(t, dt))
        if (x := v(SH.nodeKind)) is not None:
            if x not in NODE_KIND:
                raise Unsupported(f"sh:nodeKind {x.n3(g.namespace_manager)}")
            test("nodeKind", NODE_KIND[x])
        for x in g.objects(node, SH["class"]):
            iri(SH["class"], x)
            test("class", lambda graph, t, cls=nt(x): not t.startswith('"') and graph.is_instance(t, cls), False)
        if (x := v(SH["in"])) is not None:
            allowed = {nt(i) for i in self.lst(x)}
            test("in", lambda graph, t: t in allowed)
        for x in g.objects(node, SH.hasValue):
            if is_property:
                check("hasValue", lambda graph, f, vals, want=nt(x): () if want in vals else (None,), True)
            else:  # the focus node is the value node: the result has no sh:value
                check("hasValue", lambda graph, f, vals, want=nt(x): () if f == want else (None,))
                pure.append(out[-1])
        if (x := v(SH.pattern)) is not None:
            flags = 0
            for ch in str(v(SH.flags) or ""):
                if ch not in "imsx":
                    raise Unsupported(f'sh:flags "{ch}"')
                flags |= {"i": re.I, "m": re.M, "s": re.S, "x": re.X}[ch]
            try:
                rx = re.compile(str(x), flags)
            except re.error:
                raise Unsupported(f"sh:pattern {x.n3()} (not a Python regular expression)") from None
            test("pattern", lambda graph, t: not t.startswith("_:") and rx.search(_string(t)) is not None, memo=True)
        for name, ok in RANGES.items():
            if (x := v(SH[name])) is not None:
                if not isinstance(x, Literal):
                    raise Unsupported(f"sh:{name} {x.n3(g.namespace_manager)}")
                test(name, partial(_in_range, x, ok), memo=True)
        if (n := integer(SH.minLength)) is not None:
            test("minLength", lambda graph, t, n=n: not t.startswith("_:") and len(_string(t)) >= n)
        if (n := integer(SH.maxLength)) is not None:
            test("maxLength", lambda graph, t, n=n: not t.startswith("_:") and len(_string(t)) <= n)
        if (x := v(SH.languageIn)) is not None:
            ranges = [str(i) for i in self.lst(x)]
            test("languageIn", lambda graph, t: t.startswith('"')
                 and bool(split_literal(t)[1]) and _lang_matches(split_literal(t)[1], ranges))
        if (x := v(SH.uniqueLang)) is not None:
            if not _boolean(x):  # pyshacl reads "1"^^xsd:boolean as true, the standard does not
                raise Unsupported(f"sh:uniqueLang {x.n3(g.namespace_manager)}")
            if x == Literal(True):
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
        for x in g.objects(node, SH["not"]):
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
                iri(SH[key], x)

                def pair(graph: Graph, f: str, vals: Values, p=nt(x), key=key) -> Sequence[str | None]:
                    other = set(graph.objects(f, p))
                    return sorted(set(vals) ^ other if key == "equals" else set(vals) & other)
                check(key, pair, key == "equals")
        return out, on_empty, pure


def _boolean(x) -> bool:
    """Is ``x`` the literal true or false, as SHACL writes them?"""
    return x in (Literal(True), Literal(False))


def path_text(g: rdflib.Graph, node) -> str:
    """A SHACL path in SPARQL's property path syntax (``^<p>/<q>``), for messages."""
    if isinstance(node, URIRef):
        return f"<{node}>"
    if (node, RDF.first, None) in g:
        return "(" + "/".join(path_text(g, x) for x in Collection(g, node)) + ")"
    for kind, fmt in ((SH.inversePath, "^{}"), (SH.zeroOrMorePath, "{}*"), (SH.oneOrMorePath, "{}+"),
                      (SH.zeroOrOnePath, "{}?")):
        if (inner := g.value(node, kind)) is not None:
            return fmt.format(path_text(g, inner))
    if (alts := g.value(node, SH.alternativePath)) is not None:
        return "(" + "|".join(path_text(g, x) for x in Collection(g, alts)) + ")"
    return "[]"


def _describe_path(g: rdflib.Graph, node) -> str:
    return "[ " + " ; ".join(f"{p.n3(g.namespace_manager)} {o.n3(g.namespace_manager)}"
                             for p, o in sorted(g.predicate_objects(node))) + " ]"


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
        self.path_fn: PathFn | None = None
        self.path: rdflib.term.Node | None = None
        self.constraints: list[Constraint] = []
        self.empty_constraints: list[Constraint] = []  # those that can fail without value nodes
        self.properties: list[CompiledShape] = []
        self.pure = False                    # conformance depends on the focus term alone (not on the graph)
        self.predicate: str | None = None    # the path, if a predicate and the shape has no nested properties
        self.closed: frozenset[str] | None = None  # sh:closed: the predicates a value node may have

    def results(self, graph: Graph, focus: str) -> list[Result]:
        """The results of ``focus``: this shape's constraints on its value nodes, then each property shape
        on each value node (a node shape's value node is the focus node itself)."""
        if self.deactivated:
            return []
        out: list[Result] = []
        vals = self.path_fn(graph, focus) if self.path_fn else (focus,)
        if self.constraints or self.closed is not None:
            self._check(graph, focus, vals, out)
        for v in vals if self.properties else ():
            preds = graph.sp.get(v, _NONE)
            for prop in self.properties:
                if prop.predicate is None:
                    out += prop.results(graph, v)
                else:  # inline: a predicate path without nested shapes
                    prop._check(graph, v, preds.get(prop.predicate, ()), out)
        return out

    def _check(self, graph: Graph, focus: str, vals: Values, out: list[Result]) -> None:
        if self.closed is not None:
            for v, p, o in self._unexpected(graph, vals):
                out.append(Result(focus, URIRef(p[1:-1]), o, CLOSED, self.severity, self.message, self.node))
        for component, test, check in self.constraints if vals else self.empty_constraints:
            if test is None:
                for value in check(graph, focus, vals):
                    out.append(Result(focus, self.path, value, component, self.severity, self.message, self.node))
            else:
                for x in vals:
                    if not test(graph, x):
                        out.append(Result(focus, self.path, x, component, self.severity, self.message, self.node))

    def _unexpected(self, graph: Graph, vals: Values) -> Iterator[tuple[str, str, str]]:
        """sh:closed: the triples of the value nodes whose predicates the shape does not list."""
        for v in vals:
            for p, objs in graph.sp.get(v, _NONE).items():
                if p not in self.closed:
                    for o in objs:
                        if not (p == RDF_TYPE and o == RDFS_RESOURCE):  # as pyshacl
                            yield v, p, o

    def conforms(self, graph: Graph, focus: str) -> bool:
        """``not self.results(graph, focus)``, stopping at the first failure."""
        if self.deactivated:
            return True
        vals = self.path_fn(graph, focus) if self.path_fn else (focus,)
        if self.closed is not None and next(self._unexpected(graph, vals), None):
            return False
        for _component, test, check in self.constraints if vals else self.empty_constraints:
            if test is None:
                if check(graph, focus, vals):
                    return False
            else:
                for x in vals:
                    if not test(graph, x):
                        return False
        for prop in self.properties:
            for v in vals:
                if (prop.predicate is None or prop.empty_constraints or prop.predicate in graph.sp.get(v, _NONE)) \
                        and not prop.conforms(graph, v):
                    return False
        return True


class Targets:
    """The targets of the top-level shapes, indexed: which focus nodes a record's own triples select."""

    def __init__(self, shapes: rdflib.Graph, top: Sequence[rdflib.term.Node]) -> None:
        self.by_class: dict[str, list[int]] = {}
        self.subjects_of: dict[str, list[int]] = {}
        self.objects_of: dict[str, list[int]] = {}
        self.nodes: dict[str, list[int]] = {}
        for i, node in enumerate(top):
            for index, p in ((self.by_class, SH.targetClass), (self.subjects_of, SH.targetSubjectsOf),
                             (self.objects_of, SH.targetObjectsOf), (self.nodes, SH.targetNode)):
                for x in shapes.objects(node, p):
                    index.setdefault(nt(x), []).append(i)
            if _is_class(shapes, node):
                self.by_class.setdefault(nt(node), []).append(i)

    def select(self, graph: Graph, own: Iterable[Triple]) -> dict[int, set[str]]:
        """Top-level shape index -> the focus nodes that the record's own triples ``own`` select in ``graph``
        (the record's graph: its triples and those of the records it links to)."""
        focus: dict[int, set[str]] = {}
        by_class, subj, obj, nodes = self.by_class, self.subjects_of, self.objects_of, self.nodes
        if not (subj or obj or nodes):  # class targets alone, the usual case
            for s, p, o in own:
                if p == RDF_TYPE:
                    for c in graph.superclasses(o):
                        for i in by_class.get(c, ()):
                            focus.setdefault(i, set()).add(s)
            return focus
        for s, p, o in own:
            if p == RDF_TYPE and by_class:
                for c in graph.superclasses(o):
                    for i in by_class.get(c, ()):
                        focus.setdefault(i, set()).add(s)
            for i in subj.get(p, ()):
                focus.setdefault(i, set()).add(s)
            for i in obj.get(p, ()):
                focus.setdefault(i, set()).add(o)
            if nodes:
                for i in nodes.get(s, ()):
                    focus.setdefault(i, set()).add(s)
                if o in nodes and o not in graph.sp:
                    for i in nodes[o]:
                        focus.setdefault(i, set()).add(o)
        return focus


def _is_class(g: rdflib.Graph, node) -> bool:
    """Is the shape ``node`` an rdfs:Class (or an instance of one of its subclasses): an implicit class target?"""
    classes = {RDFS.Class, *g.transitive_subjects(RDFS.subClassOf, RDFS.Class)}
    return any(t in classes for t in g.objects(node, RDF.type))


@dataclass
class Fallback:
    """The top-level shapes pyshacl validates: their closure in the shapes graph, their targets removed
    (``validate`` adds each record's focus nodes as sh:targetNode)."""
    graph: rdflib.Graph
    top: list[rdflib.term.Node]
    targets: Targets


@dataclass
class CompiledShapes:
    top: list[CompiledShape]
    targets: Targets
    fallback: Fallback | None            # shapes pyshacl must validate itself (None: all compiled)

    def validate(self, triples: Iterable[Triple], own: Iterable[Triple] | None = None) -> list[Result]:
        """The results of the focus nodes that the record's own triples ``own`` select (all of ``triples``
        if None) in the record's graph ``triples`` (``own`` and the triples of the records it links to)."""
        triples = triples if isinstance(triples, list) else list(triples)
        graph = Graph(triples)
        focus = self.targets.select(graph, triples if own is None else own)
        out: list[Result] = []
        for i in sorted(focus):
            shape = self.top[i]
            for f in sorted(focus[i]):
                out += shape.results(graph, f)
        return out


def top_level(shapes: rdflib.Graph) -> list[rdflib.term.Node]:
    """The shapes with targets, explicit or implicit (a shape that is also a class), in a stable order."""
    top = {s for p in TARGETS for s in shapes.subjects(p, None)}
    for t in (SH.NodeShape, SH.PropertyShape):
        top |= {s for s in shapes.subjects(RDF.type, t) if _is_class(shapes, s)}
    for p in (SH.property, SH.node):  # shapes by their use, as pyshacl finds them
        top |= {s for s in shapes.subjects(p, None) if _is_class(shapes, s)}
    return sorted(top, key=lambda n: (isinstance(n, BNode), str(n)))


def compile_shapes(shapes: rdflib.Graph, describe: Callable[[rdflib.term.Node], str] | None = None,
                   reference: bool = False) -> CompiledShapes:
    """Compile every top-level shape; those using what the compiler does not support (all of them with
    ``reference``) go to pyshacl, each said once in the log, naming the shape (``describe``) and the feature."""
    comp = Compiler(shapes)
    describe = describe or (lambda n: n.n3(shapes.namespace_manager))
    compiled, unsupported = [], []
    for node in top_level(shapes):
        known = set(comp.cache)
        try:
            if reference:
                raise Unsupported("--reference-validation")
            compiled.append(comp.shape(node))
        except Unsupported as e:
            for half_done in set(comp.cache) - known:  # a shape using it must fail too
                del comp.cache[half_done]
            if not reference:
                log.warning("%s uses %s, which the compiled validator does not support: pyshacl validates this "
                            "shape (one call per record it targets, slower)", describe(node), e)
            unsupported.append(node)
    fallback = None
    if unsupported:
        graph = rdflib.Graph()
        for prefix, ns in shapes.namespace_manager.namespaces():
            graph.bind(prefix, ns)
        _copy_closure(shapes, unsupported, graph)
        fallback = Fallback(graph, unsupported, Targets(shapes, unsupported))
    return CompiledShapes(compiled, Targets(shapes, [c.node for c in compiled]), fallback)


def _copy_closure(src: rdflib.Graph, nodes: list[rdflib.term.Node], dst: rdflib.Graph) -> None:
    """Copy what ``nodes`` reference, transitively (shapes named by IRI in sh:or lists, sh:node,
    sh:qualifiedValueShape...; lists; paths), without targets: the focus nodes are given per record."""
    todo, seen = list(nodes), set()
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        for p, o in src.predicate_objects(n):
            if p in TARGETS or p == RDF.type and _is_class(src, n) and o != SH.NodeShape and o != SH.PropertyShape:
                continue
            dst.add((n, p, o))
            if not isinstance(o, Literal):
                todo.append(o)
