"""Every registered transform and test in heritage_ld.transforms, as unit tests."""
from __future__ import annotations

import pytest

from heritage_ld.transforms import (
    IRI_TRANSFORMS, TESTS, TRANSFORMS, Noted, TransformError, Typed, _edtf_bounds, data_file, segment,
)

XSD = "http://www.w3.org/2001/XMLSchema#"
date = TRANSFORMS["date"]
date_range = TRANSFORMS["date_range"]
range_begin, range_end = TRANSFORMS["range_begin"], TRANSFORMS["range_end"]
duration = TRANSFORMS["duration"]
rights = TRANSFORMS["rights"]
language = TRANSFORMS["language"]
slug, iri, text = TRANSFORMS["slug"], TRANSFORMS["iri"], TRANSFORMS["text"]
STATEMENTS = data_file("rights.json")["statements"]


def test_registry_is_what_the_mapping_language_documents():
    assert set(TRANSFORMS) == {"text", "slug", "iri", "https", "language", "date", "date_range", "range_begin",
                               "range_end", "duration", "rights", "edtf", "edtf_begin", "edtf_end", "edtf_interval",
                               "markdown", "headings"}
    assert set(TESTS) == {"date_range", "single_date", "europeana_rights", "has_headings"}
    assert IRI_TRANSFORMS <= set(TRANSFORMS)


# -- dates -----------------------------------------------------------------------------------

@pytest.mark.parametrize("value, lex, dtype", [
    ("2021-04-14", "2021-04-14", "date"),
    ("  2021-04-14 ", "2021-04-14", "date"),
    ("2021-04", "2021-04", "gYearMonth"),
    ("1890", "1890", "gYear"),
    ("Wednesday April 14, 2021", "2021-04-14", "date"),
    ("April 14, 2021", "2021-04-14", "date"),
    ("Apr 14 2021", "2021-04-14", "date"),
    ("July 4th, 1776", "1776-07-04", "date"),
    ("14 April 2021", "2021-04-14", "date"),
    ("Thursday, 1 July 2021", "2021-07-01", "date"),
    ("14 june 2023", "2023-06-14", "date"),
    ("April 2021", "2021-04", "gYearMonth"),
    ("Sep 2021", "2021-09", "gYearMonth"),
    ("2024-02-29", "2024-02-29", "date"),
    ("2021-04-14T09:30:00Z", "2021-04-14T09:30:00Z", "dateTime"),
    ("2021-04-14T09:30+02:00", "2021-04-14T09:30:00+02:00", "dateTime"),
    ("2021-04-14T09:30:00.5-05:00", "2021-04-14T09:30:00.5-05:00", "dateTime"),
    ("2021-04-14T09:30:00", "2021-04-14T09:30:00", "dateTime"),
])
def test_date_normalises(value, lex, dtype):
    assert date(value) == Typed(lex, XSD + dtype)


@pytest.mark.parametrize("value, fragment", [
    ("2021-02-30", "is not a calendar date"),
    ("2023-02-29", "is not a calendar date"),
    ("31 April 2021", "is not a calendar date"),
    ("2021-13", "has no month 13"),
    ("2021-00-10", "has no month 0"),
    ("2021-02-30T10:00:00Z", "is not a calendar date"),
    ("2021-04-14T25:00:00Z", "not a valid time"),
    ("2021-04-14T09:60Z", "not a valid time"),
    ("2021-04-14T09:30:00+15:00", "not a valid time"),
    ("Smarch 2021", "unknown month 'smarch'"),
    ("sometime in spring", "is not a date (accepted:"),
    ("14/04/2021", "is not a date"),
    ("2021-4-14", "is not a date"),
    ("", "is not a date"),
])
def test_date_rejects_with_value_in_message(value, fragment):
    with pytest.raises(TransformError) as e:
        date(value)
    assert repr(value) in str(e.value)
    assert fragment in str(e.value)


@pytest.mark.parametrize("value", ["1914/1918", "1914-1918", "1914 – 1918", "1914–1918", "1914 - 1918",
                                   "1914 / 1918", "1914—1918"])
def test_ranges(value):
    assert date_range(value) == "1914/1918"
    assert range_begin(value) == "1914" and range_end(value) == "1918"
    assert TESTS["date_range"](value) and not TESTS["single_date"](value)
    with pytest.raises(TransformError, match="is a date range; map it with transform date_range"):
        date(value)


def test_range_of_mixed_precision_and_month_names():
    assert date_range("2021-04-01/2021-05") == "2021-04-01/2021-05"
    assert date_range("April 1914 - May 1918") == "1914-04/1918-05"
    assert range_begin("April 1914 - May 1918") == "1914-04"
    assert range_end("April 1914 - May 1918") == "1918-05"


@pytest.mark.parametrize("value", ["1918/1914", "1918-1914", "2021-04-14/2021-04-13"])
def test_reversed_range(value):
    for fn in (date_range, range_begin, range_end, date):
        with pytest.raises(TransformError, match="the range ends before it begins"):
            fn(value)
    # the test routes it to date_range, which then reports it
    assert TESTS["date_range"](value)


@pytest.mark.parametrize("value", ["2021-04-14", "1890", "April 2021", "sometime", "1914-1918-1920"])
def test_not_a_range(value):
    assert not TESTS["date_range"](value)


@pytest.mark.parametrize("value", ["2021-04-14", "1890", "April 2021", "2021-04-14T09:30:00Z"])
def test_single_date_is_what_date_takes(value):
    assert TESTS["single_date"](value)
    date(value)
    with pytest.raises(TransformError, match="is not a date range"):
        date_range(value)


# -- durations -------------------------------------------------------------------------------

@pytest.mark.parametrize("value, lex", [
    ("2 minutes to read", "PT2M"),
    ("5 min read", "PT5M"),
    ("1 hour 5 min", "PT1H5M"),
    ("1 hour, 5 min", "PT1H5M"),
    ("1h30m", "PT1H30M"),
    ("2 minutes and 30 seconds", "PT2M30S"),
    ("90 seconds", "PT90S"),
    ("PT3M", "PT3M"),
    ("P1D", "P1D"),
    ("P1Y2M3DT4H5M6.5S", "P1Y2M3DT4H5M6.5S"),
    (" PT3M ", "PT3M"),
    ("0 minutes", "PT0S"),
])
def test_duration(value, lex):
    assert duration(value) == Typed(lex, XSD + "duration")


@pytest.mark.parametrize("value", ["soon", "", "2 fortnights", "P", "PT", "P1H", "a few minutes", "3"])
def test_bad_duration(value):
    with pytest.raises(TransformError) as e:
        duration(value)
    assert f"{value!r} is not a duration" in str(e.value)
    assert "PT2M" in str(e.value)


# -- rights ----------------------------------------------------------------------------------

def _variants(s: dict) -> list[str]:
    uri = s["uri"]
    https = uri.replace("http://", "https://")
    out = [uri, https, uri.rstrip("/"), https.rstrip("/"), s["label"], s["label"].upper(), s["notation"],
           f"  {s['label']}  ", s["label"].replace(" - ", " \u2013 "), *s["altLabels"]]
    if "rightsstatements.org" in uri:
        out += [uri.replace("/vocab/", "/page/"), https.replace("/vocab/", "/page/") + "?language=en"]
    else:
        out += [https + "deed.en", https + "deed", https + "legalcode", "www." not in https and
                https.replace("https://", "https://www.")]
    return [v for v in out if v]


@pytest.mark.parametrize("s", STATEMENTS, ids=[s["notation"] for s in STATEMENTS])
def test_every_rights_label_and_uri_variant(s):
    for v in _variants(s):
        assert rights(v) == s["uri"], v


def test_rights_common_spellings():
    assert rights("CC BY-SA 4.0") == "http://creativecommons.org/licenses/by-sa/4.0/"
    assert rights("CC-BY-SA-4.0") == "http://creativecommons.org/licenses/by-sa/4.0/"
    assert rights("cc by 4.0") == "http://creativecommons.org/licenses/by/4.0/"
    assert rights("Public Domain Mark 1.0") == "http://creativecommons.org/publicdomain/mark/1.0/"
    assert rights("CC0") == "http://creativecommons.org/publicdomain/zero/1.0/"
    assert rights("https://creativecommons.org/licenses/by/4.0") == "http://creativecommons.org/licenses/by/4.0/"
    assert rights("https://rightsstatements.org/page/InC/1.0/?language=en") == \
        "http://rightsstatements.org/vocab/InC/1.0/"


@pytest.mark.parametrize("value", ["All rights reserved", "http://creativecommons.org/licenses/by/3.0/",
                                   "CC BY-SA 5.0", "copyright"])
def test_unknown_rights_lists_accepted_labels(value):
    with pytest.raises(TransformError) as e:
        rights(value)
    msg = str(e.value)
    assert f"unknown rights statement {value!r}" in msg
    assert "accepted labels:" in msg
    for s in STATEMENTS:
        assert repr(s["label"]) in msg


def test_europeana_rights():
    ok = TESTS["europeana_rights"]
    for s in STATEMENTS:
        assert ok(s["uri"]) is s["europeana"], s["uri"]
    assert ok(rights("In Copyright"))
    assert not ok(rights("In Copyright - Non-Commercial Use Permitted"))
    assert ok("http://creativecommons.org/licenses/by/3.0/nl/")
    # only canonical URIs count (the rights transform produces them)
    assert not ok("https://rightsstatements.org/vocab/InC/1.0/")
    assert not ok("In Copyright")


# -- languages ------------------------------------------------------------------------------

@pytest.mark.parametrize("value, tag", [
    ("English", "en"), ("english", "en"), (" Dutch ", "nl"), ("German", "de"),
    ("en", "en"), ("EN", "en"), ("en-gb", "en-GB"), ("en-GB", "en-GB"), ("nl-BE", "nl-BE"), ("nl_BE", "nl-BE"),
    ("eng", "en"), ("nld", "nl"), ("deu", "de"), ("deu-CH", "de-CH"), ("zh-Hant-TW", "zh-Hant-TW"),
])
def test_language(value, tag):
    assert language(value) == tag


@pytest.mark.parametrize("value", ["Klingon", "e", "123", "english language", "", "en-"])
def test_bad_language(value):
    with pytest.raises(TransformError) as e:
        language(value)
    assert f"unknown language {value!r}" in str(e.value)


# -- slug, iri, text --------------------------------------------------------------------------

@pytest.mark.parametrize("value, out", [
    ("Dr Cynthia Liem", "dr-cynthia-liem"), ("Émile Zola", "emile-zola"), ("---a--b--", "a-b"),
    ("Ça va?", "ca-va"), ("1914/1918", "1914-1918"), ("already-a-slug", "already-a-slug"),
])
def test_slug(value, out):
    assert slug(value) == out


@pytest.mark.parametrize("value", ["  --  ", "日本", ""])
def test_bad_slug(value):
    with pytest.raises(TransformError, match="cannot make a URI-safe id"):
        slug(value)


@pytest.mark.parametrize("value, out", [
    ("https://example.org/a%20b", "https://example.org/a%20b"),   # kept exactly: never re-encoded
    (" https://example.org/x ", "https://example.org/x"),
    ("https://example.org/é?q=1&r=2#f", "https://example.org/é?q=1&r=2#f"),
    ("urn:isbn:123", "urn:isbn:123"), ("mailto:x@example.org", "mailto:x@example.org"),
])
def test_iri(value, out):
    assert iri(value) == out


@pytest.mark.parametrize("value", ["https://example.org/a b", "example.org", "/relative/path",
                                   "https://ex.org/<x>", 'https://ex.org/"q"', ""])
def test_bad_iri(value):
    with pytest.raises(TransformError) as e:
        iri(value)
    assert "is not an absolute IRI" in str(e.value)


def test_text():
    assert text("  a  b\n c ") == "a b c"
    assert text("x\u00a0y\tz") == "x y z"
    assert text("") == ""


def test_segment_percent_encodes_one_path_segment():
    assert segment("a b/c?d#e") == "a%20b%2Fc%3Fd%23e"
    assert segment("émile") == "%C3%A9mile"
    assert segment("keep-._~:@") == "keep-._~:@"


def test_errors_are_value_errors():
    # callers catching ValueError (e.g. CLI) also see transform errors
    assert issubclass(TransformError, ValueError)


def test_segment_shortcut_agrees_with_quote():
    from urllib.parse import quote
    for value in ["", "a-b_c.d~e", "x:y@z!$&'()*+,;=", "a b", "é", "a/b", "100%", "日本", "a\x00b"]:
        assert segment(value) == quote(value, safe="-._~!$&'()*+,;=:@")


def test_memoised_transforms_repeat_results_and_errors():
    for _ in range(2):
        assert date("14 April 2021") == Typed("2021-04-14", XSD + "date")
        with pytest.raises(TransformError, match="is not a calendar date"):
            date("2021-02-30")
        assert language("Dutch") == "nl"


# -- museum dates (EDTF) --------------------------------------------------------------------------

edtf, edtf_begin, edtf_end = TRANSFORMS["edtf"], TRANSFORMS["edtf_begin"], TRANSFORMS["edtf_end"]
edtf_interval = TRANSFORMS["edtf_interval"]


MUSEUM_DATES = [
    ("c.1880", "1880~", "1880", "1880"),
    ("circa 1880", "1880~", "1880", "1880"),
    ("ca. 1880", "1880~", "1880", "1880"),
    ("c1880", "1880~", "1880", "1880"),
    ("1880–5", "1880/1885", "1880", "1885"),
    ("1880-85", "1880/1885", "1880", "1885"),
    ("1880 - 1885", "1880/1885", "1880", "1885"),
    ("1880 to 1885", "1880/1885", "1880", "1885"),
    ("between 1880 and 1885", "1880/1885", "1880", "1885"),
    ("c. 1880–1885", "1880~/1885~", "1880", "1885"),
    ("1880s", "188X", "1880", "1889"),
    ("1920s–1930s", "192X/193X", "1920", "1939"),
    ("?1824", "1824?", "1824", "1824"),
    ("1824?", "1824?", "1824", "1824"),
    ("1824 (?)", "1824?", "1824", "1824"),
    ("c.1880?", "1880%", "1880", "1880"),
    ("19th century", "1801/1900", "1801", "1900"),
    ("18th–19th century", "1701/1900", "1701", "1900"),
    ("1880", "1880", "1880", "1880"),
    ("April 1880", "1880-04", "1880-04", "1880-04"),
    ("14 April 1880", "1880-04-14", "1880-04-14", "1880-04-14"),
    ("1880-04/1880-06", "1880-04/1880-06", "1880-04", "1880-06"),
    # EDTF given as such is read by the edtf library
    ("1880~", "1880~", "1880", "1880"),
    ("188X", "188X", "1880", "1889"),
    ("18XX", "18XX", "1800", "1899"),
    ("1880?/1885~", "1880?/1885~", "1880", "1885"),
    ("published 1825", "1825", "1825", "1825"),
    ("mid-19th century", "1801/1900", "1801", "1900"),
    ("1800s", "180X", "1800", "1809"),
    ("c. 1880-1885?", "1880~/1885?", "1880", "1885"),
]


@pytest.mark.parametrize("value, lex, begin, end", MUSEUM_DATES)
def test_museum_dates(value, lex, begin, end):
    got = [r.value if isinstance(r, Noted) else r for r in (fn(value) for fn in (edtf, edtf_begin, edtf_end,
                                                                                edtf_interval))]
    assert got == [lex, begin, end, begin if begin == end else f"{begin}/{end}"]
    assert not TESTS["single_date"](value) or value in ("1880", "April 1880", "14 April 1880")


@pytest.mark.parametrize("value, lex, begin, end", MUSEUM_DATES)
def test_museum_date_bounds_agree_with_the_edtf_library(value, lex, begin, end):
    """museum_date computes the bounds of the EDTF it makes itself (the library takes 5-40 ms a
    value); the edtf library, reading that EDTF, must give the same years."""
    assert _edtf_bounds(value, lex) == (begin, end)


@pytest.mark.parametrize("value, lex, note", [
    ("published 1825", "1825", "'published' is not kept"),
    ("early 19th century", "1801/1900", "'early' is not kept: the whole 19th century (1801/1900)"),
    ("mid-19th century", "1801/1900", "'mid' is not kept"),
    ("1800s", "180X", "read as the decade 1800-1809 (EDTF 180X); for the century write '19th century' or '18XX'"),
])
def test_museum_dates_note_what_is_not_kept(value, lex, note):
    r = edtf(value)
    assert isinstance(r, Noted) and r.value == lex
    assert r.note.startswith(f"{value!r} is published as EDTF {lex}") and note in r.note


@pytest.mark.parametrize("value", ["date not known", "Date not known", "not known", "unknown", "undated", "n.d.",
                                   "N.D.", "no date", "s.d."])
def test_date_not_known_is_no_value(value):
    assert edtf(value) is None and edtf_begin(value) is None and edtf_end(value) is None
    assert edtf_interval(value) is None


@pytest.mark.parametrize("value, fragment", [
    ("sometime", "is not a date (accepted:"),
    ("1880, 1885", "is not a date (accepted:"),
    ("1885-1880", "the range ends before it begins"),
    ("31 April 1880", "is not a calendar date"),
    ("22nd century", "no 22nd century"),
    ("early 1880", "'early' is understood before a century only"),
    ("1880-21", "the range ends before it begins"),      # not the EDTF season 'spring 1880'
    ("[1880, 1885]", "is not a date"),                   # EDTF 'one of a set' is not a date here
    ("2023-02-29", "is not a calendar date"),            # the edtf library would take it
    ("", "is not a date"),
])
def test_museum_dates_rejected(value, fragment):
    with pytest.raises(TransformError) as e:
        edtf(value)
    assert fragment in str(e.value)


@pytest.mark.parametrize("value", ["c.1880", "1880s", "?1824", "published 1825", "date not known", "19th century",
                                   "1880-85", "1880–5", "circa 1880"])
def test_single_date_no_longer_takes_museum_dates(value):
    """single_date guards transform date: it is false wherever date would fail."""
    assert not TESTS["single_date"](value)
    with pytest.raises(TransformError) as e:
        date(value)
    assert "transform edtf" in str(e.value) or "date_range" in str(e.value)


def test_https_makes_protocol_relative_urls_absolute():
    https = TRANSFORMS["https"]
    assert https("//images.example.org/x.jpg") == "https://images.example.org/x.jpg"
    assert https(" http://images.example.org/x.jpg ") == "http://images.example.org/x.jpg"
    with pytest.raises(TransformError):
        https("images.example.org/x.jpg")
    assert "https" in IRI_TRANSFORMS
