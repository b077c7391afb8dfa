"""RDF terms as N-Triples strings: the representation used on the per-record hot path.

A triple is a tuple of three strings, each an N-Triples term: ``<iri>``, ``"lex"``,
``"lex"@lang`` or ``"lex"^^<datatype>``. Building strings is ~10x cheaper than creating
rdflib or pyoxigraph terms (see DESIGN.md), and N-Triples is what every store loads.
"""
from __future__ import annotations

import re

Triple = tuple[str, str, str]

XSD = "http://www.w3.org/2001/XMLSchema#"
RDF_TYPE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"

# Characters XML 1.0 cannot carry (and which no metadata field should contain).
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# RFC 3987 IRI: scheme, then no characters N-Triples forbids inside <...>.
_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\x00-\x20<>\"{}|^`\\]*")
_LANG = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")
MEMO_LIMIT = 16384  # IRIs and language tags remembered as checked (then the memo starts afresh)
_IRI_MEMO: dict[str, bool] = {}


def is_iri(value: str) -> bool:
    """True if ``value`` is an absolute IRI that N-Triples, Turtle and RDF/XML can all carry."""
    ok = _IRI_MEMO.get(value)
    if ok is None:
        ok = bool(_IRI.fullmatch(value))
        if len(_IRI_MEMO) >= MEMO_LIMIT:
            _IRI_MEMO.clear()
        _IRI_MEMO[value] = ok
    return ok


def iri(value: str) -> str:
    """N-Triples form of an absolute IRI; ValueError if it is not one."""
    if not is_iri(value):
        raise ValueError(f"not an absolute IRI: {value!r}")
    return f"<{value}>"


def quoted(lex: str) -> str:
    """``"lex"``, escaped exactly as N-Triples requires."""
    if '"' in lex or "\\" in lex or "\n" in lex or "\r" in lex:
        lex = lex.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{lex}"'


_LANG_SUFFIX: dict[str, str] = {}


def lang_suffix(lang: str) -> str:
    """``@lang`` (lower case) for a language tag; ValueError if it is not one."""
    suffix = _LANG_SUFFIX.get(lang)
    if suffix is None:
        if not _LANG.fullmatch(lang):
            raise ValueError(f"not a language tag: {lang!r}")
        if len(_LANG_SUFFIX) >= MEMO_LIMIT:
            _LANG_SUFFIX.clear()
        suffix = _LANG_SUFFIX[lang] = "@" + lang.lower()
    return suffix


def literal(lex: str, lang: str | None = None, datatype: str | None = None) -> str:
    """N-Triples form of a literal, escaped exactly as N-Triples requires."""
    if lang:
        return quoted(lex) + lang_suffix(lang)
    if datatype and datatype != XSD + "string":
        return f"{quoted(lex)}^^<{datatype}>"
    return quoted(lex)


def is_iri_term(term: str) -> bool:
    return term.startswith("<")


def iri_value(term: str) -> str:
    """The IRI inside an N-Triples ``<...>`` term."""
    return term[1:-1]


_UNESC = re.compile(r'\\(["\\nrtbf]|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8})')
_UNESC_MAP = {'"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}


def _unescape(match: re.Match[str]) -> str:
    s = match.group(1)
    return _UNESC_MAP.get(s) or chr(int(s[1:], 16))


def split_literal(term: str) -> tuple[str, str | None, str | None]:
    """(lexical form, language, datatype IRI) of an N-Triples literal term."""
    end = term.rindex('"')
    lex = term[1:end]
    if "\\" in lex:
        lex = _UNESC.sub(_unescape, lex)
    rest = term[end + 1:]
    if rest.startswith("@"):
        return lex, rest[1:], None
    if rest.startswith("^^<"):
        return lex, None, rest[3:-1]
    return lex, None, None
