"""Dereferenceable IRIs: a real ``heritage-ld serve`` (gunicorn) on 127.0.0.1 serving a published copy of the
sample whose base_uri is the server itself, so every IRI in the data is fetched as it is."""
from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace
from wsgiref.util import setup_testing_defaults

import pytest
import requests
import rdflib
from rdflib.compare import isomorphic

from conftest import copy_sample_project
from heritage_ld import pipeline
from heritage_ld.linkeddata import negotiate, parse_accept
from heritage_ld.server import create_app

BIN = Path(sys.executable).with_name("heritage-ld")
ARTICLE = "article/muziek-uit-het-archief"
RDF_TYPES = {"text/turtle": "turtle", "application/ld+json": "json-ld", "application/n-triples": "nt",
             "application/rdf+xml": "xml"}
VOID = rdflib.Namespace("http://rdfs.org/ns/void#")
DCAT = rdflib.Namespace("http://www.w3.org/ns/dcat#")
DCT = rdflib.Namespace("http://purl.org/dc/terms/")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_project(project: Path, extra_toml: str = ""):
    """Publish a copy of the sample with base_uri = the server, and start ``heritage-ld serve`` on a free
    port; a generator yielding (base URL, project, process)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    toml = project / "heritage-ld.toml"
    text = toml.read_text().replace('base_uri = "https://data.example.org/"', f'base_uri = "{url}"')
    assert url in text
    toml.write_text(text + extra_toml)
    pipeline.publish(project)
    log = open(project / "server.log", "wb")
    proc = subprocess.Popen([str(BIN), "serve", "--project", str(project), "--port", str(port), "--workers", "2"],
                            stdout=log, stderr=log)
    try:
        for _ in range(300):
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
            assert proc.poll() is None, (project / "server.log").read_text()
        else:
            pytest.fail("server did not answer: " + (project / "server.log").read_text())
        yield url, project, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    project = copy_sample_project(tmp_path_factory.mktemp("ld") / "project")
    for url, project, _proc in serve_project(project):
        yield SimpleNamespace(url=url, project=project, out=project / "output")


def graph(data: bytes | str, fmt: str, base: str | None = None) -> rdflib.Graph:
    return rdflib.Graph().parse(data=data, format=fmt, publicID=base)


def record_file(srv, key: str) -> rdflib.Graph:
    entity, rid = key.split("/", 1)
    return rdflib.Graph().parse(srv.out / "records" / entity / f"{rid}.ttl", format="turtle")


# -- the Accept parser ---------------------------------------------------------------------------

OFFERS = ["text/html", "text/turtle", "application/ld+json"]


@pytest.mark.parametrize("accept, expected", [
    (None, "text/html"),                                                    # no header: anything, server order
    ("", "text/html"),
    ("*/*", "text/html"),
    ("text/turtle", "text/turtle"),
    ("application/ld+json;q=0.9, text/turtle;q=0.5", "application/ld+json"),
    ("text/*;q=0.3, application/ld+json;q=0.2", "text/html"),               # type/* matches, ties -> server order
    ("text/*, text/html;q=0", "text/turtle"),                               # more specific q=0 excludes html
    ("*/*;q=0.1, text/turtle", "text/turtle"),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8", "text/html"),   # a browser
    ('application/ld+json;profile="http://www.w3.org/ns/json-ld#compacted, x";q=0.8, text/turtle;q=0.7',
     "application/ld+json"),                                                # quoted comma in a parameter
    ("TEXT/Turtle", "text/turtle"),                                         # case-insensitive
    ("text/turtle;q=0", None),
    ("image/png", None),
    ("text/turtle;q=2, image/png", None),                                   # an invalid q drops the range
    ("*/turtle, image/png", None),                                          # malformed range skipped
])
def test_negotiate(accept, expected):
    assert negotiate(accept, OFFERS) == expected


def test_parse_accept_reads_q_and_ignores_extensions():
    assert parse_accept("text/turtle;charset=utf-8;q=0.5;ext=1, */*") == [("text", "turtle", 0.5), ("*", "*", 1.0)]


# -- records by content negotiation ------------------------------------------------------------

@pytest.mark.parametrize("media, fmt", sorted(RDF_TYPES.items()))
def test_record_in_each_rdf_format_by_accept(srv, media, fmt):
    r = requests.get(srv.url + ARTICLE, headers={"Accept": media})
    assert r.status_code == 200
    assert r.headers["Content-Type"].split(";")[0] == media
    assert r.headers["Vary"] == "Accept"
    ext = {"turtle": "ttl", "json-ld": "jsonld", "nt": "nt", "xml": "rdf"}[fmt]
    assert r.headers["Content-Location"] == f"/{ARTICLE}?format={ext}"
    assert isomorphic(graph(r.content, fmt), record_file(srv, ARTICLE))


def test_format_parameter_overrides_accept(srv):
    for ext, media in (("ttl", "text/turtle"), ("jsonld", "application/ld+json"), ("nt", "application/n-triples"),
                       ("rdf", "application/rdf+xml"), ("html", "text/html")):
        r = requests.get(srv.url + ARTICLE, params={"format": ext}, headers={"Accept": "image/png"})
        assert r.status_code == 200 and r.headers["Content-Type"].startswith(media)
    assert requests.get(srv.url + ARTICLE, params={"format": "pdf"}).status_code == 406


def test_browsers_get_html_and_rdf_clients_get_rdf(srv):
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert requests.get(srv.url + ARTICLE, headers={"Accept": browser}).headers["Content-Type"].startswith("text/html")
    rdf_client = "text/turtle;q=1.0, application/rdf+xml;q=0.9, */*;q=0.1"
    assert requests.get(srv.url + ARTICLE, headers={"Accept": rdf_client}).headers["Content-Type"].startswith("text/turtle")
    links = requests.get(srv.url + ARTICLE).headers["Link"]
    assert '<?format=ttl>; rel="alternate"; type="text/turtle"' in links


def test_406_lists_what_is_available(srv):
    r = requests.get(srv.url + ARTICLE, headers={"Accept": "application/pdf, text/html;q=0"})
    assert r.status_code == 406
    for media in ("text/html", "text/turtle", "application/ld+json", "application/n-triples", "application/rdf+xml"):
        assert media in r.text
    assert r.headers["Vary"] == "Accept"


def test_unknown_ids_are_404(srv):
    for path in ("article/no-such-article", "nothing/at/all", "rights/http://example.org/none", "timespan/0-1"):
        assert requests.get(srv.url + path, headers={"Accept": "text/turtle"}).status_code == 404, path


def test_every_minted_iri_dereferences(srv):
    """Each subject under base_uri in the dump (records, hash IRIs' documents, time spans, graphs) answers
    with a description that contains what the dump says about it."""
    dump = rdflib.Graph()
    for s, p, o, _g in rdflib.Dataset().parse(srv.out / "dataset.nq", format="nquads").quads():
        dump.add((s, p, o))
    subjects = {str(s) for s in dump.subjects() if str(s).startswith(srv.url)}
    assert any("/timespan/" in s for s in subjects) and any("#aggregation" in s for s in subjects)
    for s in sorted(subjects):
        r = requests.get(s.split("#")[0], headers={"Accept": "application/n-triples"})
        assert r.status_code == 200, s
        got = graph(r.content, "nt")
        for t in dump.triples((rdflib.URIRef(s), None, None)):
            assert t in got, (s, t)


def test_records_with_iris_elsewhere_are_served_by_entity_and_id(srv):
    r = requests.get(srv.url + "rights/http%3A%2F%2Fcreativecommons.org%2Flicenses%2Fby-sa%2F4.0%2F",
                     headers={"Accept": "text/turtle"})
    assert r.status_code == 200
    g = graph(r.content, "turtle")
    assert (rdflib.URIRef("http://creativecommons.org/licenses/by-sa/4.0/"), None, None) in g


def test_etag_last_modified_and_304(srv):
    r = requests.get(srv.url + ARTICLE, headers={"Accept": "text/turtle"})
    etag, last = r.headers["ETag"], r.headers["Last-Modified"]
    assert etag.endswith('-ttl"')
    other = requests.get(srv.url + ARTICLE, headers={"Accept": "application/n-triples"}).headers["ETag"]
    assert other != etag and other.endswith('-nt"')
    again = requests.get(srv.url + ARTICLE, headers={"Accept": "text/turtle", "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag
    assert requests.get(srv.url + ARTICLE, headers={"Accept": "text/turtle", "If-None-Match": f"W/{etag}"}).status_code == 304
    assert requests.get(srv.url + ARTICLE, headers={"Accept": "text/turtle", "If-None-Match": '"other"'}).status_code == 200
    assert requests.get(srv.url + ARTICLE, headers={"Accept": "text/turtle", "If-Modified-Since": last}).status_code == 304
    earlier = format_datetime(parsedate_to_datetime(last) - timedelta(hours=1), usegmt=True)
    assert requests.get(srv.url + ARTICLE, headers={"Accept": "text/turtle", "If-Modified-Since": earlier}).status_code == 200
    html = requests.get(srv.url + ARTICLE)
    assert requests.get(srv.url + ARTICLE, headers={"If-None-Match": html.headers["ETag"]}).status_code == 304


def test_head_has_headers_and_no_body(srv):
    r = requests.head(srv.url + ARTICLE, headers={"Accept": "text/turtle"})
    assert r.status_code == 200 and r.content == b""
    assert int(r.headers["Content-Length"]) == len(requests.get(srv.url + ARTICLE, headers={"Accept": "text/turtle"}).content)


# -- dataset description and output files --------------------------------------------------------

@pytest.mark.parametrize("path", [".well-known/void", "dataset"])
def test_dataset_description(srv, path):
    for media, fmt in (("text/turtle", "turtle"), ("application/ld+json", "json-ld")):
        r = requests.get(srv.url + path, headers={"Accept": media})
        assert r.status_code == 200 and r.headers["Vary"] == "Accept"
        g = graph(r.content, fmt)
        ds = rdflib.URIRef(srv.url + "dataset")
        assert (ds, rdflib.RDF.type, VOID.Dataset) in g and (ds, rdflib.RDF.type, DCAT.Dataset) in g
        assert int(g.value(ds, VOID.triples)) == len(graph((srv.out / "dataset.nt").read_bytes(), "nt"))
        assert g.value(ds, VOID.sparqlEndpoint) == rdflib.URIRef(srv.url + "sparql")
        assert g.value(ds, DCT.license) == rdflib.URIRef("http://creativecommons.org/publicdomain/zero/1.0/")
        oai = rdflib.URIRef(srv.url + "oai")
        assert (oai, rdflib.RDF.type, DCAT.DataService) in g and g.value(oai, DCAT.endpointURL) == oai
        assert g.value(oai, DCAT.servesDataset) == ds
        edm = rdflib.URIRef(srv.url + "edm/")
        assert g.value(edm, DCT.conformsTo) == rdflib.URIRef("http://www.europeana.eu/schemas/edm/")
        for dist in g.objects(ds, VOID.dataDump):
            assert g.value(dist, DCAT.mediaType) is not None
            download = g.value(dist, DCAT.downloadURL)
            if not str(download).endswith(".gz") or (srv.out / str(download)[len(srv.url):]).exists():
                assert requests.get(download).status_code == 200, download
        assert requests.get(str(edm)).status_code == 200
        assert requests.get(str(g.value(ds, VOID.sparqlEndpoint)), params={"query": "ASK {}"}).status_code == 200


def test_static_void_lists_the_endpoints(srv):
    g = rdflib.Graph().parse(srv.out / "void.ttl", format="turtle")
    ds = rdflib.URIRef(srv.url + "dataset")
    assert g.value(ds, VOID.sparqlEndpoint) == rdflib.URIRef(srv.url + "sparql")
    assert {str(s) for s in g.subjects(rdflib.RDF.type, DCAT.DataService)} == {srv.url + "sparql", srv.url + "oai"}


@pytest.mark.parametrize("name, media", [("dataset.nt", "application/n-triples"), ("dataset.ttl", "text/turtle"),
                                         ("context.jsonld", "application/ld+json"), ("void.ttl", "text/turtle"),
                                         ("edm/article/muziek-uit-het-archief.xml", "application/rdf+xml")])
def test_output_files_by_path(srv, name, media):
    r = requests.get(srv.url + name)
    assert r.status_code == 200 and r.headers["Content-Type"].split(";")[0] == media
    assert r.content == (srv.out / name).read_bytes()
    assert requests.get(srv.url + name, headers={"If-None-Match": r.headers["ETag"]}).status_code == 304


@pytest.mark.parametrize("path", ["/../heritage-ld.toml", "/%2e%2e/heritage-ld.toml", "/edm/../../heritage-ld.toml",
                                  "/edm/%2E%2E/%2E%2E/heritage-ld.toml", "/.state", "/.dataset.nq.gz.members",
                                  "/edm/..%2f..%2fheritage-ld.toml",
                                  "/%2fetc/passwd", "//etc/passwd", "/records/../../.heritage-ld/catalog.sqlite"])
def test_no_path_traversal(srv, path):
    conn = http.client.HTTPConnection("127.0.0.1", int(srv.url.rsplit(":", 1)[1].strip("/")), timeout=10)
    conn.request("GET", path)   # sent as is, not normalised by a client library
    r = conn.getresponse()
    body = r.read()
    assert r.status in (400, 404), (path, r.status)
    assert b"base_uri" not in body and b"SQLite" not in body


def raw_get(srv, path: str, accept: str = "text/turtle") -> tuple[int, bytes]:
    """GET ``path`` as sent (no client normalising it); a connection closed without an answer raises."""
    conn = http.client.HTTPConnection("127.0.0.1", int(srv.url.rsplit(":", 1)[1].strip("/")), timeout=10)
    try:
        conn.request("GET", path, headers={"Accept": accept})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_paths_the_file_system_cannot_take_are_answered(srv):
    """Every OSError of the file lookup (a name over 255 bytes, a path over PATH_MAX, a symlink loop, a file
    taken for a folder) is an answer, not a dropped connection."""
    (srv.out / "loop").symlink_to("loop")
    (srv.out / "loop2").symlink_to("loop3")
    (srv.out / "loop3").symlink_to("loop2")
    try:
        paths = ["/" + "a" * 256, "/edm/" + "%C3%A9" * 200, "/" + "/".join(["b" * 200] * 20), "/loop", "/loop/x",
                 "/loop2/", "/dataset.nt/x", "/" + "c" * 300 + "/", "/article/" + "d" * 300]
        for path in paths:
            status, body = raw_get(srv, path)
            assert status in (404, 414), (path[:40], status, body[:200])
        assert raw_get(srv, "/dataset.nt")[0] == 200  # the server goes on serving files
    finally:
        for name in ("loop", "loop2", "loop3"):
            (srv.out / name).unlink()


# -- formats of older clients, named graphs, JSON-LD profiles -------------------------------------

def test_text_plain_is_n_triples_and_rdflib_loads_every_format(srv):
    r = requests.get(srv.url + ARTICLE, headers={"Accept": "text/plain"})
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert isomorphic(graph(r.content, "nt"), record_file(srv, ARTICLE))
    for fmt in (None, "nt", "turtle", "xml", "json-ld", "trig"):  # with rdflib's own Accept headers
        if fmt == "trig":  # the record's named graph: its triples, and the provenance of the graph
            got = rdflib.Graph()
            for s, p, o, _g in rdflib.Dataset().parse(srv.url + ARTICLE, format=fmt).quads():
                if "/graph/" not in str(s):
                    got.add((s, p, o))
        else:
            got = rdflib.Graph().parse(srv.url + ARTICLE, format=fmt)
        assert isomorphic(got, record_file(srv, ARTICLE)), fmt


def record_quads(srv, key: str) -> set[tuple]:
    """The quads of a record's named graph in output/dataset.nq."""
    ds = rdflib.Dataset().parse(srv.out / "dataset.nq", format="nquads")
    g = rdflib.URIRef(srv.url + "graph/" + key)
    return {(s, p, o, c) for s, p, o, c in ds.quads() if c == g}


@pytest.mark.parametrize("media, fmt", [("application/n-quads", "nquads"), ("application/trig", "trig")])
def test_a_records_named_graph_as_quads(srv, media, fmt):
    expected = record_quads(srv, ARTICLE)
    assert len(expected) > 10
    for path in (ARTICLE, "graph/" + ARTICLE):  # the record's IRI and its graph's IRI
        r = requests.get(srv.url + path, headers={"Accept": media})
        assert r.status_code == 200 and r.headers["Content-Type"].split(";")[0] == media, path
        got = {(s, p, o, c) for s, p, o, c in rdflib.Dataset().parse(data=r.content, format=fmt).quads()}
        assert got == expected, path
        assert f'type="{media}"' in r.headers["Link"]
    by_name = requests.get(srv.url + ARTICLE, params={"format": {"nquads": "nq", "trig": "trig"}[fmt]})
    assert by_name.headers["Content-Type"].split(";")[0] == media
    # only where a record's graph is: the dataset description has none
    r = requests.get(srv.url + "dataset", headers={"Accept": media})
    assert r.status_code == 406 and "text/turtle" in r.text and media not in r.text


def test_jsonld_profiles(srv):
    from pyld import jsonld
    record = record_file(srv, ARTICLE)

    def fetch(profile: str) -> tuple[object, str]:
        r = requests.get(srv.url + ARTICLE, headers={"Accept": f'application/ld+json;profile="{profile}"'})
        assert r.status_code == 200
        return r.json(), r.headers["Content-Type"]

    expanded, ctype = fetch("http://www.w3.org/ns/json-ld#expanded")
    assert ctype == 'application/ld+json; profile="http://www.w3.org/ns/json-ld#expanded"'
    assert isinstance(expanded, list) and all("@context" not in node for node in expanded)
    assert jsonld.normalize(jsonld.expand(expanded), {"format": "application/n-quads"}) == \
        jsonld.normalize(expanded, {"format": "application/n-quads"})   # already in expanded form
    compacted, ctype = fetch("http://www.w3.org/ns/json-ld#compacted")
    assert "@context" in compacted and ctype.endswith('#compacted"')
    flattened, ctype = fetch("http://www.w3.org/ns/json-ld#flattened http://www.w3.org/ns/json-ld#compacted")
    assert "@context" in flattened and "@graph" in flattened and "#flattened" in ctype
    plain = requests.get(srv.url + ARTICLE, headers={"Accept": "application/ld+json"})
    assert plain.headers["Content-Type"] == "application/ld+json" and plain.json() == compacted
    for doc in (expanded, compacted, flattened):
        nq = jsonld.to_rdf(doc, {"format": "application/n-quads"})
        assert isomorphic(graph(nq, "nt"), record)
    # pyld loading the IRI itself (its own Accept header and document loader)
    assert isomorphic(graph(jsonld.to_rdf(srv.url + ARTICLE, {"format": "application/n-quads"}), "nt"), record)
    etags = {requests.get(srv.url + ARTICLE, headers={"Accept": f'application/ld+json;profile="{p}"'}).headers["ETag"]
             for p in ("http://www.w3.org/ns/json-ld#expanded", "http://www.w3.org/ns/json-ld#compacted")}
    assert len(etags) == 2


def test_home_and_entity_index(srv):
    home = requests.get(srv.url)
    assert home.status_code == 200 and home.headers["Content-Type"].startswith("text/html")
    assert 'href="/article/"' in home.text and "(3)" in home.text
    index = requests.get(srv.url + "article/")
    assert 'href="/article/muziek-uit-het-archief"' in index.text
    assert "Muziek uit het archief: grammofoonplaten als bron" in index.text   # a label, not the id
    assert requests.get(srv.url + "article/", headers={"Accept": "text/turtle"}).status_code == 406


# -- a base elsewhere: served by path ----------------------------------------------------------------

def test_records_of_a_base_elsewhere_are_served_by_path(tmp_path):
    """base_uri https://data.example.org/ (the sample's): the same paths work on any host."""
    project = copy_sample_project(tmp_path / "p")
    pipeline.publish(project)
    app = create_app(project)

    def get(path: str, accept: str) -> tuple[str, dict, bytes]:
        env = {"PATH_INFO": path, "HTTP_ACCEPT": accept, "wsgi.input": BytesIO()}
        setup_testing_defaults(env)
        out: list = []
        body = b"".join(app(env, lambda s, h: out.extend([s, dict(h)])))
        return out[0], out[1], body

    status, headers, body = get("/" + ARTICLE, "text/turtle")
    assert status == "200 OK"
    expected = rdflib.Graph().parse(project / "output" / "records" / "article" / "muziek-uit-het-archief.ttl")
    assert isomorphic(graph(body, "turtle"), expected)
    status, _h, page = get("/" + ARTICLE, "text/html")
    assert status == "200 OK" and b'href="/person/sanne-de-vries"' in page
    assert get("/timespan/1890-1899", "application/n-triples")[0] == "200 OK"


# -- tombstones (last: it withdraws records from the shared server) --------------------------------

def test_withdrawn_records_are_410(srv):
    posts = srv.project / "sample" / "posts.json"
    data = json.loads(posts.read_text("utf-8"))
    posts.write_text(json.dumps([p for p in data if p["identifier"] != "postcards-from-the-seaside"]), "utf-8")
    pipeline.publish(srv.project, allow_deletions=True)
    r = requests.get(srv.url + "article/postcards-from-the-seaside", headers={"Accept": "text/turtle"})
    assert r.status_code == 410 and "withdrawn" in r.text
    assert requests.get(srv.url + "image/seaside-postcard").status_code == 410
    assert requests.get(srv.url + ARTICLE, headers={"Accept": "text/turtle"}).status_code == 200
    # the time span only the withdrawn image described is gone from the store too
    assert requests.get(srv.url + "timespan/1890-1899").status_code == 404


# -- the page's JSON-LD for search engines (issue 14, item 8) -----------------------------------

SEED = "article/pioneering-ai-for-digital-cultural-heritage-an-interview-with-dr-cynthia-liem"


def embedded_jsonld(srv, path: str) -> rdflib.Graph:
    from lxml import html as lxml_html
    page = lxml_html.fromstring(requests.get(srv.url + path, headers={"Accept": "text/html"}, timeout=30).content)
    [script] = page.xpath('//script[@type="application/ld+json"]')
    return rdflib.Graph().parse(data=script.text, format="json-ld")


def test_page_jsonld_names_the_people_and_points_at_the_image_file(srv):
    """Before: the page's JSON-LD was the record alone, so the author, the publisher and the image's creator
    were bare IRIs (search engines want author.name), and the article's image was the image record's IRI,
    an HTML page. Now the linked resources come with their types and names, the image record with its file."""
    S, RDF = rdflib.Namespace("http://schema.org/"), rdflib.RDF
    base = rdflib.Namespace(srv.url)
    g = embedded_jsonld(srv, SEED)
    article, image = base[SEED], base["image/cynthia-liem-browsing-records"]
    georgia, ef, marcel = base["person/georgia-evans"], base["organisation/europeana-foundation"], base["person/marcel-krijger"]
    jpg = rdflib.URIRef("https://media.example.org/editorial/cynthia-liem-browsing-records.jpg")
    assert (article, S.author, georgia) in g and (georgia, RDF.type, S.Person) in g
    assert (georgia, S.name, rdflib.Literal("Georgia Evans", lang="en")) in g
    assert (article, S.publisher, ef) in g and (ef, S.name, rdflib.Literal("Europeana Foundation", lang="en")) in g
    assert (article, S.image, jpg) in g                       # the file itself
    assert (article, S.primaryImageOfPage, image) in g and (image, S.contentUrl, jpg) in g
    assert (image, S.creator, marcel) in g and (marcel, S.name, rdflib.Literal("Marcel Krijger", lang="en")) in g
    assert (image, S.license, rdflib.URIRef("http://rightsstatements.org/vocab/InC/1.0/")) in g
    # the record itself is all there, and nothing but schema.org is said about the linked resources
    record = graph(requests.get(srv.url + SEED, headers={"Accept": "text/turtle"}, timeout=30).text, "turtle")
    assert not set(record) - set(g)
    own = set(record.subjects())
    extra = set(g) - set(record)
    assert extra and all(s not in own and (str(p).startswith(str(S)) or (p == RDF.type and str(o).startswith(str(S))))
                         for s, p, o in extra)
    # the image record's page names its creator too
    g = embedded_jsonld(srv, "image/cynthia-liem-browsing-records")
    assert (image, S.creator, marcel) in g and (marcel, S.name, rdflib.Literal("Marcel Krijger", lang="en")) in g
