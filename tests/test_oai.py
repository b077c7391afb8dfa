"""OAI-PMH: the real server (``heritage-ld serve``, gunicorn) harvested by real clients (sickle,
oaipmh-scythe) and requests; every page the tests see is checked with ../shared/tools/validate_oai.py."""
from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace
from wsgiref.util import setup_testing_defaults

import pytest
import requests
from lxml import etree
from oaipmh_scythe import Scythe
from sickle import Sickle

from conftest import copy_sample_project
from heritage_ld import oai, pipeline
from heritage_ld.server import create_app
from test_outputs import shared_or_skip

ROOT = Path(__file__).resolve().parents[1]

BIN = Path(sys.executable).with_name("heritage-ld")
NS = {"o": "http://www.openarchives.org/OAI/2.0/", "dc": "http://purl.org/dc/elements/1.1/",
      "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#"}
HOST = "data.example.org"
PAGE = 5
CHOS = {"article/muziek-uit-het-archief", "article/postcards-from-the-seaside",
        "article/pioneering-ai-for-digital-cultural-heritage-an-interview-with-dr-cynthia-liem",
        "image/cynthia-liem-browsing-records", "image/grammofoonplaten-in-depot", "image/seaside-postcard"}
SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


def oai_id(key: str) -> str:
    return f"oai:{HOST}:{key}"


def key_of(identifier: str) -> str:
    return identifier.split(":", 2)[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Pages:
    """Every response document the tests see, saved for one batched validator run."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.files = folder, []

    def save(self, content: bytes) -> etree._Element:
        path = self.folder / f"page-{len(self.files):04d}.xml"
        path.write_bytes(content)
        self.files.append(path)
        return etree.fromstring(content, SAFE_PARSER)


def catalog_rows(project: Path) -> dict[str, tuple[int, int]]:
    """entity/id -> (last_changed, deleted) straight from the catalog."""
    db = sqlite3.connect(project / ".heritage-ld" / "catalog.sqlite")
    try:
        return {f"{e}/{i}": (lc, d) for e, i, lc, d in db.execute("SELECT entity, id, last_changed, deleted FROM records")}
    finally:
        db.close()


def assert_counts_match_records(project: Path) -> None:
    """The trigger-kept counts behind completeListSize equal a recount of the records."""
    db = sqlite3.connect(project / ".heritage-ld" / "catalog.sqlite")
    try:
        recount = db.execute("SELECT last_changed, entity, sets, deleted, edm_xml IS NOT NULL, count(*) FROM records "
                             "GROUP BY 1, 2, 3, 4, 5").fetchall()
        assert sorted(db.execute("SELECT * FROM oai_counts")) == sorted(recount)
    finally:
        db.close()


def edit_posts(project: Path, change) -> None:
    path = project / "sample" / "posts.json"
    posts = json.loads(path.read_text("utf-8"))
    path.write_text(json.dumps(change(posts), ensure_ascii=False, indent=2), "utf-8")


def run_publish(project: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), "publish", "--project", str(project), *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """The sample published into a tmp copy (page size 5, dataset "editorial") served by gunicorn."""
    project = copy_sample_project(tmp_path_factory.mktemp("oai") / "project")
    toml = project / "heritage-ld.toml"
    toml.write_text(toml.read_text().replace("[project]\n", '[project]\ndataset = "editorial"\n', 1)
                    + f"\n[oai]\npage_size = {PAGE}\nadmin_email = \"oai@example.org\"\n")
    pipeline.publish(project)
    port = free_port()
    log = open(project / "server.log", "wb")
    env = {k: v for k, v in os.environ.items() if k != "HERITAGE_LD_SECRET"}
    proc = subprocess.Popen([str(BIN), "serve", "--project", str(project), "--port", str(port), "--workers", "2"],
                            stdout=log, stderr=log, env=env)
    url = f"http://127.0.0.1:{port}/oai"
    try:
        for _ in range(300):
            try:
                if requests.get(url, params={"verb": "Identify"}, timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
            assert proc.poll() is None, (project / "server.log").read_text()
        else:
            pytest.fail("server did not answer")
        pages = Pages(tmp_path_factory.mktemp("pages"))
        yield SimpleNamespace(url=url, project=project, pages=pages, get=lambda **p: get(url, pages, p),
                              post=lambda **p: pages.save(requests.post(url, data=p, timeout=10).content))
    finally:
        proc.send_signal(signal.SIGTERM)   # gunicorn: graceful stop of the master and its workers
        proc.wait(30)
        log.close()


def get(url: str, pages: Pages, params: dict) -> etree._Element:
    r = requests.get(url, params=params, timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/xml")
    return pages.save(r.content)


def sickle(s) -> Sickle:
    class Recording(Sickle):
        def harvest(self, **kwargs):
            response = super().harvest(**kwargs)
            s.pages.save(response.http_response.content)
            return response
    return Recording(s.url)


def scythe(s) -> Scythe:
    class Recording(Scythe):
        def harvest(self, query):
            response = super().harvest(query)
            s.pages.save(response.http_response.content)
            return response
    return Recording(s.url)


def wait_for(path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def error_codes(doc: etree._Element) -> list[str]:
    return [e.get("code") for e in doc.findall("o:error", NS)]


def response_date(doc: etree._Element) -> str:
    return doc.findtext("o:responseDate", namespaces=NS)


# -- the verbs, harvested by real clients -------------------------------------------------------
def test_identify(srv):
    doc = srv.get(verb="Identify")
    ident = doc.find("o:Identify", NS)
    assert ident.findtext("o:baseURL", namespaces=NS) == srv.url
    assert ident.findtext("o:granularity", namespaces=NS) == "YYYY-MM-DDThh:mm:ssZ"
    assert ident.findtext("o:deletedRecord", namespaces=NS) == "persistent"
    assert ident.findtext("o:adminEmail", namespaces=NS) == "oai@example.org"
    stamps = {lc for lc, _d in catalog_rows(srv.project).values()}
    assert ident.findtext("o:earliestDatestamp", namespaces=NS) == oai.iso(min(stamps))
    assert ident.findtext(".//{*}repositoryIdentifier") == HOST
    assert dict(sickle(srv).Identify())["protocolVersion"] == ["2.0"]


def test_full_harvests_with_sickle_account_for_every_record(srv):
    rows = catalog_rows(srv.project)
    client = sickle(srv)
    before = len(srv.pages.files)
    headers = list(client.ListIdentifiers(metadataPrefix="oai_dc"))
    assert len(srv.pages.files) - before == -(-len(rows) // PAGE)                # paged by resumptionToken
    assert sorted(key_of(h.identifier) for h in headers) == sorted(rows)       # every record, once
    assert all(h.datestamp == oai.iso(rows[key_of(h.identifier)][0]) for h in headers)
    records = list(client.ListRecords(metadataPrefix="edm"))
    assert {key_of(r.header.identifier) for r in records} == CHOS                # only records with EDM
    assert all(r.xml.find(".//rdf:RDF", NS) is not None for r in records)


def test_full_harvests_with_scythe(srv):
    rows = catalog_rows(srv.project)
    with scythe(srv) as client:
        records = list(client.list_records(metadata_prefix="oai_dc"))
        assert sorted(key_of(r.header.identifier) for r in records) == sorted(rows)
        assert all(r.metadata for r in records)
        edm = list(client.list_identifiers(metadata_prefix="edm"))
        assert {key_of(h.identifier) for h in edm} == CHOS
        formats = [f.metadataPrefix for f in client.list_metadata_formats()]
        assert formats == ["oai_dc", "edm"]


def test_resumption_tokens_carry_size_and_cursor(srv):
    doc = srv.get(verb="ListIdentifiers", metadataPrefix="oai_dc")
    cursors, total = [], len(catalog_rows(srv.project))
    while True:
        token = doc.find(".//o:resumptionToken", NS)
        assert int(token.get("completeListSize")) == total
        cursors.append(int(token.get("cursor")))
        if not token.text:
            break
        doc = srv.get(verb="ListIdentifiers", resumptionToken=token.text)
    assert cursors == list(range(0, total, PAGE))
    again = srv.get(verb="ListIdentifiers", resumptionToken=srv.get(
        verb="ListIdentifiers", metadataPrefix="oai_dc").find(".//o:resumptionToken", NS).text)
    assert again.find(".//o:resumptionToken", NS).get("cursor") == str(PAGE)  # tokens can be re-used


def test_a_crafted_deep_token_pages_by_key(srv):
    repo = oai.Repository(srv.project)
    q = oai.Query("ListIdentifiers", "oai_dc", None, None, repo.response_date())
    rows = sorted((lc, *k.split("/", 1)) for k, (lc, _d) in catalog_rows(srv.project).items())
    doc = srv.get(verb="ListIdentifiers", resumptionToken=repo.make_token(q, rows[9], 10, len(rows)))
    ids = [key_of(i) for i in doc.xpath("//o:header/o:identifier/text()", namespaces=NS)]
    assert ids == [f"{e}/{i}" for _lc, e, i in rows[10:10 + PAGE]]
    assert doc.find(".//o:resumptionToken", NS).get("cursor") == "10"


def test_edm_is_the_catalog_document_and_passes_europeana_validation(srv, tmp_path):
    db = sqlite3.connect(srv.project / ".heritage-ld" / "catalog.sqlite")
    docs = {f"{e}/{i}": x for e, i, x in db.execute("SELECT entity, id, edm_xml FROM records WHERE edm_xml IS NOT NULL")}
    db.close()
    files = []
    for key, xml in docs.items():
        r = requests.get(srv.url, params={"verb": "GetRecord", "metadataPrefix": "edm", "identifier": oai_id(key)})
        srv.pages.save(r.content)
        body = xml[xml.index(b"<rdf:RDF"):].rstrip()
        assert body.replace(b"<rdf:RDF", b"<rdf:RDF" + oai.EDM_LOCATION, 1) in r.content   # byte for byte
        rdf = etree.fromstring(r.content, SAFE_PARSER).find(".//rdf:RDF", NS)
        files.append(tmp_path / f"{key.replace('/', '_')}.xml")
        files[-1].write_bytes(etree.tostring(rdf, xml_declaration=True, encoding="UTF-8"))
    shared = shared_or_skip()
    result = subprocess.run([sys.executable, str(shared / "tools" / "validate_edm.py"), "--strict", *map(str, files)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def test_oai_dc_from_dc_and_schema_org(srv):
    key = "article/pioneering-ai-for-digital-cultural-heritage-an-interview-with-dr-cynthia-liem"
    dc = srv.get(verb="GetRecord", metadataPrefix="oai_dc", identifier=oai_id(key)).find(".//{*}dc")
    values = lambda f: [e.text for e in dc.findall(f"dc:{f}", NS)]  # noqa: E731
    assert values("title") == ["Pioneering AI for digital cultural heritage - an interview with Dr Cynthia Liem"]
    assert values("creator") == ["Georgia Evans"]                 # the person's name, not its IRI
    assert values("publisher") == ["Europeana Foundation"]
    assert "2021-04-14" in values("date") and values("language") == ["en"]
    assert f"https://{HOST}/{key}" in values("identifier")
    assert values("rights") == ["http://rightsstatements.org/vocab/InC/1.0/"]
    assert values("description") and values("type") and values("subject")
    for key in ("person/georgia-evans", "rights/http://creativecommons.org/licenses/by/4.0/"):   # every record
        doc = srv.get(verb="GetRecord", metadataPrefix="oai_dc", identifier=oai_id(key))
        assert doc.find(".//dc:title", NS) is not None, key


def test_sets_are_hierarchical(srv):
    specs = sickle(srv).ListSets()
    assert {"editorial", "editorial:article", "article", "person"} <= {s.setSpec for s in specs}
    ids = lambda **p: {key_of(h.identifier) for h in sickle(srv).ListIdentifiers(metadataPrefix="oai_dc", **p)}  # noqa: E731
    assert ids(set="editorial") == set(catalog_rows(srv.project))
    assert ids(set="editorial:article") == ids(set="article") == {k for k in CHOS if k.startswith("article/")}
    assert error_codes(srv.get(verb="ListIdentifiers", metadataPrefix="oai_dc", set="edit")) == ["noRecordsMatch"]


def test_from_until_in_both_granularities(srv):
    stamp = min(lc for lc, _d in catalog_rows(srv.project).values())
    day = oai.iso(stamp)[:10]
    n = len(catalog_rows(srv.project))
    for params in ({"from": day}, {"until": day}, {"from": oai.iso(stamp)}, {"from": day, "until": day}):
        doc = srv.get(verb="ListIdentifiers", metadataPrefix="oai_dc", **params)
        assert doc.find(".//o:resumptionToken", NS).get("completeListSize") == str(n), params
    assert error_codes(srv.get(verb="ListRecords", metadataPrefix="edm", until="2000-01-01")) == ["noRecordsMatch"]
    assert error_codes(srv.get(verb="ListRecords", metadataPrefix="edm", **{"from": oai.iso(stamp + 1)})) == [
        "noRecordsMatch"]


def test_post_is_the_same_as_get(srv):
    a = srv.get(verb="GetRecord", metadataPrefix="edm", identifier=oai_id("image/seaside-postcard"))
    b = srv.post(verb="GetRecord", metadataPrefix="edm", identifier=oai_id("image/seaside-postcard"))
    assert etree.tostring(a.find("o:GetRecord", NS)) == etree.tostring(b.find("o:GetRecord", NS))
    assert requests.post(srv.url, data="verb=Identify", headers={"Content-Type": "text/plain"}).status_code == 415
    assert requests.get(srv.url.replace("/oai", "/nothing")).status_code == 404


BAD_ARGUMENTS = [
    {"verb": "Identify", "set": "x"},
    {"verb": "ListRecords"},
    {"verb": "ListRecords", "metadataPrefix": "edm", "from": "2020-01-01", "until": "2021-01-01T00:00:00Z"},
    {"verb": "ListRecords", "metadataPrefix": "edm", "from": "2020-13-01"},
    {"verb": "ListRecords", "metadataPrefix": "edm", "from": "2020-01-01T00:00:00"},
    {"verb": "ListRecords", "metadataPrefix": "edm", "from": "2021-01-01", "until": "2020-01-01"},
    {"verb": "ListRecords", "metadataPrefix": "edm", "resumptionToken": "x"},
    {"verb": "ListIdentifiers", "metadataPrefix": "edm", "set": "bad set"},
    {"verb": "GetRecord", "metadataPrefix": "edm"},
    {"verb": "GetRecord", "metadataPrefix": "edm", "identifier": "oai:x:%zz"},   # not a URI
    {"verb": "ListSets", "metadataPrefix": "edm"},
]


@pytest.mark.parametrize("params", BAD_ARGUMENTS, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()))
def test_bad_argument(srv, params):
    doc = srv.get(**params)
    assert error_codes(doc) == ["badArgument"]
    assert not doc.find("o:request", NS).attrib        # no echo of the arguments


@pytest.mark.parametrize("query", ["", "verb=Nope", "verb=Identify&verb=Identify", "verb=ListRecords&verb=Identify"])
def test_bad_verb(srv, query):
    doc = srv.pages.save(requests.get(f"{srv.url}?{query}").content)
    assert error_codes(doc) == ["badVerb"] and not doc.find("o:request", NS).attrib


def test_repeated_argument_is_bad(srv):
    doc = srv.pages.save(requests.get(f"{srv.url}?verb=ListRecords&metadataPrefix=edm&metadataPrefix=edm").content)
    assert error_codes(doc) == ["badArgument"] and not doc.find("o:request", NS).attrib


def test_bad_resumption_tokens(srv):
    first = srv.get(verb="ListIdentifiers", metadataPrefix="oai_dc")
    token = first.find(".//o:resumptionToken", NS).text
    body, mac = token.split(".")
    tampered = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + mac
    foreign = oai.Repository(srv.project, key=b"another repository").make_token(
        oai.Query("ListIdentifiers", "oai_dc", None, None, 2**31), (0, "a", "b"), 5, 22)
    for verb, t in (("ListIdentifiers", "garbage"), ("ListIdentifiers", tampered), ("ListIdentifiers", foreign),
                    ("ListRecords", token), ("ListSets", token)):
        doc = srv.get(verb=verb, resumptionToken=t)
        assert error_codes(doc) == ["badResumptionToken"], (verb, t)
        assert dict(doc.find("o:request", NS).attrib) == {"verb": verb, "resumptionToken": t}   # echoed


@pytest.mark.parametrize("params,code", [
    ({"verb": "ListRecords", "metadataPrefix": "marc21"}, "cannotDisseminateFormat"),
    ({"verb": "GetRecord", "metadataPrefix": "edm", "identifier": oai_id("person/georgia-evans")},
     "cannotDisseminateFormat"),
    ({"verb": "GetRecord", "metadataPrefix": "oai_dc", "identifier": oai_id("person/nobody")}, "idDoesNotExist"),
    ({"verb": "GetRecord", "metadataPrefix": "oai_dc", "identifier": "oai:elsewhere.org:person/x"}, "idDoesNotExist"),
    ({"verb": "ListMetadataFormats", "identifier": "nonsense"}, "idDoesNotExist"),
    ({"verb": "ListIdentifiers", "metadataPrefix": "oai_dc", "until": "1999-12-31T23:59:59Z"}, "noRecordsMatch"),
    ({"verb": "ListIdentifiers", "metadataPrefix": "edm", "set": "person"}, "noRecordsMatch"),
])
def test_error_conditions_echo_the_request(srv, params, code):
    doc = srv.get(**params)
    assert error_codes(doc) == [code]
    assert dict(doc.find("o:request", NS).attrib) == params


def test_formats_of_one_record(srv):
    only_dc = srv.get(verb="ListMetadataFormats", identifier=oai_id("person/georgia-evans"))
    assert only_dc.xpath("//o:metadataPrefix/text()", namespaces=NS) == ["oai_dc"]
    both = srv.get(verb="ListMetadataFormats", identifier=oai_id("image/seaside-postcard"))
    assert both.xpath("//o:metadataPrefix/text()", namespaces=NS) == ["oai_dc", "edm"]


def test_no_set_hierarchy_and_no_records_in_an_empty_repository(tmp_path):
    project = copy_sample_project(tmp_path / "empty")
    app = create_app(project)   # catalog created empty: nothing published yet

    def call(query: str) -> etree._Element:
        environ = {"PATH_INFO": "/oai", "QUERY_STRING": query, "wsgi.input": BytesIO()}
        setup_testing_defaults(environ)
        status = []
        body = b"".join(app(environ, lambda s, h: status.append(s)))
        assert status == ["200 OK"]
        (tmp_path / f"empty-{len(list(tmp_path.glob('empty-*')))}.xml").write_bytes(body)
        return etree.fromstring(body, SAFE_PARSER)

    assert error_codes(call("verb=ListSets")) == ["noSetHierarchy"]
    assert error_codes(call("verb=ListRecords&metadataPrefix=oai_dc&set=article")) == ["noSetHierarchy"]
    assert error_codes(call("verb=ListIdentifiers&metadataPrefix=edm")) == ["noRecordsMatch"]
    assert call("verb=Identify").find("o:Identify", NS) is not None
    validate_pages(sorted(tmp_path.glob("empty-*.xml")))


def test_secret_key_file_is_private(srv):
    secret = srv.project / ".heritage-ld" / "secret"
    assert secret.is_file() and secret.stat().st_mode & 0o777 == 0o600


# -- changes between and during harvests --------------------------------------------------------
def test_incremental_harvest_sees_changes_and_deletions(srv):
    first = srv.get(verb="ListIdentifiers", metadataPrefix="edm")
    since = response_date(first)
    time.sleep(1.1)

    def change(posts):
        posts = [p for p in posts if p["identifier"] != "postcards-from-the-seaside"]
        posts[0]["description"] += " (updated)"
        return posts
    edit_posts(srv.project, change)
    result = run_publish(srv.project, "--allow-deletions")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = catalog_rows(srv.project)
    assert_counts_match_records(srv.project)
    withdrawn = {k for k, (_lc, d) in rows.items() if d}
    assert {"article/postcards-from-the-seaside", "image/seaside-postcard"} <= withdrawn
    changed = {k for k, (lc, d) in rows.items() if oai.iso(lc) >= since and not d}
    assert "article/pioneering-ai-for-digital-cultural-heritage-an-interview-with-dr-cynthia-liem" in changed

    # sickle, edm: the changed CHOs and the withdrawn CHOs (header only, status deleted)
    records = list(sickle(srv).ListRecords(metadataPrefix="edm", **{"from": since}))
    got = {key_of(r.header.identifier): r.deleted for r in records}
    assert got == {k: k in withdrawn for k in (changed | withdrawn) & CHOS}
    assert all(r.xml.find("{*}metadata") is None for r in records if r.deleted)
    # scythe, oai_dc: every change and every withdrawal
    with scythe(srv) as client:
        headers = list(client.list_identifiers(from_=since, metadata_prefix="oai_dc"))
    assert {key_of(h.identifier): h.deleted for h in headers} == {k: k in withdrawn for k in changed | withdrawn}
    # a full harvest still accounts for every record ever published; tombstones persist
    full = {key_of(h.identifier): h.deleted for h in sickle(srv).ListIdentifiers(metadataPrefix="oai_dc")}
    assert full == {k: bool(d) for k, (_lc, d) in rows.items()}
    gone = srv.get(verb="GetRecord", metadataPrefix="edm", identifier=oai_id("image/seaside-postcard"))
    assert gone.find(".//o:header", NS).get("status") == "deleted" and gone.find(".//o:metadata", NS) is None
    assert error_codes(srv.get(verb="ListMetadataFormats", identifier=oai_id("image/seaside-postcard"))) == [
        "noMetadataFormats"]


def test_a_publish_during_a_harvest_is_never_missed(srv, tmp_path):
    """Publish stamps records with a time taken before it commits. A harvest answered in between must
    not advance past that time, or the next incremental harvest (from its responseDate) would miss them."""
    key = "article/muziek-uit-het-archief"

    def change(posts):
        next(p for p in posts if p["identifier"] == "muziek-uit-het-archief")["name"] += " (revised)"
        return posts
    edit_posts(srv.project, change)
    pause = tmp_path / "paused"
    publish = subprocess.Popen([str(BIN), "publish", "--project", str(srv.project)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env={**os.environ, "HERITAGE_LD_PAUSE_AT": "catalog-written",
                                                              "HERITAGE_LD_PAUSE_FILE": str(pause),
                                                              "HERITAGE_LD_PAUSE_SECONDS": "4"})
    try:
        wait_for(pause)
        time.sleep(1.5)   # the server's clock is now past the stamp publish is about to commit
        db = sqlite3.connect(srv.project / ".heritage-ld" / "catalog.sqlite")
        (announced,) = db.execute("SELECT min(since) FROM publishing").fetchone()
        first_page = len(srv.pages.files)
        headers = list(sickle(srv).ListIdentifiers(metadataPrefix="edm"))      # a full harvest, mid-publish
        harvest_date = response_date(etree.fromstring(srv.pages.files[first_page].read_bytes(), SAFE_PARSER))
        assert harvest_date <= oai.iso(announced) < oai.iso(int(time.time()))
        assert publish.wait(60) == 0, publish.stdout.read()
    finally:
        if publish.poll() is None:
            publish.kill()
            publish.wait()
    stamp, _deleted = catalog_rows(srv.project)[key]
    assert stamp >= announced and oai.iso(stamp) not in {h.datestamp for h in headers if key_of(h.identifier) == key}
    assert db.execute("SELECT count(*) FROM publishing").fetchone()[0] == 0   # cleared with the commit
    db.close()
    later = list(sickle(srv).ListIdentifiers(metadataPrefix="edm", **{"from": harvest_date}))
    assert (key, oai.iso(stamp)) in {(key_of(h.identifier), h.datestamp) for h in later}


def test_a_killed_publish_does_not_hold_back_harvests(srv, tmp_path):
    pause = tmp_path / "paused"
    publish = subprocess.Popen([str(BIN), "publish", "--project", str(srv.project)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env={**os.environ, "HERITAGE_LD_PAUSE_AT": "catalog-written",
                                                               "HERITAGE_LD_PAUSE_FILE": str(pause)})
    try:
        wait_for(pause)
        held = response_date(srv.get(verb="Identify"))
    finally:
        publish.kill()
        publish.wait()
    time.sleep(1.1)
    assert response_date(srv.get(verb="Identify")) > held            # the dead run's announcement is ignored
    assert run_publish(srv.project).returncode == 0
    db = sqlite3.connect(srv.project / ".heritage-ld" / "catalog.sqlite")
    assert db.execute("SELECT count(*) FROM publishing").fetchone()[0] == 0   # and cleared by the next run
    db.close()
    assert_counts_match_records(srv.project)


# -- conformance of everything seen above -------------------------------------------------------
def validate_pages(files: list[Path]) -> None:
    shared = shared_or_skip()
    result = subprocess.run([sys.executable, str(shared / "tools" / "validate_oai.py"),
                             "--edm", str(shared / "specs" / "edm" / "schema_xsds"),
                             "--granularity", "YYYY-MM-DDThh:mm:ssZ", *map(str, files)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, "\n".join(line for line in result.stdout.splitlines()
                                             if not line.endswith(": valid")) + result.stderr


def test_every_page_seen_validates(srv):
    if not srv.pages.files:
        pytest.skip("run with the other tests of this module: it validates the pages they saw")
    validate_pages(srv.pages.files)


@pytest.mark.slow
def test_benchmark_smoke(tmp_path):
    """10k synthetic records: the benchmark scripts run end to end (the 1M run is done by hand)."""
    bench = ROOT / "benchmarks"
    subprocess.run([sys.executable, str(bench / "make_catalog.py"), str(tmp_path / "p"), "-n", "10000"], check=True)
    out = tmp_path / "results.json"
    subprocess.run([sys.executable, str(bench / "oai_bench.py"), str(tmp_path / "p"), "--repeat", "5",
                    "--out", str(out)], check=True)
    report = json.loads(out.read_text())
    assert report["records"] == 10000 and report["results"]["ListRecords"]["deep_cursor"] > 9000
