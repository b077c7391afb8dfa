"""The EDM RDF/XML writer as it was before it wrote text: an lxml tree per document.

Kept as the reference the text writer (src/heritage_ld/writers/edmxml.py) is compared with byte for
byte in tests/test_serialisers.py; not used by the package. From commit e208433^, unchanged but for
this docstring.
"""
from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

from lxml import etree

from heritage_ld.terms import RDF_TYPE, XML_ILLEGAL, Triple, split_literal

RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_RDF_TYPE = RDF_TYPE[1:-1]


@dataclass(frozen=True)
class Prop:
    """One property element a class allows (see data/edm-classes.json)."""

    qname: str
    tag: str  # Clark notation {ns}local
    value: str  # resource | literal | resource_or_literal | plain | typed
    min: int
    max: int | None
    datatype: str  # "" unless value == "typed"


@dataclass(frozen=True)
class EdmClass:
    qname: str
    tag: str
    iri: str
    role: str  # cho | web_resource | contextual | aggregation
    props: dict[str, Prop]  # predicate IRI -> Prop, in XSD order


def _load() -> tuple[dict[str, str], list[EdmClass]]:
    data = json.loads(resources.files("heritage_ld").joinpath("data/edm-classes.json").read_text("utf-8"))
    prefixes: dict[str, str] = data["prefixes"]

    def expand(qname: str) -> tuple[str, str]:
        prefix, local = qname.split(":", 1)
        return prefixes[prefix] + local, f"{{{prefixes[prefix]}}}{local}"

    classes = []
    for c in data["classes"]:
        props = {}
        for p in c["properties"]:
            iri, tag = expand(p["name"])
            if (p["value"] == "typed") != ("datatype" in p):
                raise ValueError(f"edm-classes.json: {p['name']}: a datatype goes with value 'typed' only")
            props[iri] = Prop(p["name"], tag, p["value"], p["min"], p["max"], p.get("datatype", ""))
        classes.append(EdmClass(c["element"], expand(c["element"])[1], c["iri"], c["role"], props))
    return prefixes, classes


PREFIXES, CLASSES = _load()
_BY_IRI = {c.iri: c for c in CLASSES}
_ROLE = {c.role: c for c in CLASSES if c.role != "contextual"}
_CONTEXTUAL = {c.iri for c in CLASSES if c.role == "contextual"}
_CHO, _AGG, _WR = _ROLE["cho"].iri, _ROLE["aggregation"].iri, _ROLE["web_resource"].iri
_EDM = PREFIXES["edm"]
_AGGREGATED_CHO = _EDM + "aggregatedCHO"
_WR_LINKS = (_EDM + "isShownBy", _EDM + "object", _EDM + "hasView")

# (kind, text, lang): kind 0 = rdf:resource, 1 = literal
Value = tuple[int, str, str | None]
Index = dict[str, dict[str, set[str]]]


def _index(triples: Iterable[Triple]) -> Index:
    graph: Index = defaultdict(lambda: defaultdict(set))
    for s, p, o in triples:
        graph[s][p[1:-1]].add(o)
    return graph


def _types(graph: Index, term: str) -> set[str]:
    return {o[1:-1] for o in graph.get(term, {}).get(_RDF_TYPE, ()) if o.startswith("<")}


def is_provided_cho(triples: Iterable[Triple], subject: str) -> bool:
    """True if ``subject`` (an IRI without <>) is typed edm:ProvidedCHO in ``triples``."""
    return (f"<{subject}>", RDF_TYPE, f"<{_CHO}>") in set(triples)


def _values(subject: str, prop: Prop, objects: set[str]) -> list[Value]:
    """The element values for one property, checked against what the XSD lets it carry."""
    out: set[Value] = set()
    where = f"{subject} {prop.qname}"
    for o in objects:
        if o.startswith("_:"):
            raise ValueError(f"{where}: blank node {o} (EDM needs an IRI for every resource)")
        if o.startswith("<"):
            if prop.value not in ("resource", "resource_or_literal"):
                raise ValueError(f"{where}: takes a literal, got the IRI {o}")
            text, lang, kind = o[1:-1], None, 0
        else:
            if prop.value == "resource":
                raise ValueError(f"{where}: takes an IRI (rdf:resource), got the literal {o}")
            text, lang, _datatype = split_literal(o)
            if lang and prop.value in ("plain", "typed"):
                raise ValueError(f"{where}: the XSD allows no xml:lang here, got {o}")
            kind = 1
        if XML_ILLEGAL.search(text):
            raise ValueError(f"{where}: value contains a character XML cannot carry: {o!r}")
        out.add((kind, text, lang))
    return sorted(out, key=lambda v: (v[0], v[1], v[2] or ""))


def _describe(graph: Index, term: str, cls: EdmClass) -> list[tuple[Prop, list[Value]]] | None:
    """The class's properties present on ``term``, in XSD order, with min/max checked.

    None for an entity (not the CHO or an aggregation) with no property of its class: it stays
    a plain reference, e.g. a licence typed cc:License that has labels but no odrl:inheritFrom.
    """
    subject = term[1:-1]
    po = graph.get(term, {})
    found = [(prop, _values(subject, prop, po.get(iri, set()))) for iri, prop in cls.props.items()]
    if cls.role not in ("cho", "aggregation") and not any(values for _, values in found):
        return None
    for prop, values in found:
        if len(values) < prop.min:
            raise ValueError(f"{subject}: {cls.qname} requires {prop.qname} (EDM XSD minOccurs={prop.min})")
        if prop.max is not None and len(values) > prop.max:
            raise ValueError(f"{subject}: {cls.qname} allows at most {prop.max} {prop.qname}, got {len(values)}")
    return [(prop, values) for prop, values in found if values]


def _select(graph: Index, cho: str) -> list[tuple[EdmClass, str]]:
    """(class, subject term) of every description in the document, in document order."""
    cho_t = f"<{cho}>"
    if _CHO not in _types(graph, cho_t):
        raise ValueError(f"{cho}: not typed edm:ProvidedCHO")
    aggs = sorted(s for s, po in graph.items() if cho_t in po.get(_AGGREGATED_CHO, ()))
    for s in aggs:
        if not s.startswith("<"):
            raise ValueError(f"{s}: blank node aggregation of {cho} (EDM needs rdf:about)")

    def refs(term: str, cls: EdmClass) -> set[str]:
        po = graph.get(term, {})
        return {o for p in cls.props if p != _AGGREGATED_CHO for o in po.get(p, ()) if o.startswith("<")}

    def is_cho(term: str) -> bool:
        return _CHO in _types(graph, term)

    web = {o for a in aggs for p in _WR_LINKS for o in graph[a].get(p, ()) if o.startswith("<")}
    linked = refs(cho_t, _ROLE["cho"]).union(*(refs(a, _ROLE["aggregation"]) for a in aggs))
    web |= {o for o in linked if _WR in _types(graph, o)}
    web = {o for o in web if o in graph and not is_cho(o)}
    linked = linked.union(*(refs(w, _ROLE["web_resource"]) for w in web)) - web - {cho_t, *aggs}

    chosen: list[tuple[EdmClass, str]] = [(_ROLE["cho"], cho_t)]
    chosen += [(_ROLE["web_resource"], w) for w in sorted(web)]
    contextual: dict[str, list[str]] = defaultdict(list)
    for term in linked:
        kinds = _types(graph, term) & _CONTEXTUAL
        if len(kinds) > 1:
            raise ValueError(f"{term[1:-1]}: typed as more than one EDM class: {sorted(kinds)}")
        if kinds and not is_cho(term):
            contextual[kinds.pop()].append(term)
    for cls in CLASSES:  # document order: sorter order
        if cls.role == "contextual":
            chosen += [(cls, t) for t in sorted(contextual[cls.iri])]
        elif cls.role == "aggregation":
            chosen += [(cls, a) for a in aggs]
    return chosen


def edm_record(triples: Iterable[Triple], cho: str) -> bytes:
    """One rdf:RDF document for the ProvidedCHO `cho` (an IRI string without <>)."""
    graph = _index(triples)
    blocks = []
    for cls, term in _select(graph, cho):
        props = _describe(graph, term, cls)
        if props is not None:
            blocks.append((cls, term[1:-1], props))

    used = {"rdf"} | {q.split(":")[0] for c, _, ps in blocks for q in [c.qname, *(p.qname for p, _ in ps)]}
    nsmap = {k: v for k, v in PREFIXES.items() if k in used}
    root = etree.Element(f"{{{RDF_NS}}}RDF", nsmap=nsmap)
    for cls, about, props in blocks:
        el = etree.SubElement(root, cls.tag, {f"{{{RDF_NS}}}about": about})
        for prop, values in props:
            for kind, text, lang in values:
                child = etree.SubElement(el, prop.tag)
                if kind == 0:
                    child.set(f"{{{RDF_NS}}}resource", text)
                    continue
                child.text = text
                if lang:
                    child.set(XML_LANG, lang)
                if prop.value == "typed":
                    child.set(f"{{{RDF_NS}}}datatype", prop.datatype)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
