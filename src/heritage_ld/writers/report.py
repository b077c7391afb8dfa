"""The validation report: ``validation-report.ttl`` (sh:ValidationReport) and ``.txt`` for people."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterator

from isal import isal_zlib

from ..terms import RDF_TYPE, iri, literal
from . import Files, Format, register, writers_digest
from .rdf import turtle_body

SH = "http://www.w3.org/ns/shacl#"
HLD = "https://w3id.org/heritage-ld#"
XSD_BOOL = "http://www.w3.org/2001/XMLSchema#boolean"


def status(pub, key) -> str:
    if key in pub.held_back:
        return "held back"
    if key in pub.edm_held_back:
        return "published, held back from EDM"
    return "published"


def report_triples(pub) -> Iterator[list[tuple[str, str, str]]]:
    """The report as triples, in groups: the report node, then a group per result."""
    rep = iri(pub.config.base_uri + "validation-report")
    conforms = not (pub.held_back or pub.edm_held_back)
    yield [(rep, RDF_TYPE, iri(SH + "ValidationReport")),
           (rep, iri(SH + "conforms"), literal("true" if conforms else "false", datatype=XSD_BOOL))]
    for n, i in enumerate(pub.issues, 1):
        r = iri(f"{pub.config.base_uri}validation-report#result-{n}")
        t = [(rep, iri(SH + "result"), r), (r, RDF_TYPE, iri(SH + "ValidationResult")),
             (r, iri(SH + "resultSeverity"), iri(SH + i.severity if ":" not in i.severity else i.severity)),
             (r, iri(SH + "resultMessage"), literal(i.message, "en")),
             (r, iri(HLD + "entity"), literal(i.entity)),
             (r, iri(HLD + "recordId"), literal(i.record_id)),
             (r, iri(HLD + "source"), literal(i.source)),
             (r, iri(HLD + "channel"), literal(i.channel)),
             (r, iri(HLD + "status"), literal(status(pub, (i.entity, i.record_id))))]
        if i.focus:  # an IRI, or (a literal sh:targetNode, a blank node) an N-Triples term
            t.append((r, iri(SH + "focusNode"), i.focus if i.focus.startswith(('"', "_:")) else iri(i.focus)))
        if i.predicate:
            t.append((r, iri(SH + "resultPath"), iri(i.predicate)))
        if i.value is not None:
            t.append((r, iri(SH + "value"), literal(i.value)))
        if i.field:
            t.append((r, iri(HLD + "sourceField"), literal(i.field)))
        if i.component:
            t.append((r, iri(SH + "sourceConstraintComponent"), iri(i.component)))
        yield t


def shown(text: str) -> str:
    """``text`` as one line of the text report: what cannot be shown (line breaks, control and
    non-characters, lone surrogates) as Python escapes."""
    return text if text.isprintable() else repr(text)[1:-1]


def report_lines(pub) -> Iterator[str]:
    """The report for people, line by line (each ending in a newline)."""
    yield (f"heritage-ld validation report: {pub.published} records published, "
           f"{len(pub.held_back)} held back, {len(pub.edm_held_back)} held back from EDM only\n\n")
    for warning in pub.source_warnings:
        yield f"WARNING {shown(warning)}\n"
    current = None
    for i in pub.issues:
        key = (i.entity, i.record_id)
        if key != current:
            current = key
            yield f"\n{i.entity} {shown(i.record_id)} [{status(pub, key)}]\n  source: {shown(i.source)}\n"
        where = f"field {shown(i.field)}" if i.field else (f"property {i.predicate}" if i.predicate else "record")
        value = f" (value: {i.value!r})" if i.value is not None else ""
        channel = " [EDM only]" if i.channel == "edm" else ""
        severity = i.severity.upper() if ":" not in i.severity else f"severity <{i.severity}>"  # one of your own
        yield f"  {severity}{channel} {where}{value}: {shown(i.message)}\n"
    if current is None and not pub.source_warnings:
        yield "No problems found.\n"


class Report:
    """Written at the end, streaming: the report can hold more issues than fit in memory. Where the report
    is the one the output being replaced has (the same issues, counts and writers: ``key``), its files are
    hard links to that output's, after a check of their CRC-32 (``.validation-report.check``)."""

    FILES = ("validation-report.ttl", "validation-report.txt")
    CHECK = ".validation-report.check"

    def __init__(self, pub, out: Path, files: Files) -> None:
        self.pub, self.out, self.source = pub, out, files.source

    def block(self, job, rows) -> None:
        pass

    def key(self) -> str:
        p = self.pub
        if not p.report_digest:
            return ""
        return hashlib.sha256(json.dumps([p.report_digest, p.published, p.source_warnings, writers_digest(p)])
                              .encode()).hexdigest()

    def close(self) -> None:
        key = self.key()
        if not (key and self.link(key)):
            self.write()
        check = {"key": key, "files": {name: _crc(self.out / name) for name in self.FILES}}
        (self.out / self.CHECK).write_text(json.dumps(check))

    def link(self, key: str) -> bool:
        """Link the files of the output being replaced, if they are this report."""
        if self.source is None:
            return False
        try:
            check = json.loads((self.source / self.CHECK).read_text())
            if check.get("key") != key or any(check["files"].get(n) != _crc(self.source / n) for n in self.FILES):
                return False
        except (OSError, ValueError, AttributeError, TypeError):
            return False
        try:
            for name in self.FILES:
                os.link(self.source / name, self.out / name)
        except OSError:   # another file system, a mount: written instead
            for name in self.FILES:
                (self.out / name).unlink(missing_ok=True)
            return False
        return True

    def write(self) -> None:
        prefixes = {"sh": SH, "hld": HLD}
        with (self.out / "validation-report.ttl").open("wb") as fh:
            fh.write("".join(f"@prefix {p}: <{ns}> .\n" for p, ns in sorted(prefixes.items())).encode())
            batch: list = []
            for group in report_triples(self.pub):
                batch.extend(group)
                if len(batch) >= 5000:
                    fh.write(b"\n" + turtle_body(batch, prefixes))
                    batch = []
            if batch:
                fh.write(b"\n" + turtle_body(batch, prefixes))
        with (self.out / "validation-report.txt").open("w", encoding="utf-8") as txt:
            txt.writelines(report_lines(self.pub))


def _crc(path: Path) -> list[int]:
    """[size, CRC-32] of a file."""
    crc = size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            crc, size = isal_zlib.crc32(chunk, crc), size + len(chunk)
    return [size, crc]


register(Format("report", "text/turtle", "ttl", "validation report (validation-report.ttl and .txt)", Report,
                cost=1.2, local=True))
