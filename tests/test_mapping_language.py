"""The mapping language through the library: heritage_ld.mapping.Mappings on mapping folders
written by each test (field paths, languages, datatypes, when, link, ref, config, classes,
templates) and every load error naming file, line and key."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from heritage_ld.mapping import Context, Mapped, MappingError, Mappings, Record

BASE = "https://data.example.org/"
XSD = "http://www.w3.org/2001/XMLSchema#"
DC = "http://purl.org/dc/elements/1.1/"
EDM = "http://www.europeana.eu/schemas/edm/"
SDO = "http://schema.org/"
OWL = "http://www.w3.org/2002/07/owl#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
ORE = "http://www.openarchives.org/ore/terms/"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"

PREFIXES = """\
dc: http://purl.org/dc/elements/1.1/
dcterms: http://purl.org/dc/terms/
edm: http://www.europeana.eu/schemas/edm/
ore: http://www.openarchives.org/ore/terms/
owl: http://www.w3.org/2002/07/owl#
skos: http://www.w3.org/2004/02/skos/core#
foaf: http://xmlns.com/foaf/0.1/
schema: http://schema.org/
xsd: http://www.w3.org/2001/XMLSchema#
"""

AGENT = """\
entity: agent
id: id
fields: [id, name, kind]
subjects:
  agent:
    uri: "{base}agent/{id}"
    class:
      - {field: kind, map: {person: edm:Agent, org: foaf:Organization}}
    properties:
      skos:prefLabel: {field: name, language: en}
"""

THING = """\
entity: thing
id: code
fields: [code, "@type", title, lang, kind, date, size, "tags[]", "parts[].name", "parts[].lang", url,
         "same[]", owner, "friends[]", license, extent]
embedded:
  - {field: owner, entity: agent}
subjects:
  main:
    uri: "{base}thing/{id}"
    class:
      - edm:ProvidedCHO
      - {field: "@type", namespace: schema, allowed: [Book, Map, CreativeWork], default: CreativeWork}
    properties:
      dc:title: {field: title, language: {field: lang, default: en}}
      dc:description: {field: title, language: {field: lang}}
      dc:type: {field: kind, language: en}
      dc:date: {field: date, transform: date}
      schema:dateCreated: {field: date, transform: date, datatype: auto}
      schema:temporal: {field: date, datatype: xsd:gYear}
      schema:size: {field: size, datatype: xsd:integer}
      dc:subject: {field: "tags[]", language: en}
      schema:hasPart: {field: "parts[].name", language: {field: lang}}
      schema:url: {uri: "{url|iri}"}
      owl:sameAs: {uri: "{same[]|iri}"}
      dc:creator: {link: agent, field: owner}
      schema:knows: {link: [agent, thing], field: "friends[]"}
      edm:dataProvider: {config: data_provider}
      edm:type: {value: TEXT}
      schema:about: {uri: "{base}tag/{tags[]|slug}"}
      schema:license: {uri: "{license|rights}"}
      schema:timeRequired: {field: extent, transform: duration, datatype: auto}
      dcterms:extent: {field: extent, transform: text}
  agg:
    uri: "{base}thing/{id}#agg"
    class: [ore:Aggregation]
    properties:
      edm:aggregatedCHO: {ref: main}
      edm:provider: {config: data_provider}
"""


def write(folder: Path, **files: str) -> None:
    folder.mkdir(exist_ok=True)
    if not (folder / "prefixes.yaml").exists():
        (folder / "prefixes.yaml").write_text(PREFIXES, "utf-8")
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(textwrap.dedent(text), "utf-8")


def load(tmp_path: Path, config_keys=("data_provider",), **files: str) -> Mappings:
    folder = tmp_path / "mapping"
    write(folder, **files)
    return Mappings(folder, config_keys)


def run(m: Mappings, entity: str, data: dict, known: dict[str, set[str]] | None = None,
        config: dict[str, str] | None = None) -> Mapped:
    rid = m.record_id(entity, data)
    assert rid is not None
    ctx = Context(BASE, config or {"data_provider": "Test Provider"}, rid, known, m)
    return m.entities[entity].map(Record(entity, rid, data, f"test.json:1 ({entity} {rid})"), ctx)


def objs(mapped: Mapped, predicate: str, subject: str | None = None) -> list[str]:
    return sorted(o for s, p, o in mapped.triples
                  if p == f"<{predicate}>" and (subject is None or s == f"<{subject}>"))


def lit(lex: str, lang: str | None = None, dt: str | None = None) -> str:
    return f'"{lex}"' + (f"@{lang}" if lang else "") + (f"^^<{dt}>" if dt else "")


@pytest.fixture
def things(tmp_path) -> Mappings:
    return load(tmp_path, thing=THING, agent=AGENT)


FULL = {
    "code": "t1", "@type": "Book", "title": "Hello", "lang": "Dutch", "kind": "novel",
    "date": "April 2021", "size": 12, "tags": ["Old Maps", "z"],
    "parts": [{"name": "p1"}, {"name": "p2"}, {"name": ""}],
    "url": "https://example.org/a%20b", "same": ["https://a.example/1", "https://b.example/2"],
    "owner": {"id": "o1", "name": "Owner", "kind": "person"}, "friends": ["o1", "t2"],
    "license": "CC BY 4.0", "extent": "2 minutes to read",
}
KNOWN = {"thing": {"t1", "t2"}, "agent": {"o1"}}
T1 = BASE + "thing/t1"


# -- field paths ----------------------------------------------------------------------------

def test_full_record(things):
    m = run(things, "thing", FULL, KNOWN)
    assert m.issues == []
    assert m.subjects == {"main": T1, "agg": T1 + "#agg"}
    assert objs(m, DC + "title") == [lit("Hello", "nl")]
    assert objs(m, DC + "subject") == [lit("Old Maps", "en"), lit("z", "en")]
    # nested path through a list; empty strings are no values
    assert objs(m, SDO + "hasPart") == [lit("p1", "nl"), lit("p2", "nl")]
    assert objs(m, OWL + "sameAs") == ["<https://a.example/1>", "<https://b.example/2>"]
    assert objs(m, SDO + "license") == ["<http://creativecommons.org/licenses/by/4.0/>"]
    assert objs(m, "http://purl.org/dc/terms/extent") == [lit("2 minutes to read")]


def test_missing_value_drops_its_triples_only(things):
    data = {k: v for k, v in FULL.items() if k not in ("title", "tags", "owner")}
    m = run(things, "thing", data, KNOWN)
    assert m.issues == []
    assert objs(m, DC + "title") == [] and objs(m, DC + "subject") == [] and objs(m, DC + "creator") == []
    assert objs(m, SDO + "about") == []
    assert objs(m, EDM + "type") == [lit("TEXT")]
    assert objs(m, SDO + "size") == [lit("12", dt=XSD + "integer")]


def test_bad_value_drops_one_property_not_the_record(things):
    m = run(things, "thing", {**FULL, "date": "sometime in spring"}, KNOWN)
    assert {(i.field, i.value) for i in m.issues} == {("date", "sometime in spring")}
    assert {i.predicate for i in m.issues} == {DC + "date", SDO + "dateCreated"}
    assert all(i.record_id == "t1" and i.entity == "thing" and i.source.startswith("test.json") for i in m.issues)
    assert objs(m, DC + "date") == [] and objs(m, SDO + "dateCreated") == []
    assert objs(m, DC + "title") == [lit("Hello", "nl")]
    assert objs(m, SDO + "temporal") == [lit("sometime in spring", dt=XSD + "gYear")]  # explicit: not checked


def test_object_where_text_expected(things):
    m = run(things, "thing", {**FULL, "title": {"en": "Hello"}}, KNOWN)
    (i,) = {(i.field, i.message) for i in m.issues if i.predicate == DC + "title"}
    assert i == ("title", "field 'title' holds dict, expected text or a number")
    assert objs(m, DC + "type") == [lit("novel", "en")]


def test_numbers_and_lists_where_one_value_declared(things):
    m = run(things, "thing", {**FULL, "title": ["A", "B"], "kind": 7}, KNOWN)
    assert objs(m, DC + "title") == [lit("A", "nl"), lit("B", "nl")]
    assert objs(m, DC + "type") == [lit("7", "en")]


def test_text_checks(things):
    m = run(things, "thing", {**FULL, "kind": "a\u0007b", "title": "<b>bold</b>"}, KNOWN)
    msgs = {i.field: i.message for i in m.issues}
    assert "control character U+0007" in msgs["kind"]
    assert "markup '<b>'" in msgs["title"]
    assert objs(m, DC + "title") == [] and objs(m, DC + "type") == []
    # a lone ampersand or comparison is not markup
    m = run(things, "thing", {**FULL, "title": "Salt & pepper, 1 < 2"}, KNOWN)
    assert m.issues == [] and objs(m, DC + "title") == [lit("Salt & pepper, 1 < 2", "nl")]


def test_literal_escaping(things):
    m = run(things, "thing", {**FULL, "kind": 'say "hi"\\ \n done'}, KNOWN)
    assert objs(m, DC + "type") == ['"say \\"hi\\"\\\\ \\n done"@en']


# -- languages and datatypes --------------------------------------------------------------------

def test_language_from_field_and_constant(things):
    m = run(things, "thing", {**FULL, "lang": "en-gb"}, KNOWN)
    assert objs(m, DC + "title") == [lit("Hello", "en-gb")]          # tags are written lower case
    assert objs(m, DC + "type") == [lit("novel", "en")]
    no_lang = {k: v for k, v in FULL.items() if k != "lang"}
    m = run(things, "thing", no_lang, KNOWN)
    assert objs(m, DC + "title") == [lit("Hello", "en")]              # the default
    assert objs(m, DC + "description") == [lit("Hello")]              # no default: no tag


def test_bad_language_field(things):
    m = run(things, "thing", {**FULL, "lang": "Klingon"}, KNOWN)
    (i,) = [i for i in m.issues if i.predicate == DC + "title"]
    assert (i.field, i.value) == ("lang", "Klingon") and "unknown language 'Klingon'" in i.message
    assert objs(m, DC + "title") == []


@pytest.mark.parametrize("default", ['"not a tag"', "5"])
def test_a_language_default_that_is_no_tag_is_a_mapping_error(tmp_path, default):
    """(It made every record with no language field fail with a traceback: ValueError, TypeError.)"""
    text = AGENT.replace("{field: name, language: en}", f"{{field: name, language: {{field: kind, default: {default}}}}}")
    with pytest.raises(MappingError, match=r"agent\.yaml:\d+: default: .* is not a language tag"):
        load(tmp_path, agent=text)


@pytest.mark.parametrize("date, lex, dtype", [
    ("April 2021", "2021-04", "gYearMonth"), ("14 April 2021", "2021-04-14", "date"), ("1890", "1890", "gYear"),
    ("2021-04-14T09:30:00Z", "2021-04-14T09:30:00Z", "dateTime"),
])
def test_datatype_auto_and_plain(things, date, lex, dtype):
    m = run(things, "thing", {**FULL, "date": date}, KNOWN)
    assert objs(m, SDO + "dateCreated") == [lit(lex, dt=XSD + dtype)]
    assert objs(m, DC + "date") == [lit(lex)]                          # without datatype: plain


def test_datatype_auto_duration(things):
    m = run(things, "thing", FULL, KNOWN)
    assert objs(m, SDO + "timeRequired") == [lit("PT2M", dt=XSD + "duration")]


def test_explicit_integer_datatype(things):
    assert objs(run(things, "thing", {**FULL, "size": "1600"}, KNOWN), SDO + "size") == \
        [lit("1600", dt=XSD + "integer")]
    m = run(things, "thing", {**FULL, "size": "12 px"}, KNOWN)
    (i,) = m.issues
    assert (i.field, i.value, i.message) == ("size", "12 px", "'12 px' is not a whole number")
    assert objs(m, SDO + "size") == []


# -- when ---------------------------------------------------------------------------------------

WHEN = """\
entity: thing
id: code
fields: [code, date, kind]
subjects:
  main:
    uri: "{base}thing/{id}"
    properties:
      dc:date:
        - {field: date, transform: date, when: {field: date, test: single_date}}
        - {uri: "{base}timespan/{date|date_range|slug}", when: {field: date, test: date_range}}
      dc:type:
        - {value: photograph, language: en, when: {field: kind, equals: [Photograph, null]}}
        - {value: drawing, language: en, when: {field: kind, equals: Drawing}}
  span:
    when: {field: date, test: date_range}
    uri: "{base}timespan/{date|date_range|slug}"
    class: [edm:TimeSpan]
    properties:
      edm:begin: {field: date, transform: range_begin}
      edm:end: {field: date, transform: range_end}
"""


def test_when_test_and_equals(tmp_path):
    m = load(tmp_path, thing=WHEN)
    single = run(m, "thing", {"code": "a", "date": "1890"})
    assert objs(single, DC + "date") == [lit("1890")]
    assert objs(single, DC + "type") == [lit("photograph", "en")]     # equals null: field missing
    assert "span" not in single.subjects
    span = run(m, "thing", {"code": "b", "date": "1914 – 1918", "kind": "Drawing"})
    ts = BASE + "timespan/1914-1918"
    assert objs(span, DC + "date") == [f"<{ts}>"]
    assert objs(span, DC + "type") == [lit("drawing", "en")]
    assert span.subjects["span"] == ts
    assert objs(span, EDM + "begin", ts) == [lit("1914")] and objs(span, EDM + "end", ts) == [lit("1918")]
    assert objs(span, RDF_TYPE, ts) == [f"<{EDM}TimeSpan>"]
    other = run(m, "thing", {"code": "c", "kind": "Map"})
    assert objs(other, DC + "type") == [] and objs(other, DC + "date") == []


def test_when_reversed_range_is_reported(tmp_path):
    m = load(tmp_path, thing=WHEN)
    r = run(m, "thing", {"code": "a", "date": "1918/1914"})
    assert r.issues and all("the range ends before it begins" in i.message for i in r.issues)
    assert all(i.field == "date" for i in r.issues)


# -- link, ref, config ---------------------------------------------------------------------------

def test_link_to_one_entity_and_embedded_object(things):
    m = run(things, "thing", FULL, KNOWN)
    assert objs(m, DC + "creator") == [f"<{BASE}agent/o1>"]            # embedded object: linked by its id
    extracted = list(things.extract("thing", FULL, "test.json:1"))
    assert [(e, rid) for e, rid, _d, _s in extracted] == [("thing", "t1"), ("agent", "o1")]
    _e, _rid, agent, src = extracted[1]
    assert agent["_embeddedIn"] == {"thing": ["t1"]} and src == "test.json:1 > owner"
    a = run(things, "agent", agent, KNOWN)
    assert objs(a, RDF_TYPE) == [f"<{EDM}Agent>"]                       # class map
    assert objs(a, SKOS + "prefLabel") == [lit("Owner", "en")]


def test_embedded_object_with_only_an_id_is_a_reference(things):
    extracted = list(things.extract("thing", {**FULL, "owner": {"id": "o1"}}, "x"))
    assert [e for e, *_ in extracted] == ["thing"]


def test_link_to_several_entities(things):
    m = run(things, "thing", FULL, KNOWN)
    assert objs(m, SDO + "knows") == [f"<{BASE}agent/o1>", f"<{BASE}thing/t2>"]


def test_link_to_missing_and_ambiguous_ids(things):
    m = run(things, "thing", {**FULL, "friends": ["o1", "nobody-known"]}, KNOWN)
    (i,) = m.issues
    assert (i.field, i.value, i.predicate) == ("friends[]", "nobody-known", SDO + "knows")
    assert "links to agent or thing 'nobody-known', which is not among the records read" in i.message
    assert objs(m, SDO + "knows") == [f"<{BASE}agent/o1>"]
    m = run(things, "thing", {**FULL, "friends": ["dup"]}, {"thing": {"t1", "dup"}, "agent": {"o1", "dup"}})
    (i,) = m.issues
    assert "id 'dup' is ambiguous: it exists as agent and thing" in i.message


def test_link_without_known_ids_does_not_check(things):
    m = run(things, "thing", {**FULL, "friends": ["whoever"]}, None)
    assert m.issues == [] and objs(m, SDO + "knows") == [f"<{BASE}agent/whoever>"]


def test_link_iri_percent_encodes_the_id(things):
    m = run(things, "thing", {**FULL, "friends": ["a b/c"]}, {"agent": {"a b/c", "o1"}})
    assert objs(m, SDO + "knows") == [f"<{BASE}agent/a%20b%2Fc>"]


def test_link_transform_errors_become_issues(tmp_path):
    thing = THING.replace('schema:knows: {link: [agent, thing], field: "friends[]"}',
                          'schema:knows: {link: agent, field: "friends[]", transform: slug}')
    m = load(tmp_path, thing=thing, agent=AGENT)
    r = run(m, "thing", {**FULL, "friends": ["Owner One"]}, {"agent": {"owner-one", "o1"}})
    assert objs(r, SDO + "knows") == [f"<{BASE}agent/owner-one>"]
    r = run(m, "thing", {**FULL, "friends": ["日本"]}, KNOWN)
    (i,) = r.issues
    assert (i.field, i.value) == ("friends[]", "日本") and "cannot make a URI-safe id" in i.message


def test_ref_and_config(things):
    m = run(things, "thing", FULL, KNOWN, config={"data_provider": "Museum X"})
    assert objs(m, EDM + "aggregatedCHO", T1 + "#agg") == [f"<{T1}>"]
    assert objs(m, EDM + "dataProvider") == [lit("Museum X")]
    assert objs(m, EDM + "provider", T1 + "#agg") == [lit("Museum X")]
    assert objs(m, RDF_TYPE, T1 + "#agg") == [f"<{ORE}Aggregation>"]


def test_config_in_template(tmp_path):
    thing = """\
    entity: thing
    id: code
    fields: [code]
    subjects:
      main:
        uri: "{config.ns}{id}"
        properties:
          edm:type: {value: TEXT}
    """
    m = load(tmp_path, config_keys=("ns",), thing=thing)
    r = run(m, "thing", {"code": "x"}, config={"ns": "https://other.example/id/"})
    assert r.subjects == {"main": "https://other.example/id/x"}


def test_constant_values(tmp_path):
    thing = """\
    entity: thing
    id: code
    fields: [code]
    subjects:
      main:
        uri: "{base}thing/{id}"
        properties:
          edm:type: {value: TEXT}
          dc:type: {value: photograph, language: en}
          schema:width: {value: 100, datatype: xsd:integer}
          schema:isFamilyFriendly: {value: true, datatype: xsd:boolean}
    """
    r = run(load(tmp_path, thing=thing), "thing", {"code": "x"})
    assert objs(r, EDM + "type") == [lit("TEXT")]
    assert objs(r, DC + "type") == [lit("photograph", "en")]
    assert objs(r, SDO + "width") == [lit("100", dt=XSD + "integer")]
    assert objs(r, SDO + "isFamilyFriendly") == [lit("true", dt=XSD + "boolean")]


# -- classes -------------------------------------------------------------------------------------

def test_class_from_field_allowed_and_default(things):
    assert objs(run(things, "thing", FULL, KNOWN), RDF_TYPE, T1) == sorted([f"<{EDM}ProvidedCHO>", f"<{SDO}Book>"])
    no_type = {k: v for k, v in FULL.items() if k != "@type"}
    assert objs(run(things, "thing", no_type, KNOWN), RDF_TYPE, T1) == \
        sorted([f"<{EDM}ProvidedCHO>", f"<{SDO}CreativeWork>"])
    m = run(things, "thing", {**FULL, "@type": "Boek"}, KNOWN)
    (i,) = m.issues
    assert (i.field, i.value, i.predicate) == ("@type", "Boek", RDF_TYPE)
    assert "type 'Boek' is not one of Book, Map, CreativeWork" in i.message
    assert objs(m, DC + "title")                                         # the rest is still mapped


def test_class_map(things):
    m = run(things, "agent", {"id": "o2", "kind": "org"}, KNOWN)
    assert objs(m, RDF_TYPE) == ["<http://xmlns.com/foaf/0.1/Organization>"]
    m = run(things, "agent", {"id": "o3", "kind": "robot"}, KNOWN)
    (i,) = m.issues
    assert (i.field, i.value) == ("kind", "robot") and "'robot' is not one of person, org" in i.message
    assert objs(m, RDF_TYPE) == []


def test_class_from_field_without_allowed_rejects_non_names(tmp_path):
    thing = """\
    entity: thing
    id: code
    fields: [code, kind]
    subjects:
      main:
        uri: "{base}thing/{id}"
        class: [{field: kind, namespace: schema}]
    """
    m = load(tmp_path, thing=thing)
    assert objs(run(m, "thing", {"code": "x", "kind": "Painting"}), RDF_TYPE) == [f"<{SDO}Painting>"]
    r = run(m, "thing", {"code": "x", "kind": "Bad Value/x"})
    assert objs(r, RDF_TYPE) == [] and "is not a class name" in r.issues[0].message


# -- templates ------------------------------------------------------------------------------------

def test_template_base_and_percent_encoded_id(things):
    m = run(things, "thing", {**FULL, "code": "a b/c?d#é"}, {"thing": {"a b/c?d#é", "t2"}, "agent": {"o1"}})
    main = BASE + "thing/a%20b%2Fc%3Fd%23%C3%A9"
    assert m.subjects == {"main": main, "agg": main + "#agg"}
    assert objs(m, EDM + "aggregatedCHO") == [f"<{main}>"]


def test_template_iri_kept_as_given_and_others_encoded(things):
    m = run(things, "thing", {**FULL, "url": "https://example.org/a%20b?x=1&y=é"}, KNOWN)
    assert objs(m, SDO + "url") == ["<https://example.org/a%20b?x=1&y=é>"]
    # a list field in a template gives one IRI per value; values are slugged then encoded
    assert objs(m, SDO + "about") == [f"<{BASE}tag/old-maps>", f"<{BASE}tag/z>"]


def test_template_bad_iri_is_an_issue(things):
    m = run(things, "thing", {**FULL, "url": "www.example.org/page", "same": ["https://ok.example/", "not an iri"]},
            KNOWN)
    by_pred = {i.predicate: i for i in m.issues}
    assert "is not an absolute IRI" in by_pred[SDO + "url"].message
    assert by_pred[SDO + "url"].field == "url" and by_pred[SDO + "url"].value == "www.example.org/page"
    assert objs(m, SDO + "url") == []
    assert objs(m, DC + "title") == [lit("Hello", "nl")]


def test_template_rights_label(things):
    m = run(things, "thing", {**FULL, "license": "All rights reserved"}, KNOWN)
    (i,) = m.issues
    assert (i.field, i.value, i.predicate) == ("license", "All rights reserved", SDO + "license")
    assert "unknown rights statement 'All rights reserved'; accepted labels: 'In Copyright'" in i.message


def test_subject_template_without_value_drops_the_block(tmp_path):
    thing = """\
    entity: thing
    id: code
    fields: [code, file]
    subjects:
      main:
        uri: "{base}thing/{id}"
        properties:
          edm:isShownBy: {uri: "{file|iri}"}
      file:
        uri: "{file|iri}"
        class: [edm:WebResource]
    """
    m = load(tmp_path, thing=thing)
    r = run(m, "thing", {"code": "x"})
    assert r.subjects == {"main": BASE + "thing/x"} and r.triples == [] and r.issues == []
    r = run(m, "thing", {"code": "x", "file": "https://cdn.example/x.jpg"})
    assert r.subjects["file"] == "https://cdn.example/x.jpg"


def test_iri_for_and_record_id(things):
    assert things.iri_for("thing", "a b", BASE) == BASE + "thing/a%20b"
    assert things.record_id("thing", {"code": " 7 "}) == "7"
    assert things.record_id("thing", {"code": 7}) == "7"
    assert things.record_id("thing", {"code": ""}) is None
    assert things.record_id("thing", {"title": "no id"}) is None


# -- load errors ---------------------------------------------------------------------------------

BROKEN_BASE = """\
entity: thing
id: code
fields: [code, title, "tags[]", "links[]", url]
subjects:
  main:
    uri: "{base}thing/{id}"
    class: [edm:ProvidedCHO]
    properties:
      dc:title: {field: title, language: en}
"""


def line_of(text: str, needle: str, nth: int = 1) -> int:
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[nth - 1]


def load_error(tmp_path: Path, text: str) -> MappingError:
    with pytest.raises(MappingError) as e:
        load(tmp_path, thing=text)
    return e.value


@pytest.mark.parametrize("name, text, needle, key, message", [
    ("unknown top-level key", BROKEN_BASE + "extra: 1\n", "extra:", "extra",
     "unknown key in a mapping file; allowed: embedded, entity, fields, id, subjects"),
    ("unknown key in a value", BROKEN_BASE.replace("language: en}", "language: en, lang: en}"), "lang: en}", "lang",
     "unknown key in the value of dc:title"),
    ("unknown key in a subject", BROKEN_BASE.replace("    class:", "    klass: x\n    class:"), "klass", "klass",
     "unknown key in subject main; allowed: class, properties, uri, when"),
    ("unknown key in when", BROKEN_BASE + "      dc:type: {value: x, when: {field: title, is: y}}\n", "dc:type", "is",
     "unknown key in when"),
    ("unknown prefix", BROKEN_BASE.replace("dc:title", "dcx:title"), "dcx:title", "dcx:title",
     "unknown prefix 'dcx' in 'dcx:title'; known: dc, dcterms, edm"),
    ("unknown prefix in class", BROKEN_BASE.replace("edm:ProvidedCHO", "edmx:ProvidedCHO"), "edmx", "class",
     "unknown prefix 'edmx'"),
    ("unknown prefix in datatype", BROKEN_BASE + "      dc:date: {field: title, datatype: xs:date}\n", "xs:date",
     "datatype", "unknown prefix 'xs'"),
    ("bad local name", BROKEN_BASE.replace("dc:title", "dc:ti/tle"), "ti/tle", "dc:ti/tle",
     "'ti/tle' is not a valid local name"),
    ("unknown field", BROKEN_BASE.replace("field: title", "field: titel"), "titel", "field",
     "unknown field 'titel'; declared fields: code, links, tags, title, url"),
    ("unknown field in template", BROKEN_BASE + '      owl:sameAs: {uri: "{link|iri}"}\n', "{link|iri}", "uri",
     "unknown field 'link'"),
    ("unknown id field", BROKEN_BASE.replace("id: code", "id: cod"), "id: cod", "id", "unknown field 'cod'"),
    ("bad field path", BROKEN_BASE.replace("field: title", "field: 'ti tle'"), "ti tle", "field",
     "'ti tle' is not a field path"),
    ("unknown transform", BROKEN_BASE.replace("language: en}", "language: en, transform: uppercase}"),
     "uppercase", "transform", "unknown transform 'uppercase'; known: date, date_range, duration, edtf"),
    ("unknown transform in template", BROKEN_BASE + '      owl:sameAs: {uri: "{url|uri}"}\n', "{url|uri}", "uri",
     "unknown transform 'uri'"),
    ("unknown test", BROKEN_BASE + "      dc:type: {value: x, when: {field: title, test: nope}}\n", "nope", "test",
     "unknown test 'nope'; known: absent, date_range, europeana_rights, has_headings, present, single_date"),
    ("malformed template", BROKEN_BASE.replace('"{base}thing/{id}"', '"{base}thing/{id"'), "{id\"", "uri",
     "malformed template '{base}thing/{id': unbalanced braces"),
    ("malformed template, closing brace", BROKEN_BASE.replace('"{base}thing/{id}"', '"{base}thing/id}"'), "id}\"",
     "uri", "unbalanced braces"),
    ("empty placeholder", BROKEN_BASE.replace('"{base}thing/{id}"', '"{base}thing/{}"'), "{}", "uri",
     "empty placeholder"),
    ("two list fields in one template", BROKEN_BASE + '      owl:sameAs: {uri: "{tags[]}/{links[]|iri}"}\n',
     "owl:sameAs", "uri", "uses more than one list field"),
    ("duplicate YAML key", BROKEN_BASE + "      dc:title: {field: title}\n", "{field: title}", "dc:title",
     "duplicate key"),
    ("unknown configuration key", BROKEN_BASE + "      edm:provider: {config: nope}\n", "config: nope", "config",
     "unknown configuration key 'nope'; known: data_provider"),
    ("unknown configuration key in template", BROKEN_BASE.replace('"{base}thing/{id}"', '"{config.nope}{id}"'),
     "config.nope", "uri", "unknown configuration key 'nope'"),
    ("unknown ref", BROKEN_BASE + "      edm:aggregatedCHO: {ref: nope}\n", "ref: nope", "ref",
     "unknown subject 'nope'; subjects here: main"),
    ("language and datatype", BROKEN_BASE + "      dc:type: {field: title, language: en, datatype: xsd:string}\n",
     "dc:type", "datatype", "a literal has a language or a datatype, not both"),
    ("two value kinds", BROKEN_BASE + "      dc:type: {field: title, value: x}\n", "dc:type", "value",
     "give exactly one of field, value, template, uri, link, ref, config"),
    ("bad language tag", BROKEN_BASE + "      dc:type: {field: title, language: 'e n'}\n", "dc:type", "language",
     "'e n' is not a language tag"),
    ("link is not an entity name", BROKEN_BASE + "      dc:creator: {link: Person!, field: title}\n", "dc:creator",
     "link", "'Person!' is not an entity name"),
    ("allowed is not a list", BROKEN_BASE.replace("class: [edm:ProvidedCHO]",
                                                   "class: [{field: title, namespace: schema, allowed: Book}]"),
     "allowed: Book", "allowed", "allowed must be a list"),
    ("default not allowed", BROKEN_BASE.replace(
        "class: [edm:ProvidedCHO]", "class: [{field: title, namespace: schema, allowed: [Book], default: Map}]"),
     "default: Map", "default", "default 'Map' is not one of the allowed classes"),
    ("subject without uri", BROKEN_BASE.replace('    uri: "{base}thing/{id}"\n', ""), "main:", "main",
     "a subject needs a uri template"),
    ("bad entity name", BROKEN_BASE.replace("entity: thing", "entity: Thing"), "entity:", "entity",
     "'Thing' is not an entity name"),
])
def test_load_error_names_file_line_and_key(tmp_path, name, text, needle, key, message):
    e = load_error(tmp_path, text)
    path = tmp_path / "mapping" / "thing.yaml"
    line = line_of(text, needle)
    assert (Path(e.file), e.line, e.key) == (path, line, key), str(e)
    assert str(e).startswith(f"{path}:{line}: {key}: "), str(e)
    assert message in str(e)


def test_missing_required_key(tmp_path):
    e = load_error(tmp_path, BROKEN_BASE.replace("id: code\n", ""))
    assert e.key == "id" and e.line == 1 and "missing required key 'id'" in str(e)


def test_yaml_syntax_error(tmp_path):
    text = BROKEN_BASE.replace("class: [edm:ProvidedCHO]", "class: [edm:ProvidedCHO")
    e = load_error(tmp_path, text)
    assert e.key == "syntax"
    # the parser notices the unclosed list on the next line
    assert e.line in (line_of(text, "class:"), line_of(text, "class:") + 1)
    assert str(e).startswith(f"{tmp_path / 'mapping' / 'thing.yaml'}:{e.line}: syntax: ")


def test_yaml_tab_indentation(tmp_path):
    text = BROKEN_BASE.replace("      dc:title", "\tdc:title")
    e = load_error(tmp_path, text)
    assert e.key == "syntax" and e.line == line_of(text, "\tdc:title")


def test_duplicate_key_at_top_level(tmp_path):
    text = BROKEN_BASE + "id: other\n"
    e = load_error(tmp_path, text)
    assert (e.key, e.line) == ("id", line_of(text, "id: other"))


def test_same_entity_in_two_files(tmp_path):
    with pytest.raises(MappingError, match="entity 'thing' is also mapped in"):
        load(tmp_path, thing=BROKEN_BASE, thing2=BROKEN_BASE)


def test_embedded_unknown_entity(tmp_path):
    text = BROKEN_BASE.replace("subjects:", "embedded:\n  - {field: url, entity: nobody}\nsubjects:")
    e = load_error(tmp_path, text)
    assert e.key == "embedded" and "unknown entity 'nobody'" in str(e)


def test_bad_prefixes_file(tmp_path):
    folder = tmp_path / "mapping"
    folder.mkdir()
    (folder / "prefixes.yaml").write_text("dc: http://purl.org/dc/elements/1.1/\nex: not-an-iri\n")
    (folder / "thing.yaml").write_text(BROKEN_BASE)
    with pytest.raises(MappingError) as e:
        Mappings(folder, [])
    assert (e.value.line, e.value.key) == (2, "ex") and "'not-an-iri' is not a namespace IRI" in str(e.value)


def test_empty_mapping_folder(tmp_path):
    (tmp_path / "mapping").mkdir()
    with pytest.raises(MappingError, match="no mapping files"):
        Mappings(tmp_path / "mapping", [])


def test_not_utf8(tmp_path):
    folder = tmp_path / "mapping"
    write(folder)
    (folder / "thing.yaml").write_bytes(BROKEN_BASE.encode("utf-8") + b"# caf\xe9\n")
    with pytest.raises(MappingError) as e:
        Mappings(folder, [])
    assert e.value.key == "file" and "thing.yaml" in str(e.value)


def test_link_to_unknown_entity_is_a_load_error(tmp_path):
    text = BROKEN_BASE + "      dc:creator: {link: nobody, field: title}\n"
    e = load_error(tmp_path, text)
    assert (e.key, e.line) == ("link", line_of(text, "link: nobody"))


def test_keys_that_do_not_apply_are_rejected(tmp_path):
    text = BROKEN_BASE + '      owl:sameAs: {uri: "{url|iri}", transform: slug}\n'
    e = load_error(tmp_path, text)
    assert e.line == line_of(text, "owl:sameAs")


def test_real_project_mappings_load():
    root = Path(__file__).resolve().parents[1]
    m = Mappings(root / "mapping", ["base_uri", "data_provider", "provider", "publisher", "metadata_license",
                                    "name", "description", "output"])
    assert set(m.entities) == {"article", "image", "person", "organisation", "rights"}


@pytest.mark.parametrize("data", [
    {"a": {"b": "x"}}, {"a": {"b": ["x", None, "", 0]}}, {"a": [{"b": "x"}, {"b": ["y", "z"]}, "s", None]},
    {"a": [[{"b": 1}], {"b": [[2]]}]}, {"a": "s"}, {"a": None}, {"a": {"b": None}}, {"a": {"b": ""}},
    {"a": {"b": False}}, {"a": {"b": {"c": 1}}}, [{"a": {"b": 1}}], "s", {},
])
def test_path_getter_agrees_with_the_general_walk(data):
    from heritage_ld.mapping import _walk, path_getter
    for path in ("a", "a[]", "a.b", "a[].b[]", "a.b.c"):
        names = tuple(step.removesuffix("[]") for step in path.split("."))
        assert path_getter(path)(data) == _walk(data, names)


# -- issue 14: conditions, lists of objects, templates, tables ------------------------------------------------

CREATORS = """\
entity: work
id: id
fields: [id, "contributors[].id", "contributors[].role", "tags[]", note, flag, "subjects[].id", "subjects[].name",
         start, end, thumb, credit, lang]
subjects:
  cho:
    uri: "{base}work/{id}"
    properties:
      dc:creator: {link: agent, field: "contributors[].id", when: {field: "contributors[].role", equals: artist}}
      dc:contributor:
        link: agent
        field: "contributors[].id"
        when: {field: "contributors[].role", equals: [after, attributed to, circle of]}
      dc:subject: {ref: concept}
      dc:description:
        - {value: has a note, when: {field: note, test: present}}
        - {value: no note, when: {field: note, test: absent}}
        - {value: not flagged, when: {not: {field: flag, equals: true}}}
        - {value: flagged, when: {field: flag, equals: true}}
      dc:date: {template: "{start}/{end}"}
      dcterms:temporal: {template: "{start}/{end}", transform: edtf_interval}
      schema:image: {uri: "{thumb|https}"}
      schema:about: {uri: "{base}tag/{tags[]|slug}", when: {field: "tags[]", equals: [sea, ships]}}
  concept:
    uri: "{base}concept/{subjects[].id}"
    class: [skos:Concept]
    properties:
      skos:prefLabel: {field: "subjects[].name", language: en}
      skos:note: {field: note, language: en}
"""


@pytest.fixture
def works(tmp_path) -> Mappings:
    return load(tmp_path, agent=AGENT, work=CREATORS)


def test_when_on_a_list_applies_item_by_item(works):
    m = run(works, "work", {"id": "w", "contributors": [{"id": "a1", "role": "artist"}, {"id": "a2", "role": "after"},
                                                         {"id": "a3", "role": "circle of"}, {"id": "a4"}]})
    assert objs(m, DC + "creator") == [f"<{BASE}agent/a1>"]
    assert objs(m, DC + "contributor") == [f"<{BASE}agent/a2>", f"<{BASE}agent/a3>"]
    # a condition on a list that the value does not read: any item may satisfy it
    m = run(works, "work", {"id": "w", "tags": ["harbour", "sea"]})
    assert objs(m, SDO + "about") == [f"<{BASE}tag/sea>"]


def test_one_subject_per_list_item(works):
    m = run(works, "work", {"id": "w", "note": "N", "subjects": [{"id": 91, "name": "ships"}, {"id": 92, "name": "sea"},
                                                                 {"id": 91, "name": "ships"}]})
    c91, c92 = f"{BASE}concept/91", f"{BASE}concept/92"
    assert objs(m, SKOS + "prefLabel", c91) == [lit("ships", "en")]
    assert objs(m, SKOS + "prefLabel", c92) == [lit("sea", "en")]
    assert objs(m, SKOS + "note", c92) == [lit("N", "en")]          # a field outside the list: on every item
    assert objs(m, DC + "subject") == [f"<{c91}>", f"<{c92}>"]        # ref: every subject of the block
    assert sorted(m.subjects.values()) == sorted([f"{BASE}work/w", c91, c92])
    assert objs(run(works, "work", {"id": "w"}), DC + "subject") == []


@pytest.mark.parametrize("data, expected", [
    ({"note": "x", "flag": True}, ["flagged", "has a note"]),
    ({"note": "", "flag": "True"}, ["flagged", "no note"]),      # text "True" (a CSV cell) equals true
    ({"flag": "TRUE"}, ["flagged", "no note"]),
    ({"flag": False}, ["no note", "not flagged"]),
    ({"flag": "false"}, ["no note", "not flagged"]),
    ({}, ["no note", "not flagged"]),
    ({"flag": "yes"}, ["no note", "not flagged"]),              # only true/false are booleans
])
def test_present_absent_not_and_boolean_equals(works, data, expected):
    m = run(works, "work", {"id": "w", **data})
    assert objs(m, DC + "description") == [lit(e) for e in expected]


def test_text_template_joins_fields(works):
    m = run(works, "work", {"id": "w", "start": 1880, "end": "1885"})
    assert objs(m, DC + "date") == [lit("1880/1885")]
    assert objs(m, "http://purl.org/dc/terms/temporal") == [lit("1880/1885")]
    assert objs(run(works, "work", {"id": "w", "start": 1880}), DC + "date") == []   # a missing part: no value


def test_protocol_relative_url_by_transform(works):
    m = run(works, "work", {"id": "w", "thumb": "//images.example.org/x.jpg"})
    assert objs(m, SDO + "image") == ["<https://images.example.org/x.jpg>"]


def test_template_percent_encoding_a_scheme_is_a_load_error(tmp_path):
    text = CREATORS.replace('{uri: "{thumb|https}"}', '{uri: "{thumb}"}')
    e = load_error(tmp_path, text.replace("entity: work", "entity: thing"))
    assert "starts with a field, which would be percent-encoded as a path segment (https:%2F%2F...): " \
           "write {thumb|iri}, or {thumb|https} for //host/path URLs" in str(e)
    assert e.key == "uri"


def test_template_percent_encoding_a_scheme_is_never_published(tmp_path):
    """A URL from the data in the middle of a template stays a path segment; one that ends up as the
    scheme of the IRI (here through a configuration value) is a problem of the record, not published."""
    m = load(tmp_path, config_keys=("data_provider", "prefix"), thing="""\
        entity: thing
        id: code
        fields: [code, url]
        subjects:
          main:
            uri: "{base}thing/{id}"
            properties:
              schema:url: {uri: "{config.prefix}{url}"}
              schema:sameAs: {uri: "{base}page/{url}"}
        """)
    r = run(m, "thing", {"code": "a", "url": "https://example.org/x"}, config={"prefix": "", "data_provider": "P"})
    assert objs(r, SDO + "url") == []
    (issue,) = r.issues
    assert "'https:%2F%2Fexample.org%2Fx' is a URL whose '//' was percent-encoded" in issue.message
    assert issue.field == "url"
    assert objs(r, SDO + "sameAs") == [f"<{BASE}page/https:%2F%2Fexample.org%2Fx>"]


TABLES = """\
entity: work
id: id
fields: [id, credit, public]
tables:
  public_domain: {true: Public Domain Mark, false: null}
  credit_rights:
    - {contains: "©", value: In Copyright}
    - {match: "^no known copyright", value: No Known Copyright}
    - {equals: "CC-BY", value: CC BY 4.0}
subjects:
  cho:
    uri: "{base}work/{id}"
    properties:
      edm:rights:
        - {uri: "{public|public_domain|rights}"}
        - {uri: "{credit|credit_rights|rights}", when: {not: {field: public, equals: true}}}
"""


@pytest.mark.parametrize("data, rights", [
    ({"public": True}, "http://creativecommons.org/publicdomain/mark/1.0/"),
    ({"public": "True", "credit": "© DACS, 2014"}, "http://creativecommons.org/publicdomain/mark/1.0/"),
    ({"public": False, "credit": "© DACS, 2014"}, "http://rightsstatements.org/vocab/InC/1.0/"),
    ({"credit": "No known copyright restrictions"}, "http://rightsstatements.org/vocab/NKC/1.0/"),
    ({"credit": "CC-BY"}, "http://creativecommons.org/licenses/by/4.0/"),
])
def test_rights_tables(tmp_path, data, rights):
    m = load(tmp_path, work=TABLES)
    r = run(m, "work", {"id": "w", **data})
    assert objs(r, EDM + "rights") == [f"<{rights}>"] and not r.issues


def test_rights_table_without_a_row_names_the_table(tmp_path):
    m = load(tmp_path, work=TABLES)
    r = run(m, "work", {"id": "w", "credit": "Photo: the museum"})
    (issue,) = r.issues
    assert issue.field == "credit"
    assert issue.message.startswith("'Photo: the museum' is not in table 'credit_rights' (")
    assert issue.message.endswith("work.yaml:6): add a row for it, or a default")


@pytest.mark.parametrize("tables, key, message", [
    ("  rights: {x: y}\n", "rights", "table 'rights' has the name of a transform"),
    ("  bad:\n    - {match: '(', value: x}\n", "match", "not a regular expression"),
    ("  bad:\n    - {contains: x}\n", "contains", "a table rule is {equals: X, value: Y}"),
    ("  bad: [1, 2]\n", "bad", "a rule of table bad must be a mapping"),
    ("  Bad: {x: y}\n", "Bad", "'Bad' is not a table name"),
])
def test_table_load_errors(tmp_path, tables, key, message):
    e = load_error(tmp_path, TABLES.replace("tables:\n", "tables:\n" + tables).replace("entity: work", "entity: thing"))
    assert e.key == key and message in str(e), str(e)


# -- issue 15, item 3: mappings compiled to generated Python ------------------------------------------------

def test_show_code_prints_the_python_each_record_goes_through(project):
    """``heritage-ld map --show-code ENTITY``: the source the entity's mapping is compiled to,
    naming its file and every predicate; without --show-code a record id is required."""
    import subprocess
    import sys
    exe = Path(sys.executable).parent / "heritage-ld"
    r = subprocess.run([str(exe), "map", "--project", str(project), "--show-code", "person"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("# Generated by heritage-ld from ") and "mapping/person.yaml" in r.stdout.splitlines()[0]
    assert "def map_record(record, ctx):" in r.stdout and "<http://schema.org/jobTitle>" in r.stdout
    compile(r.stdout, "shown", "exec")   # what is shown is Python
    m = Mappings(project / "mapping", ["data_provider", "provider"])
    assert r.stdout == m.entities["person"].source
    r = subprocess.run([str(exe), "map", "--project", str(project), "person"], capture_output=True, text=True)
    assert r.returncode == 2 and "RECORD_ID" in r.stderr and "Traceback" not in r.stderr


def test_a_traceback_shows_the_generated_line(things):
    """What runs is the generated source: an error inside it shows the line (a configuration value
    missing from the Context is a KeyError there)."""
    import traceback
    ctx = Context(BASE, {}, "t1", None, things)
    with pytest.raises(KeyError) as info:
        things.entities["thing"].map(Record("thing", "t1", FULL, "test.json:1"), ctx)
    text = "".join(traceback.format_exception(info.value))
    assert "<heritage-ld mapping thing" in text and "config[key_data_provider]" in text, text


def test_equal_value_specs_are_computed_once_and_shared(things):
    """Two subjects reading one spec (edm:provider and edm:dataProvider's config, the title under two
    predicates) get the same values; a spec that fails drops all its values and reports on every
    predicate it feeds."""
    m = run(things, "thing", {**FULL, "url": "javascript:alert(1)"}, KNOWN)
    assert objs(m, EDM + "dataProvider") == objs(m, EDM + "provider") == [lit("Test Provider")]
    assert objs(m, SDO + "url") == []
    (i,) = [i for i in m.issues if i.predicate == SDO + "url"]
    assert i.field == "url" and "scheme 'javascript'" in i.message


@pytest.mark.parametrize("fields, subject, uri", [
    ("[id, x²]", "agent", "{base}agent/{id}"),          # a field name that is a word but no Python name
    ("[id, class, x²]", "agent", "{base}agent/{id}"),   # a Python keyword among the fields
    ("[id, x²]", "agent\0", "{base}agent/{id}"),        # a NUL in a subject's name (YAML "\0")
    ("[id, x²]", "agent", "{base}agent/\0{id}"),        # ... and in a template's text
])
def test_names_and_text_of_any_kind_compile(tmp_path, fields, subject, uri):
    """Whatever field names, subject names and template text a mapping file has, its generated code compiles
    (each was a SyntaxError with a traceback): the names map; a template with a NUL makes no IRI, and the
    record says so."""
    subject_yaml = subject.replace("\0", "\\0")
    uri_yaml = uri.replace("\0", "\\0")
    text = f"""\
        entity: agent
        id: id
        fields: {fields}
        subjects:
          "{subject_yaml}":
            uri: "{uri_yaml}"
            properties:
              skos:prefLabel: {{field: x², language: en}}
        """
    mapped = run(load(tmp_path, agent=text), "agent", {"id": "a1", "x²": "Ada", "class": "c"})
    if "\0" in uri:   # a NUL is no IRI character
        assert not mapped.triples and any("IRI" in i.message for i in mapped.issues), mapped.issues
    else:
        assert objs(mapped, SKOS + "prefLabel") == [lit("Ada", "en")]


def test_generated_code_that_does_not_compile_is_a_mapping_error(tmp_path, monkeypatch):
    """Should generated code ever not compile (a heritage-ld bug), loading the mapping says so, naming the
    file, instead of a traceback."""
    from heritage_ld import mapgen
    generate = mapgen.generate
    monkeypatch.setattr(mapgen, "generate", lambda *a, **k: ("def map_record(:\n", generate(*a, **k)[1]))
    with pytest.raises(MappingError, match=r"agent\.yaml.*generated code does not compile"):
        load(tmp_path, agent=AGENT)
