"""Named value transforms usable from mapping files (``transform: date``).

Every transform takes the source value (a string) and returns a ``str``, a ``Typed`` (lexical
form + datatype, used by ``datatype: auto``), ``None`` (the value means "no value": no triple, no
error, e.g. "date not known") or a ``Noted`` value (published, with a note for the validation
report saying what was approximated). Bad values raise ``TransformError`` with a message an editor
can act on. Tests (``when: {test: ...}``) return bool.
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


class Noted(NamedTuple):
    """A transform's result with a note for the validation report (an Info: what was approximated)."""
    value: "str | Typed"
    note: str


class TransformError(ValueError):
    """A source value a transform cannot turn into RDF; the message says what to fix."""


TRANSFORMS: dict[str, Callable[[str], str | Typed | Noted | None]] = {}
TESTS: dict[str, Callable[[str], bool]] = {}
IRI_TRANSFORMS = {"iri", "https", "rights"}  # results are IRIs: templates keep them as given
FIELD_TESTS = {"present", "absent"}  # tests of whether a field has a value (the mapping compiler runs them)


MEMO_LIMIT = 65536  # results each memoised transform keeps (then it starts afresh)


class _Failed(NamedTuple):
    message: str


_NONE = _Failed("")  # a memoised None ("no value"): never raised, see ``memoised``


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
            memo[value] = _NONE if hit is None else hit
        if hit.__class__ is _Failed:
            if hit is _NONE:
                return None
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


@transform("https")
def https(value: str) -> str:
    """A protocol-relative URL ("//images.example.org/x.jpg") made ``https:``; an absolute IRI kept as given."""
    v = value.strip()
    return as_iri("https:" + v if v.startswith("//") else v)


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
        "'April 14, 2021', '14 April 2021', 'April 2021'; ranges like 1914/1918 need transform date_range, "
        "museum dates such as 'c.1880', '1880s' or '19th century' need transform edtf)")


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
    try:
        return parse_date(value)
    except TransformError as original:
        try:
            museum = _museum(value)
        except TransformError:
            raise original from None
        if museum is None:
            raise TransformError(f"{value!r} says the date is not known: map the field with transform edtf, "
                                 "which gives no date for it") from None
        raise TransformError(f"{value!r} is a museum date, not one day, month or year: map it with transform edtf "
                             f"(EDTF {museum.edtf}) and edtf_begin / edtf_end (edm:TimeSpan)") from None


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
    """True where transform ``date`` takes the value (so a guard never sends it a museum date)."""
    try:
        date_value(value)
        return True
    except TransformError:
        return False


# -- museum dates (EDTF) -------------------------------------------------------------------

class MuseumDate(NamedTuple):
    edtf: str           # Extended Date/Time Format (ISO 8601-2), checked by the ``edtf`` library
    begin: str          # first year (month, day) covered, at the precision given: for edm:begin
    end: str            # last one: for edm:end
    note: str | None    # what the EDTF does not say of the source value (for the validation report)


_DASHES = str.maketrans({c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2212"})
_DECADE = re.compile(r"(\d{3})0'?s")
_CENTURY = re.compile(r"(\d{1,2})(?:st|nd|rd|th)[\s-]*(?:century|cent\.?|c\.?)")
_UNSPECIFIED = re.compile(r"\d{2,3}x{1,2}")
_SPLIT = re.compile(r"\s*(?:/|-|\b(?:RANGE_WORDS)\b)\s*")
_EDTF_ONLY = re.compile(r"-?[0-9X][0-9X~?%/.:TZ+-]*")
_EDTF_KINDS = {"Date", "DateAndTime", "Interval", "Level1Interval", "Level2Interval", "UncertainOrApproximate",
               "Unspecified", "PartialUncertainOrApproximate", "PartialUnspecified"}
_ACCEPTED = ("accepted: 1880, 1880-04-14, 'April 1880', 'c.1880', 'circa 1880', '?1824', '1880?', '1880s', "
             "'19th century', '1880-85', '1880–5', '1880 to 1885', 'published 1825', EDTF such as 1880~ or 188X; "
             "'date not known', 'undated', 'n.d.' give no date")


@cache
def _date_words() -> dict[str, Any]:
    """data/museum-dates.json, word lists longest first (so 'ca.' is tried before 'c')."""
    words = {k: sorted(v, key=len, reverse=True) for k, v in data_file("museum-dates.json").items()
             if not k.startswith("_")}
    words["unknown"] = set(words["unknown"])
    words["split"] = re.compile(_SPLIT.pattern.replace("RANGE_WORDS", "|".join(map(re.escape, words["range_words"]))))
    return words


def _strip_word(text: str, words: list[str]) -> tuple[str | None, str]:
    """(the word of ``words`` that ``text`` starts with, the rest); a word must not run into letters."""
    for w in words:
        if text.startswith(w):
            rest = text[len(w):]
            if not (w[-1].isalpha() and rest[:1].isalpha()):
                return w, rest.lstrip()
    return None, text


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _core(text: str) -> tuple[str, str, list[str]]:
    """(first EDTF date, last EDTF date, notes) of one catalogue date without qualifiers."""
    if m := _DECADE.fullmatch(text):
        notes = []
        if m[1].endswith("0"):
            c = int(m[1][:2]) + 1
            notes.append(f"{text!r} is read as the decade {m[1]}0-{m[1]}9 (EDTF {m[1]}X); "
                         f"for the century write '{_ordinal(c)} century' or '{m[1][:2]}XX'")
        return m[1] + "X", m[1] + "X", notes
    if m := _CENTURY.fullmatch(text):
        n = int(m[1])
        if not 1 <= n <= 21:
            raise TransformError(f"{text!r}: no {_ordinal(n)} century")
        return f"{(n - 1) * 100 + 1:04d}", f"{n * 100:04d}", []
    if _UNSPECIFIED.fullmatch(text):
        return text.upper(), text.upper(), []
    if re.fullmatch(r"\d{3}", text):
        return f"{int(text):04d}", f"{int(text):04d}", []
    lex = parse_date(text).lex  # 1880, 1880-04-14, 'April 1880', '14 April 1880'
    return lex, lex, []


def _side(text: str) -> tuple[str, str, str, list[str]]:
    """(first date, last date, EDTF qualifier '' ~ ? %, notes) of one end of a catalogue date."""
    words = _date_words()
    approx = uncertain = False
    while True:
        w, text = _strip_word(text, words["approximate"])
        if w:
            approx = True
            continue
        w, text = _strip_word(text, words["uncertain"])
        if w:
            uncertain = True
            continue
        break
    for mark in ("(?)", "?"):
        if text.endswith(mark):
            text, uncertain = text[:-len(mark)].rstrip(), True
    part, text = _strip_word(text, words["century_parts"])
    first, last, notes = _core(text)
    if part:
        if not _CENTURY.fullmatch(text):
            raise TransformError(f"{part!r} is understood before a century only (e.g. '{part} 19th century')")
        notes.append(f"'{part.rstrip('-')}' is not kept: the whole {text} ({first}/{last})")
    return first, last, "%" if approx and uncertain else "~" if approx else "?" if uncertain else "", notes


def _precision(token: str) -> int:
    """1 year, 2 month, 3 day: how much of an EDTF date is given (an X makes a part unspecified)."""
    parts = re.sub(r"[~?%]", "", token).lstrip("-").split("T")[0].split("-")
    n = 0
    for p in parts[:3]:
        if "X" in p:
            break
        n += 1
    return max(n, 1)


def _bound(t, precision: int) -> str:
    y = f"-{-t.tm_year:04d}" if t.tm_year < 0 else f"{t.tm_year:04d}"
    return y + (f"-{t.tm_mon:02d}" if precision > 1 else "") + (f"-{t.tm_mday:02d}" if precision > 2 else "")


def _made_bounds(value: str, tokens: list[str]) -> tuple[str, str]:
    """(begin, end) of the EDTF ``museum_date`` makes (years, months, days, 188X, 18XX; ~ ? %), without
    the ``edtf`` library, which takes 5-40 ms a value; tests check that both agree."""
    def bound(token: str, last: bool) -> tuple[str, tuple[int, int, int]]:
        core = re.sub(r"[~?%]", "", token)
        if "X" in core:
            y = core.replace("X", "9" if last else "0")
            return y, (int(y), 12 if last else 1, 31 if last else 1)
        parts = [int(x) for x in core.split("-")]
        return core, (parts[0], parts[1] if len(parts) > 1 else 12 if last else 1,
                      parts[2] if len(parts) > 2 else 31 if last else 1)
    (begin, low), (end, high) = bound(tokens[0], False), bound(tokens[-1], True)
    if low > high:
        raise TransformError(f"{value!r}: the range ends before it begins")
    return begin, end


def _edtf_bounds(value: str, edtf: str) -> tuple[str, str]:
    """(begin, end) of an EDTF string read by the ``edtf`` library; other EDTF features are refused."""
    from edtf import parse_edtf  # imported when first needed: it takes ~90 ms
    from edtf.parser.edtf_exceptions import EDTFParseException
    for token in edtf.split("/"):   # the library takes 2023-02-29 as a date: check the calendar ourselves
        if m := re.fullmatch(r"(\d{4})-(\d{2})(?:-(\d{2}))?", re.sub(r"[~?%]", "", token)):
            if int(m[2]) <= 12:
                _ymd(m[1], m[2], m[3], value)
    try:
        parsed = parse_edtf(edtf)
        if type(parsed).__name__ not in _EDTF_KINDS:
            raise TransformError(f"{value!r}: EDTF {type(parsed).__name__} ({edtf}) is not taken as a date here "
                                 f"({_ACCEPTED})")
        lower, upper = parsed.lower_strict(), parsed.upper_strict()
    except (EDTFParseException, TypeError, ValueError, AttributeError) as e:
        if isinstance(e, TransformError):
            raise
        raise TransformError(f"{value!r} is not a date ({_ACCEPTED})") from None
    if lower > upper:
        raise TransformError(f"{value!r}: the range ends before it begins")
    tokens = edtf.split("/")
    return _bound(lower, _precision(tokens[0])), _bound(upper, _precision(tokens[-1]))


def museum_date(value: str) -> MuseumDate | None:
    """A museum catalogue date read as EDTF, with its bounds; None for 'date not known' and the like.

    The words it understands are data (``data/museum-dates.json``). EDTF given as such is read by
    the ``edtf`` library, which gives its bounds; the few forms of EDTF this function makes have
    their bounds computed here (the library agrees: tests/test_transforms.py)."""
    words = _date_words()
    v = " ".join(value.translate(_DASHES).lower().split())
    if v in words["unknown"] or v.rstrip(".") in words["unknown"]:
        return None
    if not v:
        raise TransformError(f"{value!r} is not a date ({_ACCEPTED})")
    notes: list[str] = []
    dropped, v = _strip_word(v, words["dropped"])
    if dropped:
        notes.append(f"'{dropped}' is not kept")
    try:
        first, last, q, side_notes = _side(v)
        notes += side_notes
        tokens = [first + q] if first == last else [first + q, last + q]
    except TransformError as single:
        tokens = []
        between, v = _strip_word(v, words["between"])
        for m in words["split"].finditer(v):
            left, right = v[:m.start()], v[m.end():]
            if not left or not right:
                continue
            if _CENTURY.fullmatch(right) and re.fullmatch(r"\d{1,2}(?:st|nd|rd|th)", left):
                left += " century"                               # 18th-19th century
            try:
                first, _, q1, n1 = _side(left)
                if re.fullmatch(r"\d{1,3}", right) and re.fullmatch(r"\d{4}", first):
                    right = first[:4 - len(right)] + right       # 1880-85, 1880–5
                _, last, q2, n2 = _side(right)
            except TransformError:
                continue
            tokens = [first + q1, last + (q2 or q1)]
            notes += n1 + n2
            break
        if not tokens:
            if "is not a date (accepted" not in str(single):
                raise single                                     # a month, day or century that does not exist
            raw = value.strip()
            if _EDTF_ONLY.fullmatch(raw):                        # EDTF as such: 1880~, 1880?/1885~, 18XX~
                begin, end = _edtf_bounds(value, raw)
                return MuseumDate(raw, begin, end, None)
            raise TransformError(f"{value!r} is not a date ({_ACCEPTED})") from None
    begin, end = _made_bounds(value, tokens)
    return MuseumDate("/".join(tokens), begin, end, "; ".join(notes) or None)


@memoised
def _museum(value: str) -> MuseumDate | None:
    return museum_date(value)


def _noted(value: str, result: str, d: MuseumDate) -> str | Noted:
    if d.note is None:
        return result
    return Noted(result, f"{value!r} is published as EDTF {d.edtf} ({d.begin} to {d.end}): {d.note}")


@transform("edtf")
def edtf(value: str) -> str | Noted | None:
    """A museum date as EDTF: 'c.1880' -> 1880~, '1880s' -> 188X, '1880-85' -> 1880/1885; 'not known' -> no value."""
    d = _museum(value)
    return None if d is None else _noted(value, d.edtf, d)


@transform("edtf_begin")
def edtf_begin(value: str) -> str | Noted | None:
    """The first year (month, day) a museum date covers: '1880s' -> 1880, '19th century' -> 1801."""
    d = _museum(value)
    return None if d is None else _noted(value, d.begin, d)


@transform("edtf_end")
def edtf_end(value: str) -> str | Noted | None:
    """The last year (month, day) a museum date covers: '1880s' -> 1889, '19th century' -> 1900."""
    d = _museum(value)
    return None if d is None else _noted(value, d.end, d)


@transform("edtf_interval")
def edtf_interval(value: str) -> str | Noted | None:
    """The ISO 8601 interval a museum date covers, for schema:temporalCoverage: '1880s' -> 1880/1889."""
    d = _museum(value)
    return None if d is None else _noted(value, d.begin if d.begin == d.end else f"{d.begin}/{d.end}", d)


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
