"""SHACL Core compiled to per-record checks, with pyshacl's semantics.

``compile_shapes`` reads a shapes graph (``Compiler``: each shape a ``Shape``) and writes Python source
for it (``Source``): one function per top-level shape that checks one record's small graph (its triples
plus those of the records it links to) held as N-Triples strings, so no RDF library is on the
per-record path. Supported: targets (targetClass, implicit class targets, targetSubjectsOf,
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
found through their target classes; the generated code has a predicate path as a dictionary look-up,
property shapes written into the shape that holds them, constants in the source, a quick pass over
all the constraints of a property before the one-by-one pass that gives results in order, and
conformance (sh:node, sh:or...) stopping at the first failure; costly tests that depend on the value
term alone (patterns, datatypes, nested shapes without graph lookups) are remembered per term. The
generated module is compiled once per process and digest; ``generate`` says how to read it.
"""
from __future__ import annotations

import datetime
import itertools
import logging
import os
import re
from contextlib import nullcontext
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Sequence

import rdflib
from pyshacl.rdfutil.compare import compare_literal
from rdflib import RDF, RDFS, BNode, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import SH, XSD

from .codegen import Writer, compile_cached, source_digest
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


class Result(NamedTuple):
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
        sp, last, preds = self.sp, None, None
        for s, p, o in triples:
            if s != last:  # a record's triples come subject by subject
                last, preds = s, sp.get(s)
                if preds is None:
                    preds = sp[s] = {p: [o]}
                    continue
            if (objs := preds.get(p)) is None:
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
    return Literal(lex, lang=lang, datatype=dt or None, normalize=False)


def datatype_ok(term: str, dt: str) -> bool:
    """pyshacl's sh:datatype test for one value, ``dt`` a datatype IRI (ill-typed literals fail)."""
    if term.startswith('"'):
        tail = term[term.rindex('"') + 1:]
        if not tail.startswith("^^"):  # plain or language-tagged: the lexical form cannot matter
            term = '""' + tail
    return _datatype_ok(term, dt)


@lru_cache(maxsize=10_000)
def _datatype_ok(term: str, iri: str) -> bool:
    v, dt = to_rdflib(term), _uri(iri)
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


ACTUAL = {XSD.string: (str, bytes), RDF.langString: (str, bytes), XSD.integer: int, XSD.float: float,
          XSD.decimal: Decimal, XSD.boolean: bool, XSD.date: datetime.date, XSD.time: datetime.time,
          XSD.dateTime: datetime.datetime}  # the Python type of a well-typed value, as pyshacl checks it


@lru_cache(maxsize=1000)
def _uri(iri: str) -> URIRef:
    return URIRef(iri)


def _actual(v: Literal, dt: URIRef) -> bool:
    return isinstance(v.value, ACTUAL[dt]) if dt in ACTUAL else True


def _in_range(bound: Literal, ok: Callable[[int], bool], t: str) -> bool:
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


class Constraint(NamedTuple):
    """One constraint of a shape, as ``Source`` writes its check."""
    name: str          # its key in COMPONENT ("minCount")
    arg: Any           # its parameter: a count, an N-Triples term, a datatype IRI, a shape, a list of shapes...
    pure: bool         # depends on the value term alone (not on the graph)


# sh:nodeKind as a test of an N-Triples term ``{x}``: IRIs start with "<", blank nodes with "_:"
NODE_KIND = {SH.IRI: "{x}[:1] == '<'", SH.BlankNode: "{x}[:2] == '_:'",
             SH.Literal: "({x}[:1] != '<' and {x}[:2] != '_:')", SH.BlankNodeOrIRI: "({x}[:1] == '<' or {x}[:2] == '_:')",
             SH.BlankNodeOrLiteral: "{x}[:1] != '<'", SH.IRIOrLiteral: "{x}[:2] != '_:'"}
PROPERTY_ONLY = {SH.minCount, SH.maxCount, SH.uniqueLang, SH.lessThan, SH.lessThanOrEquals,
                 SH.qualifiedValueShape}
PATH_KINDS = {SH.inversePath, SH.alternativePath, SH.zeroOrMorePath, SH.oneOrMorePath, SH.zeroOrOnePath}
CLOSURES = {SH.zeroOrMorePath: "*", SH.oneOrMorePath: "+", SH.zeroOrOnePath: "?"}
# A path, read: ("p", "<iri>"), ("^", "<iri>"), ("/", [steps, ...]), ("|", [steps, ...]), ("*" | "+" | "?", steps)
Steps = tuple


class Shape:
    """A shape as the compiler read it from the shapes graph; ``Source`` writes the code that checks it."""

    def __init__(self, node: rdflib.term.Node, number: int) -> None:
        self.node = node
        self.number = number                 # names its functions in the generated code
        self.deactivated = False
        self.severity = "Violation"
        self.message: str | None = None
        self.path: rdflib.term.Node | None = None   # sh:path (a node of the shapes graph); None: a node shape
        self.steps: Steps | None = None       # that path, read
        self.constraints: list[Constraint] = []
        self.properties: list[Shape] = []
        self.closed: frozenset[str] | None = None   # sh:closed: the predicates a value node may have
        self.pure = False                    # conformance depends on the focus term alone (not on the graph)

    @property
    def simple(self) -> bool:
        """A node shape whose conformance is a test of the focus term (its constraints, and-ed)."""
        return self.steps is None and not self.properties and self.closed is None and all(
            c.name in TESTS or c.name == "hasValue" for c in self.constraints)

    @property
    def counted(self) -> bool:
        """A property shape with a predicate (or inverse) path that only counts its values, or looks for one."""
        return self.steps is not None and self.steps[0] in "p^" and not self.properties and self.closed is None \
            and all(c.name in ("minCount", "maxCount", "hasValue") for c in self.constraints)


class Compiler:
    def __init__(self, shapes: rdflib.Graph) -> None:
        self.g = shapes
        self.cache: dict[rdflib.term.Node, Shape] = {}
        self.numbers = itertools.count()
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

    def shape(self, node: rdflib.term.Node) -> Shape:
        if node in self.cache:
            return self.cache[node]
        cs = Shape(node, next(self.numbers))
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
            cs.steps, cs.path = self.path(path), path
        cs.constraints = self.constraints(node, path is not None)
        cs.closed = self.closed(node)
        cs.properties = [self.shape(p) for p in g.objects(node, SH.property)]
        cs.pure = path is None and not cs.properties and cs.closed is None and all(c.pure for c in cs.constraints)
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

    def path(self, node) -> Steps:
        """The path ``node``, read."""
        g = self.g
        if isinstance(node, URIRef):
            return ("p", nt(node))
        if isinstance(node, Literal):
            raise Unsupported(f"the path {node.n3(g.namespace_manager)}")
        if (node, RDF.first, None) in g:   # a list is a sequence path, whatever else the node has
            parts = [self.path(x) for x in self.lst(node)]
            if len(parts) < 2:
                raise Unsupported("a sequence path of fewer than two members")
            return ("/", parts)
        kinds = [p for p in g.predicates(node) if p in PATH_KINDS]
        if len(kinds) != 1 or len(list(g.predicate_objects(node))) != 1:
            raise Unsupported(f"the path {_describe_path(g, node)}")
        kind, inner = kinds[0], g.value(node, kinds[0])
        if kind == SH.inversePath:
            if not isinstance(inner, URIRef):  # pyshacl reads ^(p/q) as ^p/^q, SPARQL as ^q/^p
                raise Unsupported("sh:inversePath of a path that is not an IRI")
            return ("^", nt(inner))
        if kind == SH.alternativePath:
            return ("|", [self.path(x) for x in self.lst(inner)])
        return (CLOSURES[kind], self.path(inner))

    def constraints(self, node, is_property: bool) -> list[Constraint]:
        """The constraints of a shape, in the order their results come."""
        g, out = self.g, []
        v = lambda p: self.one(node, p)

        def add(name: str, arg: Any, pure: bool = True) -> None:
            out.append(Constraint(name, arg, pure))

        def shapes(name: str, lst) -> None:
            members = [self.shape(i) for i in self.lst(lst)]
            add(name, members, all(m.pure for m in members))

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
            add("minCount", n, False)
        if (n := integer(SH.maxCount)) is not None:
            add("maxCount", n, False)
        if (x := v(SH.datatype)) is not None:
            iri(SH.datatype, x)
            add("datatype", str(x))
        if (x := v(SH.nodeKind)) is not None:
            if x not in NODE_KIND:
                raise Unsupported(f"sh:nodeKind {x.n3(g.namespace_manager)}")
            add("nodeKind", x)
        for x in g.objects(node, SH["class"]):
            iri(SH["class"], x)
            add("class", nt(x), False)
        if (x := v(SH["in"])) is not None:
            add("in", frozenset(nt(i) for i in self.lst(x)))
        for x in g.objects(node, SH.hasValue):  # on a node shape, the focus node is the value node: pure
            add("hasValue", nt(x), not is_property)
        if (x := v(SH.pattern)) is not None:
            flags = 0
            for ch in str(v(SH.flags) or ""):
                if ch not in "imsx":
                    raise Unsupported(f'sh:flags "{ch}"')
                flags |= {"i": re.I, "m": re.M, "s": re.S, "x": re.X}[ch]
            try:
                re.compile(str(x), flags)
            except re.error:
                raise Unsupported(f"sh:pattern {x.n3()} (not a Python regular expression)") from None
            add("pattern", (str(x), flags))
        for name in RANGES:
            if (x := v(SH[name])) is not None:
                if not isinstance(x, Literal):
                    raise Unsupported(f"sh:{name} {x.n3(g.namespace_manager)}")
                add(name, x)
        if (n := integer(SH.minLength)) is not None:
            add("minLength", n)
        if (n := integer(SH.maxLength)) is not None:
            add("maxLength", n)
        if (x := v(SH.languageIn)) is not None:
            add("languageIn", tuple(str(i) for i in self.lst(x)))
        if (x := v(SH.uniqueLang)) is not None:
            if not _boolean(x):  # pyshacl reads "1"^^xsd:boolean as true, the standard does not
                raise Unsupported(f"sh:uniqueLang {x.n3(g.namespace_manager)}")
            if x == Literal(True):
                add("uniqueLang", True, False)
        for x in g.objects(node, SH.node):
            inner = self.shape(x)
            add("node", inner, inner.pure)
        for x in g.objects(node, SH["not"]):
            inner = self.shape(x)
            add("not", inner, inner.pure)
        for key in ("and", "or", "xone"):
            for x in g.objects(node, SH[key]):
                shapes(key, x)
        for key in ("equals", "disjoint"):
            for x in g.objects(node, SH[key]):
                iri(SH[key], x)
                add(key, nt(x), False)
        return out


def _boolean(x) -> bool:
    """Is ``x`` the literal true or false, as SHACL writes them?"""
    return x in (Literal(True), Literal(False))


TESTS = {"datatype", "nodeKind", "class", "in", "pattern", *RANGES, "minLength", "maxLength", "languageIn", "node",
         "not", "and", "or", "xone"}         # constraints that test each value node on its own
MEMOISED = {"pattern", *RANGES, "node", "not", "and", "or", "xone"}  # remembered per term when pure and costly
MEMO_SIZE = 10_000                           # terms remembered per test (then it forgets all)
COSTLY = re.compile(r"search\(|datatype_ok\(|conforms_|_in_range\(|_language_in\(")  # what is worth remembering
COUNTS = {"minCount", "maxCount", "hasValue"}  # constraints on how many value nodes, or on one being there
STRING, LANG_STRING = str(XSD.string), str(RDF.langString)


class Source:
    """The Python source checking compiled shapes: ``results_<n>(graph, f, out)`` appends the results of focus
    node ``f`` for shape n (each top-level shape has one), ``conforms_<n>(graph, f)`` says whether ``f``
    conforms (the shapes of sh:node, sh:not, sh:and, sh:or, sh:xone). Property shapes are written inline into
    the shape holding them (recursive ones call their function), predicate paths are dictionary look-ups,
    simple member shapes are inline tests, constants are written into the source; results come in the order
    of the constraints (see ``Compiler.constraints``), value by value."""

    def __init__(self, describe: Callable[[rdflib.term.Node], str]) -> None:
        self.describe = describe
        self.nodes: list[rdflib.term.Node] = []    # the shapes graph's nodes the code names: N[i]
        self.numbers: dict[rdflib.term.Node, int] = {}
        self.head: list[str] = []                  # module-level constants
        self.functions: list[str] = []
        self.names: dict[str, str] = {}            # what a function or constant is -> its name
        self.todo: list[tuple[str, Shape]] = []
        self.counter = itertools.count()

    def module(self, top: list[Shape]) -> str:
        names = [self.function("results", s) for s in top]
        while self.todo:
            self.write(*self.todo.pop(0))
        nodes = "\n".join(f"#   N[{i}] {self.describe(n)}" for i, n in enumerate(self.nodes))
        return (f'"""SHACL shapes compiled by heritage_ld.shaclc (Source): {len(top)} top-level shapes."""\n'
                f"# N: nodes of the shapes graph (shapes and paths, for the results)\n{nodes}\n\n"
                + "\n".join(self.head) + "\n\n\n" + "\n\n\n".join(self.functions)
                + f"\n\n\nTOP = [{', '.join(names)}]\n")

    # -- names -------------------------------------------------------------------------------
    def node(self, x: rdflib.term.Node) -> str:
        if x not in self.numbers:
            self.numbers[x] = len(self.nodes)
            self.nodes.append(x)
        return f"N[{self.numbers[x]}]"

    def const(self, prefix: str, expr: str) -> str:
        """A module-level constant with the value of ``expr`` (the same ``expr`` has one name)."""
        key = f"{prefix}:{expr}"
        if key not in self.names:
            self.names[key] = f"{prefix}{next(self.counter)}"
            self.head.append(f"{self.names[key]} = {expr}")
        return self.names[key]

    def memo(self) -> str:
        name = f"MEMO{next(self.counter)}"
        self.head.append(f"{name} = {{}}")
        return name

    def function(self, mode: str, shape: Shape) -> str:
        name = f"{mode}_{shape.number}"
        if name not in self.names:
            self.names[name] = name
            self.todo.append((mode, shape))
        return name

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self.counter)}"

    # -- functions ---------------------------------------------------------------------------
    def write(self, mode: str, shape: Shape) -> None:
        w = Writer()
        with w.block(f"def {mode}_{shape.number}(graph, f{', out' if mode == 'results' else ''}):"):
            w(f"# {self.describe(shape.node)}")
            w("sp = graph.sp")
            self.shape(w, shape, "f", mode, {shape.number}, None)
            if mode == "conforms":
                w("return True")
        self.functions.append("\n".join(w.lines))

    def shape(self, w: Writer, s: Shape, f: str, mode: str, inline: set[int], preds: str | None) -> None:
        """The checks of shape ``s`` on focus node ``f`` (``preds``: a variable holding its predicates)."""
        if s.deactivated:
            w("pass  # deactivated")
            return
        if s.steps is None:
            vals = None  # the value node is the focus node
        else:
            vals = self.fresh("vals")
            w(f"{vals} = {self.path(s.steps, f, preds)}")
        some = vals or f"({f},)"
        if s.closed is not None:
            allowed = self.const("ALLOWED", _literal(s.closed))
            if mode == "results":
                with w.block(f"for v, p, o in _unexpected(sp, {some}, {allowed}):"):
                    self.fail(w, s, f, "o", mode, CLOSED, path="URIRef(p[1:-1])")
            else:
                with w.block(f"if next(_unexpected(sp, {some}, {allowed}), None):"):
                    w("return False")
        self.constraints(w, s, f, vals, mode)
        if not s.properties:
            return
        if vals is None:
            v, pv = f, preds or self.fresh("preds")
            if preds is None:
                w(f"{pv} = sp.get({f}, NONE)")
        else:
            v, pv = self.fresh("v"), self.fresh("preds")
            w(f"for {v} in {vals}:")
            w.depth += 1
            w(f"{pv} = sp.get({v}, NONE)")
        for prop in s.properties:
            if prop.number not in inline:
                self.shape(w, prop, v, mode, inline | {prop.number}, pv)
            elif mode == "results":
                w(f"{self.function('results', prop)}(graph, {v}, out)")
            else:
                with w.block(f"if not {self.function('conforms', prop)}(graph, {v}):"):
                    w("return False")
        if vals is not None:
            w.depth -= 1

    def fail(self, w: Writer, s: Shape, f: str, value: str, mode: str, component: str, path: str | None = None) -> None:
        if mode == "conforms":
            w("return False")
            return
        path = path or (self.node(s.path) if s.path is not None else "None")
        message = self.const("MESSAGE", repr(s.message)) if s.message is not None else "None"
        w(f"out.append(Result({f}, {path}, {value}, {component!r}, {s.severity!r}, {message}, {self.node(s.node)}))")

    def constraints(self, w: Writer, s: Shape, f: str, vals: str | None, mode: str) -> None:
        """The constraints of ``s`` on its value nodes ``vals`` (None: the focus node ``f`` is the value node).
        Results come constraint by constraint, value by value: when there are several, one quick pass tests
        them all first, and only if something fails are they checked again one by one for the results."""
        cs, x = s.constraints, f if vals is None else self.fresh("x")
        tests = [self.check(c, x) if c.name in TESTS else "" for c in cs]
        every = " and ".join(t for t in tests if t)
        if mode == "conforms":  # the first failure answers, whichever it is
            for c, t in zip(cs, tests):
                if not t:
                    self.constraint(w, s, c, f, vals, mode, x, t)
            if every:
                with w.block(f"for {x} in {vals}:") if vals else nullcontext():
                    with w.block(f"if not ({every}):"):
                        w("return False")
            return
        counts = [self.count(c, f, vals) for c in cs if c.name in COUNTS]
        if len(cs) < 2 or len(counts) + sum(map(bool, tests)) < len(cs):  # one constraint, or set checks
            for c, t in zip(cs, tests):
                self.constraint(w, s, c, f, vals, mode, x, t)
            return
        if vals is None or not every:
            head = f"if {' or '.join(counts + ([f'not ({every})'] if every else []))}:"  # the focus node alone
        else:
            bad = self.fresh("bad")
            w(f"{bad} = {' or '.join(counts) or 'False'}")
            with w.block(f"if not {bad}:") if counts else nullcontext(), w.block(f"for {x} in {vals}:"), \
                    w.block(f"if not ({every}):"):
                w(f"{bad} = True")
                w("break")
            head = f"if {bad}:"
        with w.block(head):
            for c, t in zip(cs, tests):
                self.constraint(w, s, c, f, vals, mode, x, t)

    def count(self, c: Constraint, f: str, vals: str | None) -> str:
        """An expression: does the count constraint ``c`` fail?"""
        if c.name == "hasValue":
            return f"{f} != {c.arg!r}" if vals is None else f"{c.arg!r} not in {vals}"
        return f"len({vals}) {'<' if c.name == 'minCount' else '>'} {c.arg}"

    def constraint(self, w: Writer, s: Shape, c: Constraint, f: str, vals: str | None, mode: str, x: str,
                   test: str) -> None:
        """One constraint's check: its results (or False), in the order of the value nodes."""
        name, arg = c.name, c.arg
        fail = partial(self.fail, w, s, f, mode=mode, component=str(COMPONENT[name]))
        if name in COUNTS:
            with w.block(f"if {self.count(c, f, vals)}:"):
                fail(value="None")
        elif name == "uniqueLang":
            with w.block(f"for _ in range(_duplicate_languages({vals})):"):
                fail(value="None")
        elif name in ("equals", "disjoint"):
            pairs = f"set({vals or f'({f},)'}) {'^' if name == 'equals' else '&'} set(sp.get({f}, NONE).get({arg!r}, ()))"
            with w.block(f"for x in sorted({pairs}):"):
                fail(value="x")
        else:  # a test of each value node
            with w.block(f"for {x} in {vals}:") if vals else nullcontext(), w.block(f"if not {test}:"):
                fail(value=x)

    def check(self, c: Constraint, x: str) -> str:
        """``test``, remembered per term where it depends on the term alone and costs more than a look-up."""
        test = self.test(c, x, set())
        if not (c.pure and c.name in MEMOISED or c.name == "datatype") or not COSTLY.search(test) \
                or c.name == "datatype" and c.arg in (STRING, LANG_STRING):  # their form decides most terms
            return test
        memo, known = self.memo(), self.fresh("known")
        return f"({known} if ({known} := {memo}.get({x})) is not None else _remember({memo}, {x}, {test}))"

    # -- expressions -------------------------------------------------------------------------
    def test(self, c: Constraint, x: str, inline: set[int]) -> str:
        """A boolean expression: does the value node ``x`` pass the constraint ``c``? (An operand of ``not``,
        ``and`` and ``or`` as it is: what has operators of lower precedence is in parentheses.)"""
        name, arg = c.name, c.arg
        if name == "datatype":
            return _datatype_test(arg, x)
        if name == "nodeKind":
            return NODE_KIND[arg].format(x=x)
        if name == "class":  # an rdf:type of its own, else through rdfs:subClassOf
            return (f"({x}[:1] != '\"' and ({arg!r} in sp.get({x}, NONE).get(RDF_TYPE, ()) "
                    f"or graph.is_instance({x}, {arg!r})))")
        if name == "in":
            return f"{x} in {self.const('IN', _literal(arg))}"
        if name == "pattern":
            rx = self.const("PATTERN", f"re.compile({arg[0]!r}, {arg[1]})")
            return f"({x}[:2] != '_:' and {rx}.search(_string({x})) is not None)"
        if name in RANGES:
            return f"_in_range({self.node(arg)}, RANGES[{name!r}], {x})"
        if name in ("minLength", "maxLength"):
            return f"({x}[:2] != '_:' and len(_string({x})) {'>=' if name == 'minLength' else '<='} {arg})"
        if name == "languageIn":
            return f"_language_in({x}, {arg!r})"
        if name == "node":
            return self.conforms(arg, x, inline)
        if name == "not":
            return f"not {self.conforms(arg, x, inline)}"
        members = [self.conforms(m, x, inline) for m in arg]
        if name == "and":
            return f"({' and '.join(members)})" if members else "True"
        if name == "or":
            return f"({' or '.join(members)})" if members else "False"
        return f"sum(({''.join(m + ', ' for m in members)})) == 1"  # xone

    def conforms(self, s: Shape, x: str, inline: set[int]) -> str:
        """A boolean expression: does ``x`` conform to ``s``? Inline for a simple shape, else a call."""
        if s.deactivated:
            return "True"
        if s.number in inline or len(inline) >= 2:
            return f"{self.function('conforms', s)}(graph, {x})"
        if s.simple:
            inner = inline | {s.number}
            tests = [f"{x} == {c.arg!r}" if c.name == "hasValue" else self.test(c, x, inner) for c in s.constraints]
        elif s.counted:  # counts of one step's values
            vals = self.path(s.steps, x)
            tests = [f"len({vals}) {'>=' if c.name == 'minCount' else '<='} {c.arg}" if c.name != "hasValue"
                     else f"{c.arg!r} in {vals}" for c in s.constraints]
        else:
            return f"{self.function('conforms', s)}(graph, {x})"
        return f"({' and '.join(tests)})" if tests else "True"

    def path(self, steps: Steps, f: str, preds: str | None = None) -> str:
        """An expression: the value nodes of ``f`` by the path ``steps`` (``preds``: its predicates, if known)."""
        kind, arg = steps
        if kind == "p":
            return f"{preds}.get({arg!r}, ())" if preds else f"sp.get({f}, NONE).get({arg!r}, ())"
        if kind == "^":
            return f"graph.op.get({f}, NONE).get({arg!r}, ())"
        key = f"path:{steps!r}"
        if key not in self.names:
            self.names[key] = name = self.fresh("path")
            w = Writer()
            with w.block(f"def {name}(graph, f):"):
                w("sp = graph.sp")
                if kind == "/":
                    w("found = [f]")
                    for part in arg:
                        w(f"found = list(dict.fromkeys(v for c in found for v in {self.path(part, 'c')}))")
                    w("return found")
                elif kind == "|":
                    w(f"return list(dict.fromkeys(v for vs in [{', '.join(self.path(a, 'f') for a in arg)}] "
                      "for v in vs))")
                else:
                    w("found = {f: None}" if kind != "+" else "found = {}")
                    w("todo = [f]")
                    with w.block("while todo:"):
                        with w.block(f"for v in {self.path(arg, 'todo.pop()')}:"):
                            with w.block("if v not in found:"):
                                w("found[v] = None")
                                if kind != "?":
                                    w("todo.append(v)")
                        if kind == "?":
                            w("break")
                    w("return list(found)")
            self.functions.append("\n".join(w.lines))
        return f"{self.names[key]}(graph, {f})"


def _literal(terms: frozenset[str]) -> str:
    """A frozenset of strings as Python source, in a stable order."""
    return f"frozenset({sorted(terms)!r})"


def _datatype_test(dt: str, x: str) -> str:
    """sh:datatype ``dt`` on ``x`` (``datatype_ok``), with the answers the term's form decides written out."""
    if dt == STRING:  # a plain literal (it ends with its quote) is an xsd:string
        return f"({x}[-1:] == '\"' or datatype_ok({x}, {dt!r}))"
    if dt == LANG_STRING:  # neither a plain literal nor anything but a literal is
        return f"({x}[:1] == '\"' and {x}[-1:] != '\"' and datatype_ok({x}, {dt!r}))"
    if dt in (str(RDFS.Literal), str(RDFS.Datatype)) or '"' in dt:
        return f"datatype_ok({x}, {dt!r})"
    suffix = f'"^^<{dt}>'  # only a literal of type dt is
    return f"({x}.endswith({suffix!r}) and datatype_ok({x}, {dt!r}))"


def _string(term: str) -> str:
    """The lexical form of a literal, the IRI of an IRI term."""
    if term.startswith("<"):
        return term[1:-1]
    end = term.rindex('"')
    return term[1:end] if "\\" not in term else split_literal(term)[0]


def _language_in(t: str, ranges: tuple[str, ...]) -> bool:
    """sh:languageIn: is ``t`` a literal with a language tag that one of ``ranges`` matches?"""
    if not t.startswith('"'):
        return False
    lang = split_literal(t)[1]
    return bool(lang) and _lang_matches(lang, ranges)


def _remember(memo: dict[str, bool], term: str, ok: bool) -> bool:
    """``ok``, remembered as ``term``'s answer in ``memo`` (which forgets all when full)."""
    if len(memo) >= MEMO_SIZE:
        memo.clear()
    memo[term] = ok
    return ok


def _duplicate_languages(vals: Values) -> int:
    """sh:uniqueLang: how many language tags (case-insensitive) more than one of ``vals`` has."""
    seen, dup = set(), set()
    for t in vals:
        if t.startswith('"') and (lang := split_literal(t)[1]):
            (dup if lang.lower() in seen else seen).add(lang.lower())
    return len(dup)


def _unexpected(sp: dict[str, dict[str, list[str]]], vals: Values, allowed: frozenset[str]
                ) -> Iterator[tuple[str, str, str]]:
    """sh:closed: the triples of the value nodes whose predicates are not ``allowed``."""
    for v in vals:
        for p, objs in sp.get(v, _NONE).items():
            if p not in allowed:
                for o in objs:
                    if not (p == RDF_TYPE and o == RDFS_RESOURCE):  # as pyshacl
                        yield v, p, o


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
    top: list[Shape]
    targets: Targets
    fallback: Fallback | None            # shapes pyshacl must validate itself (None: all compiled)
    source: str = ""                     # the generated Python module (see ``generate``)
    run: list[Callable[[Graph, str, list[Result]], None]] = field(default_factory=list)  # results_<n> of each top

    def validate(self, triples: Iterable[Triple], own: Iterable[Triple] | None = None) -> list[Result]:
        """The results of the focus nodes that the record's own triples ``own`` select (all of ``triples``
        if None) in the record's graph ``triples`` (``own`` and the triples of the records it links to)."""
        triples = triples if isinstance(triples, list) else list(triples)
        graph = Graph(triples)
        focus = self.targets.select(graph, triples if own is None else own)
        out: list[Result] = []
        for i in sorted(focus):
            results = self.run[i]
            for f in sorted(focus[i]):
                results(graph, f, out)
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
    gen = Source(lambda n: ("shape " if n in comp.cache else "path ") + (
        n.n3(shapes.namespace_manager) if not isinstance(n, BNode) else "[]" if n in comp.cache
        else path_text(shapes, n)))
    source = gen.module(compiled)
    return CompiledShapes(compiled, Targets(shapes, [c.node for c in compiled]), fallback, source,
                          generate(source, gen.nodes)["TOP"])


NAMESPACE = {"Result": Result, "URIRef": URIRef, "NONE": _NONE, "RDF_TYPE": RDF_TYPE, "RANGES": RANGES, "re": re,
             "datatype_ok": datatype_ok, "_string": _string, "_in_range": _in_range, "_language_in": _language_in,
             "_duplicate_languages": _duplicate_languages, "_unexpected": _unexpected, "_remember": _remember}
SOURCE_DIR = "HERITAGE_LD_SHAPES_SOURCE"   # a folder: each generated module is written there, for reading


def generate(source: str, nodes: list[rdflib.term.Node]) -> dict[str, Any]:
    """Run a generated module (``Source.module``) with the shapes graph's nodes it names, ``N``. Its code is
    compiled once per process and digest; tracebacks and debuggers show its lines (file name
    ``<heritage-ld shapes DIGEST>``), and $HERITAGE_LD_SHAPES_SOURCE names a folder to write it to."""
    code = compile_cached(source, "shapes")
    if folder := os.environ.get(SOURCE_DIR):
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / f"shapes-{source_digest(source)}.py").write_text(source, encoding="utf-8")
    namespace = dict(NAMESPACE, N=nodes)
    exec(code, namespace)
    return namespace


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
