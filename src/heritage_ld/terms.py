"""RDF terms as N-Triples strings: the representation used on the per-record hot path.

A triple is a tuple of three strings, each an N-Triples term: ``<iri>``, ``"lex"``,
``"lex"@lang`` or ``"lex"^^<datatype>``. Building strings is ~10x cheaper than creating
rdflib or pyoxigraph terms (see DESIGN.md), and N-Triples is what every store loads.
"""
from __future__ import annotations

import re

import pyoxigraph as ox

Triple = tuple[str, str, str]

XSD = "http://www.w3.org/2001/XMLSchema#"
RDF_TYPE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"

# Characters XML 1.0 cannot carry (and which no metadata field should contain).
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# The Unicode non-characters: U+FDD0..U+FDEF and the last two code points of every plane.
_NONCHARACTERS = "\ufdd0-\ufdef" + "".join(f"{chr(p + 0xFFFE)}{chr(p + 0xFFFF)}" for p in range(0, 0x110000, 0x10000))
# What no value taken from data may contain: control characters (C0 but tab, line feed and carriage
# return; DEL; C1), lone surrogates (UTF-8 cannot encode them) and non-characters.
UNUSABLE = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff{_NONCHARACTERS}]")
# ... and what no record id may contain besides: any control character (an id names files and IRIs).
UNUSABLE_IN_ID = re.compile(f"[\x00-\x1f\x7f-\x9f\ud800-\udfff{_NONCHARACTERS}]")
# RFC 3987 IRI: scheme, then no characters N-Triples forbids inside <...>; the rest is checked by
# pyoxigraph (percent-encoding, authority, the code points RFC 3987 allows) and ``_IRI_SPACE``.
_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\x00-\x20<>\"{}|^`\\]*")
# Unicode spaces and bidirectional formatting characters: RFC 3987 forbids the latter, and parsers
# (rdflib's N-Triples) take the former for the end of the IRI.
_IRI_SPACE = re.compile("[\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u200e\u200f\u202a-\u202e"
                        "\u2066-\u2069]")
_LANG = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")
MEMO_LIMIT = 16384  # IRIs and language tags remembered as checked (then the memo starts afresh)
_IRI_MEMO: dict[str, bool] = {}


def is_iri(value: str) -> bool:
    """True if ``value`` is an absolute IRI that N-Triples, Turtle and RDF/XML can all carry."""
    ok = _IRI_MEMO.get(value)
    if ok is None:
        ok = bool(_IRI.fullmatch(value)) and not _IRI_SPACE.search(value)
        if ok:
            try:
                ox.NamedNode(value)
            except ValueError:
                ok = False
        if len(_IRI_MEMO) >= MEMO_LIMIT:
            _IRI_MEMO.clear()
        _IRI_MEMO[value] = ok
    return ok


def unusable_char(value: str, pattern: re.Pattern = UNUSABLE) -> str | None:
    """What is wrong with ``value`` (e.g. "contains control character U+000B, which XML cannot carry"),
    if it has a character of ``pattern``; None if it has none."""
    m = pattern.search(value)
    if m is None:
        return None
    c = m.group()
    code = f"U+{ord(c):04X}"
    if "\ud800" <= c <= "\udfff":
        return (f"contains {code}, half of a UTF-16 surrogate pair without its other half, which UTF-8 cannot "
                "encode (a broken \\u escape in the source?)")
    if XML_ILLEGAL.match(c):
        kind = "non-character" if c in "\ufffe\uffff" else "control character"
        return f"contains {kind} {code}, which XML cannot carry"
    if ord(c) < 0xA0:
        return f"contains control character {code}"
    return f"contains non-character {code}, which is not meant for text"


def nt_lines(triples) -> str:
    """Triples as N-Triples lines (the stored form of a record's triples, and its N-Triples dump)."""
    text = " .\n".join(map(" ".join, triples))
    return text + " .\n" if text else ""


LINES = "(length({0}) - length(replace({0}, char(10), '')))"  # SQL: the lines (triples) of an nt_lines column


def parse_nt(text: str) -> list[Triple]:
    """The triples of ``nt_lines`` text. Subjects and predicates hold no space (IRIs and blank nodes),
    and a literal no line break (N-Triples escapes it), so each line splits at its first two spaces."""
    return [tuple(line.split(" ", 2)) for line in text[:-3].split(" .\n")] if text else []  # type: ignore[misc]


def iri(value: str) -> str:
    """N-Triples form of an absolute IRI; ValueError if it is not one."""
    if not is_iri(value):
        raise ValueError(f"not an absolute IRI: {value!r}")
    return f"<{value}>"


def escape(lex: str) -> str:
    """The text of a literal as N-Triples writes it between quotes."""
    return lex.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")


def quoted(lex: str) -> str:
    """``"lex"``, escaped exactly as N-Triples requires."""
    if '"' in lex or "\\" in lex or "\n" in lex or "\r" in lex:
        lex = escape(lex)
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
