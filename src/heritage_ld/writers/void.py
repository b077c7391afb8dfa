"""VoID + DCAT description of the dataset (``void.ttl``): counts, dumps, licence.

The output folder is meant to be served at ``base_uri``, so dump URLs are ``{base}<file>``.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..terms import RDF_TYPE, iri, literal
from . import FORMATS, Files, Format, Job, register
from .rdf import turtle

VOID = "http://rdfs.org/ns/void#"
DCAT = "http://www.w3.org/ns/dcat#"
DCT = "http://purl.org/dc/terms/"
XSD_INT = "http://www.w3.org/2001/XMLSchema#integer"
EDM_SCHEMA = "http://www.europeana.eu/schemas/edm/"
IANA = "https://www.iana.org/assignments/media-types/"
DUMPS = [("ntriples", "dataset.nt"), ("nquads", "dataset.nq"), ("turtle", "dataset.ttl"), ("jsonld", "dataset.jsonld")]
GZIP_DUMPS = [("ntriples", "dataset.nt.gz"), ("nquads", "dataset.nq.gz")]   # for bulk loaders
GZIP = "http://www.iana.org/assignments/media-types/application/gzip"      # dcat:compressFormat (DCAT 3)


def description(pub, triples: int, entities: int, edm_count: int, classes: Counter) -> list[tuple[str, str, str]]:
    base = pub.config.base_uri
    ds = iri(base + "dataset")
    cfg = pub.config.values
    n = lambda v: literal(str(v), datatype=XSD_INT)
    t = [(ds, RDF_TYPE, iri(VOID + "Dataset")), (ds, RDF_TYPE, iri(DCAT + "Dataset")),
         (ds, iri(DCT + "title"), literal(cfg.get("name", "heritage-ld dataset"), "en")),
         (ds, iri(VOID + "uriSpace"), literal(base)),
         (ds, iri(VOID + "triples"), n(triples)),
         (ds, iri(VOID + "entities"), n(entities)),
         (ds, iri(DCT + "conformsTo"), iri(EDM_SCHEMA)),
         (ds, iri(DCT + "conformsTo"), iri("http://schema.org/"))]
    if cfg.get("description"):
        t.append((ds, iri(DCT + "description"), literal(cfg["description"], "en")))
    if cfg.get("publisher"):
        t.append((ds, iri(DCT + "publisher"), literal(cfg["publisher"])))
    if cfg.get("metadata_license"):
        t.append((ds, iri(DCT + "license"), iri(cfg["metadata_license"])))
    for cls, count in sorted(classes.items()):
        part = iri(f"{base}dataset/class/{cls[1:-1].rsplit('/', 1)[-1].rsplit('#', 1)[-1]}")
        t += [(ds, iri(VOID + "classPartition"), part), (part, iri(VOID + "class"), cls),
              (part, iri(VOID + "entities"), n(count))]
    for name, file in DUMPS:
        fmt = FORMATS[name]
        dist = iri(f"{base}{file}")
        t += [(ds, iri(VOID + "dataDump"), dist), (ds, iri(DCAT + "distribution"), dist),
              (dist, RDF_TYPE, iri(DCAT + "Distribution")),
              (dist, iri(DCAT + "downloadURL"), dist),
              (dist, iri(DCAT + "mediaType"), iri(IANA + fmt.media_type)),
              (dist, iri(DCT + "format"), literal(fmt.media_type))]
        if (name, f"{file}.gz") in GZIP_DUMPS:
            gz = iri(f"{base}{file}.gz")
            t += [(ds, iri(VOID + "dataDump"), gz), (ds, iri(DCAT + "distribution"), gz),
                  (gz, RDF_TYPE, iri(DCAT + "Distribution")),
                  (gz, iri(DCAT + "downloadURL"), gz),
                  (gz, iri(DCAT + "mediaType"), iri(IANA + fmt.media_type)),
                  (gz, iri(DCAT + "compressFormat"), iri(GZIP)),
                  (gz, iri(DCT + "format"), literal(fmt.media_type))]
    edm = iri(f"{base}edm/")
    t += [(ds, iri(DCAT + "distribution"), edm), (edm, RDF_TYPE, iri(DCAT + "Distribution")),
          (edm, iri(DCAT + "accessURL"), edm), (edm, iri(DCAT + "mediaType"), iri(IANA + "application/rdf+xml")),
          (edm, iri(DCT + "conformsTo"), iri(EDM_SCHEMA)),
          (edm, iri(DCT + "description"), literal(f"{edm_count} EDM RDF/XML records, one file per "
                                                  "ProvidedCHO, valid for Europeana", "en"))]
    # the endpoints of `heritage-ld serve` (at base_uri unless [project] sparql_endpoint / oai_endpoint say otherwise)
    sparql = iri(cfg.get("sparql_endpoint", base + "sparql"))
    oai = iri(cfg.get("oai_endpoint", base + "oai"))
    t.append((ds, iri(VOID + "sparqlEndpoint"), sparql))
    for svc, title, spec in ((sparql, "SPARQL endpoint (read-only)", "https://www.w3.org/TR/sparql11-protocol/"),
                             (oai, "OAI-PMH (metadata prefixes edm and oai_dc)",
                              "http://www.openarchives.org/OAI/2.0/openarchivesprotocol.htm")):
        t += [(svc, RDF_TYPE, iri(DCAT + "DataService")), (svc, iri(DCAT + "endpointURL"), svc),
              (svc, iri(DCAT + "servesDataset"), ds), (svc, iri(DCT + "conformsTo"), iri(spec)),
              (svc, iri(DCT + "title"), literal(title, "en"))]
    return t


class Void:
    """Counts the records and the triples and classes of ``dataset.nt`` block by block (a copied block's
    from its index), then describes the dataset."""

    def __init__(self, pub, out: Path, _files: Files) -> None:
        self.pub, self.out = pub, out
        self.triples = self.entities = 0
        self.classes: Counter = Counter()

    def block(self, job: Job, rows) -> None:
        self.entities += job.block.count
        self.triples += job.foreign.lines
        self.classes.update(job.foreign.classes)

    def close(self) -> None:
        prefixes = {"void": VOID, "dcat": DCAT, "dcterms": DCT, **self.pub.mappings.prefixes}
        (self.out / "void.ttl").write_bytes(turtle(description(self.pub, self.triples, self.entities,
                                                               self.pub.edm_count, self.classes), prefixes))


register(Format("void", "text/turtle", "ttl", "VoID/DCAT dataset description with counts and dumps (void.ttl)",
                Void, cost=0.3))
