"""N-Triples, N-Quads (one named graph per record) and Turtle (per record and whole dataset).

The dataset files list the records in (entity, id) order, each record's triples sorted.
N-Triples and N-Quads are written as text straight from the record triples. Turtle is built as
text too, byte for byte what pyoxigraph 0.5's serialiser writes for the same triples (prefixed
names, grouped subjects, ``a``, inline numbers and booleans; tests/test_serialisers.py compares
them); a record with a term the builder does not cover (an escape in an IRI, an unusual language
tag, more than 20 prefixes, ...) goes through pyoxigraph itself, and ``FALLBACKS`` counts those.
The dataset file is the record documents without their prefix lines, under one header.
"""
from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import pyoxigraph as ox

from ..terms import MEMO_LIMIT, RDF_TYPE, XSD, Triple, is_iri, literal, nt_lines
from . import DumpSpec, Files, Format, Job, record_file, register, serialiser
from .blocks import DumpWriter


def graph_iri(pub, entity: str, record_id: str) -> str:
    return f"{pub.config.base_uri}graph/{entity}/{quote(record_id, safe='')}"


def _order(t: Triple) -> tuple:
    return (t[0], t[1] != RDF_TYPE, t[1], t[2])


def turtle(triples: list[Triple], prefixes: dict[str, str]) -> bytes:
    """Turtle with the prefixes the triples actually use (prefixed names, subjects grouped)."""
    try:
        header, body = _turtle_text(triples, prefixes)
        return (header + body).encode("utf-8")
    except (_Unsupported, UnicodeEncodeError) as e:
        FALLBACKS[str(e) if isinstance(e, _Unsupported) else "not UTF-8"] += 1
        return _oxigraph_turtle(sorted(triples, key=_order), prefixes)


def _oxigraph_turtle(ordered: list[Triple], prefixes: dict[str, str]) -> bytes:
    """The reference: pyoxigraph parses the N-Triples and writes Turtle (raises on what it refuses)."""
    data = nt_lines(ordered).encode("utf-8")
    used = {p: ns for p, ns in prefixes.items() if f"<{ns}".encode("utf-8") in data}  # also finds ^^<datatype>
    quads = ox.parse(data, format=ox.RdfFormat.N_TRIPLES)
    return ox.serialize(quads, format=ox.RdfFormat.TURTLE, prefixes=used) or b""


# -- Turtle as text: what oxttl 0.2 (pyoxigraph 0.5) writes -------------------------------------
FALLBACKS: Counter[str] = Counter()  # records written by pyoxigraph instead, by reason


class _Unsupported(Exception):
    """A term or prefix the text builder does not cover: the record goes through pyoxigraph."""


_PN_CHARS_BASE = ("A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c-\u200d"
                  "\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff")
_PN_CHARS_U = _PN_CHARS_BASE + "_"
_PN_CHARS = _PN_CHARS_U + r"\-0-9\u00b7\u0300-\u036f\u203f-\u2040"
_PLAIN_LOCAL = re.compile(f"[{_PN_CHARS_U}:0-9](?:[{_PN_CHARS}:.]*[{_PN_CHARS}:])?")
_LOCAL_FIRST = re.compile(f"[{_PN_CHARS_U}:0-9]").fullmatch  # unescaped as a local name's first character
_LOCAL_NEXT = re.compile(f"[{_PN_CHARS}:]").fullmatch  # ... as a later one (and "." but last)
_LOCAL_ESCAPES = frozenset("_~.-!$&'()*+,;=/?#@%")
_BLANK = re.compile(f"_:[{_PN_CHARS_U}0-9](?:[{_PN_CHARS}.]*[{_PN_CHARS}])?")
_LEX = re.compile(r'(?:[^"\\\n\r]|\\[tbnrf"\'\\]|\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8})*')
_ECHAR = re.compile(r'\\(?:([tbnrf"\'\\])|u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8}))')
_ECHARS = {"t": "\t", "b": "\b", "n": "\n", "r": "\r", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
_LANG_TOKEN = re.compile(r"[A-Za-z]+(?:-[A-Za-z0-9]+)*")
# how oxrdf prints a string: these escapes, \\uXXXX for the other C0 controls, DEL, U+FFFE and U+FFFF
_QUOTE = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r", 0x22: '\\"', 0x5C: "\\\\"}
_QUOTE |= {c: f"\\u{c:04X}" for c in [*range(0x20), 0x7F, 0xFFFE, 0xFFFF] if c not in _QUOTE}
_NEEDS_QUOTE = re.compile("[" + "".join(f"\\u{c:04x}" for c in sorted(_QUOTE)) + "]")
_INLINE = {XSD + "boolean": re.compile("true|false"), XSD + "integer": re.compile("[+-]?[0-9]+"),
           XSD + "decimal": re.compile(r"[+-]?[0-9]*\.[0-9]+"),
           XSD + "double": re.compile(r"[+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)[eE][+-]?[0-9]+")}
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_NOT_DATATYPES = (_RDF + "langString", _RDF + "dirLangString")  # need a language tag (oxttl refuses them)
_LANGS: dict[str, str | None] = {}


def _remember(memo: dict, key, value):
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    memo[key] = value
    return value


def _iri_ok(value: str) -> bool:
    """True if oxigraph takes ``value`` as an IRI as it stands (it refuses spaces, <, >, \\, ...)."""
    try:
        return bool(ox.NamedNode(value))
    except (ValueError, UnicodeEncodeError):
        return False


def _language(tag: str) -> str:
    """The language tag as oxigraph keeps it (lower case); _Unsupported if it refuses it."""
    try:
        lang = _LANGS[tag]
    except KeyError:
        lang = None
        if _LANG_TOKEN.fullmatch(tag):
            try:  # the parser itself says whether the tag is well-formed BCP 47
                (q,) = ox.parse(f'<x:> <x:> ""@{tag} .'.encode(), format=ox.RdfFormat.N_TRIPLES)
                lang = q.object.language if q.object.direction is None else None
            except SyntaxError:
                pass
        _remember(_LANGS, tag, lang)
    if lang is None:
        raise _Unsupported("language tag")
    return lang


def _unescape(match: re.Match[str]) -> str:
    echar, u4, u8 = match.groups()
    if echar:
        return _ECHARS[echar]
    code = int(u4 or u8, 16)
    if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
        raise _Unsupported("escape")
    return chr(code)


def _lexical(raw: str) -> str:
    """The lexical form of a literal written ``raw`` between the quotes of an N-Triples term."""
    if "\\" in raw or '"' in raw or "\n" in raw or "\r" in raw:
        if not _LEX.fullmatch(raw):
            raise _Unsupported("lexical form")
        raw = _ECHAR.sub(_unescape, raw)
    return raw


def _quoted(value: str) -> str:
    """A lexical form quoted as oxrdf prints it."""
    if (value.isprintable() and '"' not in value and "\\" not in value) or not _NEEDS_QUOTE.search(value):
        return f'"{value}"'
    return f'"{value.translate(_QUOTE)}"'


def _local(local: str) -> str | None:
    """A local name as a prefixed name's PN_LOCAL (characters escaped as oxttl does), or None."""
    if _PLAIN_LOCAL.fullmatch(local):
        return local
    out, last = [], len(local) - 1
    for i, c in enumerate(local):
        if (_LOCAL_FIRST(c) if i == 0 else _LOCAL_NEXT(c) or (c == "." and i < last)):
            out.append(c)
        elif c in _LOCAL_ESCAPES:
            out.append("\\" + c)
        else:
            return None
    return "".join(out)


class _Writer:
    """Turtle text of N-Triples terms under one prefix mapping. Each term is remembered with the
    namespaces (as bits) its N-Triples form contains: those are the prefixes its record declares.
    A term's text does not depend on which other prefixes a record declares: only namespaces the
    term contains can shorten it, and every declared list keeps this order."""

    def __init__(self, prefixes: dict[str, str]) -> None:
        declared = sorted(prefixes.items())
        declared.sort(key=lambda p: -len(p[1].encode("utf-8")))  # oxttl's order: longest namespace first
        self.declared = declared
        self.valid = all(_iri_ok(ns) for _, ns in declared)
        self.needles = [(1 << i, "<" + ns) for i, (_, ns) in enumerate(declared)]
        # the first declared namespace an IRI starts with (the longest), and the bits of all those it
        # starts with: that namespace's and the shorter ones that start it
        self.longest = re.compile("|".join(f"({re.escape(ns)})" for _, ns in declared) or "(?!)").match
        self.within = [sum(1 << j for j, (_, outer) in enumerate(declared) if ns.startswith(outer))
                       for _, ns in declared]
        self.memo: dict[str, tuple[str, int]] = {}
        self.predicates: dict[str, tuple[str, int]] = {}  # as memo, for IRIs, followed by a space
        self.headers: dict[int, str] = {}
        self.type_bits = self.iri(RDF_TYPE[1:-1])[1]  # rdf:type is written "a", its namespace still counts

    def add(self, t: str) -> tuple[str, int]:
        """(Turtle text, namespace bits) of an N-Triples term not yet remembered."""
        if t.startswith("<") and t.endswith(">"):
            if not _iri_ok(value := t[1:-1]):
                raise _Unsupported("IRI")
            found = self.iri(value)
        elif "<" in t:  # a literal containing a namespace (or its datatype's)
            found = self.term(t), sum(bit for bit, n in self.needles if n in t)
        else:  # a blank node or a literal
            found = self.term(t), 0
        if len(self.memo) >= MEMO_LIMIT:
            self.memo.clear()
        self.memo[t] = found
        return found

    def add_predicate(self, t: str) -> tuple[str, int]:
        """(Turtle text and a space, namespace bits) of a predicate not yet remembered."""
        if not t.startswith("<"):
            raise _Unsupported("predicate")
        text, bits = self.memo.get(t) or self.add(t)
        if len(self.predicates) >= MEMO_LIMIT:
            self.predicates.clear()
        found = self.predicates[t] = text + " ", bits
        return found

    def header(self, used: int) -> str:
        """The prefix lines for the namespaces in ``used``."""
        text = self.headers.get(used)
        if text is None:
            lines = [f"@prefix {name}: <{ns}> .\n" for i, (name, ns) in enumerate(self.declared) if used >> i & 1]
            if len(lines) > 20:  # oxttl sorts them with an unstable sort: equal lengths may come in any order
                raise _Unsupported("prefixes")
            text = _remember(self.headers, used, "".join(lines))
        return text

    def iri(self, value: str) -> tuple[str, int]:
        """(Turtle text, namespace bits) of an IRI: the first declared namespace it starts with and
        whose rest is a local name (or nothing) makes a prefixed name."""
        m = self.longest(value)
        if m is None:
            return f"<{value}>", 0
        i = m.lastindex - 1
        name, ns = self.declared[i]
        local = value[len(ns):]
        if not local or _PLAIN_LOCAL.fullmatch(local):
            return f"{name}:{local}", self.within[i]
        for name, ns in self.declared[i:]:  # escapes, or a shorter namespace
            if value.startswith(ns) and (escaped := _local(value[len(ns):])) is not None:
                return f"{name}:{escaped}", self.within[i]
        return f"<{value}>", self.within[i]

    def term(self, t: str) -> str:
        """The Turtle text of a blank node or literal."""
        end = t.rfind('"')
        if t.startswith('"') and end > 0:
            lex, suffix = t[1:end], t[end + 1:]
            if lex.isprintable() and '"' not in lex and "\\" not in lex and (
                    not suffix or suffix[0] == "@" and _LANGS.get(suffix[1:]) == suffix[1:]):
                return t  # the usual case: written as in N-Triples
            lex = _lexical(lex)
        elif t.startswith("_:") and _BLANK.fullmatch(t):
            return t
        else:
            raise _Unsupported("term")
        if not suffix:
            return _quoted(lex)
        if suffix.startswith("@"):
            return _quoted(lex) + "@" + _language(suffix[1:])
        if not (suffix.startswith("^^<") and suffix.endswith(">") and _iri_ok(datatype := suffix[3:-1])):
            raise _Unsupported("literal")
        if datatype == XSD + "string":
            return _quoted(lex)
        if datatype in _NOT_DATATYPES:
            raise _Unsupported("datatype")
        if (inline := _INLINE.get(datatype)) and inline.fullmatch(lex):
            return lex
        return f"{_quoted(lex)}^^{self.iri(datatype)[0]}"


_WRITERS: dict[tuple[tuple[str, str], ...], _Writer] = {}


def _turtle_text(triples: list[Triple], prefixes: dict[str, str]) -> tuple[str, str]:
    """(prefix lines, statements) as pyoxigraph writes them for the triples in ``_order``;
    _Unsupported where the builder does not cover a term."""
    if not triples:
        return "", ""
    key = tuple(prefixes.items())
    w = _WRITERS.get(key) or _remember(_WRITERS, key, _Writer(prefixes))
    if not w.valid:
        raise _Unsupported("prefix IRI")
    memo, add, predicates, type_bits, rdf_type = w.memo, w.add, w.predicates, w.type_bits, RDF_TYPE
    out: list[str] = []
    used = 0
    last_s = last_p = types = None
    slot = first = 0
    # In (s, p, o) order, cheaper to sort than _order: a subject's rdf:type objects are gathered
    # and written in the slot kept right after the subject.
    for s, p, o in sorted(triples):
        o_text, bits = memo.get(o) or add(o)
        used |= bits
        if s != last_s:
            if types is not None:
                _close(out, slot, first, types)
            if not s.startswith(("<", "_:")):
                raise _Unsupported("subject")
            s_text, bits = memo.get(s) or add(s)
            used |= bits
            out += (" .\n", s_text, "")
            slot, first, types, last_s, last_p = len(out) - 1, 0, [], s, None
        if p == last_p:
            out += (" , ", o_text)
        elif p == rdf_type:
            types.append(o_text)
            used |= type_bits
        else:
            p_text, bits = predicates.get(p) or w.add_predicate(p)
            used |= bits
            first = first or len(out)
            out += (" ;\n\t", p_text, o_text)
            last_p = p
    _close(out, slot, first, types)
    out[0] = ""
    out.append(" .\n")
    return w.header(used), "".join(out)


def _close(out: list[str], slot: int, first: int, types: list[str]) -> None:
    """End a subject's statements: its rdf:type objects (``a``) in its slot, or else its first
    predicate right after it."""
    if types:
        out[slot] = " a " + " , ".join(types)
    else:
        out[slot], out[first] = "", " "


def _without_prefixes(doc: bytes) -> bytes:
    start = 0
    while doc.startswith(b"@prefix ", start):
        start = doc.index(b"\n", start) + 1
    return doc[start:]


def turtle_body(triples: list[Triple], prefixes: dict[str, str]) -> bytes:
    """Turtle without its prefix lines: a part of a document whose header declares ``prefixes``."""
    try:
        return _turtle_text(triples, prefixes)[1].encode("utf-8")
    except (_Unsupported, UnicodeEncodeError) as e:
        FALLBACKS[str(e) if isinstance(e, _Unsupported) else "not UTF-8"] += 1
        return _without_prefixes(_oxigraph_turtle(sorted(triples, key=_order), prefixes))


class Dump:
    """A sink's dump: one ``DumpWriter`` fed its blocks, each copied or made from the rows."""

    def __init__(self, spec: DumpSpec, out: Path, files: Files, header: bytes = b"") -> None:
        self.spec = spec
        self.writer = DumpWriter(out / spec.file, files.dump_source(spec.file), header, spec.gz)

    def block(self, job: Job, make, extra: bytes = b"") -> None:
        """Write the job's block (``make()``: its bytes, where it is not copied)."""
        f = self.spec.file
        self.writer.block(job.versions[f], job.copy.get(f), make, extra)

    def close(self, footer: bytes = b"") -> None:
        self.writer.close(footer)


NT = DumpSpec("dataset.nt", gz=True, dedupe=True)
NQ = DumpSpec("dataset.nq", gz=True, provenance=True)
TTL = DumpSpec("dataset.ttl")


class NTriples:
    """``dataset.nt``: the records' stored N-Triples, each triple once."""

    def __init__(self, pub, out: Path, files: Files) -> None:
        self.dump = Dump(NT, out, files)

    def block(self, job: Job, rows) -> None:
        self.dump.block(job, lambda: "".join(job.fresh).encode("utf-8"), job.foreign.pack())

    def close(self) -> None:
        self.dump.close()


PROV = "http://www.w3.org/ns/prov#"
HLD = "https://w3id.org/heritage-ld#"


def provenance(pub, graph: str, row) -> list[Triple]:
    """PROV-O about one record's named graph: source, source id, when, which mapping version."""
    when = datetime.fromtimestamp(row.last_changed, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    source = row.source.split(" ", 1)[0]
    t = [(graph, RDF_TYPE, f"<{PROV}Entity>"),
         (graph, f"<{PROV}generatedAtTime>", literal(when, datatype=XSD + "dateTime")),
         (graph, f"<{HLD}sourceRecord>", literal(row.source)),
         (graph, f"<{HLD}sourceId>", literal(row.id)),
         (graph, f"<{HLD}mappingVersion>", literal(f"mapping/{row.entity}.yaml sha256:{row.mapping}"))]
    if is_iri(source) and source.startswith(("http://", "https://")):
        t.append((graph, f"<{PROV}wasDerivedFrom>", f"<{source}>"))
    return t


class NQuads:
    """``dataset.nq``: each record's stored N-Triples in its named graph, with its provenance."""

    def __init__(self, pub, out: Path, files: Files) -> None:
        self.pub, self.dump = pub, Dump(NQ, out, files)

    def block(self, job: Job, rows) -> None:
        self.dump.block(job, lambda: "".join(self.quads(row) for row in rows).encode("utf-8"))

    def quads(self, row) -> str:
        g = f"<{graph_iri(self.pub, row.entity, row.id)}>"
        return quads(row.nt, g) + quads(nt_lines(provenance(self.pub, g, row)), g)

    def close(self) -> None:
        self.dump.close()


def quads(nt: str, graph: str) -> str:
    """N-Triples lines as N-Quads in ``graph`` (an N-Triples line ends in " .\n" and nowhere else has one)."""
    return nt.replace(" .\n", f" {graph} .\n")


class Turtle:
    """``records/<entity>/<id>.ttl`` (prefixes used) and ``dataset.ttl`` (every mapping prefix declared)."""

    def __init__(self, pub, out: Path, files: Files) -> None:
        self.serialiser, self.files = serialiser(pub.config, pub.mappings), files
        prefixes = pub.mappings.prefixes
        self.dump = Dump(TTL, out, files,
                         "".join(f"@prefix {p}: <{ns}> .\n" for p, ns in sorted(prefixes.items())).encode())

    def block(self, job: Job, rows) -> None:
        for i in job.files:
            self.files.write(record_file(rows[i].entity, rows[i].id, "ttl"), self.serialiser.fragment(rows[i], "turtle"))
        self.dump.block(job, lambda: b"".join(b"\n" + _without_prefixes(self.serialiser.fragment(row, "turtle"))
                                              for row in rows))

    def close(self) -> None:
        self.dump.close()


register(Format("ntriples", "application/n-triples", "nt", "whole dataset as N-Triples (dataset.nt, dataset.nt.gz)",
                NTriples, lambda pub, triples, _subject: nt_lines(sorted(triples)).encode(), cost=1.7, dump=NT))
register(Format("nquads", "application/n-quads", "nq",
                "whole dataset as N-Quads, one named graph per record (dataset.nq, dataset.nq.gz)", NQuads, cost=1.9,
                dump=NQ))
register(Format("turtle", "text/turtle", "ttl", "Turtle per record (records/) and whole dataset (dataset.ttl)",
                Turtle, lambda pub, triples, _subject: turtle(triples, pub.mappings.prefixes), cost=3.5,
                folder="records", dump=TTL,
                fragments=lambda ser, triples: {"turtle": turtle(triples, ser.mappings.prefixes)}))
