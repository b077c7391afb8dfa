"""The SPARQL endpoint (``/sparql``, SPARQL 1.1 Protocol, read-only) and the store behind it.

**Store.** An embedded pyoxigraph store in ``.heritage-ld/store/`` holds one named graph per live
record (``writers.rdf.graph_iri``, with the record's PROV-O triples as in ``dataset.nq``); queries
see the union of the graphs as their default graph (kept as the store's default graph, each triple once). The store is written as immutable
*generations* (``gen-000001/`` ...): a sync takes a hard-link backup of the current generation,
applies only the records changed since (``last_changed`` >= the oldest new run of ``publish``),
and then points ``current.json`` at it. Readers (every server process and every query process)
open a generation read-only and never see it written to. A sync runs at server start and, when
the catalog changed (``PRAGMA data_version``, then the state (last run, count, max datestamp)),
on the next request; a file lock makes one process do it.

**Queries** run in query processes (fresh interpreters, so they inherit no store handle), at most
``concurrency`` at once in the whole server (503 + Retry-After beyond), each killed at the time limit
(503). Results are limited to ``max_results`` rows or triples: a larger result is refused with 413 and
a message, never silently truncated. SPARQL Update is refused (403); the store is opened read-only
anyway. Federated queries (``SERVICE``) are refused (400) unless ``service_endpoints`` lists the
endpoint; the query processes cannot open sockets (seccomp), except the one a listed federated query
runs in. Settings: ``[sparql] timeout`` (seconds, default 10), ``max_results`` (default 10000),
``concurrency`` (default 2), ``service_endpoints`` and ``allow_addresses`` in heritage-ld.toml.
"""
from __future__ import annotations

import csv
import ctypes
import errno
import fcntl
import io
import ipaddress
import json
import math
import os
import pickle
import re
import select
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape as xml_escape, quoteattr

import pyoxigraph as ox

from . import config as config_mod
from .linkeddata import Refused, Response, negotiate, read_body, text
from .terms import is_iri, parse_nt
from .writers.rdf import graph_iri, provenance

RESULT_TYPES = {  # SELECT / ASK, in order of preference
    "application/sparql-results+json": "json", "application/sparql-results+xml": "xml",
    "text/csv": "csv", "text/tab-separated-values": "tsv", "application/json": "json", "application/xml": "xml"}
GRAPH_TYPES = {  # CONSTRUCT / DESCRIBE
    "text/turtle": ox.RdfFormat.TURTLE, "application/n-triples": ox.RdfFormat.N_TRIPLES,
    "application/rdf+xml": ox.RdfFormat.RDF_XML, "application/ld+json": ox.RdfFormat.JSON_LD}
CONTENT_TYPES = {"json": "application/sparql-results+json", "xml": "application/sparql-results+xml; charset=utf-8",
                 "csv": "text/csv; charset=utf-8", "tsv": "text/tab-separated-values; charset=utf-8"}
MAX_QUERY = 256 * 1024
XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"
# the first keyword after the prologue (comments, BASE, PREFIX) of an update request
_PROLOGUE = re.compile(r"(?:\s+|#[^\n]*|BASE\s*<[^>]*>|PREFIX\s*[^\s:]*:\s*<[^>]*>)*", re.I)
_UPDATE = re.compile(r"(INSERT|DELETE|LOAD|CLEAR|CREATE|DROP|COPY|MOVE|ADD|WITH)\b", re.I)


def is_update(query: str) -> bool:
    """True if ``query`` is a SPARQL Update request (its first keyword after the prologue)."""
    return bool(_UPDATE.match(query, _PROLOGUE.match(query).end()))


# SPARQL's lexical tokens, as far as finding the SERVICE keyword needs them (SPARQL 1.1 grammar, section 19.8).
# A "run" is a keyword, a prefixed name, a number or a language tag (with the \-escapes of local names).
_TOKENS = re.compile("|".join([
    r'(?P<iri><(?:[^<>"{}|^`\\\x00-\x20]|\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8})*>)',
    r"(?P<string>'''(?:'{0,2}(?:[^'\\]|\\.))*'''" "|" r'"""(?:"{0,2}(?:[^"\\]|\\.))*"""'
    r"""|'(?:[^'\\\n\r]|\\.)*'|"(?:[^"\\\n\r]|\\.)*")""",
    r"(?P<skip>#[^\n\r]*|\s+)",
    r"""(?P<var>[?$][^\s<>"'{}()\[\],;.#=!&|+*/^-]*)""",
    r"""(?P<run>(?:[^\s<>"'{}()\[\],;#=!&|+*/^?$\\]|\\.)+)""",
    r"(?P<other>.)"]), re.S)
# what a "<" read as an IRI could hide where a parser reads it as "less than": ...)SERVICE?var #>
_HIDDEN_SERVICE = re.compile(r"[{}.)\]]SERVICE[?$]", re.I)


def service_targets(query: str) -> list[str | None]:
    """The endpoint of each ``SERVICE`` in ``query``: the IRI written as ``<...>`` after it, or None (a
    variable, a prefixed name, anything else). Errs towards finding one (the word SERVICE outside strings,
    IRIs, comments and prefixed names); the query process cannot open sockets anyway."""
    tokens = [(m.lastgroup, m.group()) for m in _TOKENS.finditer(query) if m.lastgroup != "skip"]
    found: list[str | None] = []
    for i, (kind, value) in enumerate(tokens):
        if kind == "iri" and _HIDDEN_SERVICE.search(value):
            found.append(None)
        elif kind == "run" and ":" not in value and "service" in re.split(r"[.-]", value.lower()):
            after = tokens[i + 1:i + 3]
            if after and after[0][0] == "run" and after[0][1].lower() == "silent":
                after = after[1:]
            found.append(after[0][1][1:-1] if after and after[0][0] == "iri" else None)
    return found


# -- the store ---------------------------------------------------------------------------------

class StoreSync:
    """The catalog's records in an on-disk pyoxigraph store, one read-only handle per process."""

    KEEP = 3  # generations kept on disk (readers still on an older one switch on their next request)

    def __init__(self, cfg: config_mod.Config) -> None:
        self.cfg = cfg
        self.dir = cfg.catalog.parent / "store"
        self._pid: int | None = None
        self._db: sqlite3.Connection | None = None
        self._version: int | None = None
        self._gen: str | None = None
        self._store: ox.Store | None = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._pid != os.getpid():  # never share a connection or a store handle across fork
            self._db = sqlite3.connect(self.cfg.catalog, isolation_level=None)
            self._db.execute("PRAGMA query_only = ON")
            self._pid, self._version, self._gen, self._store = os.getpid(), None, None, None
        return self._db

    def state(self) -> list[int]:
        """What the store must have been synced from: last run, record count, latest datestamp."""
        return list(self.db.execute("SELECT (SELECT coalesce(max(rowid), 0) FROM runs), count(*), "
                                    "coalesce(max(last_changed), 0) FROM records").fetchone())

    def current(self) -> dict | None:
        try:
            return json.loads((self.dir / "current.json").read_text())
        except (OSError, ValueError):
            return None

    def path(self) -> Path:
        """The current generation (synced with the catalog), for a process that opens it itself."""
        self.store()
        return self.dir / str(self._gen)

    def store(self) -> ox.Store:
        """This process's read-only handle on the current generation, synced first if needed (cheap when
        nothing changed: one ``PRAGMA data_version``)."""
        version = self.db.execute("PRAGMA data_version").fetchone()[0]
        if self._store is not None and version == self._version:
            return self._store
        cur = self.current()
        if cur is None or cur["state"] != self.state():
            cur = self.sync()
        if cur["gen"] != self._gen:
            self._store, self._gen = ox.Store.read_only(str(self.dir / cur["gen"])), cur["gen"]
        self._version = version
        return self._store

    def sync(self) -> dict:
        """Bring the store up to the catalog; returns the new ``current.json``.

        Runs in a fresh interpreter: RocksDB cannot write (flush hangs) in a process forked from one
        that already used it, which is what gunicorn workers are."""
        r = subprocess.run([sys.executable, "-m", "heritage_ld.sparql", "sync", str(self.cfg.root.resolve())],
                           capture_output=True, text=True, env=child_env())
        cur = self.current()
        if r.returncode or cur is None:
            raise RuntimeError(f"syncing the SPARQL store failed: {r.stderr.strip()[-2000:]}")
        return cur

    def sync_here(self) -> dict:
        """The sync itself, under a file lock (only in a process that has not forked from a RocksDB user)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            cur = self.current()
            gens = sorted(p.name for p in self.dir.glob("gen-*"))
            if cur is not None and cur["gen"] not in gens:
                cur = None
            keep = gens.index(cur["gen"]) - self.KEEP + 1 if cur else len(gens)
            for i, name in enumerate(gens):  # leftovers of a sync that crashed, and old generations
                if i < keep or (cur and name > cur["gen"]):
                    shutil.rmtree(self.dir / name, ignore_errors=True)
            db = self.db
            db.execute("BEGIN")  # one snapshot for the state and the rows
            try:
                state = self.state()
                if cur is not None and cur["state"] == state:
                    return cur
                since = None
                if cur is not None:
                    since = db.execute("SELECT min(started) FROM runs WHERE rowid > ?", (cur["state"][0],)).fetchone()[0]
                full = since is None  # no new run (catalog replaced or edited by hand): rebuild
                rows = db.execute("SELECT entity, id, source, last_changed, deleted, triples, mapping FROM records"
                                  + ("" if full else " WHERE last_changed >= ?"), () if full else (since,)).fetchall()
            finally:
                db.execute("COMMIT")
            gen = f"gen-{int(cur['gen'][4:]) + 1 if cur else 1:06d}"
            if not full:
                ox.Store.read_only(str(self.dir / cur["gen"])).backup(str(self.dir / gen))
            store = ox.Store(str(self.dir / gen))
            self._load(store, rows, full)
            store.flush()
            del store
            new = {"gen": gen, "state": state}
            tmp = self.dir / f".current.{os.getpid()}"
            tmp.write_text(json.dumps(new))
            os.replace(tmp, self.dir / "current.json")
            return new

    def _load(self, store: ox.Store, rows: list[tuple], full: bool, chunk: int = 5000) -> None:
        """Replace the graphs of ``rows``. Every triple is also in the default graph, once: that is the
        union default graph queries see (pyoxigraph 0.5's own union repeats a triple once per graph
        holding it, oxigraph issue #1919)."""
        pub = SimpleNamespace(config=self.cfg)
        for i in range(0, len(rows), chunk):
            batch = rows[i:i + chunk]
            if not full:  # drop the old versions; a triple leaves the default graph when no graph has it
                for entity, rid, *_rest in batch:
                    g = ox.NamedNode(graph_iri(pub, entity, rid))
                    old = list(store.quads_for_pattern(None, None, None, g))
                    store.remove_graph(g)
                    for q in old:
                        if not any(isinstance(o.graph_name, ox.NamedNode)
                                   for o in store.quads_for_pattern(q.subject, q.predicate, q.object, None)):
                            store.remove(ox.Quad(q.subject, q.predicate, q.object, ox.DefaultGraph()))
            lines = []
            for entity, rid, source, last_changed, deleted, triples, mapping in batch:
                if deleted:
                    continue
                g = f"<{graph_iri(pub, entity, rid)}>"
                row = SimpleNamespace(entity=entity, id=rid, source=source, last_changed=last_changed, mapping=mapping)
                for s, p, o in parse_nt(triples) + provenance(pub, g, row):
                    lines.append(f"{s} {p} {o} {g} .\n{s} {p} {o} .\n")
            data = "".join(lines).encode("utf-8")
            if data:
                (store.bulk_load if full else store.load)(data, ox.RdfFormat.N_QUADS)


# -- the endpoint ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Settings:
    timeout: float = 10.0
    max_results: int = 10000
    concurrency: int = 2                          # queries at once (the whole server)
    service_endpoints: tuple[str, ...] = ()       # federated queries may call these (SERVICE <IRI>)
    allow_addresses: tuple[str, ...] = ()         # private addresses those endpoints may resolve to


def settings(cfg: config_mod.Config) -> Settings:
    """``[sparql]`` in heritage-ld.toml: timeout (seconds), max_results, concurrency, service_endpoints,
    allow_addresses."""
    path = cfg.root / "heritage-ld.toml"
    section = tomllib.loads(path.read_text("utf-8")).get("sparql", {})
    timeout, limit = section.get("timeout", 10), section.get("max_results", 10000)
    concurrency = section.get("concurrency", 2)
    endpoints, allow = section.get("service_endpoints", []), section.get("allow_addresses", [])
    if not isinstance(timeout, (int, float)) or not 0 < timeout <= 50:
        raise config_mod.ConfigError(f"{path}: [sparql] timeout must be a number of seconds from 0 to 50 "
                                     "(gunicorn stops a worker after 60)")
    if not isinstance(limit, int) or not 1 <= limit <= 10_000_000:
        raise config_mod.ConfigError(f"{path}: [sparql] max_results must be a positive integer")
    if not isinstance(concurrency, int) or not 1 <= concurrency <= 64:
        raise config_mod.ConfigError(f"{path}: [sparql] concurrency must be a whole number from 1 to 64 "
                                     "(queries at once)")
    if not isinstance(endpoints, list) or not all(isinstance(e, str) and e.startswith(("http://", "https://"))
                                                  and is_iri(e) for e in endpoints):
        raise config_mod.ConfigError(f"{path}: [sparql] service_endpoints must be a list of http(s) IRIs, "
                                     'e.g. ["https://query.wikidata.org/sparql"]')
    try:
        for a in allow:
            ipaddress.ip_network(a, strict=False)
    except (TypeError, ValueError):
        raise config_mod.ConfigError(f"{path}: [sparql] allow_addresses must be a list of IP addresses or "
                                     'networks, e.g. ["10.0.0.5"]') from None
    return Settings(float(timeout), limit, concurrency, tuple(endpoints), tuple(allow))


class Endpoint:
    """SPARQL 1.1 Protocol: GET ?query=, POST form or application/sparql-query; read-only; no SERVICE
    (federated queries) but to the endpoints ``[sparql] service_endpoints`` lists."""

    def __init__(self, sync: StoreSync, prefixes: dict[str, str] | None = None, body_timeout: float = 10.0) -> None:
        self.sync = sync
        self.settings = settings(sync.cfg)
        self.prefixes = dict(prefixes or {})
        self.pool = QueryPool(self.settings.concurrency, sync.dir.parent / "sparql-slots")
        self.body_timeout = body_timeout

    def handle(self, environ: dict) -> Response:
        method = environ["REQUEST_METHOD"]
        params = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if method == "POST":
            ctype = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
            if ctype == "application/sparql-update":
                return self.refuse_update()
            if ctype not in ("application/sparql-query", "application/x-www-form-urlencoded"):
                return text("415 Unsupported Media Type", "POST a query as application/sparql-query or as "
                            "application/x-www-form-urlencoded (query=...)")
            try:
                body = read_body(environ, MAX_QUERY, self.body_timeout).decode("utf-8", "replace")
            except Refused as e:
                return e.response
            if ctype == "application/sparql-query":
                params["query"] = params.get("query", []) + [body]
            else:
                for k, v in parse_qs(body, keep_blank_values=True).items():
                    params.setdefault(k, []).extend(v)
        elif method not in ("GET", "HEAD"):
            return text("405 Method Not Allowed", "use GET or POST", ("Allow", "GET, HEAD, POST"))
        if "update" in params:
            return self.refuse_update()
        queries = params.get("query", [])
        if not queries:
            return self.description(environ)
        if len(queries) > 1:
            return text("400 Bad Request", "give exactly one query parameter")
        query = queries[0]
        if is_update(query):
            return self.refuse_update()
        refused = self.refuse_service(query)
        if refused:
            return refused
        for g in params.get("default-graph-uri", []) + params.get("named-graph-uri", []):
            try:
                ox.NamedNode(g)
            except ValueError:
                return text("400 Bad Request", f"default-graph-uri / named-graph-uri must be IRIs: {g!r}")
        accept = environ.get("HTTP_ACCEPT")
        result_type = negotiate(accept, list(RESULT_TYPES))
        graph_type = negotiate(accept, list(GRAPH_TYPES))
        if not result_type and not graph_type:
            return text("406 Not Acceptable", "available: " + ", ".join([*RESULT_TYPES, *GRAPH_TYPES]))
        job = (str(self.sync.path()), query, self.sync.cfg.base_uri, self.prefixes,
               params.get("default-graph-uri", []), params.get("named-graph-uri", []),
               RESULT_TYPES.get(result_type or ""), graph_type, self.settings.max_results)
        return self.run(job, federated=bool(service_targets(query)))

    def refuse_service(self, query: str) -> Response | None:
        """400 for a federated query (SERVICE), unless every endpoint it calls is in ``service_endpoints``
        and resolves to public addresses (or ones in ``allow_addresses``)."""
        targets = service_targets(query)
        allowed = self.settings.service_endpoints
        for target in targets:
            if target is None or target not in allowed:
                what = f"<{target}>" if target else "an endpoint given by a variable or a prefixed name"
                return text("400 Bad Request", f"federated queries (SERVICE) are not allowed here: {what} is not "
                            + (f"one of the endpoints this server may call ({', '.join(allowed)}; write it as a "
                               "full <IRI>)" if allowed else "allowed (this endpoint answers from its own data only)"))
        from .httpsource import check_public_address
        from .sources import InputError
        for target in dict.fromkeys(targets):
            try:
                check_public_address(target, list(self.settings.allow_addresses),
                                     "list it in [sparql] allow_addresses if the endpoint is meant to be there")
            except InputError as e:
                return text("400 Bad Request", f"federated query refused: {e}")
        return None

    def run(self, job: tuple, federated: bool = False) -> Response:
        headers = [("Vary", "Accept"), ("Cache-Control", "no-store")]
        plain = "text/plain; charset=utf-8"
        try:
            status, ctype, body = self.pool.run(job, self.settings.timeout, federated)
        except Busy:
            wait = math.ceil(self.settings.timeout)
            return ("503 Service Unavailable", [("Content-Type", plain), ("Retry-After", str(wait)), *headers],
                    f"the SPARQL endpoint is busy (it runs {self.settings.concurrency} queries at once); "
                    f"try again in {wait} s\n".encode())
        except TimeoutError:
            status, ctype, body = ("503 Service Unavailable", plain,
                                   f"query stopped: it ran longer than the {self.settings.timeout:g} s limit of this "
                                   "endpoint; make it more selective or add a LIMIT\n".encode())
        except (OSError, EOFError, pickle.UnpicklingError) as e:
            status, ctype, body = "500 Internal Server Error", plain, f"query evaluation failed: {e}\n".encode()
        return status, [("Content-Type", ctype), *headers], body

    @staticmethod
    def refuse_update() -> Response:
        return text("403 Forbidden", "SPARQL Update is not allowed: this endpoint is read-only "
                    "(the data changes only through heritage-ld publish)")

    def description(self, environ: dict) -> Response:
        """No query: an HTML form for browsers, else a SPARQL service description (Turtle)."""
        base = self.sync.cfg.base_uri
        kind = negotiate(environ.get("HTTP_ACCEPT"), ["text/html", "text/turtle"])
        if kind == "text/html":
            from .html import sparql_form
            body = sparql_form(self.sync.cfg.values.get("name", "heritage-ld"), self.prefixes)
            return "200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Vary", "Accept")], body.encode()
        sd = "http://www.w3.org/ns/sparql-service-description#"
        ttl = (f"@prefix sd: <{sd}> .\n[] a sd:Service ;\n  sd:endpoint <{base}sparql> ;\n"
               "  sd:supportedLanguage sd:SPARQL11Query ;\n  sd:feature sd:UnionDefaultGraph ;\n"
               + "".join(f"  sd:resultFormat <http://www.w3.org/ns/formats/{f}> ;\n" for f in
                         ("SPARQL_Results_JSON", "SPARQL_Results_XML", "SPARQL_Results_CSV", "SPARQL_Results_TSV",
                          "Turtle", "N-Triples", "RDF_XML", "JSON-LD"))
               + "  sd:defaultDataset [ a sd:Dataset ; sd:defaultGraph [ a sd:Graph ] ] .\n")
        return "200 OK", [("Content-Type", "text/turtle; charset=utf-8"), ("Vary", "Accept")], ttl.encode()


# -- the query processes -----------------------------------------------------------------------

def child_env() -> dict[str, str]:
    """The environment for ``python -m heritage_ld.sparql``: this package importable whatever the install."""
    package_parent = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))}


class Busy(Exception):
    """Every query slot of the server is taken."""


class QueryPool:
    """At most ``size`` queries at once in the whole server: a query holds one of ``size`` slots, a lock
    on a file in ``folder`` (so the slots are shared by every server process, and a process that dies
    frees its own), and runs in that slot's query process of this server process. A query waits ``wait``
    seconds at most for a free slot, else Busy. A federated query runs in a process of its own that may
    open sockets, stopped after it."""

    def __init__(self, size: int, folder: Path, wait: float = 1.0) -> None:
        self.size, self.folder, self.wait = size, folder, wait
        self.workers: dict[int, QueryWorker] = {}

    def run(self, job: tuple, timeout: float, federated: bool = False) -> tuple[str, str, bytes]:
        slot, lock = self._take()
        try:
            if not federated:
                return self.workers.setdefault(slot, QueryWorker()).run(job, timeout)
            networked = QueryWorker(network=True)
            try:
                return networked.run(job, timeout)
            finally:
                networked.stop()
        finally:
            lock.close()  # releases the slot

    def _take(self) -> tuple[int, Any]:
        self.folder.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.wait
        while True:
            for slot in range(self.size):
                lock = open(self.folder / f"slot-{slot}", "ab")
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return slot, lock
                except BlockingIOError:
                    lock.close()
            if time.monotonic() >= deadline:
                raise Busy
            time.sleep(0.05)


class QueryWorker:
    """One long-lived query process (a fresh interpreter, so no RocksDB state is inherited across fork),
    fed one query at a time through pipes; killed and replaced when a query overruns its time, which is
    how a query is cancelled. It runs at the lowest CPU priority and, unless ``network``, cannot open sockets."""

    def __init__(self, network: bool = False) -> None:
        self.network = network
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None

    def run(self, job: tuple, timeout: float) -> tuple[str, str, bytes]:
        """(status, content type, body) of ``job``; TimeoutError after ``timeout`` seconds."""
        proc = self._start()
        data = pickle.dumps(job)
        try:
            proc.stdin.write(struct.pack(">Q", len(data)) + data)
            proc.stdin.flush()
            deadline = time.monotonic() + timeout
            size = struct.unpack(">Q", self._read(8, deadline))[0]
            return pickle.loads(self._read(size, deadline))
        except BaseException:
            self.stop()
            raise

    def _start(self) -> subprocess.Popen:
        if self.proc is None or self.pid != os.getpid() or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, "-m", "heritage_ld.sparql", "worker"]
                                         + (["--network"] if self.network else []), stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, env=child_env())
            self.pid = os.getpid()
            try:
                if self._read(1, time.monotonic() + 60) != b"R":
                    raise EOFError("the query process did not start")
            except BaseException:
                self.stop()
                raise
        return self.proc

    def _read(self, n: int, deadline: float) -> bytes:
        fd, buf = self.proc.stdout.fileno(), bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(fd, min(n - len(buf), 1 << 20))
            if not chunk:
                raise EOFError("the query process ended")
            buf += chunk
        return bytes(buf)

    def stop(self) -> None:
        if self.proc is not None and self.pid == os.getpid():
            self.proc.kill()
            self.proc.wait()
            self.proc.stdin.close()
            self.proc.stdout.close()
        self.proc = None


# seccomp-bpf: (audit arch, syscall numbers of socket and io_uring_setup) per machine
_SECCOMP_ARCH = {"x86_64": (0xC000003E, (41, 425)), "aarch64": (0xC00000B7, (198, 425))}


def forbid_sockets() -> bool:
    """From now on this process (and its threads) cannot make sockets: ``socket()`` fails with EACCES, so
    no query can reach the network, whatever it says. False where seccomp is not available (not Linux on
    x86-64 or arm64)."""
    arch, numbers = _SECCOMP_ARCH.get(os.uname().machine, (None, ()))
    if arch is None or not sys.platform.startswith("linux"):
        return False
    allow, deny = (0x06, 0, 0, 0x7FFF0000), (0x06, 0, 0, 0x00050000 | errno.EACCES)  # RET ALLOW / RET ERRNO
    checks = [(0x35, 0, 0, 0x40000000)] + [(0x15, 0, 0, nr) for nr in numbers]  # x32 calls, then JEQ each
    prog = [(0x20, 0, 0, 4), (0x15, 1, 0, arch), deny, (0x20, 0, 0, 0)]  # load arch (another ABI: deny), nr
    prog += [(code, len(checks) - i, 0, k) for i, (code, _jt, _jf, k) in enumerate(checks)] + [allow, deny]
    raw = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *insn) for insn in prog))

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    program = Program(len(prog), ctypes.addressof(raw))
    return (libc.prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS, then PR_SET_SECCOMP, SECCOMP_MODE_FILTER
            and libc.prctl(22, 2, ctypes.addressof(program), 0, 0) == 0)


def worker_main(network: bool = False) -> None:
    """``python -m heritage_ld.sparql worker [--network]``: evaluate length-prefixed pickled jobs from stdin."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops it (EOF on stdin, or kill)
    try:  # Linux: die with the server process, even in the middle of a query
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (AttributeError, OSError):
        pass
    try:  # the lowest CPU priority: the server's own routes (OAI-PMH, pages) always come first
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)
    if not network and not forbid_sockets():
        print("heritage-ld: warning: this system cannot stop SPARQL query processes from opening sockets; "
              "federated queries are refused by reading the query only", file=sys.stderr)
    stdin, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # stdout carries the protocol only
    stores: dict[str, ox.Store] = {}
    out.write(b"R")
    out.flush()
    while len(head := stdin.read(8)) == 8:
        path, *job = pickle.loads(stdin.read(struct.unpack(">Q", head)[0]))
        try:
            if path not in stores:
                stores.clear()
                stores[path] = ox.Store.read_only(path)
            result = evaluate(stores[path], *job)
        except Exception as e:  # noqa: BLE001 - always answer
            result = ("500 Internal Server Error", "text/plain; charset=utf-8", f"store unavailable: {e}\n".encode())
        if network and result[0].startswith("500"):  # never pass on what a remote endpoint said
            result = (result[0], result[1], b"the federated query failed (a remote endpoint did not answer "
                                            b"as expected; its answer is not shown)\n")
        data = pickle.dumps(result)
        out.write(struct.pack(">Q", len(data)) + data)
        out.flush()


# -- evaluation (in the query process) ---------------------------------------------------------

class TooLarge(Exception):
    pass


def evaluate(store: ox.Store, query: str, base: str, prefixes: dict[str, str], default_graphs: list[str],
             named_graphs: list[str], result_fmt: str | None, graph_type: str | None,
             limit: int) -> tuple[str, str, bytes]:
    """Run one query; (status, content type, body)."""
    plain = "text/plain; charset=utf-8"
    graph_fmt = GRAPH_TYPES.get(graph_type or "")
    try:
        kwargs: dict[str, Any] = {"base_iri": base, "prefixes": prefixes}
        if default_graphs:
            kwargs["default_graph"] = [ox.NamedNode(g) for g in default_graphs]
        if named_graphs:
            kwargs["named_graphs"] = [ox.NamedNode(g) for g in named_graphs]
        result = store.query(query, **kwargs)
        if isinstance(result, ox.QueryTriples):
            if graph_fmt is None:
                out = ("406 Not Acceptable", plain, ("a CONSTRUCT or DESCRIBE result is available as: "
                                                     + ", ".join(GRAPH_TYPES) + "\n").encode())
            else:
                triples = take(result, limit)
                body = ox.serialize(triples, format=graph_fmt,
                                    prefixes=prefixes if graph_fmt in (ox.RdfFormat.TURTLE, ox.RdfFormat.RDF_XML)
                                    else None) or b""
                ctype = graph_fmt.media_type + ("" if graph_fmt.media_type.endswith("json") else "; charset=utf-8")
                out = ("200 OK", ctype, body)
        elif result_fmt is None:
            out = ("406 Not Acceptable", plain, ("a SELECT or ASK result is available as: "
                                                 + ", ".join(RESULT_TYPES) + "\n").encode())
        elif isinstance(result, ox.QueryBoolean):
            out = ("200 OK", CONTENT_TYPES[result_fmt], boolean_result(bool(result), result_fmt))
        else:
            names = [v.value for v in result.variables]
            rows = take(result, limit)
            out = ("200 OK", CONTENT_TYPES[result_fmt], SOLUTION_WRITERS[result_fmt](names, rows))
    except SyntaxError as e:
        out = ("400 Bad Request", plain, f"query parse error: {e}\n".encode())
    except TooLarge:
        out = ("413 Content Too Large", plain,
               f"the result has more than {limit} rows or triples, the limit of this endpoint: add a LIMIT "
               "(and page with OFFSET), or download a dump (see /dataset)\n".encode())
    except Exception as e:  # noqa: BLE001 - the child must always answer
        out = ("500 Internal Server Error", plain, f"query evaluation failed: {e}\n".encode())
    return out


def take(results: Any, limit: int) -> list:
    out = []
    for item in results:
        if len(out) == limit:
            raise TooLarge
        out.append(item)
    return out


def boolean_result(value: bool, fmt: str) -> bytes:
    word = "true" if value else "false"
    if fmt == "json":
        return json.dumps({"head": {}, "boolean": value}).encode()
    if fmt == "xml":
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#">'
                f"<head/><boolean>{word}</boolean></sparql>\n").encode()
    return f"_askResult\r\n{word}\r\n".encode() if fmt == "csv" else f"?_askResult\n{word}\n".encode()


def _json_term(t: Any) -> dict:
    if isinstance(t, ox.NamedNode):
        return {"type": "uri", "value": t.value}
    if isinstance(t, ox.BlankNode):
        return {"type": "bnode", "value": t.value}
    d = {"type": "literal", "value": t.value}
    if t.language:
        d["xml:lang"] = t.language
    elif t.datatype.value != XSD_STRING:
        d["datatype"] = t.datatype.value
    return d


def json_results(names: list[str], rows: list) -> bytes:
    bindings = [{n: _json_term(row[n]) for n in names if row[n] is not None} for row in rows]
    return json.dumps({"head": {"vars": names}, "results": {"bindings": bindings}}, ensure_ascii=False).encode()


def _xml_term(t: Any) -> str:
    if isinstance(t, ox.NamedNode):
        return f"<uri>{xml_escape(t.value)}</uri>"
    if isinstance(t, ox.BlankNode):
        return f"<bnode>{xml_escape(t.value)}</bnode>"
    attr = (f" xml:lang={quoteattr(t.language)}" if t.language else
            "" if t.datatype.value == XSD_STRING else f" datatype={quoteattr(t.datatype.value)}")
    return f"<literal{attr}>{xml_escape(t.value)}</literal>"


def xml_results(names: list[str], rows: list) -> bytes:
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<sparql xmlns="http://www.w3.org/2005/sparql-results#">\n<head>']
    out += [f"<variable name={quoteattr(n)}/>" for n in names]
    out.append("</head>\n<results>\n")
    for row in rows:
        out.append("<result>" + "".join(f"<binding name={quoteattr(n)}>{_xml_term(row[n])}</binding>"
                                        for n in names if row[n] is not None) + "</result>\n")
    out.append("</results>\n</sparql>\n")
    return "".join(out).encode("utf-8")


def csv_results(names: list[str], rows: list) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(names)
    for row in rows:
        w.writerow(["" if row[n] is None else f"_:{row[n].value}" if isinstance(row[n], ox.BlankNode)
                    else row[n].value for n in names])
    return buf.getvalue().encode("utf-8")


def tsv_results(names: list[str], rows: list) -> bytes:
    lines = ["\t".join(f"?{n}" for n in names)]
    lines += ["\t".join("" if row[n] is None else str(row[n]).replace("\t", "\\t") for n in names) for row in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


SOLUTION_WRITERS = {"json": json_results, "xml": xml_results, "csv": csv_results, "tsv": tsv_results}


if __name__ == "__main__":
    if sys.argv[1:2] == ["sync"]:
        StoreSync(config_mod.load(Path(sys.argv[2]))).sync_here()
    elif sys.argv[1:2] == ["worker"]:
        worker_main(network=sys.argv[2:] == ["--network"])
    else:
        sys.exit("usage: python -m heritage_ld.sparql sync PROJECT | worker [--network]")
