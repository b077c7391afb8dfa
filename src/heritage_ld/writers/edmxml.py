"""EDM RDF/XML for Europeana: one ``rdf:RDF`` document per ProvidedCHO, valid as written.

The document is a projection of the record's triples onto the EDM classes and properties in
``data/edm-classes.json`` (read from Europeana's XSDs and the Metis sorter): classes and
properties come out in the order the sorter would give them, so Metis validates exactly what
was written. Values are sorted, every class element has ``rdf:about``, every property is an
empty element with ``rdf:resource`` or a literal (``rdf:datatype`` only where the XSD demands
one). Anything that would make the document invalid or lose data raises ValueError. The XML is
written as text, byte for byte what lxml's ``tostring(pretty_print=True)`` gives for the same tree.

Selection, starting from the CHO: every ``ore:Aggregation`` whose ``edm:aggregatedCHO`` is the
CHO; the web resources those aggregations point to (``edm:isShownBy``, ``edm:object``,
``edm:hasView``; ``edm:isShownAt`` and any other reference only when typed ``edm:WebResource``);
the contextual entities (typed edm:Agent, edm:Place, edm:TimeSpan, skos:Concept, cc:License)
referenced from the CHO, the aggregations or the web resources. Other ProvidedCHOs stay plain
references, and so does an entity with no EDM property (e.g. a licence with labels only).
"""
from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from itertools import compress
from operator import itemgetter

from heritage_ld.terms import RDF_TYPE, XML_ILLEGAL, Triple, split_literal

ELEMENTS_LIMIT = 2048  # element lines remembered per property (then it starts afresh)


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one per class and property
class Prop:
    """One property element a class allows (see data/edm-classes.json)."""

    qname: str
    value: str  # resource | literal | resource_or_literal | plain | typed
    min: int
    max: int | None
    datatype: str  # "" unless value == "typed"
    order: int  # position in the class's XSD sequence
    prefix: str = field(init=False)
    elements: dict[str, Element | str] = field(default_factory=dict, repr=False)  # object term -> _element()

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", self.qname.split(":", 1)[0])


@dataclass(frozen=True)
class EdmClass:
    qname: str
    iri: str
    role: str  # cho | web_resource | contextual | aggregation
    props: dict[str, Prop]  # predicate as an N-Triples term <iri> -> Prop, in XSD order
    limited: tuple[Prop, ...]  # the props with a min or max, in XSD order
    prefix: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", self.qname.split(":", 1)[0])


def _load() -> tuple[dict[str, str], list[EdmClass]]:
    data = json.loads(resources.files("heritage_ld").joinpath("data/edm-classes.json").read_text("utf-8"))
    prefixes: dict[str, str] = data["prefixes"]

    def expand(qname: str) -> str:
        prefix, local = qname.split(":", 1)
        return prefixes[prefix] + local

    classes = []
    for c in data["classes"]:
        props = {}
        for i, p in enumerate(c["properties"]):
            if (p["value"] == "typed") != ("datatype" in p):
                raise ValueError(f"edm-classes.json: {p['name']}: a datatype goes with value 'typed' only")
            props[f"<{expand(p['name'])}>"] = Prop(p["name"], p["value"], p["min"], p["max"], p.get("datatype", ""), i)
        limited = tuple(p for p in props.values() if p.min or p.max is not None)
        classes.append(EdmClass(c["element"], c["iri"], c["role"], props, limited))
    return prefixes, classes


PREFIXES, CLASSES = _load()
_ROLE = {c.role: c for c in CLASSES if c.role != "contextual"}
_CONTEXTUAL = {f"<{c.iri}>" for c in CLASSES if c.role == "contextual"}
_CHO, _WR = f"<{_ROLE['cho'].iri}>", f"<{_ROLE['web_resource'].iri}>"
_EDM = PREFIXES["edm"]
_AGGREGATED_CHO = f"<{_EDM}aggregatedCHO>"
_WR_LINKS = tuple(f"<{_EDM}{p}>" for p in ("isShownBy", "object", "hasView"))
_PREDICATES = {RDF_TYPE}.union(*(c.props for c in CLASSES))  # all the selection and description look at

# (kind, text, lang): kind 0 = rdf:resource, 1 = literal
Value = tuple[int, str, str | None]
Index = dict[str, dict[str, set[str]] | None]  # subject term -> predicate term -> object terms (None: none EDM uses)


def _index(triples: Iterable[Triple]) -> Index:
    """Every subject, with the objects of each predicate EDM looks at."""
    triples = triples if isinstance(triples, (list, tuple)) else list(triples)
    graph: Index = dict.fromkeys(map(itemgetter(0), triples))
    for s, p, o in compress(triples, map(_PREDICATES.__contains__, map(itemgetter(1), triples))):
        po = graph[s]
        if po is None:
            graph[s] = {p: {o}}
        elif (objects := po.get(p)) is None:
            po[p] = {o}
        else:
            objects.add(o)
    return graph


def _types(graph: Index, term: str) -> set[str] | tuple[()]:
    """The rdf:type objects of ``term`` (its classes, as terms, and any literal)."""
    po = graph.get(term)
    return po.get(RDF_TYPE, ()) if po else ()


def is_provided_cho(triples: Iterable[Triple], subject: str) -> bool:
    """True if ``subject`` (an IRI without <>) is typed edm:ProvidedCHO in ``triples``."""
    return (f"<{subject}>", RDF_TYPE, _CHO) in triples


def _xml_legal(text: str) -> bool:
    """True if XML can carry every character of ``text`` (printable ASCII, the usual case, checked first)."""
    return (text.isascii() and text.isprintable()) or not XML_ILLEGAL.search(text)


_LXML_REFUSES = "All strings must be XML compatible: Unicode or ASCII, no NULL bytes or control characters"
Refusal = tuple[type, tuple]  # an exception lxml raises, as (type, args)


def _refusal(value: str) -> Refusal | None:
    """What lxml raises when it is given ``value`` for a text or an attribute, or None."""
    if value.isascii() and value.isprintable():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:  # a lone surrogate
        return UnicodeEncodeError, e.args
    return None if _xml_legal(value) else (ValueError, (_LXML_REFUSES,))


Element = tuple[Value, "str | Refusal"]  # a value and its element line, or what lxml raised for a string of it


def _element(prop: Prop, o: str) -> Element | str:
    """The value of one object of ``prop`` and its element line (or what lxml raised when it was
    given a string of it, raised when the document is written); or, as a str, why it can't be one.
    Remembered in ``prop.elements``."""
    found = prop.elements.get(o)
    if found is None:
        if len(prop.elements) >= ELEMENTS_LIMIT:
            prop.elements.clear()
        found = prop.elements[o] = _new_element(prop, o)
    return found


def _new_element(prop: Prop, o: str) -> Element | str:
    if o.startswith("<"):
        if prop.value not in ("resource", "resource_or_literal"):
            return f"takes a literal, got the IRI {o}"
        text, lang, kind = o[1:-1], None, 0
    elif o.startswith("_:"):
        return f"blank node {o} (EDM needs an IRI for every resource)"
    else:
        if prop.value == "resource":
            return f"takes an IRI (rdf:resource), got the literal {o}"
        text, lang, _datatype = split_literal(o)
        if lang and prop.value in ("plain", "typed"):
            return f"the XSD allows no xml:lang here, got {o}"
        kind = 1
    if not _xml_legal(text):
        return f"value contains a character XML cannot carry: {o!r}"
    if refused := _refusal(text) or (lang and _refusal(lang)):
        return (kind, text, lang), refused
    if kind == 0:
        return (kind, text, lang), f'    <{prop.qname} rdf:resource="{_attr(text)}"/>\n'
    lang_attr = f' xml:lang="{_attr(lang)}"' if lang else ""
    datatype = f' rdf:datatype="{_attr(prop.datatype)}"' if prop.value == "typed" else ""
    return (kind, text, lang), f"    <{prop.qname}{lang_attr}{datatype}>{_text(text)}</{prop.qname}>\n"


def _describe(graph: Index, term: str, cls: EdmClass, used: set[str]) -> list[str | Refusal] | None:
    """The element lines of the class's properties present on ``term``: in XSD order, each property's
    in value order, checked against what the XSD lets it carry, min/max checked; their prefixes
    are added to ``used``.

    None for an entity (not the CHO or an aggregation) with no property of its class: it stays
    a plain reference, e.g. a licence typed cc:License that has labels but no odrl:inheritFrom.
    """
    props = cls.props
    present = sorted((prop.order, prop, objects) for p, objects in (graph.get(term) or {}).items()
                     if (prop := props.get(p)))
    if not present and cls.role not in ("cho", "aggregation"):
        return None
    lines: list[str | Refusal] = []
    counts = {}
    for _, prop, objects in present:
        if len(objects) == 1:  # the usual case
            for o in objects:
                found = _element(prop, o)
            if found.__class__ is str:
                raise ValueError(f"{term[1:-1]} {prop.qname}: {found}")
            lines.append(found[1])
            counts[prop] = 1
        else:
            many = [_element(prop, o) for o in objects]
            for found in many:
                if found.__class__ is str:
                    raise ValueError(f"{term[1:-1]} {prop.qname}: {found}")
            distinct = dict(many)  # one line per distinct value
            lines += [distinct[v] for v in sorted(distinct, key=lambda v: (v[0], v[1], v[2] or ""))]
            counts[prop] = len(distinct)
        used.add(prop.prefix)
    for prop in cls.limited:
        n = counts.get(prop, 0)
        if n < prop.min:
            raise ValueError(f"{term[1:-1]}: {cls.qname} requires {prop.qname} (EDM XSD minOccurs={prop.min})")
        if prop.max is not None and n > prop.max:
            raise ValueError(f"{term[1:-1]}: {cls.qname} allows at most {prop.max} {prop.qname}, got {n}")
    return lines


def _select(graph: Index, cho: str) -> list[tuple[EdmClass, str]]:
    """(class, subject term) of every description in the document, in document order."""
    cho_t = f"<{cho}>"
    if _CHO not in _types(graph, cho_t):
        raise ValueError(f"{cho}: not typed edm:ProvidedCHO")
    aggs = sorted(s for s, po in graph.items() if po and (of := po.get(_AGGREGATED_CHO)) and cho_t in of)
    for s in aggs:
        if not s.startswith("<"):
            raise ValueError(f"{s}: blank node aggregation of {cho} (EDM needs rdf:about)")

    def refs(term: str, cls: EdmClass) -> set[str]:
        props = cls.props
        return {o for p, objects in (graph[term] or {}).items() if p in props and p != _AGGREGATED_CHO
                for o in objects if o.startswith("<")}

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
        kinds = _CONTEXTUAL.intersection(_types(graph, term))
        if len(kinds) > 1:
            raise ValueError(f"{term[1:-1]}: typed as more than one EDM class: {sorted(k[1:-1] for k in kinds)}")
        if kinds and not is_cho(term):
            contextual[kinds.pop()[1:-1]].append(term)
    for cls in CLASSES:  # document order: sorter order
        if cls.role == "contextual":
            chosen += [(cls, t) for t in sorted(contextual[cls.iri])]
        elif cls.role == "aggregation":
            chosen += [(cls, a) for a in aggs]
    return chosen


_TEXT_ESCAPES = re.compile("[&<>\r]")
_ATTR_ESCAPES = re.compile('[&<>"\t\n\r]')


def _text(value: str) -> str:
    """Element content escaped as libxml2 writes it."""
    if not _TEXT_ESCAPES.search(value):
        return value
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _attr(value: str) -> str:
    """An attribute value escaped as libxml2 writes it."""
    if not _ATTR_ESCAPES.search(value):
        return value
    return (value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("\t", "&#9;").replace("\n", "&#10;").replace("\r", "&#13;"))


def edm_record(triples: Iterable[Triple], cho: str) -> bytes:
    """One rdf:RDF document for the ProvidedCHO `cho` (an IRI string without <>)."""
    graph = _index(triples)
    used = {"rdf"}
    blocks = []
    for cls, term in _select(graph, cho):
        lines = _describe(graph, term, cls, used)
        if lines is not None:
            blocks.append((cls, term[1:-1], lines))
    body: list[str | Refusal] = []
    for cls, about, lines in blocks:  # _describe never gives an empty one
        used.add(cls.prefix)
        body.append(_refusal(about) or f'  <{cls.qname} rdf:about="{_attr(about)}">\n')
        body += lines
        body.append(f"  </{cls.qname}>\n")
    try:
        text = "".join(body)
    except TypeError:  # a string lxml refused: the error it raised at the first, in document order
        kind, args = next(x for x in body if not isinstance(x, str))
        raise kind(*args) from None
    namespaces = "".join(f' xmlns:{k}="{v}"' for k, v in PREFIXES.items() if k in used)
    return f"<?xml version='1.0' encoding='UTF-8'?>\n<rdf:RDF{namespaces}>\n{text}</rdf:RDF>\n".encode()
