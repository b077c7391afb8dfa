"""The sample published end to end: seed facts survive, every format parses to the same graph,
EDM passes Europeana's own validation, only real schema.org terms are used, output is deterministic."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib
from lxml import etree
from rdflib import Literal, Namespace, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import XSD

from heritage_ld import pipeline

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SCHEMA = Namespace("http://schema.org/")
DC = Namespace("http://purl.org/dc/elements/1.1/")
EDM = "http://www.europeana.eu/schemas/edm/"
BASE = "https://data.example.org/"
ARTICLE = URIRef(BASE + "article/pioneering-ai-for-digital-cultural-heritage-an-interview-with-dr-cynthia-liem")
IMAGE = URIRef(BASE + "image/cynthia-liem-browsing-records")
GEORGIA, CYNTHIA = URIRef(BASE + "person/georgia-evans"), URIRef(BASE + "person/cynthia-liem")
EMMY, MARCEL = URIRef(BASE + "person/emmy-storms"), URIRef(BASE + "person/marcel-krijger")
EF, MCG = URIRef(BASE + "organisation/europeana-foundation"), URIRef(BASE + "organisation/multimedia-computing-group")
TUD, MAGMA = URIRef(BASE + "organisation/delft-university-of-technology"), URIRef(BASE + "organisation/magma-duo")
INC = URIRef("http://rightsstatements.org/vocab/InC/1.0/")
TITLE = "Pioneering AI for digital cultural heritage - an interview with Dr Cynthia Liem"
CAPTION = "A photograph of Dr Cynthia Liem browsing records in a shop"


def shared_or_skip() -> Path:
    if not SHARED.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{SHARED} is missing: CI must run the conformance tools")
        pytest.skip(f"{SHARED} not found: Europeana/OAI conformance tools unavailable in this clone")
    return SHARED


def copy_project(dest: Path) -> Path:
    for name in ("heritage-ld.toml", "mapping", "shapes", "sample"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    project = copy_project(tmp_path_factory.mktemp("project"))
    pub, _changes = pipeline.publish(project)
    assert not pub.held_back and not pub.edm_held_back, [i.message for i in pub.issues]
    return project / "output"


# -- seed facts ----------------------------------------------------------------------------

SEED_FACTS = [
    (ARTICLE, SCHEMA.headline, Literal(TITLE, lang="en")),
    (ARTICLE, DC.title, Literal(TITLE, lang="en")),
    (ARTICLE, SCHEMA.author, GEORGIA),
    (ARTICLE, DC.creator, GEORGIA),
    (GEORGIA, SCHEMA.name, Literal("Georgia Evans", lang="en")),
    (GEORGIA, SCHEMA.jobTitle, Literal("Senior Editorial Officer", lang="en")),
    (GEORGIA, SCHEMA.affiliation, EF),
    (EF, SCHEMA.name, Literal("Europeana Foundation", lang="en")),
    (ARTICLE, SCHEMA.datePublished, Literal("2021-04-14", datatype=XSD.date)),
    (ARTICLE, SCHEMA.dateModified, Literal("2023-11-06", datatype=XSD.date)),
    (ARTICLE, DC.date, Literal("2021-04-14")),
    (ARTICLE, SCHEMA.timeRequired, Literal("PT2M", datatype=XSD.duration)),
    (ARTICLE, SCHEMA.about, CYNTHIA),
    (CYNTHIA, SCHEMA.name, Literal("Cynthia Liem", lang="en")),
    (CYNTHIA, SCHEMA.honorificPrefix, Literal("Dr")),
    (CYNTHIA, SCHEMA.jobTitle, Literal("Assistant Professor", lang="en")),
    (CYNTHIA, SCHEMA.jobTitle, Literal("Concert pianist", lang="en")),
    (CYNTHIA, SCHEMA.affiliation, MCG),
    (MCG, SCHEMA.name, Literal("Multimedia Computing Group", lang="en")),
    (MCG, SCHEMA.parentOrganization, TUD),
    (TUD, SCHEMA.name, Literal("Delft University of Technology", lang="en")),
    (CYNTHIA, SCHEMA.memberOf, MAGMA),
    (MAGMA, SCHEMA.name, Literal("Magma Duo", lang="en")),
    (MAGMA, SCHEMA.member, EMMY),
    (EMMY, SCHEMA.name, Literal("Emmy Storms", lang="en")),
    (ARTICLE, SCHEMA.primaryImageOfPage, IMAGE),
    (IMAGE, SCHEMA.name, Literal("Cynthia Liem.", lang="en")),
    (IMAGE, SCHEMA.creator, MARCEL),
    (MARCEL, SCHEMA.name, Literal("Marcel Krijger", lang="en")),
    (IMAGE, SCHEMA.dateCreated, Literal("2016-12-10", datatype=XSD.date)),
    (IMAGE, SCHEMA.caption, Literal(CAPTION, lang="en")),
    (IMAGE, SCHEMA.license, INC),
    (INC, SCHEMA.name, Literal("In Copyright", lang="en")),
]


def _graph(path: Path, fmt: str) -> rdflib.Graph:
    g = rdflib.Dataset() if fmt == "nquads" else rdflib.Graph()
    g.parse(path, format=fmt)
    if fmt == "nquads":  # the records' triples, without the provenance each graph tells about itself
        merged = rdflib.Graph()
        for s, p, o, ctx in g.quads((None, None, None, None)):
            if s != getattr(ctx, "identifier", ctx):
                merged.add((s, p, o))
        return merged
    return g


@pytest.mark.parametrize("name,fmt", [("dataset.ttl", "turtle"), ("dataset.nt", "nt"),
                                      ("dataset.nq", "nquads"), ("dataset.jsonld", "json-ld")])
def test_seed_facts_in_every_dataset_format(out, name, fmt):
    g = _graph(out / name, fmt)
    missing = [t for t in SEED_FACTS if t not in g]
    assert not missing


def test_seed_facts_in_per_record_files(out):
    g = rdflib.Graph()
    for f in sorted((out / "records").glob("*/*.ttl")):
        g.parse(f, format="turtle")
    j = rdflib.Graph()
    for f in sorted((out / "records").glob("*/*.jsonld")):
        j.parse(f, format="json-ld")
    assert not [t for t in SEED_FACTS if t not in g]
    assert isomorphic(g, j)


def test_seed_facts_in_edm_xml(out):
    ns = {"rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#", "dc": str(DC), "edm": EDM,
          "skos": "http://www.w3.org/2004/02/skos/core#", "rdaGr2": "http://rdvocab.info/ElementsGr2/",
          "ore": "http://www.openarchives.org/ore/terms/", "dcterms": "http://purl.org/dc/terms/"}
    art = etree.parse(str(out / "edm/article" / f"{ARTICLE.rsplit('/', 1)[1]}.xml"))
    x = lambda doc, path: [e if isinstance(e, str) else e.text for e in doc.xpath(path, namespaces=ns)]
    assert x(art, "//edm:ProvidedCHO/dc:title") == [TITLE]
    assert x(art, "//edm:ProvidedCHO/dc:date") == ["2021-04-14"]
    assert x(art, "//edm:ProvidedCHO/dc:creator/@rdf:resource") == [str(GEORGIA)]
    assert x(art, f"//edm:Agent[@rdf:about='{GEORGIA}']/skos:prefLabel") == ["Georgia Evans"]
    assert x(art, f"//edm:Agent[@rdf:about='{GEORGIA}']/rdaGr2:professionOrOccupation") == ["Senior Editorial Officer"]
    assert x(art, f"//edm:Agent[@rdf:about='{CYNTHIA}']/rdaGr2:professionOrOccupation") == [
        "Assistant Professor", "Concert pianist"]
    assert x(art, "//edm:ProvidedCHO/dcterms:extent") == ["2 minutes to read"]
    assert x(art, "//ore:Aggregation/edm:dataProvider") == ["Europeana Foundation"]
    img = etree.parse(str(out / "edm/image/cynthia-liem-browsing-records.xml"))
    assert x(img, "//edm:ProvidedCHO/dc:title") == ["Cynthia Liem."]
    assert x(img, "//edm:ProvidedCHO/dc:date") == ["2016-12-10"]
    assert x(img, "//edm:ProvidedCHO/dc:description") == [CAPTION]
    assert x(img, "//edm:ProvidedCHO/edm:type") == ["IMAGE"]
    assert x(img, f"//edm:Agent[@rdf:about='{MARCEL}']/skos:prefLabel") == ["Marcel Krijger"]
    assert x(img, "//ore:Aggregation/edm:rights/@rdf:resource") == [str(INC)]
    assert x(img, "//edm:ProvidedCHO/dcterms:isPartOf/@rdf:resource") == [str(ARTICLE)]


# -- formats agree, with two independent parsers ------------------------------------------

@pytest.mark.parametrize("name,fmt,oxfmt", [("dataset.ttl", "turtle", ox.RdfFormat.TURTLE),
                                            ("dataset.nt", "nt", ox.RdfFormat.N_TRIPLES),
                                            ("dataset.nq", "nquads", ox.RdfFormat.N_QUADS)])
def test_rdflib_and_pyoxigraph_parse_the_same_graph(out, name, fmt, oxfmt):
    ref = _graph(out / "dataset.nt", "nt")
    g = _graph(out / name, fmt)
    o = rdflib.Graph()
    quads = (ox.Quad(q.subject, q.predicate, q.object) for q in ox.parse(path=str(out / name), format=oxfmt)
             if q.graph_name == ox.DefaultGraph() or q.subject != q.graph_name)
    o.parse(data=ox.serialize(quads, format=ox.RdfFormat.N_TRIPLES).decode(), format="nt")
    assert len(ref) > 300
    assert isomorphic(g, ref) and isomorphic(o, ref)


def test_nquads_has_one_named_graph_per_record(out):
    graphs = {q.graph_name for q in ox.parse(path=str(out / "dataset.nq"), format=ox.RdfFormat.N_QUADS)}
    records = list((out / "records").glob("*/*.ttl"))
    assert len(graphs) == len(records) > 15


def test_jsonld_expands_to_the_same_graph_with_pyld(out):
    from pyld import jsonld

    def loader(url, options=None):
        raise AssertionError(f"the document is read without fetching anything, yet {url} was asked for")

    doc = json.loads((out / "dataset.jsonld").read_text())
    nq = jsonld.to_rdf(doc, {"format": "application/n-quads", "documentLoader": loader,
                             "base": (out / "dataset.jsonld").as_uri()})
    g = rdflib.Graph().parse(data=nq, format="nt")
    assert isomorphic(g, _graph(out / "dataset.nt", "nt"))


def test_jsonld_reads_like_schema_org(out):
    doc = json.loads((out / "records/article" / f"{ARTICLE.rsplit('/', 1)[1]}.jsonld").read_text())
    node = next(n for n in doc["@graph"] if n["@id"] == str(ARTICLE))
    assert "BlogPosting" in node["@type"] and node["author"] == str(GEORGIA)
    assert node["headline"] == {"@value": TITLE, "@language": "en"}
    context = json.loads((out / "context.jsonld").read_text())["@context"]
    assert doc["@context"]["@vocab"] == "http://schema.org/"   # inline: what this record uses of context.jsonld
    assert all(context[k] == v for k, v in doc["@context"].items()) and "dc" in doc["@context"]


# -- Europeana's own validation ------------------------------------------------------------

def test_every_edm_file_passes_europeana_validation_strict(out):
    shared = shared_or_skip()
    files = sorted(str(p) for p in (out / "edm").glob("*/*.xml"))
    assert len(files) == 6
    r = subprocess.run([sys.executable, str(shared / "tools/validate_edm.py"), "--strict", *files],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("VALID") == len(files)


# -- schema.org terms ------------------------------------------------------------------------

def test_only_existing_schema_org_terms(out):
    shared = shared_or_skip()
    vocab = rdflib.Graph().parse(shared / "specs/schemaorg/schemaorg-current-http.ttl", format="turtle")
    defined = set(vocab.subjects())
    g = _graph(out / "dataset.nt", "nt")
    used = {p for p in g.predicates() if str(p).startswith(str(SCHEMA))}
    used |= {o for o in g.objects(None, rdflib.RDF.type) if str(o).startswith(str(SCHEMA))}
    assert len(used) > 30
    assert not used - defined, sorted(used - defined)
    # and every schema: term a mapping could produce (allowed classes included)
    text = "".join(p.read_text() for p in (ROOT / "mapping").glob("*.yaml"))
    import re
    named = {SCHEMA[t] for t in re.findall(r"schema:([A-Za-z]+)", text)}
    allowed = {SCHEMA[t] for line in re.findall(r"namespace: schema, allowed: \[([^\]]*)\]", text)
               for t in re.findall(r"[A-Za-z]+", line)}
    assert not (named | allowed) - defined, sorted((named | allowed) - defined)


# -- publication behaviour ---------------------------------------------------------------------

def test_output_layout_and_void_counts(out):
    for name in ("context.jsonld", "dataset.ttl", "dataset.jsonld", "dataset.nt", "dataset.nq", "void.ttl",
                 "validation-report.ttl", "validation-report.txt"):
        assert (out / name).is_file(), name
    void = rdflib.Graph().parse(out / "void.ttl", format="turtle")
    ds = URIRef(BASE + "dataset")
    VOID = Namespace("http://rdfs.org/ns/void#")
    assert int(void.value(ds, VOID.triples)) == len(_graph(out / "dataset.nt", "nt"))
    assert int(void.value(ds, VOID.entities)) == len(list((out / "records").glob("*/*.ttl")))
    dumps = {str(o) for o in void.objects(ds, VOID.dataDump)}
    assert BASE + "dataset.nt" in dumps and BASE + "dataset.nq" in dumps
    report = rdflib.Graph().parse(out / "validation-report.ttl", format="turtle")
    SH = Namespace("http://www.w3.org/ns/shacl#")
    assert (None, SH.conforms, Literal(True)) in report


def test_same_input_same_bytes(out, tmp_path):
    """A fresh project published at the same clock time writes exactly the same files."""
    files = lambda root: {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    project, other = copy_project(tmp_path / "a"), copy_project(tmp_path / "b")
    pipeline.publish(project, now=1_700_000_000)
    first = files(project / "output")
    pipeline.publish(other, now=1_700_000_000)
    assert files(other / "output") == first
    assert not list(tmp_path.glob(".output.*"))


def test_failed_write_leaves_previous_output_untouched(tmp_path, monkeypatch):
    project = copy_project(tmp_path)
    pipeline.publish(project)
    (project / "sample/people.json").write_text((project / "sample/people.json").read_text().replace("Violinist", "Violin"))
    before = {p: p.read_bytes() for p in (project / "output").rglob("*") if p.is_file()}
    from heritage_ld import writers

    def boom(pub, out, files):
        (out / "partial.txt").write_text("half")
        raise OSError("disk full")
    monkeypatch.setitem(writers.FORMATS, "void", writers.Format("void", "text/turtle", "ttl", "x", boom))
    monkeypatch.setattr(writers, "_MODULES", ())
    with pytest.raises(pipeline.RunError, match="disk full; nothing was published"):
        pipeline.publish(project)
    after = {p: p.read_bytes() for p in (project / "output").rglob("*") if p.is_file()}
    assert after == before
    from heritage_ld.catalog import Catalog
    from heritage_ld.config import load
    cat = Catalog(load(project).catalog)
    emmy = next(r for r in cat.rows() if r.id == "emmy-storms")
    assert any("Violinist" in t[2] for t in emmy.triples)  # the catalog transaction rolled back too
    cat.close()
    assert not list(tmp_path.glob(".output.staging-*"))


def test_cli_publish_summary_and_map(tmp_path):
    project = copy_project(tmp_path)
    exe = Path(sys.executable).parent / "heritage-ld"
    r = subprocess.run([str(exe), "publish", "--project", str(project)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "published" in r.stdout and "held back        0" in r.stdout
    r = subprocess.run([str(exe), "map", "--project", str(project), "person", "georgia-evans", "--format", "turtle"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "Senior Editorial Officer" in r.stdout
    g = rdflib.Graph().parse(data=r.stdout, format="turtle")
    assert (GEORGIA, SCHEMA.affiliation, EF) in g
    r = subprocess.run([str(exe), "map", "--project", str(project), "person", "nobody"], capture_output=True, text=True)
    assert r.returncode == 2 and "nobody" in r.stderr and "Traceback" not in r.stderr


# -- the seed's body (issue 14, item 9) ----------------------------------------------------------

def seed_interview() -> list[str]:
    """The interview's questions and answers as the seed page has them, one paragraph each (the page's
    trailing spaces dropped), from the first question to the last answer."""
    lines = [line.rstrip() for line in (shared_or_skip() / "seed/000_0d459ea1df5365d3.txt").read_text("utf-8").split("\n")]
    start = lines.index("Tell us about your current role.")
    end = next(i for i, line in enumerate(lines) if line.startswith("Next to this, a lot of the current AI"))
    return [line for line in lines[start:end + 1] if line]


def test_seed_body_is_carried_exactly(out):
    """Before: the article had no body. Now schema:articleBody holds the whole interview, word for word
    and paragraph by paragraph, tagged with the article's language; its questions are the headings."""
    paragraphs = seed_interview()
    assert len(paragraphs) == 17
    questions = [p for p in paragraphs if p.endswith("?") or p == "Tell us about your current role."]
    assert len(questions) == 7
    for name, fmt in (("dataset.ttl", "turtle"), ("dataset.jsonld", "json-ld")):
        g = _graph(out / name, fmt)
        bodies = list(g.objects(ARTICLE, SCHEMA.articleBody))
        assert len(bodies) == 1 and bodies[0].language == "en"
        assert str(bodies[0]).split("\n\n") == paragraphs
        toc = list(g.objects(ARTICLE, URIRef("http://purl.org/dc/terms/tableOfContents")))
        assert [str(t) for t in toc] == ["\n".join(questions)] and toc[0].language == "en"
        # the description stays the summary; a body without headings (the Dutch post) has no table of contents
        assert str(g.value(ARTICLE, DC.description)).startswith("On Europeana Pro this month")
        dutch = URIRef(BASE + "article/muziek-uit-het-archief")
        assert g.value(dutch, SCHEMA.articleBody).language == "nl"
        assert g.value(dutch, URIRef("http://purl.org/dc/terms/tableOfContents")) is None


def test_seed_body_in_edm_is_its_table_of_contents(out):
    """EDM carries the questions as dcterms:tableOfContents and keeps dc:description the summary: the
    full text is the object itself, reached through edm:isShownAt (see docs/model.md)."""
    ns = {"edm": EDM, "dc": str(DC), "dcterms": "http://purl.org/dc/terms/"}
    art = etree.parse(str(out / "edm/article" / f"{ARTICLE.rsplit('/', 1)[1]}.xml"))
    toc = art.xpath("//edm:ProvidedCHO/dcterms:tableOfContents", namespaces=ns)
    assert len(toc) == 1 and toc[0].text.split("\n")[0] == "Tell us about your current role."
    assert toc[0].get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    descriptions = [d.text for d in art.xpath("//edm:ProvidedCHO/dc:description", namespaces=ns)]
    assert len(descriptions) == 1 and descriptions[0].startswith("On Europeana Pro this month")
    assert "I am an Assistant Professor" not in etree.tostring(art, encoding="unicode")


# -- JSON-LD that stands alone (issue 14, item 8) -------------------------------------------------

@pytest.fixture
def offline(monkeypatch):
    """No network for this test: any connection attempt fails (a parser fetching a context would)."""
    import socket

    def refuse(*_args, **_kwargs):
        raise OSError("this test runs offline")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _alone(src: Path, tmp: Path) -> Path:
    """``src`` copied into an empty folder: nothing beside it to resolve a relative context against."""
    folder = tmp / src.parent.name / src.stem
    folder.mkdir(parents=True)
    shutil.copy(src, folder / src.name)
    return folder / src.name


def test_every_jsonld_file_loads_offline_in_rdflib_and_pyoxigraph(out, tmp_path, offline):
    """Before: every JSON-LD file named a relative context.jsonld, which pyoxigraph refused ("Invalid remote
    context URL") and rdflib looked for beside the file. Now each file carries its context."""
    pairs = [(out / "dataset.jsonld", out / "dataset.ttl")]
    pairs += [(f, f.with_suffix(".ttl")) for f in sorted((out / "records").glob("*/*.jsonld"))]
    assert len(pairs) > 20
    for jsonld_file, turtle_file in pairs:
        alone = _alone(jsonld_file, tmp_path)
        ref = rdflib.Graph().parse(turtle_file, format="turtle")
        by_rdflib = rdflib.Graph().parse(alone, format="json-ld")
        by_oxigraph = rdflib.Graph().parse(data=ox.serialize(ox.parse(path=str(alone), format=ox.RdfFormat.JSON_LD),
                                                             format=ox.RdfFormat.N_TRIPLES).decode(), format="nt")
        assert len(ref) > 3 and isomorphic(by_rdflib, ref) and isomorphic(by_oxigraph, ref), jsonld_file.name


def test_article_image_is_the_image_file(out):
    """schema:image of an article is the image file (what search engines fetch), not the image record's
    IRI, whose page is HTML; primaryImageOfPage keeps the ImageObject record with its contentUrl."""
    g = _graph(out / "dataset.ttl", "turtle")
    jpg = URIRef("https://media.example.org/editorial/cynthia-liem-browsing-records.jpg")
    assert list(g.objects(ARTICLE, SCHEMA.image)) == [jpg]
    assert list(g.objects(ARTICLE, SCHEMA.primaryImageOfPage)) == [IMAGE]
    assert (IMAGE, SCHEMA.contentUrl, jpg) in g
