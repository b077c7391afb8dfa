"""Push to a partner's store (Graph Store HTTP Protocol) against a real oxigraph server, and the gzip
dumps loaded with `oxigraph load`. Protocol details (auth headers, retries, 404 on DELETE) against
pytest-httpserver."""
from __future__ import annotations

import gzip
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pyoxigraph as ox
import pytest
import requests
from werkzeug import Request, Response

from heritage_ld import pipeline
from heritage_ld.catalog import Catalog
from heritage_ld.config import load
from heritage_ld.push import PushError, PushOptions, push
from heritage_ld.writers.rdf import graph_iri

from test_catalog import T1, T2, change_and_delete, edit
from test_outputs import copy_project

BIN = Path(sys.executable).parent
EXE = BIN / "heritage-ld"
LOCAL = ["127.0.0.1"]
FAST = dict(allow_addresses=LOCAL, backoff=0.01, max_backoff=0.05, retries=2, timeout=10)
BASE = "https://data.example.org/"
EMMY_GRAPH = BASE + "graph/person/emmy-storms"


def oxigraph_exe() -> str:
    exe = shutil.which("oxigraph", path=str(BIN)) or shutil.which("oxigraph")
    if not exe:
        if os.environ.get("CI"):
            pytest.fail("the oxigraph server is missing: pip install -e '.[test]'")
        pytest.skip("oxigraph (PyPI) not installed: pip install -e '.[test]'")
    return exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Oxigraph:
    """A real `oxigraph serve` on a free local port."""

    def __init__(self, location: Path, port: int | None = None) -> None:
        self.url = f"http://127.0.0.1:{port or free_port()}"
        self.store = self.url + "/store"
        self.proc = subprocess.Popen([oxigraph_exe(), "serve", "--location", str(location), "--bind",
                                      self.url.removeprefix("http://")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 30
        while True:
            try:
                if requests.get(self.url + "/", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError(f"oxigraph serve did not start: {self.proc.stderr.read().decode()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stderr.close()

    def select(self, query: str) -> list[dict[str, ox.Term]]:
        r = requests.post(self.url + "/query", data={"query": query},
                          headers={"Accept": "application/sparql-results+json"}, timeout=30)
        r.raise_for_status()
        results = ox.parse_query_results(r.content, format=ox.QueryResultsFormat.JSON)
        return [{v.value: s[v] for v in results.variables if s[v] is not None} for s in results]


@pytest.fixture
def oxigraph(tmp_path):
    server = Oxigraph(tmp_path / "store")
    yield server
    server.stop()


@pytest.fixture
def project(tmp_path) -> Path:
    (tmp_path / "p").mkdir()
    return copy_project(tmp_path / "p")


def live_graphs(project: Path) -> set[str]:
    cfg = load(project)
    cat = Catalog(cfg.catalog)
    try:
        return {graph_iri(SimpleNamespace(config=cfg), r.entity, r.id) for r in cat.rows()}
    finally:
        cat.close()


def assert_store_is_catalog(project: Path, server: Oxigraph) -> None:
    """The store holds exactly the catalog's live graphs, each exactly as in output/dataset.nq."""
    names = {s["g"].value for s in server.select("SELECT DISTINCT ?g WHERE { GRAPH ?g {} }")}
    assert names == live_graphs(project)
    dump = set(ox.parse(path=str(project / "output/dataset.nq"), format=ox.RdfFormat.N_QUADS))
    assert {q.graph_name.value for q in dump} == names
    counts = {s["g"].value: int(s["n"].value) for s in server.select(
        "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g")}
    assert counts == dict(Counter(q.graph_name.value for q in dump))
    stored = {ox.Quad(s["s"], s["p"], s["o"], s["g"])
              for s in server.select("SELECT ?s ?p ?o ?g WHERE { GRAPH ?g { ?s ?p ?o } }")}
    assert stored == dump                      # every graph, triple for triple


def remove_emmy(project: Path) -> None:
    """Emmy Storms leaves the export (and the records that referred to her are edited)."""
    edit(project, "people.json", lambda d: d.pop(1))
    edit(project, "organisations.json", lambda d: d[2].update(member=["cynthia-liem"]))
    edit(project, "posts.json", lambda d: d[0].update(mentions=["magma-duo"]))


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, env=env or dict(os.environ))


# -- against a real oxigraph server -------------------------------------------------------------

def test_push_first_edit_delete_full(project, oxigraph):
    pipeline.publish(project, now=T1)
    r = push(project, oxigraph.store, PushOptions(**FAST))
    assert (r.put, r.deleted, r.skipped, r.failures) == (22, 0, 0, [])
    assert_store_is_catalog(project, oxigraph)

    r = push(project, oxigraph.store, PushOptions(**FAST))            # nothing changed: nothing sent
    assert (r.put, r.deleted, r.skipped) == (0, 0, 22)

    change_and_delete(project)                                        # two records change
    _pub, ch = pipeline.publish(project, now=T2)
    r = push(project, oxigraph.store, PushOptions(**FAST))
    assert (r.put, r.deleted, r.skipped) == (ch.changed, 0, 22 - ch.changed) == (2, 0, 20)
    assert_store_is_catalog(project, oxigraph)

    remove_emmy(project)                                              # a deletion, through the CLI
    assert cli("publish", "--project", str(project), "--allow-deletions").returncode == 0
    p = cli("push", "--project", str(project), oxigraph.store, "--allow-address", "127.0.0.1")
    assert p.returncode == 0, p.stderr
    assert "graphs put" in p.stdout and " 1 deleted" in p.stdout, p.stdout
    assert EMMY_GRAPH not in {s["g"].value for s in oxigraph.select("SELECT DISTINCT ?g WHERE { GRAPH ?g {} }")}
    assert_store_is_catalog(project, oxigraph)

    # a store emptied behind our back: --full reloads every live graph and deletes every tombstone
    requests.post(oxigraph.url + "/update", data={"update": "DROP ALL"}, timeout=10).raise_for_status()
    assert push(project, oxigraph.store, PushOptions(**FAST)).put == 0   # (incremental: believes it is there)
    r = push(project, oxigraph.store, PushOptions(full=True, **FAST))
    assert (r.put, r.deleted, r.skipped) == (21, 1, 0)
    assert_store_is_catalog(project, oxigraph)


class FailingProxy:
    """Forwards Graph Store requests to oxigraph; after ``fail_after`` requests answers 503 instead.
    Logs (method, graph) of every request it forwarded successfully."""

    def __init__(self, upstream: str) -> None:
        self.fail_after: int | None = None
        self.delay = 0.0                                  # seconds each request waits before it is forwarded
        self.received: list[str] = []                     # the graph of every request, as it arrives
        self.forwarded: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                graph = parse_qs(urlsplit(self.path).query).get("graph", [""])[0]
                proxy.received.append(graph)
                time.sleep(proxy.delay)
                with proxy.lock:
                    refuse = proxy.fail_after is not None and len(proxy.forwarded) >= proxy.fail_after
                    if not refuse:
                        resp = requests.request(self.command, upstream + self.path, data=body, timeout=10,
                                                headers={"Content-Type": self.headers.get("Content-Type", "")})
                        if resp.ok or resp.status_code == 404:
                            proxy.forwarded.append((self.command, graph))
                status = 503 if refuse else resp.status_code
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_PUT = do_DELETE = _any

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/store"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_interrupted_push_resumes_without_resending(project, oxigraph):
    pipeline.publish(project, now=T1)
    proxy = FailingProxy(oxigraph.url)
    try:
        proxy.fail_after = 7                                         # the store "goes down" after 7 graphs
        r = push(project, proxy.url, PushOptions(workers=3, **FAST))
        assert not r.ok and r.put == 7 and r.not_sent == 15
        assert proxy.url in r.failures[0] and "<https://data.example.org/graph/" in r.failures[0]
        assert "503" in r.failures[0]
        first = [g for _m, g in proxy.forwarded]
        assert len(first) == len(set(first)) == 7

        proxy.fail_after, proxy.forwarded = None, []                  # back up: resume
        r = push(project, proxy.url, PushOptions(workers=3, **FAST))
        assert r.ok and (r.put, r.skipped) == (15, 7)
        second = [g for _m, g in proxy.forwarded]
        assert len(second) == len(set(second)) == 15                  # nothing sent twice
        assert not set(first) & set(second)                            # nothing acknowledged is sent again
        assert set(first) | set(second) == live_graphs(project)
        assert_store_is_catalog(project, oxigraph)

        proxy.forwarded = []
        assert push(project, proxy.url, PushOptions(**FAST)).skipped == 22 and proxy.forwarded == []
    finally:
        proxy.close()


def test_store_killed_mid_push_then_restarted(project, tmp_path, monkeypatch):
    """The real server dies during a push (SIGKILL); once it is back the next push completes exactly."""
    pipeline.publish(project, now=T1)
    location, port = tmp_path / "killed-store", free_port()
    server = Oxigraph(location, port)
    orig = requests.Session.request
    sent: list[str] = []

    def kill_before_sixth(self, method, url, *a, **kw):      # one request at a time (workers=1)
        sent.append(kw["params"]["graph"])
        if len(sent) == 6:
            server.proc.kill()
            server.proc.wait()
        return orig(self, method, url, *a, **kw)

    monkeypatch.setattr(requests.Session, "request", kill_before_sixth)
    try:
        r = push(project, server.store, PushOptions(workers=1, **FAST))
    finally:
        monkeypatch.undo()
        server.stop()
    assert not r.ok and r.put == 5 and "connection failed" in r.failures[0] and sent[5] in r.failures[0]
    server = Oxigraph(location, port)                                # back, with its data, at the same URL
    try:
        r = push(project, server.store, PushOptions(**FAST))
        assert r.ok and (r.put, r.skipped) == (17, 5)
        assert_store_is_catalog(project, server)
    finally:
        server.stop()


# -- gzip dumps for bulk loaders ----------------------------------------------------------------

def test_gzip_dumps_are_deterministic_and_load_with_oxigraph(project, tmp_path):
    pipeline.publish(project, now=T1)
    out = project / "output"
    for name in ("dataset.nq", "dataset.nt"):
        gz = (out / f"{name}.gz").read_bytes()
        assert gz[:3] == b"\x1f\x8b\x08" and gz[3] & 0x08 == 0 and gz[4:8] == b"\0\0\0\0"   # no name, mtime 0
        assert gzip.decompress(gz) == (out / name).read_bytes()
    # oxigraph's bulk loader takes the compressed N-Quads as they are
    db = tmp_path / "bulk"
    subprocess.run([oxigraph_exe(), "load", "--location", str(db), "--file", str(out / "dataset.nq.gz")],
                   check=True, capture_output=True)
    q = "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g"
    res = subprocess.run([oxigraph_exe(), "query", "--location", str(db), "--query", q,
                          "--results-format", "json"], check=True, capture_output=True).stdout
    counts = {s["g"].value: int(s["n"].value)
              for s in ox.parse_query_results(res, format=ox.QueryResultsFormat.JSON)}
    dump = list(ox.parse(path=str(out / "dataset.nq"), format=ox.RdfFormat.N_QUADS))
    assert set(counts) == live_graphs(project)
    assert counts == dict(Counter(q.graph_name.value for q in dump))
    db2 = tmp_path / "bulk-nt"
    subprocess.run([oxigraph_exe(), "load", "--location", str(db2), "--file", str(out / "dataset.nt.gz")],
                   check=True, capture_output=True)
    res = subprocess.run([oxigraph_exe(), "query", "--location", str(db2), "--query",
                          "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", "--results-format", "json"],
                         check=True, capture_output=True).stdout
    n = int(next(iter(ox.parse_query_results(res, format=ox.QueryResultsFormat.JSON)))["n"].value)
    assert n == len((out / "dataset.nt").read_text().splitlines())
    # and the VoID/DCAT description lists them
    void = {(str(q.subject), str(q.predicate), str(q.object))
            for q in ox.parse(path=str(out / "void.ttl"), format=ox.RdfFormat.TURTLE)}
    for name, media in (("dataset.nq.gz", "application/n-quads"), ("dataset.nt.gz", "application/n-triples")):
        dist = f"<{BASE}{name}>"
        assert (f"<{BASE}dataset>", "<http://www.w3.org/ns/dcat#distribution>", dist) in void
        assert (dist, "<http://www.w3.org/ns/dcat#downloadURL>", dist) in void
        assert (dist, "<http://www.w3.org/ns/dcat#mediaType>",
                f"<https://www.iana.org/assignments/media-types/{media}>") in void
        assert (dist, "<http://www.w3.org/ns/dcat#compressFormat>",
                "<http://www.iana.org/assignments/media-types/application/gzip>") in void


# -- the protocol, against pytest-httpserver ----------------------------------------------------

def gsp_log(httpserver) -> list[tuple[str, str, str | None]]:
    return [(req.method, req.args.get("graph"), req.headers.get("Authorization")) for req, _resp in httpserver.log]


def test_tombstones_are_deleted_and_404_counts_as_done(project, httpserver):
    pipeline.publish(project, now=T1)
    remove_emmy(project)
    pipeline.publish(project, now=T2, allow_deletions=True)
    httpserver.expect_request("/store", method="PUT").respond_with_data("", status=201)
    httpserver.expect_request("/store", method="DELETE").respond_with_data("no such graph", status=404)
    r = push(project, httpserver.url_for("/store"), PushOptions(**FAST))
    assert r.ok and (r.put, r.deleted) == (21, 1)
    log = gsp_log(httpserver)
    assert [(m, g) for m, g, _a in log if m == "DELETE"] == [("DELETE", EMMY_GRAPH)]
    assert {g for m, g, _a in log if m == "PUT"} == live_graphs(project)
    put = next(req for req, _ in httpserver.log if req.method == "PUT")
    assert put.headers["Content-Type"].startswith("application/n-triples")
    assert list(ox.parse(put.get_data(), format=ox.RdfFormat.N_TRIPLES))   # a valid N-Triples body
    httpserver.clear_log()
    assert push(project, httpserver.url_for("/store"), PushOptions(**FAST)).skipped == 22   # 21 live + 1 tombstone
    assert httpserver.log == []


def test_bearer_and_basic_auth_from_environment_only(project, httpserver, monkeypatch):
    pipeline.publish(project, now=T1)
    httpserver.expect_request("/store").respond_with_data("", status=204)
    url = httpserver.url_for("/store")
    monkeypatch.setenv("HERITAGE_LD_PUSH_TOKEN", "tok-very-secret")
    assert push(project, url, PushOptions(**FAST)).ok
    assert {a for _m, _g, a in gsp_log(httpserver)} == {"Bearer tok-very-secret"}

    httpserver.clear_log()
    monkeypatch.delenv("HERITAGE_LD_PUSH_TOKEN")
    monkeypatch.setenv("HERITAGE_LD_PUSH_USER", "partner")
    monkeypatch.setenv("HERITAGE_LD_PUSH_PASSWORD", "pw-very-secret")
    assert push(project, url, PushOptions(full=True, **FAST)).put == 22
    assert {a for _m, _g, a in gsp_log(httpserver)} == {"Basic cGFydG5lcjpwdy12ZXJ5LXNlY3JldA=="}

    monkeypatch.setenv("HERITAGE_LD_PUSH_TOKEN", "tok-very-secret")
    with pytest.raises(PushError, match="not both"):
        push(project, url, PushOptions(**FAST))
    monkeypatch.delenv("HERITAGE_LD_PUSH_USER")
    with pytest.raises(PushError, match="no credentials in the URL"):
        push(project, url.replace("http://", "http://u:p@"), PushOptions(**FAST))


def test_auth_failure_stops_with_clear_message_and_no_secret(project, httpserver):
    pipeline.publish(project, now=T1)
    httpserver.expect_request("/store").respond_with_data("unauthorized", status=401)
    url = httpserver.url_for("/store")
    p = cli("push", "--project", str(project), url, "--allow-address", "127.0.0.1",
            env={**os.environ, "HERITAGE_LD_PUSH_TOKEN": "tok-very-secret"})
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "authentication failed (HTTP 401)" in p.stderr and url in p.stderr and "graph <" in p.stderr
    assert "HERITAGE_LD_PUSH_TOKEN" in p.stderr
    assert "tok-very-secret" not in p.stdout + p.stderr
    assert not any(b"tok-very-secret" in f.read_bytes() for f in project.rglob("*") if f.is_file())
    assert len(httpserver.log) <= 4 * 2                      # stops at once, no retries on 401


def test_retries_5xx_and_honours_retry_after(project, httpserver):
    pipeline.publish(project, now=T1)
    calls = Counter()

    def flaky(request: Request) -> Response:
        calls["n"] += 1
        if calls["n"] == 1:
            return Response("busy", status=503, headers={"Retry-After": "1"})
        if calls["n"] == 2:
            return Response("slow down", status=429)
        return Response("", status=204)

    httpserver.expect_request("/store").respond_with_handler(flaky)
    start = time.monotonic()
    r = push(project, httpserver.url_for("/store"), PushOptions(workers=1, **{**FAST, "max_backoff": 5}))
    assert r.ok and r.put == 22 and calls["n"] == 24
    assert time.monotonic() - start >= 1.0                    # waited as Retry-After asked


def test_the_endpoint_named_is_consent_and_redirects_are_not_followed(project, oxigraph):
    """The URL on the command line may be a private address without --allow-address; a redirect from it
    (here to another loopback address) is not followed: the target receives nothing."""
    from rawserver import RawServer, answer
    pipeline.publish(project, now=T1)
    p = cli("push", "--project", str(project), oxigraph.store)
    assert p.returncode == 0, p.stderr
    assert_store_is_catalog(project, oxigraph)

    target = RawServer(lambda server, sock, req: sock.sendall(answer("204 No Content")), host="127.0.0.2")
    redirector = RawServer(lambda server, sock, req: sock.sendall(
        answer("307 Temporary Redirect", headers=[("Location", target.url("/store?graph=x"))])))
    try:
        p = cli("push", "--project", str(project), "--full", redirector.url("/store"))
        assert p.returncode == 2 and "Traceback" not in p.stderr
        assert "redirect to http://127.0.0.2:" in p.stderr and "push to the Graph Store endpoint itself" in p.stderr
        assert redirector.requests and target.connections == 0
    finally:
        target.stop(), redirector.stop()

    p = cli("push", "--project", str(project), "ftp://example.org/store")
    assert p.returncode == 2 and "http(s) URL" in p.stderr
    p = cli("push", "--project", str(project), "http://127.0.0.1:9/store", "--allow-address", "nonsense")
    assert p.returncode == 2 and "not an IP address" in p.stderr


def test_the_address_a_connection_reaches_is_checked_too(project, httpserver, monkeypatch):
    """DNS rebinding: the endpoint's name resolves to a public address when it is named (the consent is for
    that address), then to 127.0.0.1 for the connection, which is refused (no connection to the public one)."""
    pipeline.publish(project, now=T1)
    httpserver.expect_request("/store").respond_with_data("", status=204)
    real, lookups = socket.getaddrinfo, []

    def rebinding(host, port, *args, **kwargs):
        if host != "rebind.example":
            return real(host, port, *args, **kwargs)
        lookups.append(port)
        address = "93.184.216.34" if len(lookups) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port or 0))]
    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    url = f"http://rebind.example:{httpserver.port}/store"
    r = push(project, url, PushOptions(**{**FAST, "allow_addresses": []}))
    assert not r.ok and r.put == 0 and not httpserver.log and len(lookups) >= 2
    assert "refusing to connect to 127.0.0.1" in r.failures[0] and "--allow-address" in r.failures[0]


def test_readme_queries_run_on_a_pushed_store(project, oxigraph):
    pipeline.publish(project, now=T1)
    change_and_delete(project)
    pipeline.publish(project, now=T2)
    assert push(project, oxigraph.store, PushOptions(**FAST)).ok
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")
    queries = [block.split("```", 1)[0] for block in readme.split("```sparql\n")[1:]]
    assert len(queries) == 3
    articles, images, changed = queries
    rows = oxigraph.select(articles)
    assert len(rows) == 3 and {r["authorName"].value for r in rows} == {"Georgia Evans", "Sanne de Vries"}
    rows = oxigraph.select(images)
    assert len(rows) == 3 and all("licenceLabel" in r for r in rows)
    rows = oxigraph.select(changed.replace("2026-11-01T00:00:00Z", "2023-11-15T00:00:00Z"))   # T2 = 2023-11-15
    assert {r["graph"].value for r in rows} == {BASE + "graph/person/emmy-storms",
                                                 BASE + "graph/organisation/multimedia-computing-group"}


# -- issue 12: a whole-request timeout, Retry-After, resume after SIGKILL, HTTP Digest (Virtuoso) -----

def test_a_dripped_answer_times_out(project):
    """The store answers a byte every 0.2 s (each read within the timeout): `--timeout 1` still ends the
    request after a second, and the push stops with exit 2."""
    from rawserver import RawServer, answer
    pipeline.publish(project, now=T1)
    reply = answer("204 No Content", headers=[(f"X-Padding-{i}", "x" * 40) for i in range(20)])
    server = RawServer(lambda srv, sock, req: srv.drip(sock, reply, 0.2))
    try:
        start = time.monotonic()
        p = subprocess.run([str(EXE), "push", "--project", str(project), server.url("/store"), "--timeout", "1",
                            "--retries", "1", "--workers", "1"], capture_output=True, text=True, timeout=60)
        assert p.returncode == 2 and "Traceback" not in p.stderr
        assert "PUT timed out after 2 attempts (--timeout 1 s for each whole request)" in p.stderr, p.stderr
        assert time.monotonic() - start < 20 and 2 <= len(server.requests) <= 3   # (+ the next graph, queued)
    finally:
        server.stop()


def test_an_unusable_retry_after_falls_back_to_the_backoff(project, httpserver):
    pipeline.publish(project, now=T1)
    calls = Counter()

    def handler(request: Request) -> Response:
        calls["n"] += 1
        if calls["n"] <= 3:
            return Response("busy", status=503, headers={"Retry-After": ["²", "-1", "9" * 300][calls["n"] - 1]})
        return Response("", status=204)
    httpserver.expect_request("/store").respond_with_handler(handler)
    r = push(project, httpserver.url_for("/store"), PushOptions(workers=1, **{**FAST, "retries": 3}))
    assert r.ok and r.put == 22 and calls["n"] == 25


def test_a_killed_push_resumes_without_resending(project, oxigraph):
    """`heritage-ld push` killed (SIGKILL) mid-run: the next push sends only what the store had not
    acknowledged; at most the requests in flight at the kill (one per worker) are sent twice."""
    pipeline.publish(project, now=T1)
    proxy = FailingProxy(oxigraph.url)
    proxy.delay = 0.3
    try:
        proc = subprocess.Popen([str(EXE), "push", "--project", str(project), proxy.url, "--workers", "2"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(proxy.received) < 10 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.1)
        proc.kill()
        proc.wait(10)
        assert proc.returncode == -9 and 10 <= len(proxy.received) < 22
        first = list(proxy.received)
        cat = Catalog(load(project).catalog)
        try:
            acked = cat.db.execute("SELECT count(*) FROM push_state WHERE endpoint = ?", (proxy.url,)).fetchone()[0]
        finally:
            cat.close()
        time.sleep(0.5)                                  # the requests in flight reach the store
        proxy.delay, proxy.received = 0.0, []
        p = cli("push", "--project", str(project), proxy.url)
        assert p.returncode == 0, p.stderr
        second = proxy.received
        resent = set(first) & set(second)
        assert len(second) == 22 - acked and len(resent) <= 2, (len(first), acked, len(second), len(resent))
        assert set(first) | set(second) == live_graphs(project)
        assert_store_is_catalog(project, oxigraph)
    finally:
        proxy.close()


VIRTUOSO_INI = """[Database]
DatabaseFile = {d}/virtuoso.db
ErrorLogFile = {d}/virtuoso.log
LockFile = {d}/virtuoso.lck
TransactionFile = {d}/virtuoso.trx
xa_persistent_file = {d}/virtuoso.pxa
[TempDatabase]
DatabaseFile = {d}/virtuoso-temp.db
TransactionFile = {d}/virtuoso-temp.trx
[Parameters]
ServerPort = 127.0.0.1:{sql}
DisableUnixSocket = 1
NumberOfBuffers = 10000
MaxDirtyBuffers = 6000
DirsAllowed = {d}
[HTTPServer]
ServerPort = 127.0.0.1:{http}
ServerRoot = {d}
ServerThreads = 4
MaxClientConnections = 4
[SPARQL]
ResultSetMaxRows = 100000
"""


class Virtuoso:
    """A real Virtuoso (Debian's virtuoso-opensource) with a temporary database on free local ports, and a
    user `pusher` with SPARQL_UPDATE for its Digest-protected Graph Store endpoint."""

    USER, PASSWORD = "pusher", "pw-very-secret"

    def __init__(self, folder: Path) -> None:
        exe, isql = shutil.which("virtuoso-t"), shutil.which("isql-vt")
        if not (exe and isql):
            if os.environ.get("CI"):
                pytest.fail("Virtuoso is missing: CI must test push against it (apt-get install virtuoso-opensource)")
            pytest.skip("Virtuoso not installed: apt-get install virtuoso-opensource to test HTTP Digest push")
        folder.mkdir()
        sql, http = free_port(), free_port()
        (folder / "virtuoso.ini").write_text(VIRTUOSO_INI.format(d=folder, sql=sql, http=http))
        self.url = f"http://127.0.0.1:{http}"
        self.store = self.url + "/sparql-graph-crud-auth"
        self.log = open(folder / "stdout.log", "wb")
        self.proc = subprocess.Popen([exe, "+configfile", str(folder / "virtuoso.ini"), "+foreground"], cwd=folder,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while True:
            try:
                if requests.get(self.url + "/sparql", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError(f"Virtuoso did not start: {(folder / 'virtuoso.log').read_text()[-2000:]}")
            time.sleep(0.2)
        (folder / "user.sql").write_text(f"DB.DBA.USER_CREATE ('{self.USER}', '{self.PASSWORD}');\n"
                                         f'GRANT SPARQL_UPDATE TO "{self.USER}";\n')
        subprocess.run([isql, f"127.0.0.1:{sql}", "dba", "dba", str(folder / "user.sql")], check=True,
                       capture_output=True, timeout=60)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def select(self, query: str) -> list[dict[str, ox.Term]]:
        r = requests.get(self.url + "/sparql", params={"query": query},
                         headers={"Accept": "application/sparql-results+json"}, timeout=30)
        r.raise_for_status()
        results = ox.parse_query_results(r.content, format=ox.QueryResultsFormat.JSON)
        return [{v.value: s[v] for v in results.variables if s[v] is not None} for s in results]


@pytest.fixture
def virtuoso(tmp_path):
    server = Virtuoso(tmp_path / "virtuoso")
    yield server
    server.stop()


def test_push_to_virtuoso_with_http_digest(project, virtuoso):
    """Virtuoso's protected Graph Store endpoint takes HTTP Digest only: with HERITAGE_LD_PUSH_AUTH=digest the
    push (to 127.0.0.1, named on the command line: no --allow-address) loads every graph, then deletes one."""
    pipeline.publish(project, now=T1)
    env = {**os.environ, "HERITAGE_LD_PUSH_USER": Virtuoso.USER, "HERITAGE_LD_PUSH_PASSWORD": Virtuoso.PASSWORD}
    p = cli("push", "--project", str(project), virtuoso.store, env=env)        # Basic: refused, with the fix named
    assert p.returncode == 2 and "authentication failed (HTTP 401)" in p.stderr
    assert "needs $HERITAGE_LD_PUSH_AUTH=digest" in p.stderr
    p = cli("push", "--project", str(project), virtuoso.store)                   # no credentials: the challenge
    assert p.returncode == 2 and "the store asks for HTTP Digest: set $HERITAGE_LD_PUSH_USER and " \
        "$HERITAGE_LD_PUSH_PASSWORD, and $HERITAGE_LD_PUSH_AUTH=digest" in p.stderr
    p = cli("push", "--project", str(project), virtuoso.store,
            env={**env, "HERITAGE_LD_PUSH_AUTH": "digest", "HERITAGE_LD_PUSH_PASSWORD": "wrong"})
    assert p.returncode == 2 and "authentication failed (HTTP 401): check $HERITAGE_LD_PUSH_USER" in p.stderr

    env["HERITAGE_LD_PUSH_AUTH"] = "digest"
    p = cli("push", "--project", str(project), virtuoso.store, env=env)
    assert p.returncode == 0, p.stderr
    assert "22 graphs put" in p.stdout
    assert Virtuoso.PASSWORD not in p.stdout + p.stderr

    def stored() -> Counter:
        ours = " ".join(f"<{g}>" for g in sorted(live_graphs(project) | {EMMY_GRAPH}))
        return Counter({row["g"].value: int(row["n"].value) for row in virtuoso.select(
            f"SELECT ?g (COUNT(*) AS ?n) WHERE {{ VALUES ?g {{ {ours} }} GRAPH ?g {{ ?s ?p ?o }} }} GROUP BY ?g")})
    dump = Counter(q.graph_name.value for q in ox.parse(path=str(project / "output/dataset.nq"),
                                                           format=ox.RdfFormat.N_QUADS))
    assert stored() == dump                                # every graph, with all its triples

    remove_emmy(project)
    pipeline.publish(project, now=T2, allow_deletions=True)
    p = cli("push", "--project", str(project), virtuoso.store, env=env)
    assert p.returncode == 0 and " 1 deleted" in p.stdout, p.stdout + p.stderr
    dump = Counter(q.graph_name.value for q in ox.parse(path=str(project / "output/dataset.nq"),
                                                           format=ox.RdfFormat.N_QUADS))
    assert EMMY_GRAPH not in dump and stored() == dump
