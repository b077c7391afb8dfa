"""Each rule in shapes/ fires on a small faulty graph, with the expected severity, and stays silent on
valid data; and every schema.org term the shapes name exists in schema.org 30.0."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import rdflib
from pyshacl import validate
from rdflib.namespace import SH

from test_outputs import ROOT, shared_or_skip

PREFIXES = """
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix dc: <http://purl.org/dc/elements/1.1/> .
@prefix dcterms: <http://purl.org/dc/terms/> .
@prefix edm: <http://www.europeana.eu/schemas/edm/> .
@prefix ore: <http://www.openarchives.org/ore/terms/> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix ebucore: <http://www.ebu.ch/metadata/ontologies/ebucore/ebucore#> .
@prefix schema: <http://schema.org/> .
@prefix : <https://data.example.org/> .
"""
CHO = """:a a edm:ProvidedCHO ; dc:title "T"@en ; dc:type "blog post"@en ; edm:type "TEXT" ; dc:language "en" ."""
AGG = """:a-agg a ore:Aggregation ; edm:aggregatedCHO :a ; edm:dataProvider "P" ; edm:provider "P" ;
    edm:isShownAt <https://example.org/page> ; edm:rights <http://rightsstatements.org/vocab/InC/1.0/> ."""
PERSON = """:p a schema:Person, edm:Agent ; schema:name "Ada"@en ; skos:prefLabel "Ada"@en ."""
ARTICLE = """:a a schema:BlogPosting ; schema:headline "T"@en ; schema:author :p ;
    schema:datePublished "2021-04-14"^^xsd:date ; schema:dateModified "2021-04-15"^^xsd:date ;
    schema:image :i ."""


def results(shapes: str, data: str) -> list[tuple[str, str, str]]:
    """(severity, focus node, message) for each result."""
    sg = rdflib.Graph().parse(ROOT / "shapes" / shapes, format="turtle")
    dg = rdflib.Graph().parse(data=PREFIXES + data, format="turtle")
    _ok, report, _text = validate(dg, shacl_graph=sg, inference="none", allow_warnings=True)
    return [(str(report.value(r, SH.resultSeverity)).rsplit("#", 1)[1], str(report.value(r, SH.focusNode)),
             str(report.value(r, SH.resultMessage)))
            for r in report.subjects(rdflib.RDF.type, SH.ValidationResult)]


def violations(shapes: str, data: str) -> list[str]:
    return [m for s, _f, m in results(shapes, data) if s == "Violation"]


def test_valid_data_conforms():
    assert violations("edm.ttl", CHO + AGG + PERSON) == []
    assert violations("schema.ttl", ARTICLE + PERSON) == []
    assert violations("europeana.ttl", AGG) == []


@pytest.mark.parametrize("data,expected", [
    (CHO.replace('dc:title "T"@en ;', ""), "title or a description"),
    (CHO.replace('dc:type "blog post"@en ;', ""), "subject, a type, a place or a period"),
    (CHO.replace('"TEXT"', '"text"'), "edm:type must be exactly one of"),
    (CHO.replace('edm:type "TEXT" ;', 'edm:type "TEXT", "IMAGE" ;'), "edm:type must be exactly one of"),
    (CHO.replace('dc:language "en" ', 'dc:date "2021"^^xsd:gYear '), "needs a language"),
    (CHO.replace('dc:language "en" ', 'dc:date "2021-04-14"^^xsd:date '), "plain date"),
    (CHO + ' :a dc:creator :nobody .', "published person or organisation"),
    (AGG.replace("edm:rights <http://rightsstatements.org/vocab/InC/1.0/>", 'edm:rights "In Copyright"'), "rights"),
    (AGG.replace(' ; edm:rights <http://rightsstatements.org/vocab/InC/1.0/>', ""), "Exactly one rights statement"),
    (AGG.replace('edm:isShownAt <https://example.org/page> ;', ""), "isShownAt"),
    (AGG.replace('edm:provider "P" ;', ""), "edm:provider"),
    (""":f a edm:WebResource ; ebucore:width "12"^^xsd:long .""", "whole number of pixels"),
    (""":p a edm:Agent .""", "needs a name"),
])
def test_edm_rule_fires(data, expected):
    found = violations("edm.ttl", data if ":a a edm:ProvidedCHO" in data or "Aggregation" not in data
                       else CHO + data)
    assert any(expected in m for m in found), found


def test_europeana_rights_only_gate_the_edm_channel():
    for bad in ("http://rightsstatements.org/vocab/InC-NC/1.0/", "https://rightsstatements.org/vocab/InC/1.0/",
                "http://creativecommons.org/licenses/by-sa/4.0", "http://rightsstatements.org/page/InC/1.0/"):
        found = violations("europeana.ttl", AGG.replace("http://rightsstatements.org/vocab/InC/1.0/", bad))
        assert found and "Europeana does not accept" in found[0], bad
    for good in ("http://creativecommons.org/publicdomain/mark/1.0/", "http://creativecommons.org/licenses/by/4.0/",
                 "http://rightsstatements.org/vocab/InC-EDU/1.0/"):
        assert violations("europeana.ttl", AGG.replace("http://rightsstatements.org/vocab/InC/1.0/", good)) == []


@pytest.mark.parametrize("data,expected", [
    (ARTICLE.replace('schema:headline "T"@en ;', ""), "needs a headline"),
    (ARTICLE.replace("schema:author :p ;", ""), "needs an author"),
    (ARTICLE.replace("schema:author :p", "schema:author :unknown"), "needs an author"),
    (ARTICLE.replace('"2021-04-14"^^xsd:date', '"2021-02-30"^^xsd:date'), "valid date"),
    (ARTICLE.replace('"2021-04-14"^^xsd:date', '"14 April 2021"'), "valid date"),
    (PERSON.replace('schema:name "Ada"@en ;', ""), "person needs a name"),
    (""":i a schema:Photograph ; schema:name "x" ; schema:license <http://creativecommons.org/licenses/by/4.0/> .""",
     "contentUrl"),
])
def test_schema_org_rule_fires(data, expected):
    found = violations("schema.ttl", data + ("" if "Person" in data else PERSON))
    assert any(expected in m for m in found), found


def test_search_engine_recommendations_are_warnings_only():
    image = """:i a schema:Photograph ; schema:name "x" ; schema:contentUrl <https://example.org/x.jpg> ."""
    res = results("schema.ttl", image + ARTICLE.replace("schema:image :i .", "schema:url <https://example.org/a> .")
                  .replace(' ; schema:dateModified "2021-04-15"^^xsd:date', "") + PERSON)
    assert {s for s, _f, _m in res} <= {"Warning", "Info"}
    messages = " ".join(m for _s, _f, m in res)
    assert "licen" in messages and "creator" in messages and "image" in messages
    long_headline = ARTICLE.replace('"T"@en', '"' + "x" * 111 + '"@en')
    assert [s for s, _f, m in results("schema.ttl", long_headline + PERSON) if "110" in m] == ["Warning"]


def test_shapes_name_only_existing_schema_org_terms():
    shared = shared_or_skip()
    vocab = rdflib.Graph().parse(shared / "specs/schemaorg/schemaorg-current-http.ttl", format="turtle")
    defined = {str(s) for s in vocab.subjects()}
    text = (ROOT / "shapes/schema.ttl").read_text()
    used = {f"http://schema.org/{t}" for t in re.findall(r"schema:([A-Za-z]+)", text)}
    assert len(used) > 25 and not used - defined, sorted(used - defined)
