"""Validation with pyshacl's semantics, per record.

Each record is validated as a small closed graph: its own triples plus the triples of the records
it links to (so ``sh:class`` on a linked person works), and results are attributed to the record
owning the focus node. The shapes are compiled to Python checks (``shaclc``, differential-tested
against pyshacl); ``reference=True`` (``--reference-validation``) runs pyshacl itself, batched
(``chunk_size`` records a call, since pyshacl costs ~2 ms a call).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import rdflib
from pyshacl import validate as shacl_validate
from rdflib.namespace import SH

from .mapping import Issue, Mapped
from .shaclc import CompiledShapes, compile_shapes
from .terms import split_literal


class ShapesError(Exception):
    """A shapes file that cannot be read; str() names the file and line."""


@dataclass
class Shapes:
    graph: rdflib.Graph
    channel_of: dict[rdflib.term.Node, str]     # shape node -> "all" | "edm"
    _compiled: CompiledShapes | None = None

    @property
    def compiled(self) -> CompiledShapes:
        if self._compiled is None:
            self._compiled = compile_shapes(self.graph)
        return self._compiled

    @classmethod
    def load(cls, root: Path, files: dict[str, str]) -> "Shapes":
        graph = rdflib.Graph()
        channel_of: dict[rdflib.term.Node, str] = {}
        for name, channel in files.items():
            path = root / name
            part = rdflib.Graph()
            try:
                part.parse(path, format="turtle")
            except FileNotFoundError:
                raise ShapesError(f"{name}: shapes file not found") from None
            except Exception as e:  # rdflib raises several parser exception types
                detail = " ".join(str(e).split())
                raise ShapesError(f"{name}: not valid Turtle: {detail[:300]}") from None
            for s in set(part.subjects()):
                channel_of[s] = channel
            graph += part
        return cls(graph, channel_of)


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


def _severity(node: rdflib.term.Node) -> str:
    return str(node).rsplit("#", 1)[-1]


def _term_text(node: rdflib.term.Node | None) -> str | None:
    if node is None:
        return None
    return str(node)


def validate(batch: list[Mapped], context_triples: Callable[[Mapped], Iterable[tuple[str, str, str]]],
             shapes: Shapes, fields_of: Callable[[str], dict[str, str]], reference: bool = False) -> list[Issue]:
    """SHACL results for a batch of mapped records, as Issues attributed to the owning records.

    By default the compiled checks (``shaclc``) run per record; shapes they cannot compile, and
    everything when ``reference`` is set, go through pyshacl on the whole batch."""
    issues: list[Issue] = []
    compiled = None if reference else shapes.compiled
    if compiled is not None:
        for m in batch:
            own = {t[0] for t in m.triples}
            fields = fields_of(m.record.entity)
            for r in compiled.validate(m.triples + context_triples(m), own):
                path = r.path
                focus = r.focus[1:-1] if r.focus.startswith("<") else r.focus
                issues.append(Issue(
                    m.record.entity, m.record.id, m.record.source, _field(m, focus, path, fields),
                    _value_text(r.value),
                    _message(r.message, m, focus, path, fields, shapes.graph) if r.message
                    else _default_message(r.component, path), r.severity,
                    focus=focus, predicate=path,
                    component=r.component, channel=shapes.channel_of.get(r.shape, "all")))
        if compiled.fallback is None:
            return issues
    graph = shapes.graph if compiled is None else compiled.fallback
    return issues + _pyshacl(batch, context_triples, shapes, graph, fields_of)


def _value_text(term: str | None) -> str | None:
    if term is None:
        return None
    return term[1:-1] if term.startswith("<") else split_literal(term)[0] if term.startswith('"') else term


def _default_message(component: str, path: str | None) -> str:
    name = component.rsplit("#", 1)[-1].removesuffix("ConstraintComponent")
    return f"fails the {name} constraint" + (f" on {path}" if path else "")


def _pyshacl(batch: list[Mapped], context_triples, shapes: Shapes, shapes_graph: rdflib.Graph,
             fields_of: Callable[[str], dict[str, str]]) -> list[Issue]:
    """pyshacl itself on one graph holding the whole batch (it costs ~2 ms a call, so batch)."""
    lines: set[str] = set()
    owners: dict[str, list[Mapped]] = {}
    for m in batch:
        for t in m.triples:
            lines.add(" ".join(t) + " .")
            owners.setdefault(t[0][1:-1], [])
            if m not in owners[t[0][1:-1]]:
                owners[t[0][1:-1]].append(m)
        lines.update(" ".join(t) + " ." for t in context_triples(m))
    data = rdflib.Graph()
    data.parse(data="\n".join(sorted(lines)), format="nt")
    _conforms, report, _text = shacl_validate(data, shacl_graph=shapes_graph, inference="none",
                                              advanced=False, allow_warnings=True)
    issues: list[Issue] = []
    for result in report.objects(None, SH.result):  # top-level results, not nested sh:detail ones
        focus = report.value(result, SH.focusNode)
        path = report.value(result, SH.resultPath)
        value = report.value(result, SH.value)
        shape = report.value(result, SH.sourceShape)
        message = report.value(result, SH.resultMessage)
        component = report.value(result, SH.sourceConstraintComponent)
        severity = _severity(report.value(result, SH.resultSeverity))
        for m in owners.get(str(focus), []):
            fields = fields_of(m.record.entity)
            iri_path = str(path) if isinstance(path, rdflib.URIRef) else None
            issues.append(Issue(
                m.record.entity, m.record.id, m.record.source, _field(m, str(focus), iri_path, fields),
                _term_text(value), _message(str(message), m, str(focus), iri_path, fields, shapes.graph)
                if message else f"violates {shape}", severity,
                focus=str(focus), predicate=str(path) if isinstance(path, rdflib.URIRef) else None,
                component=str(component) if component else None,
                channel=shapes.channel_of.get(shape, "all")))
    return issues
