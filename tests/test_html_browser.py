"""HTML pages in a real headless browser (Debian's Chromium) against ``heritage-ld serve``: the page renders
with its image and credit, every link resolves, the embedded JSON-LD is the record's graph; plus escaping."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urldefrag, urljoin

import pytest
import rdflib
import requests
from lxml import html as lxml_html
from pyld import jsonld

from conftest import copy_sample_project
from heritage_ld import html
from test_linked_data import serve_project

CHROMIUM = Path("/usr/bin/chromium")
ARTICLE = "article/muziek-uit-het-archief"
CC_BY_SA = "http://creativecommons.org/licenses/by-sa/4.0/"


def chromium_or_skip() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: CI must test the HTML pages in a browser (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium to test the HTML pages in a browser")
    return CHROMIUM


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp / 'profile'}"]
    r = subprocess.run([str(chromium_or_skip()), *flags, *args], capture_output=True, timeout=120, cwd=tmp)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    return r


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    chromium_or_skip()
    project = copy_sample_project(tmp_path_factory.mktemp("html") / "project")
    for url, project, _proc in serve_project(project):
        out = project / "output"
        terms = (out / "dataset.nq").read_text("utf-8") + (out / "void.ttl").read_text("utf-8")
        yield SimpleNamespace(url=url, project=project, out=out, terms=terms, tmp=tmp_path_factory.mktemp("chromium"))


def dom(srv, path: str) -> lxml_html.HtmlElement:
    """The page as Chromium rendered it (--dump-dom)."""
    return lxml_html.fromstring(chromium(srv.tmp, "--dump-dom", srv.url + path).stdout)


def test_record_page_renders(srv):
    page = dom(srv, ARTICLE)
    title = "Muziek uit het archief: grammofoonplaten als bron"
    assert page.findtext(".//title") == title
    assert [h.text_content() for h in page.iter("h1")] == [title]
    assert page.get("lang") == "nl"
    for landmark in ("header", "main", "footer", "nav"):
        assert page.find(f".//{landmark}") is not None, landmark
    img = page.find(".//figure/img")
    assert img.get("src") == "https://media.example.org/editorial/grammofoonplaten.jpg"
    assert img.get("alt") == "Rijen grammofoonplaten in houten kasten in het depot van het archief"
    caption = page.find(".//figure/figcaption").text_content()
    assert "Sanne de Vries, Stadsarchief Voorbeeldstad, CC BY-SA 4.0" in caption       # the credit line
    rights = page.find('.//figcaption//a[@rel="license"]')
    assert rights.get("href") == CC_BY_SA
    assert rights.text_content() == "Creative Commons Attribution-ShareAlike 4.0 International"   # a label, not an IRI
    author = page.xpath('.//section[@aria-labelledby="people"]//a')[0]
    assert (author.text_content(), author.get("href")) == ("Sanne de Vries", "/person/sanne-de-vries")
    assert page.find('.//meta[@name="viewport"]') is not None
    assert not page.xpath("//link[@rel='stylesheet'] | //script[@src] | //*[@style]")   # no external assets


@pytest.mark.parametrize("path", ["", "article/", ARTICLE, "person/sanne-de-vries", "image/grammofoonplaten-in-depot",
                                  "organisation/stadsarchief-voorbeeldstad", "dataset", "edm/",
                                  "rights/http%3A%2F%2Fcreativecommons.org%2Flicenses%2Fby-sa%2F4.0%2F"])
def test_every_link_resolves(srv, path):
    """Links to this server answer 200; links elsewhere are IRIs taken from the data (not fetched: no network)."""
    page = dom(srv, path) if path == ARTICLE else lxml_html.fromstring(requests.get(srv.url + path).content)
    base = srv.url + path
    hrefs = {urldefrag(urljoin(base, e.get("href")))[0] for e in page.xpath("//a[@href] | //link[@href]")}
    assert hrefs
    for href in sorted(hrefs):
        if href.startswith(srv.url):
            assert requests.get(href).status_code == 200, href
        else:
            assert f"<{href}>" in srv.terms or href in srv.terms, href


def test_embedded_jsonld_is_the_record_and_what_it_links_to(srv):
    """The page as the browser has it embeds the record's JSON-LD, plus schema.org descriptions (names,
    types) of the resources it links to (see test_linked_data for which)."""
    page = dom(srv, ARTICLE)
    [script] = page.xpath('//script[@type="application/ld+json"]')
    doc = json.loads(script.text)
    nquads = jsonld.to_rdf(doc, {"format": "application/n-quads"})
    embedded = rdflib.Graph().parse(data=nquads, format="nquads")
    turtle = requests.get(srv.url + ARTICLE, headers={"Accept": "text/turtle"})
    record = rdflib.Graph().parse(data=turtle.text, format="turtle")
    assert not set(record) - set(embedded)
    extra = set(embedded) - set(record)
    assert extra and not {s for s, _p, _o in extra} & set(record.subjects())
    assert doc["@context"]["@vocab"] == "http://schema.org/"


def test_screenshot(srv):
    shot = srv.tmp / "article.png"
    chromium(srv.tmp, f"--screenshot={shot}", "--window-size=390,1200", srv.url + ARTICLE)
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000


# -- escaping (no browser needed) ---------------------------------------------------------------------

def test_text_and_jsonld_are_escaped():
    evil = '</script><script>alert("x")</script> & <b>bold</b> "quoted"'
    iri = "https://data.example.org/article/x"
    triples = [(f"<{iri}>", "<http://schema.org/name>", json.dumps(evil) + "@en"),
               (f"<{iri}>", "<http://schema.org/url>", "<javascript:alert(1)>"),
               (f"<{iri}>", "<http://schema.org/image>", "<https://data.example.org/image/y>")]
    image = [("<https://data.example.org/image/y>", "<http://schema.org/contentUrl>", "<https://img.example.org/y.jpg>"),
             ("<https://data.example.org/image/y>", "<http://schema.org/caption>", '"a \\"caption\\" <with> tags"')]
    site = html.Site("Site <name>", "/", [("SPARQL", "/sparql")], {"schema": "http://schema.org/"})
    view = html.RecordView(iri, triples, lambda i: image if i.endswith("/y") else [], lambda i: i, site)
    doc = json.dumps({"@id": iri, "name": evil, "note": "<!-- x -->"}, ensure_ascii=False)
    out = html.record_page(view, doc, [("Turtle", "?format=ttl", "text/turtle")])
    page = lxml_html.fromstring(out)
    assert page.findtext(".//h1") == evil and page.findtext(".//title") == evil     # shown as text
    assert len(page.xpath("//script")) == 1 and not page.xpath("//b")              # no markup from the data
    head, script, tail = out.partition('<script type="application/ld+json">')[0], *out.partition(
        '<script type="application/ld+json">')[2].split("</script>", 1)
    assert "<script" not in head + tail and "<b>" not in head + tail and 'href="javascript:' not in out
    assert page.find(".//img").get("alt") == 'a "caption" <with> tags'
    assert "</" not in script and "<!--" not in script
    assert json.loads(script) == json.loads(doc)
