"""Push the catalog to a partner's SPARQL store through the SPARQL 1.1 Graph Store HTTP Protocol.

One named graph per record, as in ``dataset.nq``: ``PUT {endpoint}?graph=<graph IRI>`` with the
record's triples and its PROV-O triples (N-Triples), ``DELETE`` for tombstones (404 counts as done).

Resume: the catalog's ``push_state`` table holds, per endpoint and graph, the record version the
endpoint acknowledged (``<hash>@<last_changed>``, or ``deleted``). A push sends only the graphs whose
catalog version differs from the acknowledged one, and commits each 2xx as it comes back (the answers
that arrive together, at most ``2 * workers``, in one commit). So a push that fails or is killed resumes
with exactly the graphs not yet acknowledged: after a SIGKILL only the requests that were in flight are
sent again, which PUT and DELETE make harmless.

Credentials come from the environment: a token (Bearer), or a user and password sent as Basic or, with
``HERITAGE_LD_PUSH_AUTH=digest``, as HTTP Digest (Virtuoso's protected endpoint). The endpoint named is
consent to connect to the addresses its host resolves to now, private ones included; redirects are
not followed.
"""
from __future__ import annotations

import ipaddress
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase, HTTPBasicAuth, HTTPDigestAuth

from .catalog import Catalog, Row
from .config import Config, load as load_config
from .httpsource import addresses, bounded, guarded, refusal, retry_delay
from .sources import InputError
from .terms import nt_lines
from .writers.rdf import graph_iri, provenance

STORE_HINT = "pass --allow-address if the store is meant to be there"
ENV_USER, ENV_PASSWORD, ENV_TOKEN = "HERITAGE_LD_PUSH_USER", "HERITAGE_LD_PUSH_PASSWORD", "HERITAGE_LD_PUSH_TOKEN"
ENV_AUTH = "HERITAGE_LD_PUSH_AUTH"               # basic (the default) or digest
DELETED = "deleted"


class PushError(Exception):
    """A push cannot start (bad URL, credentials, no catalog); str() says what to do."""


class _Abort(Exception):
    """The endpoint is unusable (authentication, retries exhausted): stop sending."""


class _Failed(Exception):
    """The endpoint refused one graph: report it and go on."""


@dataclass
class PushOptions:
    full: bool = False                  # PUT every live graph and DELETE every tombstone again
    workers: int = 4                    # concurrent requests
    timeout: float = 60.0               # seconds per whole request (connecting, sending, the answer)
    retries: int = 5                    # on 429, 5xx and network errors
    backoff: float = 1.0                # seconds, doubled each retry (Retry-After wins)
    max_backoff: float = 60.0
    allow_addresses: list[str] = field(default_factory=list)   # besides the endpoint's own, e.g. ["10.0.0.0/8"]


@dataclass
class PushResult:
    endpoint: str
    put: int = 0
    deleted: int = 0
    skipped: int = 0                    # already acknowledged by the endpoint
    not_sent: int = 0                   # left for the next run after an abort
    failures: list[str] = field(default_factory=list)   # messages naming endpoint and graph

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass
class _Task:
    graph: str
    key: tuple[str, str] | None         # the catalog record; None: a graph the catalog no longer has


class _Bearer(AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self.token}"
        return r


def authentication() -> AuthBase | None:
    """The credentials from the environment: $HERITAGE_LD_PUSH_TOKEN (Bearer), or $HERITAGE_LD_PUSH_USER and
    _PASSWORD, as Basic or (with $HERITAGE_LD_PUSH_AUTH=digest) HTTP Digest."""
    token, user, password = (os.environ.get(v) for v in (ENV_TOKEN, ENV_USER, ENV_PASSWORD))
    scheme = os.environ.get(ENV_AUTH, "basic").strip().lower() or "basic"
    if scheme not in ("basic", "digest"):
        raise PushError(f"${ENV_AUTH}={scheme!r}: use basic (the default) or digest")
    if token and user:
        raise PushError(f"both ${ENV_TOKEN} and ${ENV_USER} are set: set the token (Bearer) or the user and "
                        "password (Basic or Digest), not both")
    if token:
        if scheme == "digest":
            raise PushError(f"${ENV_AUTH}=digest needs ${ENV_USER} and ${ENV_PASSWORD}, not a token")
        return _Bearer(token)
    if user:
        if password is None:
            raise PushError(f"${ENV_USER} is set but ${ENV_PASSWORD} is not")
        return HTTPDigestAuth(user, password) if scheme == "digest" else HTTPBasicAuth(user, password)
    if scheme == "digest":
        raise PushError(f"${ENV_AUTH}=digest needs ${ENV_USER} and ${ENV_PASSWORD}")
    return None


def check_endpoint(endpoint: str, allow: list[str]) -> list[str]:
    """What may be connected to: ``allow`` plus the addresses the endpoint's host resolves to (naming the
    endpoint is consent to reach it, on a private address too)."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PushError(f"{endpoint}: the endpoint must be an http(s) URL, e.g. http://host:7878/store")
    if parts.username or parts.password:
        raise PushError(f"{parts.hostname}: put no credentials in the URL; set ${ENV_TOKEN} or "
                        f"${ENV_USER} and ${ENV_PASSWORD}")
    for a in allow:
        try:
            ipaddress.ip_network(a, strict=False)
        except ValueError:
            raise PushError(f"--allow-address {a!r}: not an IP address or network") from None
    try:
        return [*allow, *addresses(endpoint)]
    except InputError as e:
        raise PushError(str(e)) from None


def record_version(row: Row) -> str:
    return DELETED if row.deleted else f"{row.hash}@{row.last_changed}"


def push(project: Path | Config, endpoint: str, options: PushOptions | None = None) -> PushResult:
    """Bring the graph store at ``endpoint`` in line with the catalog; see the module docstring."""
    o = options or PushOptions()
    cfg = project if isinstance(project, Config) else load_config(project)
    if not cfg.catalog.exists():
        raise PushError(f"{cfg.catalog}: no catalog yet; run heritage-ld publish first")
    endpoint = endpoint.strip()
    auth = authentication()
    allow = check_endpoint(endpoint, o.allow_addresses)
    cat = Catalog(cfg.catalog)
    try:
        cat.db.execute("PRAGMA busy_timeout = 600000")   # a running publish holds the write lock
        # a commit per batch of answers, kept through a kill of the process without an fsync each (a power cut
        # may lose the last ones: those graphs are sent again)
        cat.db.execute("PRAGMA synchronous = NORMAL")
        return _Pusher(cfg, cat, endpoint, auth, allow, o).run()
    finally:
        cat.close()


class _Pusher:
    def __init__(self, cfg: Config, cat: Catalog, endpoint: str, auth: AuthBase | None, allow: list[str],
                 o: PushOptions) -> None:
        self.cfg, self.cat, self.endpoint, self.auth, self.allow, self.o = cfg, cat, endpoint, auth, allow, o
        self.pub = SimpleNamespace(config=cfg)          # what graph_iri/provenance read
        self.local = threading.local()
        self.stop = threading.Event()                   # set on abort: in-flight requests give up retrying
        self.acks: list[tuple[str, str | None]] = []    # (graph, version; None = forget the graph)
        self.result = PushResult(endpoint)

    # -- what to send ----------------------------------------------------------------------
    def plan(self) -> list[_Task]:
        acked = dict(self.cat.db.execute("SELECT graph, version FROM push_state WHERE endpoint = ?",
                                         (self.endpoint,)))
        tasks, graphs = [], set()
        for e, i, h, changed, deleted in self.cat.db.execute(
                "SELECT entity, id, hash, last_changed, deleted FROM records ORDER BY entity, id").fetchall():
            g = graph_iri(self.pub, e, i)
            graphs.add(g)
            if not self.o.full and acked.get(g) == (DELETED if deleted else f"{h}@{changed}"):
                self.result.skipped += 1
            else:
                tasks.append(_Task(g, (e, i)))
        # graphs pushed earlier that the catalog no longer names (e.g. base_uri changed): delete them
        for g, version in sorted(acked.items()):
            if g not in graphs:
                if version == DELETED:
                    self.acks.append((g, None))
                else:
                    tasks.append(_Task(g, None))
        return tasks

    def request(self, task: _Task) -> tuple[str, bytes | None, str | None]:
        """(method, body, version to acknowledge) for one task, read from the catalog now."""
        if task.key is None:
            return "DELETE", None, None
        r = self.cat.db.execute("SELECT source, hash, last_changed, deleted, triples, mapping FROM records "
                                "WHERE entity = ? AND id = ?", task.key).fetchone()
        if r is None:
            return "DELETE", None, None
        row = Row(*task.key, [], r[0], r[1], 0, r[2], bool(r[3]), r[4], None, r[5])
        if row.deleted:
            return "DELETE", None, DELETED
        body = row.nt + nt_lines(provenance(self.pub, f"<{task.graph}>", row))   # the record's graph in dataset.nq
        return "PUT", body.encode("utf-8"), record_version(row)

    # -- sending ---------------------------------------------------------------------------
    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = guarded(requests.Session(), self.allow)
            self.local.session.headers["User-Agent"] = "heritage-ld (linked-data publisher)"
            self.local.session.auth = self.auth
        return self.local.session

    def send(self, method: str, graph: str, body: bytes | None) -> None:
        """One request with retries; raises _Failed (this graph) or _Abort (the endpoint)."""
        where = f"{self.endpoint}: graph <{graph}>"
        headers = {"Content-Type": "application/n-triples"} if body is not None else {}
        for attempt in range(self.o.retries + 1):
            if self.stop.is_set():
                raise _Abort("")
            last = attempt == self.o.retries
            try:
                resp = bounded(self.session(), method, self.endpoint, self.o.timeout, params={"graph": graph},
                               data=body, headers=headers, allow_redirects=False)
            except (requests.Timeout, requests.ConnectionError) as e:
                if refused := refusal(e):
                    raise _Abort(f"{self.endpoint}: {refused}; {STORE_HINT}") from None
                kind = "timed out" if isinstance(e, requests.Timeout) else "connection failed"
                if last:
                    raise _Abort(f"{where}: {method} {kind} after {attempt + 1} attempts (--timeout "
                                 f"{self.o.timeout:g} s for each whole request)") from None
                time.sleep(retry_delay(attempt, None, self.o.backoff, self.o.max_backoff))
                continue
            code = resp.status_code
            if code == 429 or code >= 500:
                if last:
                    raise _Abort(f"{where}: {method} got HTTP {code} after {attempt + 1} attempts; giving up")
                time.sleep(retry_delay(attempt, resp.headers.get("Retry-After"), self.o.backoff, self.o.max_backoff))
                continue
            if 200 <= code < 300 or (method == "DELETE" and code == 404):
                return
            if code in (401, 403):
                raise _Abort(f"{where}: authentication failed (HTTP {code}): {self.auth_hint(resp)}")
            if 300 <= code < 400:
                raise _Abort(f"{where}: HTTP {code} redirect to {resp.headers.get('Location')}: "
                             "push to the Graph Store endpoint itself")
            raise _Failed(f"{where}: {method} refused: HTTP {code} {resp.reason}: {resp.text[:300].strip()}")

    def auth_hint(self, resp: requests.Response) -> str:
        """What to check after a 401/403, by the credentials sent and the store's challenge."""
        user = f"${ENV_USER} and ${ENV_PASSWORD}"
        if isinstance(self.auth, HTTPDigestAuth):
            return f"check {user}"
        if "digest" in resp.headers.get("WWW-Authenticate", "").lower().replace(",", " ").split():
            return f"the store asks for HTTP Digest: set {user}, and ${ENV_AUTH}=digest"
        if isinstance(self.auth, HTTPBasicAuth):
            return (f"check {user} (a store that takes HTTP Digest only, such as Virtuoso's "
                    f"/sparql-graph-crud-auth, needs ${ENV_AUTH}=digest)")
        return f"check ${ENV_TOKEN}" if self.auth else f"set ${ENV_TOKEN}, or {user}"

    def flush(self) -> None:
        if not self.acks:
            return
        now = int(time.time())
        db = self.cat.db
        db.execute("BEGIN IMMEDIATE")
        try:
            for graph, version in self.acks:
                if version is None:
                    db.execute("DELETE FROM push_state WHERE endpoint = ? AND graph = ?", (self.endpoint, graph))
                else:
                    db.execute("INSERT OR REPLACE INTO push_state VALUES (?, ?, ?, ?)",
                               (self.endpoint, graph, version, now))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.acks.clear()

    def run(self) -> PushResult:
        tasks = iter(self.plan())
        try:
            with ThreadPoolExecutor(max_workers=self.o.workers) as pool:
                try:
                    self._send_all(pool, tasks)
                except BaseException:
                    self.stop.set()                     # Ctrl-C: queued requests give up at once
                    raise
        finally:
            self.flush()
        self.result.not_sent += sum(1 for _ in tasks)
        return self.result

    def _send_all(self, pool: ThreadPoolExecutor, tasks) -> None:
        pending: dict[Future, tuple[str, str | None, str]] = {}   # -> (graph, version, method)
        while True:
            while not self.stop.is_set() and len(pending) < 2 * self.o.workers:
                task = next(tasks, None)
                if task is None:
                    break
                method, body, version = self.request(task)
                pending[pool.submit(self.send, method, task.graph, body)] = (task.graph, version, method)
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                graph, version, method = pending.pop(fut)
                try:
                    fut.result()
                except _Failed as e:
                    self.result.failures.append(str(e))
                    continue
                except _Abort as e:
                    self.result.not_sent += 1
                    if not self.stop.is_set():          # report the endpoint's failure once
                        self.result.failures.append(str(e))
                        self.stop.set()
                    continue
                if method == "PUT":
                    self.result.put += 1
                else:
                    self.result.deleted += 1
                self.acks.append((graph, version))
            self.flush()
