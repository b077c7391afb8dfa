"""The per-record text serialisers write byte for byte what the reference implementations write.

Turtle (writers/rdf.py) is compared with pyoxigraph's serialiser (``rdf._oxigraph_turtle``, also the
builder's fallback), EDM RDF/XML (writers/edmxml.py) with the lxml writer it replaced
(tests/reference_edm.py): on every record of the bundled sample, of a generated 2000-article corpus,
and on hypothesis-generated records covering every kind of term (prefixable or not IRIs, blank
nodes, plain, language-tagged and typed literals, inline numbers, nasty strings). Where the
reference refuses a record, the writers refuse it with the same error.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reference_edm
from heritage_ld import pipeline
from heritage_ld.catalog import Catalog
from heritage_ld.terms import RDF_TYPE, XSD, literal
from heritage_ld.writers import edmxml, rdf
from heritage_ld.linkeddata import VOID_PREFIXES

from conftest import ROOT, copy_sample_project, generated_project

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
EDM_CHO = "<http://www.europeana.eu/schemas/edm/ProvidedCHO>"


def outcome(f, *args):
    """What ``f`` returns, or the type and message of what it raises."""
    try:
        return f(*args)
    except Exception as e:  # noqa: BLE001 - the error itself is what is compared
        return type(e), str(e)


def reference_turtle(triples, prefixes):
    return outcome(rdf._oxigraph_turtle, sorted(triples, key=rdf._order), prefixes)


def check_turtle(triples, prefixes) -> bool:
    """turtle() and turtle_body() agree with pyoxigraph; True if the text builder wrote the record
    itself (it must never write what pyoxigraph refuses, nor other bytes than it)."""
    expected = reference_turtle(triples, prefixes)
    try:
        header, body = rdf._turtle_text(triples, prefixes)
        built = (header + body).encode("utf-8")
    except (rdf._Unsupported, UnicodeEncodeError):
        built = None
    if built is not None:
        assert built == expected, (triples, prefixes)
    assert outcome(rdf.turtle, triples, prefixes) == expected, (triples, prefixes)
    if isinstance(expected, bytes):
        assert rdf.turtle_body(triples, prefixes) == rdf._without_prefixes(expected)
    return built is not None


def reference_edm_record(triples, cho):
    return outcome(reference_edm.edm_record, triples, cho)


def check_edm(triples, cho) -> None:
    assert outcome(edmxml.edm_record, triples, cho) == reference_edm_record(triples, cho), (triples, cho)


# -- published projects: every record --------------------------------------------------------------

def records(project: Path):
    """(triples of every published record, [(EDM input triples, CHO, stored EDM document)]): the EDM
    input is the record's triples and those the records it links to have about the linked resources,
    as pipeline._linked reads them."""
    cat = Catalog(project / ".heritage-ld" / "catalog.sqlite")
    rows = list(cat.rows())
    cat.close()
    about = defaultdict(list)
    for r in rows:
        for t in r.triples:
            about[t[0]].append(((r.entity, r.id), t))
    edm = []
    for r in rows:
        if r.edm_xml is not None:
            cho = next(s[1:-1] for s, p, o in r.triples if p == RDF_TYPE and o == EDM_CHO)
            linked = [t for o in sorted({o for _, _, o in r.triples if o.startswith("<")})
                      for key, t in about.get(o, ()) if key != (r.entity, r.id)]
            edm.append((r.triples + linked, cho, r.edm_xml))
    return [r.triples for r in rows], edm


def check_project(project: Path, prefixes: dict[str, str]) -> None:
    triples, edm = records(project)
    assert triples and edm
    written = [check_turtle(t, prefixes) for t in triples]
    assert all(written), f"{written.count(False)} of {len(written)} records fell back to pyoxigraph"
    for t, cho, stored in edm:
        assert reference_edm_record(t, cho) == stored  # the inputs are the pipeline's
        assert edmxml.edm_record(t, cho) == stored


def _prefixes() -> dict[str, str]:
    lines = (ROOT / "mapping" / "prefixes.yaml").read_text("utf-8").splitlines()
    return dict(line.split(": ", 1) for line in lines if line and not line.startswith("#"))


def test_every_sample_record(tmp_path):
    project = copy_sample_project(tmp_path)
    pipeline.publish(project)
    check_project(project, _prefixes())
    check_project(project, {**VOID_PREFIXES, **_prefixes()})


def test_every_record_of_a_generated_corpus(tmp_path):
    project = generated_project(tmp_path / "bench", 2000)
    pipeline.publish(project)
    check_project(project, _prefixes())


# -- every code point -------------------------------------------------------------------------------

ASTRAL = [*range(0x10000, 0x110000, 97), 0x1F600, 0xEFFFF, 0xF0000, 0x10FFFF]


@pytest.mark.parametrize("chars", [range(0, 0x8000), range(0x8000, 0x10000), ASTRAL], ids=["bmp1", "bmp2", "astral"])
def test_every_character_in_literals_and_local_names(chars):
    """Each code point (past the BMP, a sample) in a literal and in an IRI's local name (first, inner,
    last) as far as oxigraph takes it in an IRI: the builder writes every one itself, as pyoxigraph does."""
    chars = [chr(c) for c in chars if not 0xD800 <= c <= 0xDFFF]
    s = "<http://ex.org/s>"
    triples = [(s, "<http://ex.org/p>", literal(c)) for c in chars]
    for c in chars:
        for local in (c, f"a{c}b", f"a{c}"):
            if rdf._iri_ok("http://ex.org/" + local):
                triples.append((s, "<http://ex.org/q>", f"<http://ex.org/{local}>"))
    assert check_turtle(triples, {"ex": "http://ex.org/"})


def test_every_short_number_like_literal():
    """Every string of up to 4 of ``0 1 + - . e E a`` typed as xsd:integer, decimal, double, boolean
    (inline where Turtle's grammar takes it as that number, quoted otherwise) or xsd:date."""
    lexical = [""]
    for _ in range(4):
        lexical += [x + c for x in lexical if len(x) == len(lexical[-1]) for c in "01+-.eEa"]
    types = [XSD + "integer", XSD + "decimal", XSD + "double", XSD + "boolean", XSD + "date"]
    triples = [("<http://ex.org/s>", "<http://ex.org/p>", literal(x, datatype=dt)) for x in {*lexical, "true", "false"}
               for dt in types]
    assert check_turtle(triples, {"xsd": XSD})
    assert check_turtle(triples, {})


# -- hypothesis ---------------------------------------------------------------------------------------

NAMESPACES = ["http://ex.org/", "http://ex.org/a/", "http://ex.org/a", "http://ex.org/a/b#", "urn:x:",
              "http://other.example/ns#", XSD, RDF, "http://schema.org/", "http://ex.org/é/"]
NAMES = ["ex", "a", "b", "", "ex2", "sdo", "xsd", "rdf", "z9", "a.b", "é"]
LOCAL_CHARS = "aZ09_-.~!$&'()*+,;=/?#@%:·\u0300é×😀\u2040\u037e\u00b7\u200c%20"
NASTY = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["", " ", '"', "\\", "\\n", "a\nb", "\r\n", "\t", "\x00", "\x7f", "\ufffe", "\uffff", "😀", "\u2028",
     "<http://ex.org/a/>", "ex:x", "'''", '"""', "1", "-1.5", "true", "1e5", "\u00ad", "\x85"])
LANGS = st.sampled_from(["en", "EN", "en-GB", "nl-be", "zh-Hant-TW", "x-foo", "i-klingon", "de-1996", "a",
                         "en-a", "abcdefghi", "123", "en--ltr", "EN-us", "sgn-BE-FR", ""])
DATATYPES = st.sampled_from([XSD + "integer", XSD + "decimal", XSD + "double", XSD + "boolean", XSD + "string",
                             XSD + "date", RDF + "langString", RDF + "dirLangString", "http://ex.org/a/dt",
                             "http://ex.org/", "urn:x:dt"])
NUMERIC = st.text(st.sampled_from("0123456789+-.eE"), max_size=6) | st.sampled_from(["true", "false", "١"])


@st.composite
def iris(draw):
    kind = draw(st.integers(0, 39))
    if kind < 28:  # namespace + local name
        return draw(st.sampled_from(NAMESPACES)) + draw(st.text(st.sampled_from(LOCAL_CHARS), max_size=5))
    if kind < 38:
        return draw(st.sampled_from(NAMESPACES))
    if kind == 38:  # anything: oxigraph may refuse it
        return draw(st.sampled_from(["http://ex.org/", "x:", ""])) + draw(NASTY)
    return draw(st.sampled_from(["http://ex.org/a%zz", "http://ex.org/a b", "http://ex.org/\\u0041",
                                 "http://[::1]/x", "http://ex.org:80/x.", RDF_TYPE[1:-1]]))


@st.composite
def terms(draw, kinds="ibl"):
    kind = draw(st.sampled_from(kinds))
    if kind == "i":
        return f"<{draw(iris())}>"
    if kind == "b":
        return "_:" + draw(st.sampled_from(["b0", "a.b", "x-", "1", "é", "_x", "b0", "n1", "ab", "b0", "b1", "a."]))
    lex = draw(NUMERIC | NASTY)
    suffix = draw(st.sampled_from(["", "lang", "datatype"]))
    if draw(st.integers(0, 9)) == 0:  # written by hand: escapes the project never writes, or bad ones
        quoted = '"' + draw(st.sampled_from(["\\t", "\\u0041", "\\U0001F600", "\\'", "\\u00e9", "\\x",
                                             "\\ud800", '"', "a\\", "\\b\\f", "\\u0031"])) + lex.replace('"', "") + '"'
    else:
        quoted = literal(lex)
    if suffix == "lang":
        return f"{quoted}@{draw(LANGS)}"
    if suffix == "datatype":
        return f"{quoted}^^<{draw(DATATYPES)}>"
    return quoted


@st.composite
def graphs(draw):
    """A few triples over a few subjects and predicates (so subjects and predicates repeat, and
    triples may), and a prefix mapping; now and then a term or prefix oxigraph refuses."""
    subjects = draw(st.lists(terms("iiiib"), min_size=1, max_size=3))
    predicates = draw(st.lists(terms("i" * 30 + "b") | st.just(RDF_TYPE), min_size=1, max_size=3))
    objects = st.sampled_from(subjects) | terms()
    n = draw(st.integers(1, 8))
    triples = [(draw(st.sampled_from(subjects)), draw(st.sampled_from(predicates)), draw(objects)) for _ in range(n)]
    namespaces = st.sampled_from(NAMESPACES) if draw(st.integers(0, 19)) else st.just("bad iri")
    prefixes = dict(draw(st.lists(st.tuples(st.sampled_from(NAMES), namespaces), max_size=6)))
    return triples, prefixes


def test_empty_record():
    assert check_turtle([], {"ex": "http://ex.org/"}) and rdf.turtle([], {}) == b""


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_turtle_as_pyoxigraph_writes_it(graph):
    check_turtle(*graph)


EDM_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=8) | st.sampled_from(
    ["", "a&b", "<x>", '"q"', "'", "]]>", "\r", "a\r\nb", "\t", "\x7f", "\x85", "😀", "&amp;", " lead", "trail ",
     "\n", "\x00", "\x1f", "\ufffe", "\ud800"])  # the last four: characters XML cannot carry, or UTF-8
EDM_ENTITIES = ["http://ex.org/agg", "http://ex.org/wr1", "http://ex.org/wr2", "http://ex.org/agent", "http://ex.org/place",
                "http://ex.org/span", "http://ex.org/concept", "http://ex.org/licence", "http://ex.org/other-cho"]
EDM_IRIS = st.sampled_from(EDM_ENTITIES * 3 + ["http://ex.org/cho", "http://ex.org/a&b<c>\"d'\te", "http://ex.org/é",
                                               "http://ex.org/\x01", "http://ex.org/\ud800"])


@st.composite
def edm_values(draw, prop: edmxml.Prop):
    """An N-Triples object for ``prop``: mostly one it takes, now and then one it refuses."""
    kind = draw(st.integers(0, 59))
    if kind == 0:
        return "_:b" + draw(st.sampled_from("01"))
    if kind == 1 or (kind > 2 and prop.value in ("resource", "resource_or_literal") and kind % 2):
        return f"<{draw(EDM_IRIS)}>"
    if prop.value == "resource" and kind != 2:
        return f"<{draw(EDM_IRIS)}>"
    lang = draw(st.sampled_from([None, None, "en", "nl-be"])) if prop.value not in ("plain", "typed") or kind == 2 else None
    if kind == 3:  # written by hand: a language tag the project would not write
        tag = draw(st.sampled_from(["EN", "a&b", "x<y", 'q"', "a b", "a\x01", "\ud800", "\t"]))
        return f'"{draw(EDM_TEXT).replace(chr(34), "")}"@{tag}'
    return literal(draw(EDM_TEXT), lang, draw(st.sampled_from([None, None, XSD + "date", XSD + "integer"])))


@st.composite
def edm_descriptions(draw, subject: str, cls: edmxml.EdmClass, required: bool):
    """Triples describing ``subject`` as ``cls``: its required properties (mostly), then some more."""
    props = list(cls.props.items())
    chosen = [(p, prop) for p, prop in props if prop.min and (required or draw(st.integers(0, 19)))]
    chosen += draw(st.lists(st.sampled_from(props), max_size=4))
    out = [(subject, RDF_TYPE, f"<{cls.iri}>")] if draw(st.integers(0, 29)) else []
    for p, prop in chosen:
        n = 1 if prop.max == 1 and draw(st.integers(0, 9)) else draw(st.integers(1, 2))
        out += [(subject, p, draw(edm_values(prop))) for _ in range(n)]
    return out


@st.composite
def edm_records(draw):
    """A ProvidedCHO with aggregations, web resources, contextual entities, other CHOs and stray triples."""
    cho = draw(st.sampled_from(["http://ex.org/cho"] * 18 + ["http://ex.org/c&o<\"'>", "http://ex.org/\x02"]))
    by_role = {c.role: c for c in edmxml.CLASSES if c.role != "contextual"}
    contextual = [c for c in edmxml.CLASSES if c.role == "contextual"]
    triples = draw(edm_descriptions(f"<{cho}>", by_role["cho"], True))
    triples = [t for t in triples if t[1] != RDF_TYPE] + [(f"<{cho}>", RDF_TYPE, EDM_CHO)] * draw(st.sampled_from([1] * 18 + [0, 2]))
    for agg in draw(st.lists(st.sampled_from(["<http://ex.org/agg>"] * 9 + ["<http://ex.org/agg2>"] * 9 + ["_:agg"]),
                             max_size=2, unique=True)):
        triples += [t if t[1] != "<http://www.europeana.eu/schemas/edm/aggregatedCHO>" else (t[0], t[1], f"<{cho}>")
                    for t in draw(edm_descriptions(agg, by_role["aggregation"], True))]
    for wr in draw(st.lists(st.sampled_from(["<http://ex.org/wr1>", "<http://ex.org/wr2>"]), max_size=2, unique=True)):
        triples += draw(edm_descriptions(wr, by_role["web_resource"], False))
    for name in draw(st.lists(st.sampled_from(EDM_ENTITIES[3:]), max_size=4, unique=True)):
        triples += draw(edm_descriptions(f"<{name}>", draw(st.sampled_from(contextual)), False))
        if not draw(st.integers(0, 19)):  # a second EDM class
            triples.append((f"<{name}>", RDF_TYPE, f"<{draw(st.sampled_from(contextual)).iri}>"))
    triples += draw(st.lists(st.tuples(st.sampled_from([f"<{cho}>", "<http://ex.org/other-cho>"]),
                                       st.sampled_from([RDF_TYPE, "<http://ex.org/p>"]),
                                       st.sampled_from([EDM_CHO, '"x"', "<http://ex.org/agent>"])), max_size=3))
    return draw(st.permutations(triples)), cho


def minimal_edm(cho: str = "http://ex.org/cho", **values: str) -> list[tuple[str, str, str]]:
    """A CHO that can be written, with ``values`` (local name in edm: -> N-Triples object) added."""
    edm = "http://www.europeana.eu/schemas/edm/"
    s, agg = f"<{cho}>", "<http://ex.org/agg>"
    return [(s, RDF_TYPE, EDM_CHO), (s, f"<{edm}type>", '"TEXT"'), (s, "<http://purl.org/dc/elements/1.1/title>", '"t"'),
            (agg, RDF_TYPE, "<http://www.openarchives.org/ore/terms/Aggregation>"), (agg, f"<{edm}aggregatedCHO>", s),
            (agg, f"<{edm}dataProvider>", '"p"'), (agg, f"<{edm}provider>", '"p"'), (agg, f"<{edm}rights>", "<http://r.org/>"),
            (agg, f"<{edm}isShownAt>", "<http://ex.org/page>"),
            *((s, f"<{edm}{name}>", o) for name, o in values.items())]


@pytest.mark.parametrize("cho,values", [
    ("http://ex.org/cho", {"currentLocation": '"\ud800"'}),  # lxml: UnicodeEncodeError, position in the value
    ("http://ex.org/cho", {"currentLocation": '"x"@en\x01'}),  # a language tag XML cannot carry
    ("http://ex.org/cho", {"currentLocation": '"x"@\ud800'}),
    ("http://ex.org/cho", {"isNextInSequence": "<http://ex.org/\ud800>"}),
    ("http://ex.org/\ud800", {}),
    ("http://ex.org/\x01", {"currentLocation": '"\ud800"'}),  # the first in document order wins
])
def test_edm_strings_lxml_refuses(cho, values):
    """A string lxml refused when the tree was built fails the same way, with the same message."""
    triples = minimal_edm(cho, **values)
    expected = reference_edm_record(triples, cho)
    assert not isinstance(expected, bytes)
    check_edm(triples, cho)
    check_edm(minimal_edm(), "http://ex.org/cho")  # and the same CHO without them can be written
    assert isinstance(edmxml.edm_record(minimal_edm(), "http://ex.org/cho"), bytes)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edm_records())
def test_edm_as_lxml_writes_it(record):
    check_edm(*record)
