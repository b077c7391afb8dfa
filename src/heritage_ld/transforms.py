"""Named value transforms usable from mapping files (``transform: date``).

Every transform takes the source value (a string) and returns a ``str`` or a ``Typed``
(lexical form + datatype, used by ``datatype: auto``). Bad values raise ``TransformError``
with a message an editor can act on. Tests (``when: {test: ...}``) return bool.
"""
from __future__ import annotations

import calendar
import json
import re
import unicodedata
from datetime import date
from functools import cache, wraps
from importlib import resources
from typing import Any, Callable, NamedTuple
from urllib.parse import quote

from .terms import XSD, is_iri


class Typed(NamedTuple):
    lex: str
    datatype: str


class TransformError(ValueError):
    """A source value a transform cannot turn into RDF; the message says what to fix."""


TRANSFORMS: dict[str, Callable[[str], str | Typed]] = {}
TESTS: dict[str, Callable[[str], bool]] = {}
IRI_TRANSFORMS = {"iri", "rights"}  # results are IRIs: templates keep them as given


MEMO_LIMIT = 65536  # results each memoised transform keeps (then it starts afresh)


class _Failed(NamedTuple):
    message: str


def memoised(fn: Callable[[str], Any]) -> Callable[[str], Any]:
    """``fn`` remembering its result, or its TransformError, for up to MEMO_LIMIT recent values."""
    memo: dict[str, Any] = {}

    @wraps(fn)
    def run(value: str) -> Any:
        hit = memo.get(value)
        if hit is None:
            try:
                hit = fn(value)
            except TransformError as e:
                hit = _Failed(str(e))
            if len(memo) >= MEMO_LIMIT:
                memo.clear()
            memo[value] = hit
        if hit.__class__ is _Failed:
            raise TransformError(hit.message)
        return hit
    return run


def transform(name: str, memo: bool = False):
    """Register a transform; ``memo`` for those worth memoising (values repeat, parsing costs)."""
    def register(fn):
        TRANSFORMS[name] = memoised(fn) if memo else fn
        return TRANSFORMS[name]
    return register


def test(name: str, memo: bool = False):
    def register(fn):
        TESTS[name] = memoised(fn) if memo else fn
        return TESTS[name]
    return register


@cache
def data_file(name: str):
    """A JSON file bundled in ``heritage_ld/data``."""
    return json.loads(resources.files("heritage_ld").joinpath("data").joinpath(name).read_text("utf-8"))


# -- text ------------------------------------------------------------------------------

@transform("text")
def normalise_text(value: str) -> str:
    """Trim and collapse runs of whitespace (what a CMS rich-text export leaves)."""
    return " ".join(value.split())


# -- Markdown (CMS long-text fields; Contentful Rich Text arrives as Markdown) -----------------

@cache
def _markdown():
    from markdown_it import MarkdownIt
    return MarkdownIt("commonmark")


def _markdown_blocks(value: str) -> list[tuple[bool, str]]:
    """(is a heading, plain text) of each block of Markdown text, in order: headings, paragraphs,
    list items (with their marker), code; emphasis and link syntax removed, link text kept, images
    left out. Raw HTML is kept as written (and the markup check then objects to it)."""
    blocks: list[tuple[bool, str]] = []
    markers: list[str] = []
    tokens = _markdown().parse(value)
    for i, t in enumerate(tokens):
        if t.type == "list_item_open":
            markers.append(f"{t.info}{t.markup} " if t.info else f"{t.markup} ")
        elif t.type == "inline":
            text = "".join(c.content if c.type in ("text", "code_inline", "html_inline") else
                           "\n" if c.type in ("softbreak", "hardbreak") else "" for c in _skip_images(t.children or []))
            if text.strip():
                blocks.append((tokens[i - 1].type == "heading_open", (markers.pop() if markers else "") + text.strip()))
        elif t.type in ("code_block", "fence", "html_block") and t.content.strip():
            blocks.append((False, t.content.strip("\n")))
        elif t.type == "list_item_close" and markers:
            markers.pop()
    return blocks


def _skip_images(children: list) -> list:
    return [c for c in children if c.type != "image"]


@transform("markdown")
def markdown_text(value: str) -> str:
    """Markdown as plain text (``schema:articleBody``): headings, paragraphs and list items each a
    paragraph of their own, separated by a blank line; markup removed, the words kept exactly."""
    return "\n\n".join(text for _heading, text in _markdown_blocks(value))


@transform("headings")
def markdown_headings(value: str) -> str | None:
    """The headings of Markdown text, one a line (``dcterms:tableOfContents``); None when it has none
    (guard with ``when: {field: ..., test: has_headings}``)."""
    return "\n".join(text for heading, text in _markdown_blocks(value) if heading) or None


@test("has_headings")
def has_headings(value: str) -> bool:
    return any(heading for heading, _text in _markdown_blocks(value))


@transform("slug", memo=True)
def slug(value: str) -> str:
    """URI-safe id: lower case ASCII letters, digits and hyphens ("Dr Cynthia Liem" -> "dr-cynthia-liem")."""
    ascii_ = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    out = re.sub(r"[^a-z0-9]+", "-", ascii_.lower()).strip("-")
    if not out:
        raise TransformError(f"cannot make a URI-safe id from {value!r}")
    return out


@transform("iri")
def as_iri(value: str) -> str:
    """Check an absolute IRI and keep it exactly as given (never re-encoded)."""
    value = value.strip()
    if not is_iri(value):
        raise TransformError(f"{value!r} is not an absolute IRI (expected e.g. https://example.org/page)")
    return value


_SEGMENT_SAFE = "-._~!$&'()*+,;=:@"
_ALL_SAFE = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@]*")


def segment(value: str) -> str:
    """Percent-encode what cannot stand in one IRI path segment (used for template values)."""
    return value if _ALL_SAFE.fullmatch(value) else quote(value, safe=_SEGMENT_SAFE)


# -- languages ---------------------------------------------------------------------------

_LANG_TAG = re.compile(r"([A-Za-z]{2,3})([-_][A-Za-z0-9]{2,8})*")


@transform("language", memo=True)
def language(value: str) -> str:
    """BCP 47 tag from a tag or an English language name: "English" -> "en", "nl-NL" -> "nl-NL"."""
    v = value.strip()
    names = data_file("languages.json")["names"]
    if v.lower() in names:
        return names[v.lower()]
    if _LANG_TAG.fullmatch(v):
        primary, *rest = v.replace("_", "-").split("-")
        codes = data_file("languages.json")["codes"]
        primary = codes.get(primary.lower(), primary.lower())
        return "-".join([primary] + [r.upper() if len(r) == 2 else r for r in rest])
    raise TransformError(f"unknown language {value!r} (expected a code such as 'en' or 'nl-BE', or a name such as 'Dutch')")


# -- dates -------------------------------------------------------------------------------

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
_MONTHS.update({m.lower(): i for i, m in enumerate(calendar.month_abbr) if m})
_MONTHS["sept"] = 9
_DAYS = "|".join(d.lower() for d in calendar.day_name)
_ISO = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
_ISO_DT = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}:\d{2})?")
_MDY = re.compile(rf"(?:(?:{_DAYS}),?\s+)?([a-z]+)\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})")
_DMY = re.compile(rf"(?:(?:{_DAYS}),?\s+)?(\d{{1,2}})(?:st|nd|rd|th)?\s+([a-z]+)\.?,?\s+(\d{{4}})")
_MY = re.compile(r"([a-z]+)\.?\s+(\d{4})")
_RANGE = re.compile(r"(.+?)\s*(?:/|\s[-\u2013\u2014]\s|\u2013|\u2014|(?<=\d)-(?=\d{4}$))\s*(.+)")


def _ymd(y: str, m: str | int | None, d: str | int | None, original: str) -> Typed:
    yi = int(y)
    if m is None:
        return Typed(f"{yi:04d}", XSD + "gYear")
    mi = int(m)
    if not 1 <= mi <= 12:
        raise TransformError(f"{original!r} has no month {mi}")
    if d is None:
        return Typed(f"{yi:04d}-{mi:02d}", XSD + "gYearMonth")
    try:
        return Typed(date(yi, mi, int(d)).isoformat(), XSD + "date")
    except ValueError:
        raise TransformError(f"{original!r} is not a calendar date") from None


def _month(name: str, original: str) -> int:
    if name not in _MONTHS:
        raise TransformError(f"{original!r}: unknown month {name!r}")
    return _MONTHS[name]


def parse_date(value: str) -> Typed:
    v = " ".join(value.strip().split())
    low = v.lower()
    if m := _ISO.fullmatch(v):
        return _ymd(m[1], m[2], m[3], value)
    if m := _ISO_DT.fullmatch(v):
        _ymd(*m[1].split("-"), value)  # checks the calendar date
        hh, mm = int(m[2][:2]), int(m[2][3:5])
        ss = float(m[2][6:]) if m[2].count(":") == 2 else 0.0
        zh, zm = (int(m[3][1:3]), int(m[3][4:6])) if m[3] and m[3] != "Z" else (0, 0)
        if hh > 23 or mm > 59 or ss >= 60 or zh > 14 or zm > 59 or (zh == 14 and zm):
            raise TransformError(f"{value!r} is not a valid time of day or time zone")
        secs = m[2] if m[2].count(":") == 2 else m[2] + ":00"
        return Typed(f"{m[1]}T{secs}{m[3] or ''}", XSD + "dateTime")
    if m := _MDY.fullmatch(low):
        return _ymd(m[3], _month(m[1], value), m[2], value)
    if m := _DMY.fullmatch(low):
        return _ymd(m[3], _month(m[2], value), m[1], value)
    if m := _MY.fullmatch(low):
        return _ymd(m[2], _month(m[1], value), None, value)
    raise TransformError(
        f"{value!r} is not a date (accepted: 2021-04-14, 2021-04, 2021, 2021-04-14T09:30:00Z, "
        "'April 14, 2021', '14 April 2021', 'April 2021'; ranges like 1914/1918 need transform date_range)")


def _split_range(value: str) -> tuple[Typed, Typed] | None:
    v = value.strip()
    if _ISO.fullmatch(v):
        return None
    m = _RANGE.fullmatch(v)
    if not m:
        return None
    try:
        begin, end = parse_date(m[1]), parse_date(m[2])
    except TransformError:
        return None
    if begin.lex > end.lex:
        raise TransformError(f"{value!r}: the range ends before it begins")
    return begin, end


@transform("date", memo=True)
def date_value(value: str) -> Typed:
    """One date, normalised to xsd:date, xsd:gYearMonth, xsd:gYear or xsd:dateTime."""
    if _split_range(value):
        raise TransformError(f"{value!r} is a date range; map it with transform date_range (edm:TimeSpan)")
    return parse_date(value)


@transform("date_range", memo=True)
def date_range(value: str) -> str:
    """An ISO 8601 interval "1914/1918" from "1914-1918", "1914 – 1918", "1914/1918"."""
    parts = _split_range(value)
    if not parts:
        raise TransformError(f"{value!r} is not a date range (expected e.g. 1914/1918)")
    return f"{parts[0].lex}/{parts[1].lex}"


@transform("range_begin", memo=True)
def range_begin(value: str) -> str:
    return date_range(value).split("/")[0]


@transform("range_end", memo=True)
def range_end(value: str) -> str:
    return date_range(value).split("/")[1]


@test("date_range", memo=True)
def is_date_range(value: str) -> bool:
    try:
        return _split_range(value) is not None
    except TransformError:
        return True  # let date_range report it


@test("single_date", memo=True)
def is_single_date(value: str) -> bool:
    return not is_date_range(value)


# -- durations ---------------------------------------------------------------------------

_DUR_UNITS = {"h": "H", "hr": "H", "hrs": "H", "hour": "H", "hours": "H", "m": "M", "min": "M", "mins": "M",
              "minute": "M", "minutes": "M", "s": "S", "sec": "S", "secs": "S", "second": "S", "seconds": "S"}
_DUR_PART = re.compile(r"(\d+)\s*([a-z]+)")
_ISO_DUR = re.compile(r"P(?!$)(\d+Y)?(\d+M)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?")


@transform("duration", memo=True)
def duration(value: str) -> Typed:
    """xsd:duration from "2 minutes to read", "1 hour 5 min" or an ISO 8601 duration ("PT2M")."""
    v = value.strip()
    if _ISO_DUR.fullmatch(v):
        return Typed(v, XSD + "duration")
    text = re.sub(r"\b(to read|read|reading time|long)\b", "", v.lower())
    parts = _DUR_PART.findall(text)
    rest = _DUR_PART.sub("", text).replace(",", "").replace("and", "").strip()
    if not parts or rest or any(u not in _DUR_UNITS for _, u in parts):
        raise TransformError(f"{value!r} is not a duration (expected e.g. '2 minutes to read', '1 hour 5 min', 'PT2M')")
    totals = {"H": 0, "M": 0, "S": 0}
    for n, unit in parts:
        totals[_DUR_UNITS[unit]] += int(n)
    return Typed("PT" + ("".join(f"{n}{u}" for u, n in totals.items() if n) or "0S"), XSD + "duration")


# -- rights ------------------------------------------------------------------------------

def _rights_key(value: str) -> str:
    v = value.strip().lower().replace("\u2013", "-").replace("\u2014", "-").rstrip(".")
    v = re.sub(r"^https?://(www\.)?", "", v)
    v = re.sub(r"/(deed|legalcode)(\.[a-z-]+)?$", "/", v)
    v = v.replace("rightsstatements.org/page/", "rightsstatements.org/vocab/")
    v = re.sub(r"/?\?.*$", "", v).rstrip("/")
    return re.sub(r"[\s_]+", " ", v.replace(" - ", " - "))


@cache
def _rights_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for s in data_file("rights.json")["statements"]:
        uri = s["uri"]
        for alias in (uri, s["label"], s["notation"], *s["altLabels"], s["notation"].replace(" ", "-"),
                      s["notation"].replace("CC ", "CC-").replace(" ", "-")):
            index[_rights_key(alias)] = uri
    return index


@transform("rights", memo=True)
def rights(value: str) -> str:
    """Canonical rights URI (http, /vocab/, trailing slash) from a label, code or URL variant."""
    uri = _rights_index().get(_rights_key(value))
    if uri is None:
        known = ", ".join(repr(s["label"]) for s in data_file("rights.json")["statements"])
        raise TransformError(f"unknown rights statement {value!r}; accepted labels: {known} "
                             "(or their rightsstatements.org / creativecommons.org URIs)")
    return uri


@test("europeana_rights")
def europeana_rights(value: str) -> bool:
    """True if Europeana accepts this rights URI in edm:rights."""
    return any(re.search(p, value) for p in data_file("rights.json")["europeana_patterns"])
