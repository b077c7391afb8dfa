"""Dereferenceable IRIs: every IRI the mappings mint, served from the catalog by ``heritage-ld serve``.

* A request path is the IRI's path relative to ``base_uri``'s path (base ``https://data.example.org/``
  -> ``/article/x``), whatever host the server runs on. Records whose IRI is not under the base (rights
  statements) are served at ``/<entity>/<id>``; other subjects a record describes (a time span) by
  their path too.
* Turtle, JSON-LD (context inlined), N-Triples, RDF/XML and HTML by the ``Accept`` header (q-values;
  ties go to the server's order, HTML first) or ``?format=ttl|jsonld|nt|rdf|html``; ``Vary: Accept``;
  406 lists what is available; 404 for unknown ids; 410 for withdrawn records (tombstones).
* **200, not 303.** The IRI answers with the description directly and ``Content-Location`` names
  the variant sent (``?format=...``): one round trip, cacheable per variant. The aggregation
  (``#aggregation``) is a hash IRI in the same document.
* ETag (record content hash + format; for HTML also the linked records' hashes) and Last-Modified
  (``last_changed``), with 304 for If-None-Match / If-Modified-Since.
* ``/`` lists the entity types, ``/<entity>/`` their records; ``/dataset`` and ``/.well-known/void``
  serve ``output/void.ttl`` (VoID + DCAT) negotiated like a record; other paths are files of the
  output folder (dumps, ``context.jsonld``, ``edm/``...), never outside it and never dotfiles.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import threading
import time
from email.utils import formatdate, parsedate_to_datetime
from itertools import islice
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Sequence
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pyoxigraph as ox

from . import __version__, html
from . import config as config_mod
from .catalog import unpack
from .mapping import Mappings
from .terms import Triple, nt_lines, parse_nt
from .writers import serialiser
from .writers.jsonld import Compactor, dumps
from .writers.rdf import graph_iri, provenance, turtle

if TYPE_CHECKING:
    from .sparql import StoreSync

Response = tuple[str, list[tuple[str, str]], "bytes | tuple[BinaryIO, int]"]
FORMATS = {"html": ("text/html", "HTML"), "ttl": ("text/turtle", "Turtle"),
           "jsonld": ("application/ld+json", "JSON-LD"), "nt": ("application/n-triples", "N-Triples"),
           "rdf": ("application/rdf+xml", "RDF/XML")}
GRAPH_FORMATS = {"nq": ("application/n-quads", "N-Quads"), "trig": ("application/trig", "TriG")}  # records only
ALIASES = {"turtle": "ttl", "json-ld": "jsonld", "json": "jsonld", "ntriples": "nt", "xml": "rdf", "rdfxml": "rdf",
           "nquads": "nq"}
# media type -> format, in the server's order of preference (ties in Accept go to the first)
OFFERS = ({t: f for f, (t, _label) in FORMATS.items()} | {"application/json": "jsonld", "application/xhtml+xml": "html",
                                                          "text/plain": "nt"}   # N-Triples' old type (rdflib asks it)
          | {t: f for f, (t, _label) in GRAPH_FORMATS.items()})
CONTENT_TYPES = {"html": "text/html; charset=utf-8", "ttl": "text/turtle; charset=utf-8",
                 "jsonld": "application/ld+json", "nt": "application/n-triples",
                 "rdf": "application/rdf+xml; charset=utf-8", "nq": "application/n-quads",
                 "trig": "application/trig; charset=utf-8", "text/plain": "text/plain; charset=utf-8"}
JSONLD = "http://www.w3.org/ns/json-ld#"
FILE_TYPES = {".ttl": "text/turtle; charset=utf-8", ".nt": "application/n-triples", ".nq": "application/n-quads",
              ".jsonld": "application/ld+json", ".xml": "application/rdf+xml", ".txt": "text/plain; charset=utf-8",
              ".json": "application/json", ".gz": "application/gzip"}
PATH_SAFE = "/-._~!$&'()*+,;=:@"
PAGE_SIZE = 100
VOID_PREFIXES = {"void": "http://rdfs.org/ns/void#", "dcat": "http://www.w3.org/ns/dcat#",
                 "dcterms": "http://purl.org/dc/terms/"}


def text(status: str, message: str, *headers: tuple[str, str]) -> Response:
    return status, [("Content-Type", "text/plain; charset=utf-8"), *headers], (message + "\n").encode()


class Refused(Exception):
    """A request answered before it is handled; ``response`` says why."""

    def __init__(self, response: Response) -> None:
        super().__init__(response[0])
        self.response = response


def read_body(environ: dict, limit: int, timeout: float) -> bytes:
    """The request body (``Content-Length`` bytes) if it is at most ``limit`` bytes and has arrived
    ``timeout`` seconds after the request head, whatever pace it comes at; else Refused (413, 408, 400)."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise Refused(text("400 Bad Request", "Content-Length is not a number")) from None
    if length > limit:
        raise Refused(text("413 Content Too Large", f"request body too large (more than {limit} bytes)"))
    sock = environ.get("gunicorn.socket")
    late = threading.Event()

    def cut() -> None:  # wakes the read: the socket reads end of data from now on
        late.set()
        try:
            sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass
    timer = threading.Timer(timeout, cut) if sock is not None and length else None
    if timer:
        timer.start()
    try:
        body = environ["wsgi.input"].read(length)
    except OSError:
        body = b""
    finally:
        if timer:
            timer.cancel()
    if len(body) == length:
        return body
    if late.is_set():
        raise Refused(text("408 Request Timeout", f"the request body did not arrive within {timeout:g} s"))
    raise Refused(text("400 Bad Request", "the request body is shorter than its Content-Length"))


# -- content negotiation -----------------------------------------------------------------------

_RANGE = re.compile(r'(?:[^,"]|"(?:\\.|[^"\\])*")+')


def parse_accept(header: str | None) -> list[tuple[str, str, float]]:
    """(type, subtype, q) of each media range of an Accept header; malformed ranges are skipped."""
    if header is None or not header.strip():
        return [("*", "*", 1.0)]
    out = []
    for part in _RANGE.findall(header):
        fields = [f.strip() for f in part.split(";")]
        kind, _, sub = fields[0].lower().partition("/")
        if not kind or not sub or (kind == "*" and sub != "*"):
            continue
        q = 1.0
        for f in fields[1:]:
            name, _, value = f.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = -1.0
                break  # what follows q is accept-extensions
        if 0 <= q <= 1:
            out.append((kind, sub, q))
    return out


def negotiate(accept: str | None, offers: Sequence[str]) -> str | None:
    """The offer the client prefers: each offer gets the q of its most specific matching range
    (type/subtype > type/* > */*); q=0 excludes it; ties go to the earlier offer. None: nothing fits."""
    ranges = parse_accept(accept)
    best: tuple[float, int] | None = None
    for i, offer in enumerate(offers):
        kind, _, sub = offer.lower().partition("/")
        match: tuple[int, float] | None = None
        for rk, rs, q in ranges:
            if rk in ("*", kind) and rs in ("*", sub):
                specificity = (rk != "*") + (rs != "*")
                if match is None or specificity > match[0]:
                    match = (specificity, q)
        if match and match[1] > 0 and (best is None or match[1] > best[0]):
            best = (match[1], i)
    return offers[best[1]] if best else None


def media_params(accept: str | None, media: str) -> dict[str, str]:
    """The parameters (those before q) of the range of ``accept`` naming ``media`` itself, the one with the
    highest q if there are several; {} if none names it."""
    best: tuple[float, dict[str, str]] = (-1.0, {})
    for part in _RANGE.findall(accept or ""):
        fields = [f.strip() for f in part.split(";")]
        if fields[0].lower() != media:
            continue
        params, q = {}, 1.0
        for f in fields[1:]:
            name, _, value = f.partition("=")
            name, value = name.strip().lower(), value.strip()
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = -1.0
                break
            params[name] = value[1:-1] if len(value) > 1 and value[0] == value[-1] == '"' else value
        if q > best[0]:
            best = (q, params)
    return best[1]


def jsonld_profile(accept: str | None) -> str:
    """The JSON-LD form the ``profile`` of ``application/ld+json`` in ``accept`` asks for: "expanded",
    "flattened" (compacted, under ``@graph``) or "compacted"; "" when it names none of them."""
    asked = media_params(accept, "application/ld+json").get("profile", "").split()
    return next((form for form in ("expanded", "flattened", "compacted") if JSONLD + form in asked), "")


def not_modified(environ: dict, etag: str, last_modified: int | None) -> bool:
    """If-None-Match (weak comparison, ``*``) or, without it, If-Modified-Since."""
    inm = environ.get("HTTP_IF_NONE_MATCH")
    if inm is not None:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or etag.removeprefix("W/") in tags
    ims = environ.get("HTTP_IF_MODIFIED_SINCE")
    if ims and last_modified is not None:
        try:
            return last_modified <= parsedate_to_datetime(ims).timestamp()
        except (TypeError, ValueError):
            return False
    return False


def http_date(ts: float) -> str:
    return formatdate(ts, usegmt=True)


# -- the site ----------------------------------------------------------------------------------

class LinkedData:
    """The WSGI handler for every path that is not /oai or /sparql."""

    def __init__(self, root: Path, store: "StoreSync | None" = None) -> None:
        from .sparql import StoreSync
        self.cfg = config_mod.load(root)
        self.mappings = Mappings(self.cfg.mapping_dir, self.cfg.values, self.cfg.iri_schemes)
        self.store = store or StoreSync(self.cfg)
        self.base = self.cfg.base_uri
        self.mount = urlsplit(self.base).path or "/"
        self.compactor = Compactor(SimpleNamespace(mappings=self.mappings))
        self.void_compactor = Compactor(SimpleNamespace(mappings=SimpleNamespace(
            prefixes={**VOID_PREFIXES, **self.mappings.prefixes}, entities={})))
        self.templates: dict[str, tuple[str, str]] = {}  # entity -> (IRI before the id, after it)
        marker = "\ue000"
        for entity in self.mappings.entities:
            probe = self.mappings.iri_for(entity, marker, self.base) or ""
            for form in (marker, quote(marker)):
                if form in probe and probe.startswith(self.base):
                    before, after = probe.split(form, 1)
                    self.templates[entity] = (unquote(before), unquote(after))
        self.site = html.Site(self.cfg.values.get("name", "heritage-ld"), self.mount,
                              [("Dataset description", self.mount + "dataset"), ("SPARQL", "/sparql"),
                               ("OAI-PMH", "/oai?verb=Identify")], {**VOID_PREFIXES, **self.mappings.prefixes})

    @property
    def db(self):
        return self.store.db

    # -- routing -----------------------------------------------------------------------------
    def handle(self, environ: dict) -> Response:
        if environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
            return text("405 Method Not Allowed", "use GET", ("Allow", "GET, HEAD"))
        path = environ.get("PATH_INFO") or "/"
        try:  # WSGI carries the path's bytes as latin-1
            path = path.encode("latin-1").decode("utf-8")
        except UnicodeError:
            return text("400 Bad Request", "the path is not UTF-8")
        rel = path[len(self.mount):] if path.startswith(self.mount) else path.lstrip("/")
        if rel == "":
            return self.home(environ)
        if rel in ("dataset", ".well-known/void"):
            return self.dataset(environ, path)
        if rel.endswith("/") and rel[:-1] in self.mappings.entities:
            return self.index(environ, rel[:-1])
        found = self.find_record(rel)
        if found:
            return self.record(environ, path, *found)
        if rel.startswith("graph/") and rel.count("/") >= 2:  # a record's named graph
            _graph, entity, rid = rel.split("/", 2)
            row = self.row(entity, rid) if entity in self.mappings.entities else None
            if row:
                return self.record(environ, path, entity, rid, "", row, at_graph=True)
        served = self.file(environ, rel)
        if served:
            return served
        raw = urlsplit(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "").path  # as sent, if known
        candidates = ([self.base + raw[len(self.mount):]] if raw.startswith(self.mount) else []) + \
            [self.base + quote(rel, safe=PATH_SAFE)]
        for iri in dict.fromkeys(candidates):
            triples, keys = self.describe(iri)
            if triples:
                return self.represent(environ, path, iri, triples, keys)
        if rel.startswith("dataset/"):  # class partitions of the dataset description
            found = self.dataset(environ, path, iri)
            if not found[0].startswith("404"):
                return found
        return text("404 Not Found", f"nothing is published at {path}")

    def find_record(self, rel: str) -> tuple[str, str, str, tuple] | None:
        """(entity, id, main IRI, catalog row) of the record this path names, live or withdrawn."""
        target = self.base + rel
        for entity, (before, after) in self.templates.items():
            if target.startswith(before) and target.endswith(after) and len(target) > len(before) + len(after):
                rid = target[len(before):len(target) - len(after)]
                iri = self.mappings.iri_for(entity, rid, self.base)
                row = self.row(entity, rid) if iri and unquote(iri) == target else None
                if row:
                    return entity, rid, iri, row
        entity, _, rid = rel.partition("/")  # records with IRIs elsewhere: /<entity>/<id>
        if entity in self.mappings.entities and rid and entity not in self.templates:
            row = self.row(entity, rid)
            iri = self.mappings.iri_for(entity, rid, self.base)
            if row and iri:
                return entity, rid, iri, row
        return None

    def row(self, entity: str, rid: str) -> tuple | None:
        return self.db.execute("SELECT hash, last_changed, deleted, triples, source, mapping, fragments, frag_key "
                               "FROM records WHERE entity = ? AND id = ?", (entity, rid)).fetchone()

    def href(self, iri: str) -> str:
        """Where a page links for ``iri``: its path here if under the base, else the IRI itself."""
        if iri.startswith(self.base):
            parts = urlsplit(iri)
            return parts.path + (f"?{parts.query}" if parts.query else "") + (f"#{parts.fragment}" if parts.fragment else "")
        return iri

    def record_href(self, entity: str, rid: str) -> str:
        iri = self.mappings.iri_for(entity, rid, self.base) or ""
        return self.href(iri) if entity in self.templates else f"{self.mount}{entity}/{quote(rid, safe='')}"

    def graph_key(self, graph: str) -> tuple[str, str] | None:
        prefix = self.base + "graph/"
        if not graph.startswith(prefix) or "/" not in graph[len(prefix):]:
            return None
        entity, rid = graph[len(prefix):].split("/", 1)
        return entity, unquote(rid)

    # -- the store -----------------------------------------------------------------------------
    def describe(self, iri: str, limit: int = 2000) -> tuple[list[Triple], set[tuple[str, str]]]:
        """The triples about ``iri`` in the live records, and the records they come from."""
        try:
            node = ox.NamedNode(iri)
        except ValueError:
            return [], set()
        triples, keys = set(), set()
        for q in islice(self.store.store().quads_for_pattern(node, None, None, None), limit):
            triples.add((str(q.subject), str(q.predicate), str(q.object)))
            if isinstance(q.graph_name, ox.NamedNode) and (key := self.graph_key(q.graph_name.value)):
                keys.add(key)
        return sorted(triples), keys

    def linked_from(self, iri: str, own: tuple[str, str] | None, limit: int = 200) -> list[tuple[tuple[str, str], str]]:
        """(record key, predicate IRI) of other records whose triples point at ``iri``."""
        out: dict[tuple[str, str], str] = {}
        for q in self.store.store().quads_for_pattern(None, None, ox.NamedNode(iri), None):
            key = self.graph_key(q.graph_name.value) if isinstance(q.graph_name, ox.NamedNode) else None
            if key and key != own and key not in out:
                out[key] = q.predicate.value
                if len(out) == limit:
                    break
        return sorted(out.items())

    def stamps(self, keys: set[tuple[str, str]]) -> list[tuple[str, int]]:
        return sorted(r for k in keys if (r := self.db.execute(
            "SELECT hash, last_changed FROM records WHERE entity = ? AND id = ? AND deleted = 0", k).fetchone()))

    # -- representations -----------------------------------------------------------------------
    def choose(self, environ: dict, formats: dict[str, tuple[str, str]]) -> tuple[str | None, str, bool]:
        """(format, media type, given by ?format) among ``formats``; format None: nothing acceptable."""
        given = parse_qs(environ.get("QUERY_STRING", "")).get("format")
        if given:
            fmt = ALIASES.get(given[0], given[0])
            return (fmt, formats[fmt][0], True) if fmt in formats else (None, "", True)
        offers = [t for t, f in OFFERS.items() if f in formats]
        media = negotiate(environ.get("HTTP_ACCEPT"), offers)
        return (OFFERS[media], media, False) if media else (None, "", False)

    @staticmethod
    def not_acceptable(formats: dict[str, tuple[str, str]]) -> Response:
        return text("406 Not Acceptable", "available here: " + ", ".join(
            f"{t} (?format={f})" for f, (t, _) in formats.items()), ("Vary", "Accept"))

    def record(self, environ: dict, path: str, entity: str, rid: str, iri: str, row: tuple,
               at_graph: bool = False) -> Response:
        """The record's description at its IRI or (``at_graph``) its named graph's provenance at the graph's
        IRI; both offer the named graph itself as N-Quads and TriG."""
        hash_, last_changed, deleted, nt, source, mapping, fragments, frag_key = row
        if deleted:
            when = time.strftime("%Y-%m-%d", time.gmtime(last_changed))
            return text("410 Gone", f"{entity} {rid} was withdrawn on {when}", ("Last-Modified", http_date(last_changed)))
        triples = parse_nt(nt)
        stored = {"nt": nt.encode("utf-8")}   # what publish made of the record, where it is what would be made
        if fragments and frag_key == serialiser(self.cfg, self.mappings).key:
            stored["jsonld"] = unpack(fragments)["jsonld"]
        pub = SimpleNamespace(config=self.cfg)
        g = f"<{graph_iri(pub, entity, rid)}>"
        prov_row = SimpleNamespace(entity=entity, id=rid, source=source, last_changed=last_changed, mapping=mapping)
        prov = provenance(pub, g, prov_row)
        graph = (g, triples + prov)
        if at_graph:
            return self.represent(environ, path, g[1:-1], prov, {(entity, rid)}, graph=graph)
        return self.represent(environ, path, iri, triples, {(entity, rid)},
                              crumbs=[(entity, f"{self.mount}{entity}/")], graph=graph, stored=stored)

    def represent(self, environ: dict, path: str, iri: str, triples: list[Triple], keys: set[tuple[str, str]],
                  crumbs: list[tuple[str, str]] = (), stamp: tuple[str, int] | None = None,
                  compactor: Compactor | None = None, graph: tuple[str, list[Triple]] | None = None,
                  stored: dict[str, bytes] | None = None) -> Response:
        """``triples`` about ``iri`` in the negotiated format, with validators from ``keys`` (records) or ``stamp``;
        ``graph`` (graph IRI, its triples) is the named graph served as N-Quads or TriG; ``stored``: a
        record's N-Triples and JSON-LD document as publish stored them (the same bytes, not made again)."""
        stored = stored or {}
        formats = FORMATS | GRAPH_FORMATS if graph else FORMATS
        fmt, media, given = self.choose(environ, formats)
        if fmt is None:
            return self.not_acceptable(formats)
        profile = jsonld_profile(environ.get("HTTP_ACCEPT")) if fmt == "jsonld" and not given else ""
        body = b""
        if fmt == "jsonld" and profile in ("", "compacted") and "jsonld" in stored:
            body = stored["jsonld"]
        elif fmt == "jsonld" and profile != "expanded":
            doc = (compactor or self.compactor).document(triples)
            if profile == "flattened" and "@graph" not in doc:  # a flattened document always has @graph
                doc = {"@context": doc.pop("@context"), "@graph": [doc]}
            body = dumps(doc)
        if fmt == "html":  # rendered first: the linked records it shows are part of its validators
            view = html.RecordView(iri, triples, lambda i: self._describe_into(i, keys), self.href, self.site)
            # its JSON-LD, for search engines: the record and the names, types and files of what it links to
            body = dumps((compactor or self.compactor).document(triples + view.linked()))
            own = next(iter(keys)) if len(keys) == 1 else None
            refs = self.linked_from(iri, own) if own else []
            keys |= {k for k, _p in refs}
            ref_list = [(self.mappings.iri_for(k[0], k[1], self.base) or "", p) for k, p in refs]
            links = [(label, f"?format={f}", t) for f, (t, label) in formats.items()]
            body = html.record_page(view, body.decode("utf-8"), links, ref_list, crumbs).encode("utf-8")
        ctype = CONTENT_TYPES.get(media, CONTENT_TYPES[fmt])
        if profile:
            ctype += f'; profile="{JSONLD}{profile}' + (f' {JSONLD}compacted"' if profile == "flattened" else '"')
        stamps = self.stamps(keys) if stamp is None else [stamp]
        last = max((lc for _h, lc in stamps), default=None)
        digest = hashlib.sha256(json.dumps([__version__, ctype, stamps]).encode()).hexdigest()[:32]
        etag = f'"{digest}-{fmt}"'
        headers = [("Vary", "Accept"), ("ETag", etag), ("Cache-Control", "public, no-cache")]
        if fmt != "jsonld":  # pyld (3.3) fails to load a JSON-LD document sent with several rel="alternate" links
            headers.append(("Link", ", ".join(f'<?format={f}>; rel="alternate"; type="{t}"'
                                              for f, (t, _) in formats.items())))
        if last is not None:
            headers.append(("Last-Modified", http_date(last)))
        if not given:
            headers.append(("Content-Location", f"{quote(path, safe=PATH_SAFE)}?format={fmt}"))
        if not_modified(environ, etag, last):
            return "304 Not Modified", headers, b""
        if fmt == "ttl":
            body = turtle(triples, self.site.prefixes)
        elif fmt == "nt":
            body = stored.get("nt") or nt_lines(sorted(triples)).encode("utf-8")
        elif fmt in ("rdf", "jsonld") and not body:  # RDF/XML, and expanded JSON-LD
            quads = ox.parse(nt_lines(sorted(triples)).encode("utf-8"), format=ox.RdfFormat.N_TRIPLES)
            body = ox.serialize(quads, format=ox.RdfFormat.RDF_XML if fmt == "rdf" else ox.RdfFormat.JSON_LD,
                                prefixes=self.site.prefixes if fmt == "rdf" else None) or b""
        elif fmt in ("nq", "trig"):
            g, graph_triples = graph
            nq = "".join(f"{s} {p} {o} {g} .\n" for s, p, o in sorted(set(graph_triples))).encode("utf-8")
            body = nq if fmt == "nq" else ox.serialize(ox.parse(nq, format=ox.RdfFormat.N_QUADS),
                                                       format=ox.RdfFormat.TRIG, prefixes=self.site.prefixes) or b""
        return "200 OK", [("Content-Type", ctype), *headers], body

    def _describe_into(self, iri: str, keys: set[tuple[str, str]]) -> list[Triple]:
        triples, found = self.describe(iri)
        keys |= found
        return triples


    # -- pages ---------------------------------------------------------------------------------
    def html_only(self, environ: dict, body: str, validator: str) -> Response:
        if not negotiate(environ.get("HTTP_ACCEPT"), ["text/html", "application/xhtml+xml"]):
            return text("406 Not Acceptable", "available: text/html", ("Vary", "Accept"))
        etag = f'"{hashlib.sha256((__version__ + validator).encode()).hexdigest()[:32]}-html"'
        headers = [("Vary", "Accept"), ("ETag", etag), ("Cache-Control", "public, no-cache")]
        if not_modified(environ, etag, None):
            return "304 Not Modified", headers, b""
        return "200 OK", [("Content-Type", "text/html; charset=utf-8"), *headers], body.encode("utf-8")

    def label(self, iri: str) -> str | None:
        triples, _ = self.describe(iri, 200)
        lit = html.Graph(triples).literal(iri, html.LABELS, "en")
        return lit[0] if lit else None

    def index(self, environ: dict, entity: str) -> Response:
        try:
            page_no = max(1, int(parse_qs(environ.get("QUERY_STRING", "")).get("page", ["1"])[0]))
        except ValueError:
            return text("400 Bad Request", "page must be a number")
        count = self.db.execute("SELECT count(*) FROM records WHERE entity = ? AND deleted = 0", (entity,)).fetchone()[0]
        ids = [r[0] for r in self.db.execute("SELECT id FROM records WHERE entity = ? AND deleted = 0 ORDER BY id "
                                              "LIMIT ? OFFSET ?", (entity, PAGE_SIZE, (page_no - 1) * PAGE_SIZE))]
        if page_no > 1 and not ids:
            return text("404 Not Found", f"{entity} has no page {page_no}")
        items = [(self.label(self.mappings.iri_for(entity, rid, self.base) or "") or rid, self.record_href(entity, rid))
                 for rid in ids]
        prev_href = f"?page={page_no - 1}" if page_no > 1 else None
        next_href = f"?page={page_no + 1}" if page_no * PAGE_SIZE < count else None
        body = html.index_page(self.site, entity, count, items, page_no, prev_href, next_href)
        return self.html_only(environ, body, json.dumps(self.store.state()))

    def home(self, environ: dict) -> Response:
        counts = self.db.execute("SELECT entity, count(*) FROM records WHERE deleted = 0 GROUP BY entity "
                                 "ORDER BY entity").fetchall()
        types = [(e, n, f"{self.mount}{e}/") for e, n in counts]
        files = [(name, self.mount + name) for name in ("dataset.ttl", "dataset.jsonld", "dataset.nt", "dataset.nq",
                                                         "void.ttl", "context.jsonld") if (self.cfg.output / name).is_file()]
        if (self.cfg.output / "edm").is_dir():
            files.append(("edm/ (EDM RDF/XML for Europeana)", self.mount + "edm/"))
        body = html.home_page(self.site, self.cfg.values.get("description", ""), types, files)
        return self.html_only(environ, body, json.dumps(self.store.state()))

    def dataset(self, environ: dict, path: str, iri: str | None = None) -> Response:
        """VoID + DCAT (``output/void.ttl``, written by publish), negotiated like a record; with ``iri``
        only what it says about that resource (a class partition)."""
        void = self.cfg.output / "void.ttl"
        try:
            data = void.read_bytes()
            mtime = int(void.stat().st_mtime)
        except OSError:
            return text("404 Not Found", "no dataset description yet: run heritage-ld publish")
        triples = [(str(t.subject), str(t.predicate), str(t.object))
                   for t in ox.parse(data, format=ox.RdfFormat.TURTLE)]
        if iri:
            triples = [t for t in triples if t[0] == f"<{iri}>"]
            if not triples:
                return text("404 Not Found", f"nothing is published at {path}")
        return self.represent(environ, path, iri or self.base + "dataset", triples, set(),
                              stamp=(hashlib.sha256(data).hexdigest(), mtime), compactor=self.void_compactor)

    # -- files ---------------------------------------------------------------------------------
    def file(self, environ: dict, rel: str) -> Response | None:
        """A file (or folder listing) of the output folder; None if there is none at ``rel``, also when the
        file system cannot look the path up (a name too long, a symlink loop, no permission...)."""
        try:
            return self._file(environ, rel)
        except (OSError, ValueError, RuntimeError):  # RuntimeError: pathlib's resolve() on a symlink loop
            return None

    def _file(self, environ: dict, rel: str) -> Response | None:
        parts = [p for p in rel.split("/") if p]
        if not parts or any(p.startswith(".") or "\x00" in p or "\\" in p for p in parts):
            return None
        out = self.cfg.output.resolve()
        path = out.joinpath(*parts).resolve()
        if not path.is_relative_to(out) or path == out:
            return None
        if path.is_dir():
            if not rel.endswith("/"):
                return "301 Moved Permanently", [("Location", quote(self.mount + rel, safe=PATH_SAFE) + "/")], b""
            entries = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir() if not p.name.startswith("."))
            body = html.listing_page(self.site, rel, [(n, quote(n, safe="/")) for n in entries])
            return self.html_only(environ, body, rel + json.dumps(self.store.state()))
        fh = open(path, "rb")
        try:
            st = os.fstat(fh.fileno())
        except OSError:
            fh.close()
            raise
        etag = f'"{st.st_size:x}-{st.st_mtime_ns:x}"'
        headers = [("ETag", etag), ("Last-Modified", http_date(st.st_mtime)), ("Cache-Control", "public, no-cache")]
        if not_modified(environ, etag, int(st.st_mtime)):
            fh.close()
            return "304 Not Modified", headers, b""
        ctype = FILE_TYPES.get(path.suffix, "application/octet-stream")
        return "200 OK", [("Content-Type", ctype), *headers], (fh, st.st_size)
