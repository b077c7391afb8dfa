"""JSON-LD compacted against one context derived from the mappings (``context.jsonld``).

schema.org is the default vocabulary, so records read like schema.org markup
(``"@type": "BlogPosting", "headline": ...``); other vocabularies use the mapping prefixes
(``"dc:title"``). Properties whose values are always IRIs are declared ``"@type": "@id"``.
Every document carries its context inline (a record file the part of it that the record uses,
``dataset.jsonld`` all of it), so each file is read alone, offline, by any JSON-LD processor
(pyoxigraph reads no remote context; bulk loaders fetch none). Compaction is done here directly
from the triples (no JSON-LD processor on the hot path); tests check that expansion gives back
the same graph.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..terms import RDF_TYPE, XSD, split_literal
from . import DumpSpec, Files, Format, Job, record_file, register, serialiser
from .rdf import Dump

SCHEMA = "http://schema.org/"
_XSD_STRING = XSD + "string"


class Compactor:
    def __init__(self, pub) -> None:
        self.prefixes = dict(pub.mappings.prefixes)
        self._by_length = sorted(self.prefixes.items(), key=lambda kv: -len(kv[1]))
        self._terms: dict[str, str] = {}
        self._predicates: dict[str, str] = {}  # N-Triples <iri> -> term
        kinds: dict[str, set[bool]] = {}
        for m in pub.mappings.entities.values():
            for p, k in m.object_kinds().items():
                kinds.setdefault(p, set()).update(k)
        self.iri_terms = {self.term(p) for p, k in kinds.items() if k == {True}}
        self._full: dict | None = None

    def term(self, iri: str) -> str:
        """The compact form of an IRI (memoised: called for every predicate, class and datatype)."""
        found = self._terms.get(iri)
        if found is None:
            found = self._terms[iri] = self._compact(iri)
        return found

    def _compact(self, iri: str) -> str:
        if iri.startswith(SCHEMA) and iri[len(SCHEMA):].isalnum():
            return iri[len(SCHEMA):]
        for prefix, ns in self._by_length:
            if iri.startswith(ns) and iri[len(ns):] and iri[len(ns):].replace("_", "a").replace("-", "a").isalnum():
                return f"{prefix}:{iri[len(ns):]}"
        return iri

    def context(self) -> dict:
        ctx: dict = {"@vocab": SCHEMA}
        ctx.update({p: ns for p, ns in sorted(self.prefixes.items()) if p != "schema"})
        for t in sorted(self.iri_terms):
            ctx[t] = {"@type": "@id"}
        return {"@context": ctx}

    def context_for(self, nodes: list[dict]) -> dict:
        """The part of ``context()`` that ``nodes`` use: the vocabulary, the prefixes of their compact
        terms, types and datatypes, and the IRI-valued terms among their properties."""
        used: set[str] = set()
        for node in nodes:
            for key, values in node.items():
                used.add(key)
                if key == "@type":
                    used.update([values] if isinstance(values, str) else values)
                else:
                    for v in values if isinstance(values, list) else [values]:
                        if isinstance(v, dict) and "@type" in v:
                            used.add(v["@type"])
        prefixes = {t.split(":", 1)[0] for t in used if ":" in t}
        if self._full is None:
            self._full = self.context()["@context"]
        full = self._full
        return {k: v for k, v in full.items()
                if k == "@vocab" or k in prefixes or (k in used and isinstance(v, dict))}

    def value(self, term: str, obj: str):
        if obj.startswith("<"):
            return obj[1:-1] if term in self.iri_terms else {"@id": obj[1:-1]}
        lex, lang, dt = split_literal(obj)
        if lang:
            return {"@value": lex, "@language": lang}
        if dt and dt != _XSD_STRING:
            return {"@value": lex, "@type": self.term(dt)}
        return {"@value": lex} if term in self.iri_terms else lex

    def nodes(self, triples) -> list[dict]:
        """One node per subject, in subject order: @id, @type, then the properties by term."""
        out: list[dict] = []
        value_of = self.value
        subject, props = None, {}
        last = None
        for triple in sorted(triples):  # cheap for a record's triples, already sorted
            if triple == last:
                continue
            last = triple
            s, p, o = triple
            if s != subject:
                if subject is not None:
                    out.append(_node(subject, props))
                subject, props = s, {}
            if p == RDF_TYPE:
                term, value = "@type", self.term(o[1:-1])
            else:
                term = self._predicates.get(p)
                if term is None:
                    term = self._predicates[p] = self.term(p[1:-1])
                value = value_of(term, o)
            values = props.get(term)
            if values is None:
                props[term] = [value]
            else:
                values.append(value)
        if subject is not None:
            out.append(_node(subject, props))
        return out

    def document(self, triples) -> dict:
        """A document of ``triples`` with its context inline."""
        return self.document_of(self.nodes(triples))

    def document_of(self, nodes: list[dict]) -> dict:
        context = self.context_for(nodes)
        if len(nodes) == 1:
            return {"@context": context, **nodes[0]}
        return {"@context": context, "@graph": nodes}


def _node(subject: str, props: dict[str, list]) -> dict:
    """The node for ``subject`` from its values by term: @id and @type first, one value unwrapped."""
    node: dict = {"@id": subject[1:-1]}
    types = props.pop("@type", None)
    if types is not None:
        node["@type"] = types[0] if len(types) == 1 else types
    for k in sorted(props):
        v = props[k]
        node[k] = v[0] if len(v) == 1 else v
    return node


def dumps(doc: dict) -> bytes:
    """``json.dumps(doc, ensure_ascii=False, indent=2)`` plus a newline, as UTF-8, for a document with
    string keys; faster: strings are escaped by json's C encoder, other scalars left to json.dumps."""
    out: list[str] = []
    _encode(doc, out, "\n")
    out.append("\n")
    return "".join(out).encode("utf-8")


_escape = json.encoder.encode_basestring  # what json.dumps uses with ensure_ascii=False


def _encode(value, out: list[str], newline: str) -> None:
    """Append ``value`` as indented JSON; ``newline`` is the line break and indent it starts at."""
    if isinstance(value, str):
        out.append(_escape(value))
    elif isinstance(value, dict) and value:
        inner = newline + "  "
        sep = "{" + inner
        for k, v in value.items():
            if isinstance(v, str):  # most values: no call
                out.append(f"{sep}{_escape(k)}: {_escape(v)}")
            else:
                out.append(f"{sep}{_escape(k)}: ")
                _encode(v, out, inner)
            sep = "," + inner
        out.append(newline + "}")
    elif isinstance(value, (list, tuple)) and value:
        inner = newline + "  "
        sep = "[" + inner
        for v in value:
            if isinstance(v, str):
                out.append(sep + _escape(v))
            else:
                out.append(sep)
                _encode(v, out, inner)
            sep = "," + inner
        out.append(newline + "]")
    else:
        out.append(json.dumps(value))


JSONLD = DumpSpec("dataset.jsonld", separated=True)


class JsonLd:
    """``records/<entity>/<id>.jsonld`` (indented, with the context it uses), ``context.jsonld``, and
    ``dataset.jsonld``: the whole context, then one ``@graph`` with a node per line, so that it streams."""

    def __init__(self, pub, out: Path, files: Files) -> None:
        self.serialiser, self.files = serialiser(pub.config, pub.mappings), files
        c = compactor(self.serialiser)
        (out / "context.jsonld").write_bytes(dumps(c.context()))
        context = json.dumps(c.context()["@context"], ensure_ascii=False)
        self.dump = Dump(JSONLD, out, files, f'{{"@context": {context}, "@graph": ['.encode("utf-8"))

    def block(self, job: Job, rows) -> None:
        for i in job.files:
            self.files.write(record_file(rows[i].entity, rows[i].id, "jsonld"), self.serialiser.fragment(rows[i], "jsonld"))
        self.dump.block(job, lambda: self.nodes(job, rows))

    def nodes(self, job: Job, rows) -> bytes:
        """The block's part of the ``@graph``: each record's nodes, the first of the dump after a line break,
        the others after a comma."""
        out = []
        for row in rows:
            lines = self.serialiser.fragment(row, "jsonld.nodes")
            if lines:
                out.append((b"\n" if job.first and not out else b",\n") + lines)
        return b"".join(out)

    def close(self) -> None:
        self.dump.close(b"\n]}\n")


def record_jsonld(pub, triples, _subject: str) -> bytes:
    """One record with its context inline (for ``heritage-ld map``)."""
    return dumps(Compactor(pub).document(triples))


def compactor(ser) -> Compactor:
    """The serialiser's compactor (made once per project and process)."""
    found = ser.cache.get("jsonld")
    if found is None:
        found = ser.cache["jsonld"] = Compactor(ser)
    return found


def fragments(ser, triples) -> dict[str, bytes]:
    """A record's JSON-LD document (its file) and its nodes, one a line, as ``dataset.jsonld`` lists them."""
    c = compactor(ser)
    nodes = c.nodes(triples)
    return {"jsonld": dumps(c.document_of(nodes)),
            "jsonld.nodes": ",\n".join(json.dumps(n, ensure_ascii=False) for n in nodes).encode("utf-8")}


register(Format("jsonld", "application/ld+json", "jsonld",
                "JSON-LD per record (records/) and whole dataset (dataset.jsonld), each with its context inline",
                JsonLd, record_jsonld, cost=7.8, folder="records", fragments=fragments, dump=JSONLD))
