"""EDM RDF/XML writer: Europeana-valid as written (validate_edm.py --strict), ordered, deterministic."""
from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from heritage_ld.terms import RDF_TYPE, XSD, iri, literal
from heritage_ld.writers.edmxml import edm_record, is_provided_cho

SHARED = Path(__file__).resolve().parents[2] / "shared"
VALIDATOR = SHARED / "tools" / "validate_edm.py"
SORTER = SHARED / "specs" / "edm" / "sorter" / "edm_sorter.xsl"

EX = "https://data.example.org/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
DC = "http://purl.org/dc/elements/1.1/"
DCT = "http://purl.org/dc/terms/"
EDM = "http://www.europeana.eu/schemas/edm/"
ORE = "http://www.openarchives.org/ore/terms/"
OWL = "http://www.w3.org/2002/07/owl#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
RDAGR2 = "http://rdvocab.info/ElementsGr2/"
EBU = "http://www.ebu.ch/metadata/ontologies/ebucore/ebucore#"
WGS = "http://www.w3.org/2003/01/geo/wgs84_pos#"
CC = "http://creativecommons.org/ns#"
ODRL = "http://www.w3.org/ns/odrl/2/"
SDO = "http://schema.org/"

ARTICLE, IMAGE = EX + "article/42", EX + "image/9"
PERSON, ORG = EX + "person/7", EX + "organisation/3"
HERO = "https://cdn.example.org/media/42/hero.jpg"
PHOTO = "https://cdn.example.org/media/9/photo.jpg"
INC = "http://rightsstatements.org/vocab/InC/1.0/"
BY_SA = "http://creativecommons.org/licenses/by-sa/4.0/"


def t(s: str, p: str, o: str) -> tuple[str, str, str]:
    """Triple from an IRI subject, IRI predicate and an N-Triples object term."""
    return iri(s), iri(p), o


def a(s: str, cls: str) -> tuple[str, str, str]:
    return iri(s), RDF_TYPE, iri(cls)


def en(text: str) -> str:
    return literal(text, "en")


def aggregation(cho: str, *, shown_at: str, shown_by: str, rights: str) -> list[tuple[str, str, str]]:
    agg = cho + "#aggregation"
    return [
        a(agg, ORE + "Aggregation"),
        t(agg, EDM + "aggregatedCHO", iri(cho)),
        t(agg, EDM + "dataProvider", literal("Example Heritage Institute")),
        t(agg, EDM + "provider", literal("Example Aggregator")),
        t(agg, EDM + "isShownAt", iri(shown_at)),
        t(agg, EDM + "isShownBy", iri(shown_by)),
        t(agg, EDM + "object", iri(shown_by)),
        t(agg, EDM + "rights", iri(rights)),
        t(agg, DCT + "created", literal("2024-05-01")),  # in ORE.xsd, but the Metis sorter drops it
    ]


def people() -> list[tuple[str, str, str]]:
    return [
        a(PERSON, EDM + "Agent"), a(PERSON, SDO + "Person"),
        t(PERSON, SKOS + "prefLabel", en("Ada Example")),
        t(PERSON, RDAGR2 + "professionOrOccupation", en("historian")),
        t(PERSON, EDM + "isRelatedTo", iri(ORG)),
        t(PERSON, OWL + "sameAs", iri("http://www.wikidata.org/entity/Q42")),
        t(PERSON, SDO + "name", en("Ada Example")),
        t(PERSON, SDO + "jobTitle", en("historian")),
        a(ORG, EDM + "Agent"), a(ORG, SDO + "Organization"),
        t(ORG, SKOS + "prefLabel", en("Example Heritage Institute")),
        t(ORG, OWL + "sameAs", iri("http://viaf.org/viaf/123456")),
        t(ORG, SDO + "name", en("Example Heritage Institute")),
        # rights statement records: not EDM contextual classes, or cc:License without odrl:inheritFrom
        a(INC, DCT + "RightsStatement"), t(INC, SKOS + "prefLabel", en("In Copyright")),
        a(BY_SA, CC + "License"), t(BY_SA, SKOS + "prefLabel", en("CC BY-SA 4.0")),
    ]


def article_triples() -> list[tuple[str, str, str]]:
    return [
        a(ARTICLE, EDM + "ProvidedCHO"), a(ARTICLE, SDO + "BlogPosting"),
        t(ARTICLE, DC + "title", en("The Book of Hours of X")),
        t(ARTICLE, DC + "description", en("A blog post about a medieval manuscript.")),
        t(ARTICLE, DC + "creator", iri(PERSON)),
        t(ARTICLE, DC + "date", literal("2024-05-01", datatype=XSD + "date")),
        t(ARTICLE, DC + "language", literal("en")),
        t(ARTICLE, DC + "type", en("blog post")),
        t(ARTICLE, DC + "subject", iri(ORG)),
        t(ARTICLE, DC + "identifier", literal("article-42")),
        t(ARTICLE, DCT + "extent", en("2 minutes to read")),
        t(ARTICLE, DCT + "hasPart", iri(IMAGE)),
        t(ARTICLE, EDM + "type", literal("TEXT")),
        t(ARTICLE, SDO + "headline", en("The Book of Hours of X")),
        t(ARTICLE, SDO + "datePublished", literal("2024-05-01", datatype=XSD + "date")),
        t(ARTICLE, SDO + "image", iri(IMAGE)),
        *aggregation(ARTICLE, shown_at=EX + "blog/the-book-of-hours", shown_by=HERO, rights=INC),
        a(HERO, EDM + "WebResource"), a(HERO, SDO + "ImageObject"),
        t(HERO, DC + "description", en("Hero image")),
        t(HERO, EDM + "rights", iri(BY_SA)),
        t(HERO, EBU + "hasMimeType", literal("image/jpeg")),
        t(HERO, EBU + "width", literal("1200", datatype=XSD + "integer")),
        t(HERO, EBU + "height", literal("800")),
        t(HERO, SDO + "contentUrl", iri(HERO)),
        *people(),
        *image_own_triples(),  # the linked image record is in the union: it must stay a reference
    ]


def image_own_triples() -> list[tuple[str, str, str]]:
    return [
        a(IMAGE, EDM + "ProvidedCHO"), a(IMAGE, SDO + "Photograph"),
        t(IMAGE, DC + "title", en("Folio 12r")),
        t(IMAGE, DC + "description", en("Photograph of folio 12r.")),
        t(IMAGE, DC + "creator", iri(PERSON)),
        t(IMAGE, DC + "date", literal("2023-11-02")),
        t(IMAGE, DC + "type", en("photograph")),
        t(IMAGE, EDM + "type", literal("IMAGE")),
        t(IMAGE, DCT + "isPartOf", iri(ARTICLE)),
        t(IMAGE, SDO + "contentUrl", iri(PHOTO)),
        *aggregation(IMAGE, shown_at=EX + "blog/the-book-of-hours#folio-12r", shown_by=PHOTO, rights=BY_SA),
    ]


def image_triples() -> list[tuple[str, str, str]]:
    return [*image_own_triples(), *people(), a(ARTICLE, EDM + "ProvidedCHO"),
            t(ARTICLE, DC + "title", en("The Book of Hours of X"))]


def rich_triples() -> list[tuple[str, str, str]]:
    """A CHO reaching every contextual class, and a cc:License with odrl:inheritFrom."""
    cho, concept, place, span = EX + "object/1", "http://vocab.getty.edu/aat/300028569", EX + "place/1", EX + "time/1"
    lic, file = EX + "licence/custom-1", "https://cdn.example.org/media/1/scan.tif"
    return [
        a(cho, EDM + "ProvidedCHO"),
        t(cho, DC + "title", literal("Map of Utrecht", "nl")),
        t(cho, DC + "subject", iri(concept)),
        t(cho, DCT + "spatial", iri(place)),
        t(cho, DCT + "temporal", iri(span)),
        t(cho, EDM + "type", literal("IMAGE")),
        *aggregation(cho, shown_at=EX + "objects/1", shown_by=file, rights=lic),
        a(file, EDM + "WebResource"),
        t(file, EBU + "fileByteSize", literal("123456", datatype=XSD + "long")),
        t(file, EBU + "orientation", literal("landscape")),
        t(file, EDM + "hasColorSpace", literal("sRGB")),
        a(concept, SKOS + "Concept"), t(concept, SKOS + "prefLabel", en("manuscripts (documents)")),
        a(place, EDM + "Place"), t(place, WGS + "lat", literal("52.09")), t(place, WGS + "long", literal("5.12")),
        t(place, SKOS + "prefLabel", literal("Utrecht", "nl")),
        a(span, EDM + "TimeSpan"), t(span, SKOS + "prefLabel", en("17th century")),
        t(span, EDM + "begin", literal("1601")), t(span, EDM + "end", literal("1700")),
        a(lic, CC + "License"), t(lic, ODRL + "inheritFrom", iri(BY_SA)),
        t(lic, CC + "deprecatedOn", literal("2030-01-01", datatype=XSD + "date")),
    ]


RECORDS = {"article": (article_triples, ARTICLE), "image": (image_triples, IMAGE), "rich": (rich_triples, EX + "object/1")}


def write(name: str) -> bytes:
    make, cho = RECORDS[name]
    return edm_record(make(), cho)


def tree(xml: bytes) -> etree._Element:
    return etree.fromstring(xml)


def qn(el: etree._Element) -> str:
    return etree.QName(el).localname if el.prefix is None else f"{el.prefix}:{etree.QName(el).localname}"


def classes(xml: bytes) -> list[tuple[str, str]]:
    return [(qn(el), el.get(f"{{{RDF}}}about")) for el in tree(xml)]


def props(xml: bytes, about: str) -> list[str]:
    (el,) = [el for el in tree(xml) if el.get(f"{{{RDF}}}about") == about]
    return [qn(p) for p in el]


# --- (a) Europeana's own validation, one call for all files -----------------------------------

def _shared_or_skip() -> None:
    if not VALIDATOR.is_file():
        msg = f"shared EDM tools not found at {VALIDATOR}"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


def test_records_pass_validate_edm_strict(tmp_path: Path) -> None:
    _shared_or_skip()
    files = []
    for name in RECORDS:
        path = tmp_path / f"{name}.xml"
        path.write_bytes(write(name))
        files.append(str(path))
    # control: the same call must reject a record that lacks the mandatory edm:type
    broken = tmp_path / "broken.xml"
    broken.write_bytes(write("article").replace(b"<edm:type>TEXT</edm:type>", b""))
    run = subprocess.run([sys.executable, str(VALIDATOR), "--strict", *files, str(broken)],
                         capture_output=True, text=True)
    report = run.stdout + run.stderr
    assert run.returncode == 1, report
    assert [line.split()[0] for line in run.stdout.splitlines() if not line.startswith(" ")] == \
        ["VALID"] * len(files) + ["INVALID"], report


def test_output_is_a_fixed_point_of_the_metis_sorter() -> None:
    """Same classes, subjects and property order after Metis' edm_sorter.xsl: what we write is what Metis checks."""
    _shared_or_skip()
    saxonche = pytest.importorskip("saxonche")
    with saxonche.PySaxonProcessor(license=False) as proc:
        sorter = proc.new_xslt30_processor().compile_stylesheet(stylesheet_file=str(SORTER))
        for name in RECORDS:
            xml = write(name)
            out = sorter.transform_to_string(xdm_node=proc.parse_xml(xml_text=xml.decode("utf-8"))).encode("utf-8")
            shape = [(qn(c), c.get(f"{{{RDF}}}about"), [(qn(p), p.text, dict(p.attrib)) for p in c]) for c in tree(xml)]
            assert shape == [(qn(c), c.get(f"{{{RDF}}}about"), [(qn(p), p.text, dict(p.attrib)) for p in c])
                             for c in tree(out)], name


# --- (b) shape of the document ------------------------------------------------------------------

def test_article_classes_in_fixed_order_linked_cho_stays_a_reference() -> None:
    xml = write("article")
    assert classes(xml) == [
        ("edm:ProvidedCHO", ARTICLE),
        ("edm:WebResource", HERO),
        ("edm:Agent", ORG),
        ("edm:Agent", PERSON),
        ("ore:Aggregation", ARTICLE + "#aggregation"),
    ]
    root = tree(xml)
    assert root.xpath("//dcterms:hasPart/@rdf:resource", namespaces={"dcterms": DCT, "rdf": RDF}) == [IMAGE]
    # CC licence with labels only and the rights statement: plain references, no description
    assert root.xpath("//edm:rights/@rdf:resource", namespaces={"edm": EDM, "rdf": RDF}) == [BY_SA, INC]


def test_article_property_order_and_projection() -> None:
    xml = write("article")
    assert props(xml, ARTICLE) == [
        "dc:creator", "dc:date", "dc:description", "dc:identifier", "dc:language", "dc:subject",
        "dc:title", "dc:type", "dcterms:extent", "dcterms:hasPart", "edm:type",
    ]
    assert props(xml, HERO) == ["dc:description", "edm:rights", "ebucore:hasMimeType", "ebucore:width", "ebucore:height"]
    assert props(xml, PERSON) == ["skos:prefLabel", "edm:isRelatedTo", "rdaGr2:professionOrOccupation", "owl:sameAs"]
    assert props(xml, ARTICLE + "#aggregation") == [
        "edm:aggregatedCHO", "edm:dataProvider", "edm:isShownAt", "edm:isShownBy", "edm:object",
        "edm:provider", "edm:rights",  # dcterms:created dropped: the sorter would drop it
    ]
    assert b"schema.org" not in xml and b"rdf:Description" not in xml and b"nodeID" not in xml
    root = tree(xml)
    ns = {"dc": DC, "ebucore": EBU, "rdf": RDF}
    assert root.xpath("//@rdf:datatype", namespaces=ns) == [XSD + "integer"] * 2  # width, height only
    assert root.xpath("//ebucore:height/text()", namespaces=ns) == ["800"]
    assert root.xpath("//dc:date/text()", namespaces=ns) == ["2024-05-01"]


def test_image_record() -> None:
    xml = write("image")
    assert classes(xml) == [("edm:ProvidedCHO", IMAGE), ("edm:Agent", PERSON), ("ore:Aggregation", IMAGE + "#aggregation")]
    assert props(xml, IMAGE) == ["dc:creator", "dc:date", "dc:description", "dc:title", "dc:type", "dcterms:isPartOf", "edm:type"]
    assert b"schema.org" not in xml


def test_rich_record_classes() -> None:
    xml = write("rich")
    assert [c for c, _ in classes(xml)] == [
        "edm:ProvidedCHO", "edm:WebResource", "edm:Place", "edm:TimeSpan", "skos:Concept", "ore:Aggregation", "cc:License",
    ]
    assert props(xml, EX + "place/1") == ["wgs84_pos:lat", "wgs84_pos:long", "skos:prefLabel"]
    root = tree(xml)
    assert sorted(root.xpath("//@rdf:datatype", namespaces={"rdf": RDF})) == [
        XSD + "date", XSD + "long", XSD + "string"]  # deprecatedOn, fileByteSize, orientation


def test_same_bytes_for_shuffled_and_repeated_input() -> None:
    for name, (make, cho) in RECORDS.items():
        triples = make()
        first = edm_record(triples, cho)
        for seed in range(5):
            shuffled = triples + triples[: seed * 3]
            random.Random(seed).shuffle(shuffled)
            assert edm_record(iter(shuffled), cho) == first, name


def test_declaration_and_values_sorted() -> None:
    extra = [t(ARTICLE, DC + "title", literal("Het getijdenboek van X", "nl")),
             t(ARTICLE, DC + "title", literal("Das Stundenbuch von X", "de"))]
    xml = edm_record(article_triples() + extra, ARTICLE)
    assert xml.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n<rdf:RDF")
    titles = tree(xml).xpath("//edm:ProvidedCHO/dc:title", namespaces={"edm": EDM, "dc": DC})
    assert [t.text for t in titles] == ["Das Stundenbuch von X", "Het getijdenboek van X", "The Book of Hours of X"]


def test_is_provided_cho() -> None:
    assert is_provided_cho(article_triples(), ARTICLE)
    assert not is_provided_cho(article_triples(), PERSON)


# --- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize("extra, message", [
    ([t(ARTICLE, DC + "creator", "_:b1")], ARTICLE),
    ([("_:agg", iri(EDM + "aggregatedCHO"), iri(ARTICLE))], "_:agg"),
    ([t(PERSON, OWL + "sameAs", "_:b2")], PERSON),
])
def test_blank_nodes_raise(extra: list, message: str) -> None:
    with pytest.raises(ValueError, match="blank node") as err:
        edm_record(article_triples() + extra, ARTICLE)
    assert message in str(err.value)


@pytest.mark.parametrize("subject, prop", [(ARTICLE, DC + "title"), (PERSON, SKOS + "altLabel"), (HERO, DC + "description")])
def test_control_characters_raise(subject: str, prop: str) -> None:
    with pytest.raises(ValueError) as err:
        edm_record(article_triples() + [t(subject, prop, en("bad\x01value"))], ARTICLE)
    assert subject in str(err.value) and prop.rsplit("/", 1)[-1].split("#")[-1] in str(err.value)


@pytest.mark.parametrize("extra, drop, message", [
    ([t(ARTICLE, EDM + "type", literal("IMAGE"))], None, "at most 1 edm:type"),
    ([], EDM + "provider", "requires edm:provider"),
    ([t(ARTICLE, OWL + "sameAs", literal("Q42"))], None, "takes an IRI"),
    ([t(ARTICLE, DC + "title", iri("https://example.org/title"))], None, "takes a literal"),
    ([t(HERO, EBU + "hasMimeType", en("image/png"))], EBU + "hasMimeType", "no xml:lang"),
    ([], RDF_TYPE[1:-1], "not typed edm:ProvidedCHO"),
])
def test_invalid_edm_raises(extra: list, drop: str | None, message: str) -> None:
    triples = [x for x in article_triples() if not (drop and x[1] == iri(drop) and x[0] in (iri(ARTICLE), iri(ARTICLE + "#aggregation"), iri(HERO)))]
    with pytest.raises(ValueError, match=message):
        edm_record(triples + extra, ARTICLE)
