"""The validation report: ``validation-report.ttl`` (sh:ValidationReport) and ``.txt`` for people."""
from __future__ import annotations

from pathlib import Path

from ..terms import RDF_TYPE, iri, literal
from . import Files, Format, register
from .rdf import turtle

SH = "http://www.w3.org/ns/shacl#"
HLD = "https://w3id.org/heritage-ld#"
XSD_BOOL = "http://www.w3.org/2001/XMLSchema#boolean"


def status(pub, key) -> str:
    if key in pub.held_back:
        return "held back"
    if key in pub.edm_held_back:
        return "published, held back from EDM"
    return "published"


def report_triples(pub) -> list[tuple[str, str, str]]:
    rep = iri(pub.config.base_uri + "validation-report")
    conforms = not any(i.severity == "Violation" for i in pub.issues)
    t = [(rep, RDF_TYPE, iri(SH + "ValidationReport")),
         (rep, iri(SH + "conforms"), literal("true" if conforms else "false", datatype=XSD_BOOL))]
    for n, i in enumerate(pub.issues, 1):
        r = iri(f"{pub.config.base_uri}validation-report#result-{n}")
        t += [(rep, iri(SH + "result"), r), (r, RDF_TYPE, iri(SH + "ValidationResult")),
              (r, iri(SH + "resultSeverity"), iri(SH + i.severity)),
              (r, iri(SH + "resultMessage"), literal(i.message, "en")),
              (r, iri(HLD + "entity"), literal(i.entity)),
              (r, iri(HLD + "recordId"), literal(i.record_id)),
              (r, iri(HLD + "source"), literal(i.source)),
              (r, iri(HLD + "channel"), literal(i.channel)),
              (r, iri(HLD + "status"), literal(status(pub, (i.entity, i.record_id))))]
        if i.focus:
            t.append((r, iri(SH + "focusNode"), iri(i.focus)))
        if i.predicate:
            t.append((r, iri(SH + "resultPath"), iri(i.predicate)))
        if i.value is not None:
            t.append((r, iri(SH + "value"), literal(i.value)))
        if i.field:
            t.append((r, iri(HLD + "sourceField"), literal(i.field)))
        if i.component:
            t.append((r, iri(SH + "sourceConstraintComponent"), iri(i.component)))
    return t


def text_report(pub) -> str:
    lines = [f"heritage-ld validation report: {pub.published} records published, "
             f"{len(pub.held_back)} held back, {len(pub.edm_held_back)} held back from EDM only", ""]
    current = None
    for i in pub.issues:
        key = (i.entity, i.record_id)
        if key != current:
            current = key
            lines += ["", f"{i.entity} {i.record_id} [{status(pub, key)}]", f"  source: {i.source}"]
        where = f"field {i.field}" if i.field else (f"property {i.predicate}" if i.predicate else "record")
        value = f" (value: {i.value!r})" if i.value is not None else ""
        channel = " [EDM only]" if i.channel == "edm" else ""
        lines.append(f"  {i.severity.upper()}{channel} {where}{value}: {i.message}")
    if not pub.issues:
        lines.append("No problems found.")
    return "\n".join(lines).rstrip() + "\n"


class Report:
    def __init__(self, pub, out: Path, _files: Files) -> None:
        self.pub, self.out = pub, out

    def add(self, row, fresh) -> None:
        pass

    def close(self) -> None:
        prefixes = {"sh": SH, "hld": HLD}
        (self.out / "validation-report.ttl").write_bytes(turtle(report_triples(self.pub), prefixes))
        (self.out / "validation-report.txt").write_text(text_report(self.pub), "utf-8")


register(Format("report", "text/turtle", "ttl", "validation report (validation-report.ttl and .txt)", Report))
