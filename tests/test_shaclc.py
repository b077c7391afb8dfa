"""Differential tests: the compiled validator (heritage_ld.shaclc) against pyshacl itself, on the
sample, on hypothesis-generated graphs (faulty ones included) and on constructs our shapes don't use."""
from __future__ import annotations

import rdflib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyshacl import validate
from rdflib.namespace import SH

from heritage_ld.catalog import Catalog
from heritage_ld.config import load
from heritage_ld import pipeline
from heritage_ld.shaclc import compile_shapes

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
ex:Closed a sh:NodeShape ; sh:targetClass ex:C ; sh:closed true ; sh:property [ sh:path ex:p ] .
ex:Open a sh:NodeShape ; sh:targetClass ex:C ; sh:property [ sh:path ex:p ; sh:minCount 1 ] .
""", format="turtle")
    compiled = compile_shapes(g)
    assert [str(s.node) for s in compiled.top] == [B + "Open"]
    assert compiled.fallback is not None and (rdflib.URIRef(B + "Closed"), SH.closed, None) in compiled.fallback.graph
    assert "ex:Closed uses sh:closed, which the compiled validator does not support" \
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
