"""The SPARQL endpoint over real HTTP (``heritage-ld serve``): protocol, result formats, read-only, limits,
and the store kept in step with the catalog."""
from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pyoxigraph as ox
import pytest
import rdflib
import requests
from rdflib.compare import isomorphic
from rdflib.query import Result

from conftest import Listener, copy_sample_project
from heritage_ld import pipeline
from heritage_ld.config import load as load_config
from heritage_ld.sparql import QueryWorker, StoreSync, is_update
from heritage_ld.writers.rdf import graph_iri
from test_linked_data import free_port, serve_project

LIMIT = 100
TIMEOUT = 2
NAMES = "SELECT ?s ?name WHERE { ?s a schema:Person ; schema:name ?name } ORDER BY ?s"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    project = copy_sample_project(tmp_path_factory.mktemp("sparql") / "project")
    extra = f"\n[sparql]\ntimeout = {TIMEOUT}\nmax_results = {LIMIT}\n"
    for url, project, _proc in serve_project(project, extra):
        yield SimpleNamespace(url=url, endpoint=url + "sparql", project=project, out=project / "output")


def people(srv) -> set[tuple[str, str]]:
    g = rdflib.Graph().parse(srv.out / "dataset.nt", format="nt")
    schema = rdflib.Namespace("http://schema.org/")
    return {(str(s), str(n)) for s in g.subjects(rdflib.RDF.type, schema.Person) for n in g.objects(s, schema.name)}


def rows(result: Result) -> set[tuple[str, str]]:
    return {(str(r[0]), str(r[1])) for r in result}


# -- protocol and result formats ------------------------------------------------------------------

@pytest.mark.parametrize("media, fmt", [("application/sparql-results+json", "json"),
                                        ("application/sparql-results+xml", "xml"),
                                        ("text/csv", "csv"), ("text/tab-separated-values", "tsv")])
def test_select_result_formats(srv, media, fmt):
    r = requests.get(srv.endpoint, params={"query": NAMES}, headers={"Accept": media})
    assert r.status_code == 200 and r.headers["Content-Type"].split(";")[0] == media
    parsed = Result.parse(io.BytesIO(r.content) if fmt != "csv" else io.StringIO(r.text), format=fmt)
    assert parsed.vars == [rdflib.Variable("s"), rdflib.Variable("name")]
    assert rows(parsed) == people(srv)


def test_get_post_form_and_post_query_agree(srv):
    accept = {"Accept": "application/sparql-results+json"}
    a = requests.get(srv.endpoint, params={"query": NAMES}, headers=accept).json()
    b = requests.post(srv.endpoint, data={"query": NAMES}, headers=accept).json()
    c = requests.post(srv.endpoint, data=NAMES.encode(), headers={**accept, "Content-Type": "application/sparql-query"}).json()
    assert a == b == c and len(a["results"]["bindings"]) == len(people(srv))


def test_json_terms_and_ask(srv):
    q = ('SELECT ?d ?t WHERE { ?a schema:datePublished ?d ; schema:headline ?t '
         'FILTER(lang(?t) = "nl") }')
    b = requests.get(srv.endpoint, params={"query": q}).json()["results"]["bindings"][0]
    assert b["d"] == {"type": "literal", "value": "2022-03-08", "datatype": "http://www.w3.org/2001/XMLSchema#date"}
    assert b["t"]["xml:lang"] == "nl"
    assert requests.get(srv.endpoint, params={"query": "ASK { ?s a schema:Person }"}).json() == {"head": {}, "boolean": True}
    xml = requests.get(srv.endpoint, params={"query": "ASK { ?s a schema:Nothing }"},
                       headers={"Accept": "application/sparql-results+xml"})
    assert Result.parse(io.BytesIO(xml.content), format="xml").askAnswer is False


@pytest.mark.parametrize("media, fmt", [("text/turtle", "turtle"), ("application/n-triples", "nt"),
                                        ("application/rdf+xml", "xml"), ("application/ld+json", "json-ld")])
def test_describe_and_construct_formats(srv, media, fmt):
    person = srv.url + "person/sanne-de-vries"
    r = requests.get(srv.endpoint, params={"query": f"DESCRIBE <{person}>"}, headers={"Accept": media})
    assert r.status_code == 200 and r.headers["Content-Type"].split(";")[0] == media
    record = rdflib.Graph().parse(srv.out / "records" / "person" / "sanne-de-vries.ttl")
    assert isomorphic(rdflib.Graph().parse(data=r.content, format=fmt), record)
    c = requests.post(srv.endpoint, data={"query": f"CONSTRUCT {{ <{person}> ?p ?o }} WHERE {{ <{person}> ?p ?o }}"},
                      headers={"Accept": media})
    assert isomorphic(rdflib.Graph().parse(data=c.content, format=fmt), record)


def test_union_default_graph_and_named_graphs(srv):
    dump = ox.Dataset(ox.parse(path=str(srv.out / "dataset.nq"), format=ox.RdfFormat.N_QUADS))
    triples = {(q.subject, q.predicate, q.object) for q in dump}
    count = requests.get(srv.endpoint, params={"query": "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }"}).json()
    assert int(count["results"]["bindings"][0]["n"]["value"]) == len(triples)
    graphs = requests.get(srv.endpoint, params={"query": "SELECT DISTINCT ?g { GRAPH ?g { ?s ?p ?o } }"}).json()
    expected = {q.graph_name.value for q in dump}
    assert {b["g"]["value"] for b in graphs["results"]["bindings"]} == expected
    pub = SimpleNamespace(config=SimpleNamespace(base_uri=srv.url))
    g = graph_iri(pub, "person", "sanne-de-vries")
    assert g in expected
    one = requests.get(srv.endpoint, params={"query": "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }", "default-graph-uri": g}).json()
    assert int(one["results"]["bindings"][0]["n"]["value"]) == len([q for q in dump if q.graph_name.value == g])
    named = requests.get(srv.endpoint, params={"query": "SELECT DISTINCT ?g { GRAPH ?g { ?s ?p ?o } }",
                                               "named-graph-uri": g}).json()
    assert [b["g"]["value"] for b in named["results"]["bindings"]] == [g]


def test_no_query_gives_a_description_or_a_form(srv):
    sd = requests.get(srv.endpoint, headers={"Accept": "text/turtle"})
    assert sd.status_code == 200
    g = rdflib.Graph().parse(data=sd.text, format="turtle")
    SD = rdflib.Namespace("http://www.w3.org/ns/sparql-service-description#")
    assert (None, SD.endpoint, rdflib.URIRef(srv.endpoint)) in g
    form = requests.get(srv.endpoint, headers={"Accept": "text/html"})
    assert form.headers["Content-Type"].startswith("text/html") and 'name="query"' in form.text


def test_errors_are_clear(srv):
    bad = requests.get(srv.endpoint, params={"query": "SELECT * WHERE { ?s ?p }"})
    assert bad.status_code == 400 and "parse error" in bad.text
    two = requests.get(srv.endpoint, params=[("query", "ASK {}"), ("query", "ASK {}")])
    assert two.status_code == 400
    assert requests.post(srv.endpoint, data=b"ASK {}", headers={"Content-Type": "text/plain"}).status_code == 415
    assert requests.put(srv.endpoint, data=b"ASK {}").status_code == 405
    assert requests.get(srv.endpoint, params={"query": "ASK {}", "default-graph-uri": "not an IRI"}).status_code == 400
    r = requests.get(srv.endpoint, params={"query": NAMES}, headers={"Accept": "image/png"})
    assert r.status_code == 406 and "application/sparql-results+json" in r.text
    r = requests.get(srv.endpoint, params={"query": "DESCRIBE <x:y>"}, headers={"Accept": "text/csv"})
    assert r.status_code == 406 and "text/turtle" in r.text


# -- read-only ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("query", ["INSERT DATA { <http://x/s> <http://x/p> <http://x/o> }",
                                   "PREFIX x: <http://x/>\n# a comment\nDELETE WHERE { ?s ?p ?o }",
                                   "DROP ALL", "CLEAR DEFAULT", "LOAD <http://example.org/data.ttl>",
                                   "WITH <http://x/g> DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }"])
def test_updates_are_refused(srv, query):
    assert is_update(query)
    before = requests.get(srv.endpoint, params={"query": "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }"}).json()
    for r in (requests.post(srv.endpoint, data={"update": query}),
              requests.post(srv.endpoint, data=query.encode(), headers={"Content-Type": "application/sparql-update"}),
              requests.post(srv.endpoint, data={"query": query}),
              requests.get(srv.endpoint, params={"query": query})):
        assert r.status_code == 403 and "read-only" in r.text
    assert requests.get(srv.endpoint, params={"query": "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }"}).json() == before


def test_is_update_reads_past_the_prologue_only():
    assert not is_update("PREFIX insert: <http://x/>\nSELECT * { ?s insert:p 'DELETE' }")
    assert not is_update("# INSERT DATA\nASK {}")
    assert is_update("BASE <http://x/> PREFIX a: <http://y/> insert data { <s> <p> <o> }")


# -- no federated queries (SERVICE): the server fetches nothing ------------------------------------------

FEDERATED = [
    "SELECT * WHERE { SERVICE <{url}> { ?s ?p ?o } }",
    "SELECT * WHERE { SERVICE SILENT <{url}> { ?s ?p ?o } }",
    "select * { ?s ?p ?o . optional { select * { { service <{url}> { ?a ?b ?c } } union { ?x ?y ?z } } } }",
    "SELECT * WHERE { VALUES ?e { <{url}> } SERVICE ?e { ?s ?p ?o } }",
    "SELECT * WHERE { BIND(<{url}> AS ?e) SERVICE SILENT ?e { ?s ?p ?o } }",
    "CONSTRUCT { ?s ?p ?o } WHERE { SERVICE <{url}> { ?s ?p ?o } }",
    "ASK { SERVICE SILENT <{url}> { ?s ?p ?o } }",
    "DESCRIBE ?s WHERE { SERVICE <{url}> { ?s ?p ?o } }",
    "SELECT * { ?s ?p ?o .SERVICE<{url}>{?a ?b ?c} }",                        # no spaces
    "SELECT * { FILTER(1<2)SERVICE<{url}>{?s ?p ?o} }",                      # "<" read as less-than
    "SELECT * { BIND(<{url}> AS ?e) FILTER(1<2)SERVICE?e#>\n{?s ?p ?o} }",   # ... hiding "SERVICE?e" in an "IRI"
    "PREFIX e: <{url}#> SELECT * { SERVICE e: { ?s ?p ?o } }",
    "SELECT * { ?s ?p ex:a\\' . SERVICE <{url}> { ?a ?b ?c } ?s ?p ex:b\\' }",  # a quote escaped in a local name
]


@pytest.mark.parametrize("query", FEDERATED)
def test_federated_queries_are_refused_and_fetch_nothing(srv, listener, query):
    query = query.replace("{url}", listener.url)
    accept = {"Accept": "application/sparql-results+json, text/turtle;q=0.9"}
    for r in (requests.get(srv.endpoint, params={"query": query}, headers=accept, timeout=30),
              requests.post(srv.endpoint, data={"query": query}, headers=accept, timeout=30),
              requests.post(srv.endpoint, data=query.encode(), timeout=30,
                            headers={**accept, "Content-Type": "application/sparql-query"})):
        assert r.status_code == 400, r.text
        assert "federated queries (SERVICE) are not allowed" in r.text
    time.sleep(0.3)
    assert listener.received == []


def test_self_calls_and_updates_fetch_nothing(srv, listener):
    own = requests.get(srv.endpoint, params={"query": f"SELECT * {{ SERVICE <{srv.endpoint}> {{ ?s ?p ?o }} }}"})
    assert own.status_code == 400 and "not allowed" in own.text
    for update in (f"LOAD <{listener.url}>", f"LOAD SILENT <{listener.url}> INTO GRAPH <http://x/g>",
                   f"INSERT {{ ?s ?p ?o }} WHERE {{ SERVICE <{listener.url}> {{ ?s ?p ?o }} }}"):
        for r in (requests.post(srv.endpoint, data={"update": update}),
                  requests.post(srv.endpoint, data=update.encode(), headers={"Content-Type": "application/sparql-update"}),
                  requests.get(srv.endpoint, params={"query": update})):
            assert r.status_code in (400, 403), r.text
    time.sleep(0.3)
    assert listener.received == []


def test_service_words_in_names_strings_and_iris_are_not_federation(srv):
    q = ("PREFIX service: <http://x/> SELECT * { ?s a schema:Service ; service:p ?service . "
         "?s <http://www.w3.org/ns/sparql-service-description#x> 'SERVICE <http://x/>' } # SERVICE <http://y/>")
    r = requests.get(srv.endpoint, params={"query": q})
    assert r.status_code == 200 and r.json()["results"]["bindings"] == []


def test_query_processes_cannot_open_sockets(srv, listener):
    """Below the query check: a query process that is handed a federated query makes no connection."""
    path = str(StoreSync(load_config(srv.project)).path())
    worker = QueryWorker()
    try:
        for query, status in ((f"SELECT * {{ SERVICE <{listener.url}> {{ ?s ?p ?o }} }}", "500"),
                              (f"ASK {{ SERVICE SILENT <{listener.url}> {{ ?s ?p ?o }} }}", "200")):
            job = (path, query, srv.url, {}, [], [], "json", None, 10)
            got_status, _ctype, body = worker.run(job, 30)
            assert got_status.startswith(status), body
            assert listener.url.encode() not in body
    finally:
        worker.stop()
    time.sleep(0.3)
    assert listener.received == []


@pytest.fixture(scope="module")
def federating(tmp_path_factory):
    """A server whose [sparql] service_endpoints lists a real oxigraph server, a listener that answers 500
    with internal details, and an endpoint on ::1 (not in allow_addresses)."""
    tmp = tmp_path_factory.mktemp("federation")
    data = tmp / "remote.ttl"
    data.write_text("<http://remote.example/s> <http://remote.example/p> 'from the remote store' .\n")
    port = free_port()
    oxi = subprocess.Popen([str(Path(sys.executable).with_name("oxigraph")), "serve", "--location", str(tmp / "oxi"),
                            "--bind", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    failing = Listener(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 31\r\n"
                       b"Connection: close\r\n\r\nSECRET internal stack trace xyz")
    target = Listener()
    redirecting = Listener(f"HTTP/1.1 307 Temporary Redirect\r\nLocation: {target.url}\r\nContent-Length: 0\r\n"
                           "Connection: close\r\n\r\n".encode())
    remote = f"http://127.0.0.1:{port}/query"
    try:
        for _ in range(100):
            try:
                if requests.post(f"http://127.0.0.1:{port}/store?default", data=data.read_bytes(),
                                 headers={"Content-Type": "text/turtle"}, timeout=2).status_code in (201, 204):
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            pytest.fail("oxigraph serve did not start")
        ipv6 = f"http://[::1]:{port}/query"
        extra = (f'\n[sparql]\ntimeout = 10\nservice_endpoints = ["{remote}", "{failing.url}", "{ipv6}", '
                 f'"{redirecting.url}"]\nallow_addresses = ["127.0.0.1"]\n')
        project = copy_sample_project(tmp / "project")
        for url, project, _proc in serve_project(project, extra):
            yield SimpleNamespace(endpoint=url + "sparql", remote=remote, failing=failing, ipv6=ipv6,
                                  redirecting=redirecting, target=target)
    finally:
        for one in (failing, target, redirecting):
            one.close()
        oxi.terminate()
        oxi.wait(10)


def test_listed_endpoints_only(federating, listener):
    ok = requests.get(federating.endpoint, timeout=30, params={
        "query": f"SELECT ?o {{ SERVICE <{federating.remote}> {{ ?s ?p ?o }} }}"})
    assert ok.status_code == 200, ok.text
    assert [b["o"]["value"] for b in ok.json()["results"]["bindings"]] == ["from the remote store"]
    for query in (f"SELECT * {{ SERVICE <{listener.url}> {{ ?s ?p ?o }} }}",   # not listed
                  f"SELECT * {{ VALUES ?e {{ <{federating.remote}> }} SERVICE ?e {{ ?s ?p ?o }} }}"):  # not an IRI
        r = requests.get(federating.endpoint, params={"query": query}, timeout=30)
        assert r.status_code == 400 and "not allowed" in r.text and federating.remote in r.text
    private = requests.get(federating.endpoint, timeout=30, params={
        "query": f"SELECT * {{ SERVICE <{federating.ipv6}> {{ ?s ?p ?o }} }}"})
    assert private.status_code == 400 and "::1" in private.text and "allow_addresses" in private.text
    time.sleep(0.3)
    assert listener.received == []


def test_what_a_remote_endpoint_says_is_never_passed_on(federating):
    r = requests.get(federating.endpoint, timeout=30, params={
        "query": f"SELECT * {{ SERVICE <{federating.failing.url}> {{ ?s ?p ?o }} }}"})
    assert federating.failing.received, "the listed endpoint was called"
    assert r.status_code == 500 and "SECRET" not in r.text and "federated query failed" in r.text


def test_a_listed_endpoints_redirects_are_not_followed(federating):
    r = requests.get(federating.endpoint, timeout=30, params={
        "query": f"SELECT * {{ SERVICE <{federating.redirecting.url}> {{ ?s ?p ?o }} }}"})
    assert federating.redirecting.received and r.status_code == 500
    time.sleep(0.3)
    assert federating.target.received == []


# -- limits ------------------------------------------------------------------------------------------

def test_result_size_limit(srv):
    too_many = requests.get(srv.endpoint, params={"query": "SELECT * { ?s ?p ?o }"})
    assert too_many.status_code == 413 and f"more than {LIMIT}" in too_many.text and "LIMIT" in too_many.text
    ok = requests.get(srv.endpoint, params={"query": f"SELECT * {{ ?s ?p ?o }} LIMIT {LIMIT}"}).json()
    assert len(ok["results"]["bindings"]) == LIMIT
    graph = requests.get(srv.endpoint, params={"query": "CONSTRUCT WHERE { ?s ?p ?o }"}, headers={"Accept": "text/turtle"})
    assert graph.status_code == 413


def test_time_limit(srv):
    slow = "SELECT (COUNT(*) AS ?n) { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"
    start = time.monotonic()
    r = requests.get(srv.endpoint, params={"query": slow}, timeout=60)
    assert r.status_code == 503 and f"{TIMEOUT} s limit" in r.text
    assert time.monotonic() - start < TIMEOUT + 5
    # the endpoint goes on answering (a new query process replaces the stopped one)
    for _ in range(3):
        assert requests.get(srv.endpoint, params={"query": "ASK {}"}).json()["boolean"] is True


# -- in step with the catalog ---------------------------------------------------------------------

def test_store_follows_publish(srv):
    people_file = srv.project / "sample" / "people.json"
    data = json.loads(people_file.read_text("utf-8"))
    for p in data:
        if p.get("identifier") == "emmy-storms":
            p["name"] = "Emmy Storms-Jansen"
    people_file.write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    pipeline.publish(srv.project)
    q = f'SELECT ?n {{ <{srv.url}person/emmy-storms> schema:name ?n }}'
    names = requests.get(srv.endpoint, params={"query": q}).json()["results"]["bindings"]
    assert [b["n"]["value"] for b in names] == ["Emmy Storms-Jansen"]
    page = requests.get(srv.url + "person/emmy-storms", headers={"Accept": "text/turtle"})
    assert "Emmy Storms-Jansen" in page.text


def test_sync_applies_only_changed_records(tmp_path, monkeypatch):
    project = copy_sample_project(tmp_path / "p")
    pipeline.publish(project, now=1_800_000_000)
    sync = StoreSync(load_config(project))
    loaded: list[tuple[int, bool]] = []
    real = sync._load
    monkeypatch.setattr(sync, "_load", lambda store, rows, full: (loaded.append((len(rows), full)), real(store, rows, full)))
    first = sync.sync_here()
    assert loaded == [(22, True)] and first["gen"] == "gen-000001"
    assert sync.sync_here() == first and len(loaded) == 1           # nothing changed: nothing done
    posts = project / "sample" / "posts.json"
    data = json.loads(posts.read_text("utf-8"))
    data[0]["name"] = data[0]["name"] + " (updated)"
    posts.write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    pipeline.publish(project, now=1_800_000_100)
    second = sync.sync_here()
    assert loaded[-1] == (1, False) and second["gen"] == "gen-000002"
    # a later run stamped with an older clock is still seen (the new runs say from when to re-apply)
    data[0]["name"] = data[0]["name"] + " again"
    posts.write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    pipeline.publish(project, now=1_700_000_000)
    sync.sync_here()
    assert loaded[-1][1] is False
    store = ox.Store.read_only(str(sync.dir / sync.current()["gen"]))
    titles = {str(q.object.value) for q in store.quads_for_pattern(None, ox.NamedNode("http://schema.org/headline"), None)}
    assert data[0]["name"] in titles
    # withdrawals remove the record's graph; old generations are pruned
    posts.write_text(json.dumps(data[1:], ensure_ascii=False), "utf-8")
    pipeline.publish(project, now=1_800_000_200, allow_deletions=True)
    sync.sync_here()
    sync.sync_here()
    store = ox.Store.read_only(str(sync.dir / sync.current()["gen"]))
    graphs = {g.value for g in store.named_graphs()}
    live = {graph_iri(SimpleNamespace(config=sync.cfg), e, i) for e, i in
            sync.db.execute("SELECT entity, id FROM records WHERE deleted = 0")}
    assert graphs == live
    assert len(list(sync.dir.glob("gen-*"))) <= StoreSync.KEEP
