"""Validation with pyshacl's semantics, per record, batched.

Each record is validated as a small closed graph: its own triples plus the triples of the records
it links to (so ``sh:class`` on a linked person works). Records are batched (``chunk_size``) into
one pyshacl call because pyshacl costs ~2 ms a call; results are attributed back to the records
owning the focus node.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import rdflib
from pyshacl import validate as shacl_validate
from rdflib.namespace import SH

from .mapping import Issue, Mapped


class ShapesError(Exception):
    """A shapes file that cannot be read; str() names the file and line."""


@dataclass
class Shapes:
    graph: rdflib.Graph
    channel_of: dict[rdflib.term.Node, str]     # shape node -> "all" | "edm"

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


def _severity(node: rdflib.term.Node) -> str:
    return str(node).rsplit("#", 1)[-1]


def _term_text(node: rdflib.term.Node | None) -> str | None:
    if node is None:
        return None
    return str(node)


def validate(batch: list[Mapped], context_triples: Callable[[Mapped], Iterable[tuple[str, str, str]]],
             shapes: Shapes, fields_of: Callable[[str], dict[str, str]]) -> list[Issue]:
    """SHACL results for a batch of mapped records, as Issues attributed to the owning records."""
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
    _conforms, report, _text = shacl_validate(data, shacl_graph=shapes.graph, inference="none",
                                              advanced=False, allow_warnings=True)
    issues: list[Issue] = []
    for result in report.subjects(rdflib.RDF.type, SH.ValidationResult):
        focus = report.value(result, SH.focusNode)
        path = report.value(result, SH.resultPath)
        value = report.value(result, SH.value)
        shape = report.value(result, SH.sourceShape)
        message = report.value(result, SH.resultMessage)
        component = report.value(result, SH.sourceConstraintComponent)
        severity = _severity(report.value(result, SH.resultSeverity))
        for m in owners.get(str(focus), []):
            mapping_field = None
            if isinstance(path, rdflib.URIRef):
                mapping_field = fields_of(m.record.entity).get(str(path))
            issues.append(Issue(
                m.record.entity, m.record.id, m.record.source, mapping_field,
                _term_text(value), str(message) if message else f"violates {shape}", severity,
                focus=str(focus), predicate=str(path) if isinstance(path, rdflib.URIRef) else None,
                component=str(component) if component else None,
                channel=shapes.channel_of.get(shape, "all")))
    return issues

