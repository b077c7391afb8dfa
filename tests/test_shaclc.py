"""Differential tests: the compiled validator (heritage_ld.shaclc) against pyshacl itself, on the
sample, on hypothesis-generated graphs (faulty ones included) and on constructs our shapes don't use."""
from __future__ import annotations

import logging

import rdflib
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pyshacl import validate
from rdflib.namespace import SH

from heritage_ld.catalog import Catalog
from heritage_ld.config import load
from heritage_ld import pipeline
from heritage_ld.shaclc import compile_shapes, path_text

from test_outputs import ROOT, copy_project

SHAPE_FILES = ["shapes/edm.ttl", "shapes/schema.ttl", "shapes/europeana.ttl"]


def shapes_graph(files=SHAPE_FILES) -> rdflib.Graph:
    g = rdflib.Graph()
    for f in files:
        g.parse(ROOT / f, format="turtle")
    return g


SHAPES = shapes_graph()
COMPILED = compile_shapes(SHAPES)


def reference(triples, shapes=SHAPES) -> set[tuple]:
    data = rdflib.Graph().parse(data="".join(f"{s} {p} {o} .\n" for s, p, o in triples), format="nt")
    _c, report, _t = validate(data, shacl_graph=shapes, inference="none", allow_warnings=True)
    out = set()
    for r in report.objects(None, SH.result):  # top-level results (not sh:detail)
        path = report.value(r, SH.resultPath)
        value = report.value(r, SH.value)
        out.add((report.value(r, SH.focusNode).n3(), str(path) if isinstance(path, rdflib.URIRef) else None,
                 value.n3() if value is not None else None, str(report.value(r, SH.sourceConstraintComponent)),
                 str(report.value(r, SH.resultSeverity)).rsplit("#", 1)[1]))
    return out


def ours(triples, compiled=COMPILED) -> set[tuple]:
    return {(r.focus, r.predicate, r.value, r.component, r.severity) for r in compiled.validate(triples)}


def norm(results: set[tuple]) -> set[tuple]:
    """rdflib writes some literals differently from N-Triples (e.g. plain strings); compare parsed forms."""
    def term(t):
        if t is None:
            return None
        return rdflib.util.from_n3(t) if not t.startswith("<") else rdflib.URIRef(t[1:-1])
    return {(term(f), p, term(v), c, s) for f, p, v, c, s in results}


def test_all_our_shapes_compile():
    assert COMPILED.fallback is None and len(COMPILED.top) >= 10


def test_sample_records_agree(tmp_path):
    project = copy_project(tmp_path)
    pipeline.publish(project)
    cat = Catalog(load(project).catalog)
    rows = list(cat.rows())
    cat.close()
    by_subject: dict[str, list] = {}
    for r in rows:
        for s in {t[0] for t in r.triples}:
            by_subject.setdefault(s, []).append(r)
    for r in rows:  # each record with the triples of the records it links to, as the pipeline validates it
        linked = [t for o in {t[2] for t in r.triples} for other in by_subject.get(o, []) if other is not r
                  for t in other.triples if t[0] == o]
        triples = r.triples + linked
        assert norm(ours(triples)) == norm(reference(triples)), r.id
    assert len(rows) == 22


# -- generated graphs ------------------------------------------------------------------------
B = "https://data.example.org/"
IRIS = [f"<{B}a>", f"<{B}b>", f"<{B}p>", f"<{B}o>", "<http://rightsstatements.org/vocab/InC/1.0/>",
        "<http://rightsstatements.org/vocab/InC-NC/1.0/>", "<https://example.org/x.jpg>"]
CLASSES = ["<http://www.europeana.eu/schemas/edm/ProvidedCHO>", "<http://www.openarchives.org/ore/terms/Aggregation>",
           "<http://www.europeana.eu/schemas/edm/WebResource>", "<http://www.europeana.eu/schemas/edm/Agent>",
           "<http://www.europeana.eu/schemas/edm/TimeSpan>", "<http://schema.org/BlogPosting>",
           "<http://schema.org/Photograph>", "<http://schema.org/Person>", "<http://schema.org/Organization>"]
PREDICATES = [f"<{ns}{p}>" for ns, ps in {
    "http://purl.org/dc/elements/1.1/": ["title", "description", "type", "subject", "language", "date", "creator"],
    "http://purl.org/dc/terms/": ["issued", "hasPart", "isPartOf", "temporal"],
    "http://www.europeana.eu/schemas/edm/": ["type", "aggregatedCHO", "dataProvider", "provider", "isShownAt",
                                             "isShownBy", "rights", "begin", "end"],
    "http://www.w3.org/2004/02/skos/core#": ["prefLabel"],
    "http://www.ebu.ch/metadata/ontologies/ebucore/ebucore#": ["width", "hasMimeType"],
    "http://schema.org/": ["headline", "author", "datePublished", "dateModified", "name", "contentUrl", "license",
                           "inLanguage", "image", "creator", "dateCreated", "timeRequired"],
}.items() for p in ps]
LITERALS = ['"TEXT"', '"text"', '"IMAGE"', '"en"', '"EN-gb"', '"A title"@en', '"Een titel"@nl', '"Another"@en',
            '"2021-04-14"', '"2021-04-14"^^<http://www.w3.org/2001/XMLSchema#date>',
            '"2021-02-30"^^<http://www.w3.org/2001/XMLSchema#date>', '"2021"^^<http://www.w3.org/2001/XMLSchema#gYear>',
            '"2021-04-14T10:00:00Z"^^<http://www.w3.org/2001/XMLSchema#dateTime>',
            '"12"^^<http://www.w3.org/2001/XMLSchema#integer>', '"12x"^^<http://www.w3.org/2001/XMLSchema#integer>',
            '"12"^^<http://www.w3.org/2001/XMLSchema#long>', '"PT2M"^^<http://www.w3.org/2001/XMLSchema#duration>',
            '"image/jpeg"', '"image jpeg"', '"' + "x" * 120 + '"@en']

subjects = st.sampled_from(IRIS[:4])
triple = st.one_of(
    st.tuples(subjects, st.just("<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"), st.sampled_from(CLASSES)),
    st.tuples(subjects, st.sampled_from(PREDICATES), st.sampled_from(IRIS + LITERALS)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(triple, min_size=1, max_size=25))
def test_generated_graphs_agree(triples):
    assert norm(ours(triples)) == norm(reference(triples))


SUBCLASS_OF = "<http://www.w3.org/2000/01/rdf-schema#subClassOf>"
LOCAL_CLASSES = [f"<{B}o>", f"<{B}p>"]
subclassing = st.one_of(
    st.tuples(st.sampled_from(LOCAL_CLASSES), st.just(SUBCLASS_OF), st.sampled_from(CLASSES + LOCAL_CLASSES)),
    st.tuples(subjects, st.just("<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"), st.sampled_from(LOCAL_CLASSES)),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(triple, min_size=1, max_size=20), st.lists(subclassing, max_size=4), st.sets(subjects))
def test_subclasses_and_own_triples_agree(triples, more, own):
    """rdfs:subClassOf in the data (targets, sh:class); a record's own triples select its focus nodes (our
    shapes have class targets: the subjects of its rdf:type triples), results in the same order."""
    triples = triples + more
    assert norm(ours(triples)) == norm(reference(triples))
    mine = [t for t in triples if t[0] in own]
    assert COMPILED.validate(triples, mine) == [r for r in COMPILED.validate(triples) if r.focus in own]


# -- SHACL Core constructs beyond our shapes ---------------------------------------------------
EXTRA = """
@prefix sh: <http://www.w3.org/ns/shacl#> . @prefix ex: <https://data.example.org/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
ex:S a sh:NodeShape ; sh:targetSubjectsOf ex:p ;
  sh:property [ sh:path ( ex:p ex:q ) ; sh:minCount 1 ; sh:languageIn ( "en" "nl" ) ] ;
  sh:property [ sh:path [ sh:inversePath ex:p ] ; sh:maxCount 1 ] ;
  sh:property [ sh:path ex:p ; sh:xone ( [ sh:nodeKind sh:IRI ] [ sh:hasValue ex:o ] ) ] ;
  sh:property [ sh:path ex:p ; sh:equals ex:r ] ;
  sh:property [ sh:path ex:p ; sh:disjoint ex:s ] ;
  sh:property [ sh:path ex:q ; sh:pattern "^a" ; sh:flags "i" ; sh:minLength 2 ; sh:and ( [ sh:maxLength 5 ] ) ] ;
  sh:not [ sh:path ex:t ; sh:minCount 1 ] .
"""


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(IRIS[:4]),
                          st.sampled_from([f"<{B}{p}>" for p in "pqrst"]),
                          st.sampled_from(IRIS[:4] + ['"abc"@en', '"Abcdef"@nl', '"ab"@de', '"b"', '"A1"'])),
                min_size=1, max_size=12))
def test_other_core_constructs_agree(triples):
    g = rdflib.Graph().parse(data=EXTRA, format="turtle")
    compiled = compile_shapes(g)
    assert compiled.fallback is None
    assert norm(ours(triples, compiled)) == norm(reference(triples, g))


def test_unsupported_shape_falls_back_to_pyshacl(caplog):
    g = rdflib.Graph().parse(data="""
@prefix sh: <http://www.w3.org/ns/shacl#> . @prefix ex: <https://data.example.org/> .
ex:Closed a sh:NodeShape ; sh:targetClass ex:C ; sh:property [ sh:path ex:p ; sh:lessThan ex:q ] .
ex:Open a sh:NodeShape ; sh:targetClass ex:C ; sh:property [ sh:path ex:p ; sh:minCount 1 ] .
""", format="turtle")
    compiled = compile_shapes(g)
    assert [str(s.node) for s in compiled.top] == [B + "Open"]
    assert compiled.fallback is not None and (None, SH.lessThan, None) in compiled.fallback.graph
    assert "ex:Closed uses sh:lessThan, which the compiled validator does not support" \
        in caplog.text


def test_pipeline_reports_the_same_issues_as_reference_validation(tmp_path):
    """The whole pipeline, compiled checks vs pyshacl, on the sample with faults added."""
    import json
    project = copy_project(tmp_path)
    posts = json.loads((project / "sample/posts.json").read_text())
    posts[0]["datePublished"] = "2021-02-30"                     # mapping issue
    posts[1]["primaryImageOfPage"]["license"] = "InC-NC"          # EDM-channel violation
    posts[2]["name"] = "x" * 130                                  # warning
    del posts[2]["author"]                                        # violation
    (project / "sample/posts.json").write_text(json.dumps(posts))
    key = lambda i: tuple(str(x) for x in (i.entity, i.record_id, i.field, i.severity, i.component, i.focus,
                                          i.predicate, i.channel))
    fast = pipeline.build(project)
    ref = pipeline.build(project, reference=True)
    assert sorted(map(key, fast.issues)) == sorted(map(key, ref.issues))
    assert fast.held_back.keys() == ref.held_back.keys() and fast.edm_held_back.keys() == ref.edm_held_back.keys()
    assert len(fast.held_back) >= 2 and fast.edm_held_back


# -- issue 13: shapes a user writes, through the pipeline (each of these failed before the fix) --------
PREFIXES = """@prefix sh: <http://www.w3.org/ns/shacl#> . @prefix ex: <https://data.example.org/> .
@prefix schema: <http://schema.org/> . @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> . @prefix rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .
"""
SANNE = "https://data.example.org/person/sanne-de-vries"


def with_shapes(tmp_path, ttl: str, channel: str = "all"):
    """The sample project with shapes/extra.ttl added (``ttl``, after PREFIXES)."""
    project = copy_project(tmp_path)
    (project / "shapes/extra.ttl").write_text(PREFIXES + ttl)
    toml = project / "heritage-ld.toml"
    text = toml.read_text()
    toml.write_text(text.replace('"shapes/europeana.ttl" = "edm"',
                                 f'"shapes/europeana.ttl" = "edm", "shapes/extra.ttl" = "{channel}"'))
    return project


def extra_issues(pub) -> list:
    """The issues of shapes/extra.ttl (their components are SHACL's; the sample has none of these)."""
    return sorted(((i.record_id, i.focus, i.predicate, i.value, i.component.rsplit("#")[-1], i.severity)
                   for i in pub.issues if i.message.startswith("extra:")), key=repr)


def both(project) -> list:
    """The extra issues of a build, the same with --reference-validation (pyshacl)."""
    fast = extra_issues(pipeline.build(project))
    assert fast == extra_issues(pipeline.build(project, reference=True))
    return fast


def test_a_shape_that_is_a_class_targets_its_instances(tmp_path):
    """Implicit class target: the persons fail (6 of them); before, the shape was ignored and they published."""
    project = with_shapes(tmp_path, """schema:Person a rdfs:Class, sh:NodeShape ;
        sh:property [ sh:path schema:name ; sh:maxLength 2 ; sh:message "extra: name too long" ] .""")
    found = both(project)
    assert len(found) == 6 and all(i[4] == "MaxLengthConstraintComponent" for i in found)
    pub = pipeline.build(project)
    assert sum(e == "person" for e, _ in pub.held_back) == 6


def test_implicit_class_target_takes_subclasses():
    g = rdflib.Graph().parse(data=PREFIXES + """ex:Super a rdfs:Class, sh:NodeShape ; sh:in ( ex:good ) .""",
                             format="turtle")
    data = [(f"<{B}bad>", "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>", f"<{B}Sub>"),
            (f"<{B}good>", "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>", f"<{B}Sub>"),
            (f"<{B}Sub>", SUBCLASS_OF, f"<{B}Super>")]
    found = compile_shapes(g).validate(data)
    assert [(r.focus, r.value) for r in found] == [(f"<{B}bad>", f"<{B}bad>")]
    assert norm(ours(data, compile_shapes(g))) == norm(reference(data, g))


def test_nested_property_shape_checks_each_value(tmp_path):
    """The author's name is checked on the author (focus: the person), not on the article."""
    project = with_shapes(tmp_path, """ex:ArticleAuthors a sh:NodeShape ; sh:targetClass schema:BlogPosting ;
        sh:property [ sh:path schema:author ;
            sh:property [ sh:path schema:name ; sh:maxLength 5 ; sh:message "extra: author name too long" ] ] .""")
    found = both(project)
    assert found and {i[1] for i in found} == {SANNE} | {i[1] for i in found if "/person/" in i[1]}
    assert all("/person/" in i[1] and i[2] == "http://schema.org/name" for i in found)
    assert ("muziek-uit-het-archief", SANNE, "http://schema.org/name", "Sanne de Vries",
            "MaxLengthConstraintComponent", "Violation") in found


def test_a_list_path_is_a_sequence_even_with_an_inverse_path():
    """pyshacl and the W3C suite read the list; the result carries the path (a node of the shapes graph)."""
    g = rdflib.Graph().parse(data=PREFIXES + """ex:S sh:targetNode ex:a ;
        sh:property [ sh:path _:seq ; sh:minLength 4 ] .
        _:seq rdf:first ex:p ; rdf:rest ( ex:q ) ; sh:inversePath ex:p .""", format="turtle")
    data = [(f"<{B}a>", f"<{B}p>", f"<{B}b>"), (f"<{B}b>", f"<{B}q>", '"abc"'), (f"<{B}c>", f"<{B}p>", f"<{B}a>")]
    found = compile_shapes(g).validate(data)
    assert [(r.focus, r.value) for r in found] == [(f"<{B}a>", '"abc"')]
    seq = next(g.objects(next(g.objects(None, SH.property)), SH.path))
    assert found[0].path == seq and (seq, rdflib.RDF.first, None) in g
    assert path_text(g, seq) == f"(<{B}p>/<{B}q>)"
    assert norm(ours(data, compile_shapes(g))) == norm(reference(data, g))


def test_has_value_on_a_node_shape_gives_no_value():
    g = rdflib.Graph().parse(data=PREFIXES + "ex:S sh:targetNode ex:a ; sh:hasValue ex:b .", format="turtle")
    found = compile_shapes(g).validate([(f"<{B}a>", f"<{B}p>", f"<{B}c>")])
    assert [(r.focus, r.value, r.component.rsplit("#")[-1]) for r in found] == \
        [(f"<{B}a>", None, "HasValueConstraintComponent")]


def test_focus_nodes_that_are_no_subjects_of_the_record(tmp_path):
    """sh:targetObjectsOf, a literal sh:targetNode and an IRI only linked to are validated, by the records
    whose triples select them, in the compiled path and in the pyshacl branch alike."""
    project = with_shapes(tmp_path, """
    ex:Licences sh:targetObjectsOf schema:license ; sh:nodeKind sh:Literal ; sh:message "extra: licence" .
    ex:Language sh:targetNode "nl" ; sh:datatype xsd:integer ; sh:message "extra: language" .
    ex:ByNc sh:targetNode <http://creativecommons.org/licenses/by/4.0/> ; sh:class ex:Licence ;
        sh:message "extra: by" .""")
    found = both(project)
    licences = [i for i in found if i[4] == "NodeKindConstraintComponent"]
    assert len(licences) == 5 and all(i[1] == i[3] and i[1].startswith("http") for i in licences)
    assert {i[1] for i in found if i[4] == "DatatypeConstraintComponent"} == {'"nl"'}
    assert len([i for i in found if i[4] == "ClassConstraintComponent"]) == 1
    pipeline.publish(project)  # the report carries a literal focus node as a literal
    report = rdflib.Graph().parse(project / "output/validation-report.ttl")
    assert (None, SH.focusNode, rdflib.Literal("nl")) in report


def test_fallback_takes_every_shape_a_shape_uses(tmp_path, caplog):
    """Shapes named by IRI without rdf:type (in sh:or, sh:qualifiedValueShape) go to pyshacl with the shape
    using them; the message names the shape's place in the file, not a blank node id."""
    project = with_shapes(tmp_path, """
    [] sh:targetClass schema:Person ; sh:message "extra: sparql" ;
        sh:sparql [ sh:select "SELECT $this WHERE { $this a <https://data.example.org/Nothing> }" ] .
    ex:Either sh:targetClass schema:Person ; sh:message "extra: or" ; sh:or ( ex:HasEmail ex:HasPhone ) ;
        sh:property [ sh:path schema:birthDate ; sh:lessThan schema:deathDate ] .
    ex:HasEmail sh:property [ sh:path schema:email ; sh:minCount 1 ] .
    ex:HasPhone sh:property [ sh:path schema:telephone ; sh:minCount 1 ] .
    ex:Named sh:targetClass schema:BlogPosting ;
        sh:property [ sh:path schema:author ; sh:qualifiedValueShape ex:Expert ; sh:qualifiedMinCount 1 ;
                      sh:message "extra: qualified" ] .
    ex:Expert sh:property [ sh:path schema:email ; sh:minCount 1 ] .""")
    with caplog.at_level(logging.WARNING, logger="heritage_ld.shaclc"):
        found = both(project)
    assert len([i for i in found if i[4] == "OrConstraintComponent"]) == 6  # no person has either
    assert len([i for i in found if i[4] == "QualifiedMinCountConstraintComponent"]) == 2
    messages = [r.getMessage() for r in caplog.records if "pyshacl validates" in r.getMessage()]
    assert any(m.startswith("the blank-node shape [ sh:targetClass schema:Person ] (shapes/extra.ttl) uses sh:sparql")
               for m in messages), messages
    assert not [i for i in found if i[4] == "SPARQLConstraintComponent"]
    lines = (project / "shapes/extra.ttl").read_text().split("\n")
    line = lines.index("    ex:Named sh:targetClass schema:BlogPosting ;") + 1
    assert any(m.startswith(f"shape ex:Named (shapes/extra.ttl line {line}) uses sh:qualifiedMinCount,")
               for m in messages)
    assert not any("_:" in m for m in messages)


def test_a_severity_iri_without_hash(tmp_path):
    project = with_shapes(tmp_path, """ex:Crit sh:targetClass schema:Person ; sh:property [ sh:path schema:name ;
        sh:maxLength 2 ; sh:message "extra: crit" ; sh:severity <https://data.example.org/severity/critical> ] .""")
    found = both(project)
    assert len(found) == 6 and {i[5] for i in found} == {"https://data.example.org/severity/critical"}
    pub = pipeline.build(project)  # held back, as pyshacl counts it against conformance
    assert sum(e == "person" for e, _ in pub.held_back) == 6
    pipeline.publish(project)  # and the reports say so
    report = rdflib.Graph().parse(project / "output/validation-report.ttl")
    assert len(list(report.subjects(SH.resultSeverity, rdflib.URIRef(B + "severity/critical")))) == 6
    assert "severity <https://data.example.org/severity/critical> field name (value: 'Unknown photographer')" in \
        (project / "output/validation-report.txt").read_text()


def test_a_record_pyshacl_fails_on_is_held_back(tmp_path):
    """A SHACL "failure" (pyshacl stops: sh:lessThan given a blank node) holds the records back, with the cause."""
    project = with_shapes(tmp_path, """ex:Less sh:targetClass schema:Person ;
        sh:property [ sh:path schema:name ; sh:lessThan [ sh:inversePath schema:author ] ] .""")
    pub = pipeline.build(project)
    failures = [i for i in pub.issues if i.component == "https://w3id.org/heritage-ld#ShaclFailure"]
    assert len(failures) == 6 and {i.message for i in failures} == {
        "pyshacl cannot validate this record: Value of sh:lessThan MUST be a URI Identifier."}
    assert {(i.entity, i.record_id) for i in failures} <= set(pub.held_back)


def test_reference_validation_after_an_unchanged_run_validates_again(tmp_path):
    """README: --reference-validation always validates again (it stopped early when nothing changed)."""
    project = copy_project(tmp_path)
    pipeline.publish(project)
    assert pipeline.publish(project)[0].unchanged
    pub, _changes = pipeline.publish(project, reference=True)
    assert not pub.unchanged and "validate+edm" in pub.seconds


# -- generated shapes: the constructs above, and what falls back, against pyshacl --------------
from test_shacl_w3c import Case, pipeline as through_pipeline, pyshacl_results  # noqa: E402

from pyshacl.errors import ReportableRuntimeError  # noqa: E402

from heritage_ld.validate import Shapes  # noqa: E402

PATHS = ["ex:p", "ex:q", "[ sh:inversePath ex:p ]", "( ex:p ex:q )", "[ sh:alternativePath ( ex:p ex:q ) ]",
         "[ sh:zeroOrMorePath ex:p ]", "[ sh:oneOrMorePath ex:q ]", "[ sh:zeroOrOnePath ex:p ]",
         "[ sh:inversePath ( ex:p ex:q ) ]", "_:listAndInverse"]
ANY_SHAPE = ['sh:datatype xsd:integer', 'sh:in ( 1 1.5 )', 'sh:hasValue 1', 'sh:nodeKind sh:IRI',
             'sh:nodeKind sh:Literal', 'sh:class ex:C',
             'sh:in ( ex:a "1" )', 'sh:hasValue ex:b', 'sh:pattern "^a"', 'sh:minLength 2', 'sh:maxLength 1',
             'sh:languageIn ( "en" )', 'sh:node ex:N', 'sh:not [ sh:class ex:D ]', 'sh:equals ex:q',
             'sh:disjoint ex:q', 'sh:or ( ex:N [ sh:nodeKind sh:Literal ] )', 'sh:xone ( ex:N [ sh:hasValue ex:a ] )',
             'sh:and ( [ sh:nodeKind sh:IRI ] ex:N )', 'sh:severity sh:Warning',
             'sh:severity <https://data.example.org/severity/x>', 'sh:deactivated false',
             'sh:closed true', 'sh:closed true ; sh:ignoredProperties ( rdf:type ex:q )',
             'sh:minInclusive 1', 'sh:maxExclusive 1.5', 'sh:minExclusive "a"',
             'sh:maxInclusive "2021-01-01"^^xsd:date',
             'sh:closed 1']                                            # the last one falls back to pyshacl
PROPERTY_ONLY = ['sh:minCount 1', 'sh:maxCount 1', 'sh:uniqueLang true',
                 'sh:qualifiedValueShape ex:N ; sh:qualifiedMinCount 1', 'sh:lessThan ex:q']  # these two fall back
TARGETS = ["sh:targetClass ex:C", "sh:targetSubjectsOf ex:p", "sh:targetObjectsOf ex:p", "sh:targetNode ex:b",
           'sh:targetNode "1"^^xsd:integer', "implicit"]
XS = "http://www.w3.org/2001/XMLSchema#"
TERMS = [f"<{B}{x}>" for x in "abc"] + ["_:x", f'"1"^^<{XS}integer>', '"abc"@en', '"abc"@en-GB', '"a"', f"<{B}C>",
                                       f'"01"^^<{XS}integer>', f'"1.50"^^<{XS}decimal>', f'"x1"^^<{XS}integer>',
                                       f'"2020-12-31"^^<{XS}date>', '"b"']


@st.composite
def property_shape(draw, depth: int = 0) -> str:
    parts = [f"sh:path {draw(st.sampled_from(PATHS))}"]
    parts += draw(st.lists(st.sampled_from(ANY_SHAPE + PROPERTY_ONLY), max_size=3, unique_by=lambda c: c.split()[0]))
    if depth == 0:
        parts += [f"sh:property {p}" for p in draw(st.lists(property_shape(1), max_size=1))]
    return "[ " + " ; ".join(parts) + " ]"


@st.composite
def node_shape(draw, name: str) -> str:
    target = draw(st.sampled_from(TARGETS))
    head = "ex:C a rdfs:Class, sh:NodeShape" if target == "implicit" else f"{name} a sh:NodeShape ; {target}"
    parts = [head] + draw(st.lists(st.sampled_from(ANY_SHAPE), max_size=2, unique_by=lambda c: c.split()[0]))
    parts += [f"sh:property {p}" for p in draw(st.lists(property_shape(), min_size=1, max_size=2))]
    return " ;\n  ".join(parts) + " .\n"


@st.composite
def shapes_graph(draw) -> str:
    """One or two top-level shapes (one may compile and the other fall back), and the shapes they use."""
    shapes = [draw(node_shape(name)) for name in ["ex:S", "ex:T"][:draw(st.integers(1, 2))]]
    return (PREFIXES + "".join(shapes) +
            "ex:N sh:property [ sh:path ex:q ; sh:minCount 1 ] .\n"   # named, untyped, used by sh:node/or/xone
            "_:listAndInverse rdf:first ex:p ; rdf:rest ( ex:q ) ; sh:inversePath ex:q .\n")


data_triple = st.tuples(st.sampled_from(TERMS[:4]), st.sampled_from([f"<{B}p>", f"<{B}q>"]), st.sampled_from(TERMS))
typing = st.tuples(st.sampled_from(TERMS[:4]), st.just("<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"),
                   st.sampled_from([f"<{B}C>", f"<{B}D>"]))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shapes_graph(), st.lists(st.one_of(data_triple, typing), min_size=1, max_size=10), st.booleans())
def test_generated_shapes_agree(ttl, triples, subclass):
    """Whole graph: the pipeline's results (compiled, and pyshacl for what falls back) are pyshacl's own.
    Per record: the compiled path and the pyshacl branch give the same results."""
    triples = triples + ([(f"<{B}D>", SUBCLASS_OF, f"<{B}C>")] if subclass else []) \
        + [(f"<{B}z>", f"<{B}mentions>", t) for t in (f"<{B}b>", '"1"^^<http://www.w3.org/2001/XMLSchema#integer>')]
    rdflib.NORMALIZE_LITERALS = False  # the records' terms as written ("01"^^xsd:integer is not "1")
    try:
        data = rdflib.Graph().parse(data="".join(f"{s} {p} {o} .\n" for s, p, o in triples), format="nt")
    finally:
        rdflib.NORMALIZE_LITERALS = True
    shapes = rdflib.Graph().parse(data=ttl, format="turtle")
    case = Case("generated", data, shapes, None)
    ours_whole = through_pipeline(case, Shapes(shapes, {}), whole=True, reference=False)
    event("falls back" if Shapes(shapes, {}).compiled.fallback else "compiled")
    event("results" if ours_whole else "no results")
    try:
        expected = pyshacl_results(case)
    except ReportableRuntimeError:  # a SHACL failure (sh:lessThan on a blank node): the record is held back
        assert any(k[3] == rdflib.URIRef("https://w3id.org/heritage-ld#ShaclFailure") for k in ours_whole)
        return
    assert ours_whole == expected
    assert through_pipeline(case, Shapes(shapes, {}), whole=False, reference=False) == \
        through_pipeline(case, Shapes(shapes, {}), whole=False, reference=True)


def test_what_falls_back_is_said_once(tmp_path):
    """`publish --workers 2`: the coordinator compiles the shapes before the workers fork."""
    import subprocess
    import sys
    project = with_shapes(tmp_path, """ex:Dates sh:targetClass schema:Person ;
        sh:property [ sh:path schema:birthDate ; sh:lessThan schema:deathDate ] .""")
    toml = project / "heritage-ld.toml"
    toml.write_text(toml.read_text().replace("chunk_size = 500", "chunk_size = 4"))  # chunks for both workers
    run = subprocess.run([sys.executable, "-m", "heritage_ld.cli", "publish", "--project", str(project),
                          "--workers", "2"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("shape ex:Dates (shapes/extra.ttl line 4) uses sh:lessThan") == 1, run.stderr


# -- issue 15: the shapes as generated Python source ---------------------------------------------
def test_results_come_constraint_by_constraint_value_by_value():
    """Values failing three constraints: results in the order of the constraints, each over the values in
    order, as the one-by-one checks give them (the quick pass over all constraints must not reorder them)."""
    g = rdflib.Graph().parse(data=PREFIXES + """ex:S sh:targetNode ex:a ; sh:property [ sh:path ex:p ;
        sh:maxCount 5 ; sh:nodeKind sh:IRI ; sh:in ( ex:b "x" ) ; sh:maxLength 1 ] ;
        sh:property [ sh:path ex:q ; sh:maxCount 1 ; sh:minLength 1 ] .""", format="turtle")
    data = [(f"<{B}a>", f"<{B}p>", '"x"'), (f"<{B}a>", f"<{B}p>", '"yy"'), (f"<{B}a>", f"<{B}p>", f"<{B}b>"),
            (f"<{B}a>", f"<{B}q>", '"1"'), (f"<{B}a>", f"<{B}q>", '""')]
    found = [(r.predicate.rsplit("/")[-1], r.component.rsplit("#")[-1].removesuffix("ConstraintComponent"), r.value)
             for r in compile_shapes(g).validate(data)]
    found = found if found[0][0] == "p" else found[2:] + found[:2]  # the order of the two sh:property shapes
    assert found == [("p", "NodeKind", '"x"'), ("p", "NodeKind", '"yy"'), ("p", "In", '"yy"'),
                     ("p", "MaxLength", '"yy"'), ("p", "MaxLength", f"<{B}b>"), ("q", "MaxCount", None),
                     ("q", "MinLength", '""')]


def test_generated_tests_are_the_reference_ones():
    """The tests written into the source for sh:datatype and sh:nodeKind answer as ``datatype_ok`` and the
    node kinds' definitions do, for every kind of term (the source writes out what a term's form decides)."""
    from heritage_ld.shaclc import NODE_KIND, _datatype_test, datatype_ok
    X, R = "http://www.w3.org/2001/XMLSchema#", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
    terms = TERMS + LITERALS + ['""', '"a"@en-gb', f'"a"^^<{X}string>', f'"a"^^<{R}langString>', f'"1"^^<{X}int>',
                                f'"true"^^<{X}boolean>', f'"2"^^<{X}boolean>', '"x\\"y"', f'"a\\"^^<{X}integer>"']
    datatypes = [X + d for d in ("string", "integer", "int", "date", "dateTime", "boolean", "gYear", "decimal")] + [
        R + "langString", "http://www.w3.org/2000/01/rdf-schema#Literal", B + "custom"]
    for dt in datatypes:
        for t in terms:
            assert eval(_datatype_test(dt, "t"), {"datatype_ok": datatype_ok, "t": t}) == datatype_ok(t, dt), (dt, t)
    kinds = {SH.IRI: lambda t: t.startswith("<"), SH.BlankNode: lambda t: t.startswith("_:"),
             SH.Literal: lambda t: not t.startswith(("<", "_:")), SH.BlankNodeOrIRI: lambda t: t.startswith(("<", "_:")),
             SH.BlankNodeOrLiteral: lambda t: not t.startswith("<"), SH.IRIOrLiteral: lambda t: not t.startswith("_:")}
    for kind, expected in kinds.items():
        for t in terms:
            assert eval(NODE_KIND[kind].format(x="t"), {"t": t}) == expected(t), (kind, t)


def test_generated_source_is_inspectable(tmp_path, monkeypatch):
    """$HERITAGE_LD_SHAPES_SOURCE writes each generated module; tracebacks show its lines; a module is
    compiled once a process (the same shapes compiled again take the code from the cache)."""
    import linecache
    from heritage_ld import codegen
    monkeypatch.setenv("HERITAGE_LD_SHAPES_SOURCE", str(tmp_path / "src"))
    codegen._CODE.clear()
    compiled = compile_shapes(SHAPES)
    files = list((tmp_path / "src").glob("shapes-*.py"))
    assert len(files) == 1 and files[0].read_text() == compiled.source
    assert "def results_" in compiled.source and len(compiled.run) == len(compiled.top)
    code = compiled.run[0].__code__
    assert code.co_filename == f"<heritage-ld shapes {files[0].stem[len('shapes-'):]}>"
    assert linecache.getline(code.co_filename, code.co_firstlineno).startswith(f"def {code.co_name}(graph, f, out):")
    again = compile_shapes(SHAPES)
    assert again.source == compiled.source and again.run[0].__code__ is code  # compiled once
    shapes_codes = [name for name in codegen._CODE if name.startswith("<heritage-ld shapes ")]
    assert len(list((tmp_path / "src").glob("*.py"))) == 1 and len(shapes_codes) == 1


def test_what_checks_read_of_linked_records():
    """Per record, what the checks read of a linked resource (its class, what sh:node, a nested property
    shape, a sequence path's second step, an inverse path, sh:equals on it or a path's later steps read)
    comes from the linked records' triples: the pipeline's compiled path gives pyshacl's results."""
    shapes = rdflib.Graph().parse(data=PREFIXES + """
    ex:S sh:targetClass ex:C ;
        sh:property [ sh:path ex:p ; sh:class ex:D ; sh:node [ sh:property [ sh:path ex:q ; sh:minLength 5 ] ] ] ;
        sh:property [ sh:path ex:p ; sh:property [ sh:path ex:r ; sh:maxCount 1 ; sh:equals ex:s ] ] ;
        sh:property [ sh:path ( ex:p ex:t ) ; sh:nodeKind sh:IRI ] ;
        sh:property [ sh:path [ sh:inversePath ex:u ] ; sh:maxCount 0 ] ;
        sh:property [ sh:path [ sh:oneOrMorePath ex:p ] ; sh:maxCount 1 ] .""", format="turtle")
    rdf_type = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"
    data = [(f"<{B}a>", rdf_type, f"<{B}C>"), (f"<{B}a>", f"<{B}p>", f"<{B}b>"), (f"<{B}a>", f"<{B}v>", f"<{B}c>"),
            (f"<{B}b>", rdf_type, f"<{B}E>"), (f"<{B}b>", f"<{B}q>", '"abc"'), (f"<{B}b>", f"<{B}r>", '"1"'),
            (f"<{B}b>", f"<{B}r>", '"2"'), (f"<{B}b>", f"<{B}s>", '"1"'), (f"<{B}b>", f"<{B}t>", '"lit"'),
            (f"<{B}b>", f"<{B}w>", '"unread"'), (f"<{B}b>", f"<{B}p>", f"<{B}d>"), (f"<{B}c>", f"<{B}u>", f"<{B}a>")]
    graph = rdflib.Graph().parse(data="".join(f"{s} {p} {o} .\n" for s, p, o in data), format="nt")
    case = Case("linked", graph, shapes, None)
    found = through_pipeline(case, Shapes(shapes, {}), whole=False, reference=False)
    assert found == through_pipeline(case, Shapes(shapes, {}), whole=False, reference=True)
    assert {k[3].rsplit("#")[-1] for k in found} == {
        "ClassConstraintComponent", "NodeConstraintComponent", "MaxCountConstraintComponent",
        "EqualsConstraintComponent", "NodeKindConstraintComponent"}
    assert len([k for k in found if k[3] == SH.MaxCountConstraintComponent]) == 3  # ex:r on b; ^ex:u, ex:p+ on a
