"""N-Triples, N-Quads (one named graph per record) and Turtle (per record and whole dataset).

The dataset files list the records in (entity, id) order, each record's triples sorted.
N-Triples and N-Quads are written as text straight from the record triples; Turtle goes through
pyoxigraph's serialiser (prefixed names, grouped subjects) at ~1M triples/s, record by record:
the dataset file is the record documents without their prefix lines, under one header.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pyoxigraph as ox

from datetime import datetime, timezone

from ..terms import RDF_TYPE, XSD, Triple, is_iri, literal, nt_lines
from . import Files, Format, register
from .gzmembers import GzipMembers


def record_path(out: Path, entity: str, record_id: str, ext: str, folder: str = "records") -> Path:
    """``<folder>/<entity>/<id>.<ext>`` with the id made safe as one file name."""
    return out / record_file(entity, record_id, ext, folder)


def record_file(entity: str, record_id: str, ext: str, folder: str = "records") -> str:
    return f"{folder}/{entity}/{quote(record_id, safe='')}.{ext}"


def graph_iri(pub, entity: str, record_id: str) -> str:
    return f"{pub.config.base_uri}graph/{entity}/{quote(record_id, safe='')}"


def _order(t: Triple) -> tuple:
    return (t[0], t[1] != RDF_TYPE, t[1], t[2])


def turtle(triples: list[Triple], prefixes: dict[str, str]) -> bytes:
    """Turtle with the prefixes the triples actually use."""
    data = nt_lines(sorted(triples, key=_order)).encode("utf-8")
    used = {p: ns for p, ns in prefixes.items() if f"<{ns}".encode("utf-8") in data}  # also finds ^^<datatype>
    quads = ox.parse(data, format=ox.RdfFormat.N_TRIPLES)
    return ox.serialize(quads, format=ox.RdfFormat.TURTLE, prefixes=used) or b""


def _without_prefixes(doc: bytes) -> bytes:
    start = 0
    while doc.startswith(b"@prefix ", start):
        start = doc.index(b"\n", start) + 1
    return doc[start:]


def turtle_body(triples: list[Triple], prefixes: dict[str, str]) -> bytes:
    """Turtle without its prefix lines: a part of a document whose header declares ``prefixes``."""
    return _without_prefixes(turtle(triples, prefixes))


class _Dump:
    """Writes ``name`` and its gzip copy ``name.gz`` for bulk loaders: one gzip member per block of records,
    members of unchanged blocks taken from the output being replaced (``gzmembers``)."""

    def __init__(self, path: Path, files: Files) -> None:
        gz = path.name + ".gz"
        self.plain = path.open("wb")
        self.gz = GzipMembers(path.with_name(gz), files.old / gz if files.old else None)

    def write(self, row, text: str) -> None:
        data = text.encode("utf-8")
        self.plain.write(data)
        self.gz.add(f"{row.entity}\0{row.id}", data)

    def close(self) -> None:
        self.gz.close()
        self.plain.close()


class NTriples:
    def __init__(self, pub, out: Path, files: Files) -> None:
        self.fh = _Dump(out / "dataset.nt", files)

    def add(self, row, fresh) -> None:
        self.fh.write(row, nt_lines(fresh))

    def close(self) -> None:
        self.fh.close()


PROV = "http://www.w3.org/ns/prov#"
HLD = "https://w3id.org/heritage-ld#"


def provenance(pub, graph: str, row) -> list[Triple]:
    """PROV-O about one record's named graph: source, source id, when, which mapping version."""
    when = datetime.fromtimestamp(row.last_changed, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    source = row.source.split(" ", 1)[0]
    t = [(graph, RDF_TYPE, f"<{PROV}Entity>"),
         (graph, f"<{PROV}generatedAtTime>", literal(when, datatype=XSD + "dateTime")),
         (graph, f"<{HLD}sourceRecord>", literal(row.source)),
         (graph, f"<{HLD}sourceId>", literal(row.id)),
         (graph, f"<{HLD}mappingVersion>", literal(f"mapping/{row.entity}.yaml sha256:{row.mapping}"))]
    if is_iri(source) and source.startswith(("http://", "https://")):
        t.append((graph, f"<{PROV}wasDerivedFrom>", f"<{source}>"))
    return t


class NQuads:
    def __init__(self, pub, out: Path, files: Files) -> None:
        self.pub, self.fh = pub, _Dump(out / "dataset.nq", files)

    def add(self, row, fresh) -> None:
        g = f"<{graph_iri(self.pub, row.entity, row.id)}>"
        self.fh.write(row, "".join(f"{s} {p} {o} {g} .\n" for s, p, o in row.triples + provenance(self.pub, g, row)))

    def close(self) -> None:
        self.fh.close()


class Turtle:
    """``records/<entity>/<id>.ttl`` (prefixes used) and ``dataset.ttl`` (every mapping prefix declared)."""

    def __init__(self, pub, out: Path, files: Files) -> None:
        self.prefixes, self.files = pub.mappings.prefixes, files
        self.fh = (out / "dataset.ttl").open("wb")
        self.fh.write("".join(f"@prefix {p}: <{ns}> .\n" for p, ns in sorted(self.prefixes.items())).encode())

    def add(self, row, fresh) -> None:
        rel = record_file(row.entity, row.id, "ttl")
        doc = self.files.read_previous(rel) if self.files.reusable(row) else None
        if doc is None:
            doc = turtle(row.triples, self.prefixes)
        self.files.write(rel, row, lambda: doc)
        self.fh.write(b"\n" + _without_prefixes(doc))

    def close(self) -> None:
        self.fh.close()


register(Format("ntriples", "application/n-triples", "nt", "whole dataset as N-Triples (dataset.nt, dataset.nt.gz)",
                NTriples, lambda pub, triples, _subject: nt_lines(sorted(triples)).encode(), cost=1.7, fresh=True))
register(Format("nquads", "application/n-quads", "nq",
                "whole dataset as N-Quads, one named graph per record (dataset.nq, dataset.nq.gz)", NQuads, cost=1.9))
register(Format("turtle", "text/turtle", "ttl", "Turtle per record (records/) and whole dataset (dataset.ttl)",
                Turtle, lambda pub, triples, _subject: turtle(triples, pub.mappings.prefixes), cost=3.5,
                folder="records"))
