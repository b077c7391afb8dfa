"""Validation with pyshacl's semantics, per record.

Each record is validated as a small closed graph: its own triples plus the triples of the records
it links to (so ``sh:class`` on a linked person works), for the focus nodes its own triples select
(``shaclc.Targets.select``); the results are the record's. The shapes are compiled to Python checks
(``shaclc``, tested against the W3C suite and pyshacl); shapes they cannot compile, and every shape
with ``reference=True`` (``--reference-validation``), go to pyshacl, one call per record with the
record's focus nodes as the shapes' targets: the same graph and focus nodes, so the same answers.
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import rdflib
from pyshacl import validate as shacl_validate
from pyshacl.errors import ReportableRuntimeError
from rdflib import BNode, URIRef
from rdflib.namespace import SH

from .mapping import Issue, Mapped
from .shaclc import CompiledShapes, Fallback, Graph, Result, compile_shapes, path_text, severity_text, to_rdflib
from .terms import Triple, split_literal


_FALLBACK_LOCK = threading.Lock()
VALIDATION_FAILURE = "https://w3id.org/heritage-ld#ShaclFailure"  # a record pyshacl stops on (SHACL "failure")


class ShapesError(Exception):
    """A shapes file that cannot be read; str() names the file and line."""


@dataclass
class Shapes:
    graph: rdflib.Graph
    channel_of: dict[rdflib.term.Node, str]     # shape node -> "all" | "edm"
    file_of: dict[rdflib.term.Node, tuple[str, str]] = field(default_factory=dict)  # node -> (file name, text)
    _compiled: dict[bool, CompiledShapes] = field(default_factory=dict)

    @property
    def compiled(self) -> CompiledShapes:
        return self.compiled_for(False)

    def compiled_for(self, reference: bool) -> CompiledShapes:
        """The compiled shapes; with ``reference``, none compiled: pyshacl validates every shape."""
        if reference not in self._compiled:
            self._compiled[reference] = compile_shapes(self.graph, self.place, reference)
        return self._compiled[reference]

    @classmethod
    def load(cls, root: Path, files: dict[str, str]) -> "Shapes":
        graph = rdflib.Graph(bind_namespaces="core")  # and the files' prefixes, for messages
        channel_of: dict[rdflib.term.Node, str] = {}
        file_of: dict[rdflib.term.Node, tuple[str, str]] = {}
        for name, channel in files.items():
            path = root / name
            part = rdflib.Graph(bind_namespaces="none")
            try:
                text = path.read_text(encoding="utf-8")
                part.parse(data=text, format="turtle", publicID=path.resolve().as_uri())
            except FileNotFoundError:
                raise ShapesError(f"{name}: shapes file not found") from None
            except Exception as e:  # rdflib raises several parser exception types
                detail = " ".join(str(e).split())
                raise ShapesError(f"{name}: not valid Turtle: {detail[:300]}") from None
            for s in set(part.subjects()):
                channel_of[s] = channel
                file_of[s] = (name, text)
            graph += part
            for prefix, ns in part.namespace_manager.namespaces():
                graph.bind(prefix, ns, replace=True)
        return cls(graph, channel_of, file_of)

    def place(self, node: rdflib.term.Node) -> str:
        """Where a shape is written, for a message: its name, file and line; a blank node by the named
        shape (or targets) it sits under."""
        g, nm = self.graph, self.graph.namespace_manager
        if not isinstance(node, BNode):
            name, text = self.file_of.get(node, ("", ""))
            line = _line_of(text, node.n3(nm), node.n3()) if text else None
            return f"shape {node.n3(nm)}" + (f" ({name}" + (f" line {line}" if line else "") + ")" if name else "")
        for p in (SH.property, SH.node, SH["not"], SH.qualifiedValueShape):
            for parent in g.subjects(p, node):
                path = g.value(node, SH.path)
                what = f"the {p.n3(nm)} [ sh:path {path.n3(nm)} ]" if isinstance(path, URIRef) \
                    else f"a {p.n3(nm)} blank-node shape"
                return f"{what} of {self.place(parent)}"
        name = self.file_of.get(node, ("",))[0]
        targets = " ; ".join(f"{p.n3(nm)} {o.n3(nm)}" for p, o in sorted(g.predicate_objects(node))
                             if p in (SH.targetClass, SH.targetNode, SH.targetSubjectsOf, SH.targetObjectsOf))
        return f"the blank-node shape [ {targets or '...'} ]" + (f" ({name})" if name else "")


_MESSAGE_FIELD = re.compile(r"\{(field|entity|[A-Za-z][\w-]*:[A-Za-z_][\w.-]*)\}")


def _field(m: Mapped, focus: str | None, predicate: str | None, fields: dict[str, str]) -> str | None:
    """The source field the record's mapping reads for ``predicate`` on the subject ``focus``
    (``fields`` holds "subject-block predicate" and "predicate" keys, see EntityMapping)."""
    if not predicate:
        return None
    block = next((name.split("[")[0] for name, iri in m.subjects.items() if iri == focus), None)
    return fields.get(f"{block} {predicate}") or fields.get(predicate)


def _message(text: str, m: Mapped, focus: str | None, path: str | None, fields: dict[str, str],
             graph: rdflib.Graph) -> str:
    """A shape's message with ``{field}`` (the field the mapping reads for the result path),
    ``{dc:title}`` (the field it reads for that property) and ``{entity}`` filled for this record."""
    if "{" not in text:
        return text

    def fill(match: re.Match) -> str:
        key = match.group(1)
        if key == "entity":
            return m.record.entity
        try:
            predicate = path if key == "field" else str(graph.namespace_manager.expand_curie(key))
        except ValueError:
            return match.group(0)
        found = _field(m, focus, predicate, fields)
        if found:
            return ", ".join(f"'{f}'" for f in found.split(","))
        name = graph.namespace_manager.curie(predicate) if predicate else "this property"
        return f"a field mapped to {name} (the mapping maps none)"
    return _MESSAGE_FIELD.sub(fill, text)


def _line_of(text: str, *names: str) -> int | None:
    """The line on which one of ``names`` first starts a statement (or, failing that, first occurs)."""
    for pattern in (r"(?m)^[ \t]*{}(?=[\s;,.])", r"(?<![\w:<]){}(?=[\s;,.)\]])"):
        for n in names:
            m = re.search(pattern.format(re.escape(n)), text)
            if m:
                return text.count("\n", 0, m.start()) + 1
    return None


def results(batch: list[Mapped], context_triples: Callable[[Mapped], Iterable[Triple]], shapes: Shapes,
            reference: bool = False) -> Iterator[tuple[Mapped, Result]]:
    """The SHACL results of each record of ``batch``: the focus nodes its own triples select
    (``shaclc.Targets.select``), validated in its graph (its triples and ``context_triples``, those of
    the records it links to). Compiled checks, and pyshacl for the shapes they leave (every shape with
    ``reference``), one call per record that such a shape targets."""
    compiled = shapes.compiled_for(reference)
    for m in batch:
        triples = m.triples + list(context_triples(m))
        for r in compiled.validate(triples, m.triples):
            yield m, r
        if compiled.fallback is not None:
            for r in _pyshacl(compiled.fallback, triples, m.triples):
                yield m, r


def validate(batch: list[Mapped], context_triples: Callable[[Mapped], Iterable[Triple]],
             shapes: Shapes, fields_of: Callable[[str], dict[str, str]], reference: bool = False) -> list[Issue]:
    """SHACL results for a batch of mapped records (``results``), as Issues of the records."""
    issues: list[Issue] = []
    for m, r in results(batch, context_triples, shapes, reference):
        path = r.predicate
        focus = r.focus[1:-1] if r.focus.startswith("<") else r.focus
        fields = fields_of(m.record.entity)
        message = _message(r.message, m, focus, path, fields, shapes.graph) if r.message else _default_message(
            r.component, path or (path_text(shapes.graph, r.path) if r.path is not None else None))
        issues.append(Issue(
            m.record.entity, m.record.id, m.record.source, _field(m, focus, path, fields), _value_text(r.value),
            message, r.severity, focus=focus, predicate=path, component=r.component,
            channel=shapes.channel_of.get(r.shape, "all")))
    return issues


def _value_text(term: str | None) -> str | None:
    if term is None:
        return None
    return term[1:-1] if term.startswith("<") else split_literal(term)[0] if term.startswith('"') else term


def _default_message(component: str, path: str | None) -> str:
    name = component.rsplit("#", 1)[-1].removesuffix("ConstraintComponent")
    return f"fails the {name} constraint" + (f" on {path}" if path else "")


def _pyshacl(fallback: Fallback, triples: list[Triple], own: list[Triple]) -> list[Result]:
    """pyshacl on one record's graph, for the focus nodes its own triples select: each fallback shape
    gets them as sh:targetNode (its own targets are not in ``fallback.graph``)."""
    focus = fallback.targets.select(Graph(triples), own)
    if not focus:
        return []
    data = rdflib.Graph()
    for s, p, o in triples:
        data.add((to_rdflib(s), to_rdflib(p), to_rdflib(o)))
    try:
        return _pyshacl_call(fallback, data, focus)
    except ReportableRuntimeError:  # a SHACL failure: the shapes one by one, to know which failed
        out = []
        for i in sorted(focus):
            try:
                out += _pyshacl_call(fallback, data, {i: focus[i]})
            except ReportableRuntimeError as e:  # e.g. sh:lessThan on a blank node: held back, with the cause
                out.append(Result(min(focus[i]), None, None, VALIDATION_FAILURE, "Violation", "pyshacl cannot "
                                  "validate this record: " + " ".join(str(getattr(e, "message", e)).split()),
                                  fallback.top[i]))
        return out


def _pyshacl_call(fallback: Fallback, data: rdflib.Graph, focus: dict[int, set[str]]) -> list[Result]:
    targets = [(fallback.top[i], SH.targetNode, to_rdflib(f)) for i, nodes in focus.items() for f in nodes]
    with _FALLBACK_LOCK:  # the targets are added to the shared graph for this call (a copy costs more)
        for t in targets:
            fallback.graph.add(t)
        try:
            _conforms, report, _text = shacl_validate(data, shacl_graph=fallback.graph, inference="none",
                                                      advanced=False, allow_warnings=True)
        finally:
            for t in targets:
                fallback.graph.remove(t)
    out = []
    for r in report.objects(None, SH.result):  # top-level results, not nested sh:detail ones
        shape = report.value(r, SH.sourceShape)
        value = report.value(r, SH.value)
        message = report.value(r, SH.resultMessage)
        path = report.value(r, SH.resultPath)  # a complex path: the shape's, in the shapes graph
        path = path if isinstance(path, URIRef) or path is None else fallback.graph.value(shape, SH.path, default=path)
        out.append(Result(report.value(r, SH.focusNode).n3(), path, value.n3() if value is not None else None,
                          str(report.value(r, SH.sourceConstraintComponent)),
                          severity_text(report.value(r, SH.resultSeverity)), str(message) if message else None,
                          shape))
    return out
