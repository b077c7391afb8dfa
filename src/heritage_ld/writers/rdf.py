"""N-Triples, N-Quads (one named graph per record) and Turtle (per record and whole dataset).

N-Triples and N-Quads are written as text straight from the record triples; Turtle goes through
pyoxigraph's serialiser (prefixed names, grouped subjects) at ~1M triples/s.
"""
from __future__ import annotations

import gzip
from pathlib import Path
from urllib.parse import quote

import pyoxigraph as ox

from datetime import datetime, timezone

from ..terms import RDF_TYPE, XSD, Triple, is_iri, literal
from . import Format, register


def record_path(out: Path, entity: str, record_id: str, ext: str, folder: str = "records") -> Path:
    """``<folder>/<entity>/<id>.<ext>`` with the id made safe as one file name."""
    return out / folder / entity / f"{quote(record_id, safe='')}.{ext}"


def graph_iri(pub, entity: str, record_id: str) -> str:
    return f"{pub.config.base_uri}graph/{entity}/{quote(record_id, safe='')}"


def _order(t: Triple) -> tuple:
    return (t[0], t[1] != RDF_TYPE, t[1], t[2])


def nt_lines(triples) -> str:
    text = " .\n".join(map(" ".join, triples))
    return text + " .\n" if text else ""


def turtle(triples: list[Triple], prefixes: dict[str, str]) -> bytes:
    """Turtle with the prefixes the triples actually use."""
    data = nt_lines(sorted(triples, key=_order)).encode("utf-8")
    used = {p: ns for p, ns in prefixes.items() if f"<{ns}".encode("utf-8") in data}  # also finds ^^<datatype>
    quads = ox.parse(data, format=ox.RdfFormat.N_TRIPLES)
    return ox.serialize(quads, format=ox.RdfFormat.TURTLE, prefixes=used) or b""


def _dataset_triples(pub) -> list[Triple]:
    return sorted({t for m in pub.published for t in m.triples})


class _Dump:
    """Writes ``name`` and a deterministic gzip copy ``name.gz`` (mtime 0, no file name) for bulk loaders."""

    def __init__(self, path: Path) -> None:
        self.plain = path.open("wb")
        self.raw = path.with_name(path.name + ".gz").open("wb")
        self.gz = gzip.GzipFile(filename="", mode="wb", fileobj=self.raw, mtime=0, compresslevel=6)

    def write(self, text: str) -> None:
        data = text.encode("utf-8")
        self.plain.write(data)
        self.gz.write(data)

    def __enter__(self) -> "_Dump":
        return self

    def __exit__(self, *_exc) -> None:
        self.gz.close()
        self.raw.close()
        self.plain.close()


def write_ntriples(pub, out: Path) -> None:
    with _Dump(out / "dataset.nt") as fh:
        fh.write(nt_lines(_dataset_triples(pub)))


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


def write_nquads(pub, out: Path) -> None:
    with _Dump(out / "dataset.nq") as fh:
        for m in pub.published:
            key = (m.record.entity, m.record.id)
            g = f"<{graph_iri(pub, *key)}>"
            triples = m.triples + (provenance(pub, g, pub.rows[key]) if key in pub.rows else [])
            fh.write("".join(f"{s} {p} {o} {g} .\n" for s, p, o in triples))


def write_turtle(pub, out: Path) -> None:
    prefixes = pub.mappings.prefixes
    for m in pub.published:
        path = record_path(out, m.record.entity, m.record.id, "ttl")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(turtle(m.triples, prefixes))
    (out / "dataset.ttl").write_bytes(turtle(_dataset_triples(pub), prefixes))


register(Format("ntriples", "application/n-triples", "nt", "whole dataset as N-Triples (dataset.nt, dataset.nt.gz)",
                write_ntriples, lambda pub, triples, _subject: nt_lines(sorted(triples)).encode()))
register(Format("nquads", "application/n-quads", "nq",
                "whole dataset as N-Quads, one named graph per record (dataset.nq, dataset.nq.gz)", write_nquads))
register(Format("turtle", "text/turtle", "ttl", "Turtle per record (records/) and whole dataset (dataset.ttl)",
                write_turtle, lambda pub, triples, _subject: turtle(triples, pub.mappings.prefixes)))
