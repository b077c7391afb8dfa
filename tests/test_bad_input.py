"""Bad input through the real CLI (``heritage-ld publish`` as a subprocess).

Every case checks the exit code, a message naming file / record / field, that stderr carries no
traceback, and what happened to the previous ``output/``: untouched on a usage/config/input error
(exit 2), replaced by a complete publication without the held-back records otherwise (exit 1).
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import rdflib

from conftest import copy_sample_project

BASE = "https://data.example.org/"
EXE = Path(sys.executable).parent / "heritage-ld"
CMD = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "heritage_ld.cli"]

CYNTHIA_ARTICLE = "pioneering-ai-for-digital-cultural-heritage-an-interview-with-dr-cynthia-liem"
MUZIEK = "muziek-uit-het-archief"
POSTCARDS = "postcards-from-the-seaside"
GRAMMOFOON = "grammofoonplaten-in-depot"
INC_NC = "http://rightsstatements.org/vocab/InC-NC/1.0/"


def cli(project: Path, command: str = "publish", *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CMD, command, "--project", str(project), *args], capture_output=True, text=True,
                          cwd=project.parent, timeout=300)


def snapshot(out: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``out`` (listing and bytes in one)."""
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


def edit_json(project: Path, name: str, fn: Callable[[Any], None]) -> None:
    path = project / name
    data = json.loads(path.read_text("utf-8"))
    fn(data)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8")


def replace_text(path: Path, old: str, new: str) -> str:
    text = path.read_text("utf-8")
    assert text.count(old) == 1, f"{old!r} not found once in {path}"
    text = text.replace(old, new)
    path.write_text(text, "utf-8")
    return text


def line_of(text: str, needle: str) -> int:
    (n,) = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return n


def subjects(out: Path) -> set[str]:
    return {line.split(" ", 1)[0][1:-1] for line in (out / "dataset.nt").read_text("utf-8").splitlines() if line}


def no_traceback(r: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr


def error_line(r: subprocess.CompletedProcess) -> str:
    """The one ``error: ...`` line (the message) on stderr."""
    lines = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, r.stderr
    return lines[0]


class Run:
    """A copy of a published good project; ``publish()`` runs the CLI again after the test broke it."""

    def __init__(self, root: Path):
        self.root, self.out = root, root / "output"
        self.before = snapshot(self.out)
        self.nt_before = (self.out / "dataset.nt").read_bytes()

    def publish(self, expect: int) -> subprocess.CompletedProcess:
        r = cli(self.root)
        no_traceback(r)
        assert r.returncode == expect, (r.returncode, r.stdout, r.stderr)
        assert not list(self.root.glob(".output.staging-*")) and not list(self.root.glob(".output.previous"))
        return r

    def assert_output_intact(self) -> None:
        assert (self.out / "dataset.nt").read_bytes() == self.nt_before
        assert snapshot(self.out) == self.before

    def report(self) -> str:
        return (self.out / "validation-report.txt").read_text("utf-8")

    def report_graph(self) -> rdflib.Graph:
        return rdflib.Graph().parse(self.out / "validation-report.ttl", format="turtle")

    def record_block(self, entity: str, record_id: str) -> str:
        """The report's paragraph about one record."""
        blocks = self.report().split("\n\n")
        found = [b.strip() for b in blocks if b.strip().startswith(f"{entity} {record_id} [")]
        assert len(found) == 1, self.report()
        return found[0]

    def assert_held_back(self, entity: str, record_id: str, bad: str | None = None) -> str:
        """The record is reported held back; its previously published version stays published unchanged
        (catalog semantics), the bad value is published nowhere, and the rest of the output is complete.
        Returns the record's report paragraph."""
        block = self.record_block(entity, record_id)
        assert block.splitlines()[0].endswith("[held back]"), block
        after = snapshot(self.out)
        mine = [k for k in self.before if k.startswith(f"records/{entity}/{record_id}.")]
        assert mine and all(after.get(k) == self.before[k] for k in mine), "previous version not kept"
        assert f"{BASE}{entity}/{record_id}" in subjects(self.out)
        if bad is not None:
            for name in ("dataset.nt", "dataset.ttl", "dataset.jsonld"):
                assert bad not in (self.out / name).read_text("utf-8"), name
        assert {p for p in self.before if "/" not in p} <= set(after)
        assert f"{BASE}organisation/delft-university-of-technology" in subjects(self.out)
        self.report_graph()  # the machine-readable report parses
        return block


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """The sample project, published once per module (exit 0)."""
    root = copy_sample_project(tmp_path_factory.mktemp("good") / "project")
    r = cli(root)
    no_traceback(r)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert (root / "output" / "dataset.nt").stat().st_size > 0
    return root


@pytest.fixture
def run(good, tmp_path) -> Run:
    root = tmp_path / "project"
    shutil.copytree(good, root)
    return Run(root)


# -- source data ------------------------------------------------------------------------------

@pytest.mark.parametrize("old, new, reported", [
    ('"genre": "feature",', '"genre": feature,', 0),           # bad token: reported on its own line
    ('"genre": "feature",', '"genre": "feature"', 1),          # missing comma: noticed at the next key
    ('"timeRequired": "PT3M",', '"timeRequired": "PT3M",,', 0),
], ids=["bad-token", "missing-comma", "double-comma"])
def test_malformed_json(run, old, new, reported):
    text = replace_text(run.root / "sample/posts.json", old, new)
    r = run.publish(2)
    msg = error_line(r)
    line = line_of(text, new) + reported
    assert re.search(rf"sample/posts\.json:{line}:\d+: malformed JSON", msg), (line, msg)
    run.assert_output_intact()


def test_truncated_json(run):
    path = run.root / "sample/posts.json"
    text = path.read_text("utf-8").rstrip().removesuffix("]")
    path.write_text(text, "utf-8")
    msg = error_line(run.publish(2))
    assert re.search(r"sample/posts\.json:\d+(:\d+)?: malformed JSON", msg), msg
    run.assert_output_intact()


def test_record_not_an_object(run):
    edit_json(run.root, "sample/people.json", lambda d: d.append("emmy-storms"))
    msg = error_line(run.publish(2))
    assert re.search(r"sample/people\.json:\d+ \(record 3\): a record must be .*object.*, got str", msg), msg
    run.assert_output_intact()


def test_missing_source_file(run):
    (run.root / "sample/people.json").unlink()
    msg = error_line(run.publish(2))
    assert "sample/people.json: file not found" in msg
    run.assert_output_intact()


def test_record_without_id(run):
    edit_json(run.root, "sample/people.json", lambda d: d.append({"name": "Anonymous Contributor"}))
    r = run.publish(1)
    (block,) = [b.strip() for b in run.report().split("\n\n") if b.strip().startswith("person (no id)")]
    assert block.splitlines()[0].startswith("person (no id) sample/people.json:")
    assert "[held back]" in block.splitlines()[0]
    assert "source: sample/people.json:" in block
    assert "record has no id: fill 'identifier'" in block
    assert "record has no id" in r.stdout
    assert "Anonymous Contributor" not in (run.out / "dataset.nt").read_text("utf-8")
    assert f"{BASE}person/cynthia-liem" in subjects(run.out)


def test_duplicate_ids(run):
    edit_json(run.root, "sample/people.json",
              lambda d: d.append({"identifier": "emmy-storms", "name": "Emmy Storms", "jobTitle": ["Pianist"]}))
    run.publish(1)
    block = run.assert_held_back("person", "emmy-storms", "Pianist")
    assert "duplicate id 'emmy-storms': 2 different records use it" in block
    assert block.count("sample/people.json:") >= 2        # both places are named
    assert "give each its own id" in block


def test_identical_copies_are_not_duplicates(run):
    """An author embedded in two articles with the same data is one record, not a duplicate."""
    edit_json(run.root, "sample/people.json", lambda d: d.append(json.loads(json.dumps(d[1]))))
    run.publish(0)


def test_link_to_missing_record(run):
    edit_json(run.root, "sample/posts.json", lambda d: d[2].__setitem__("about", ["nobody-known"]))
    run.publish(1)
    block = run.assert_held_back("article", POSTCARDS, "nobody-known")
    assert "field about[] (value: 'nobody-known')" in block
    assert "'nobody-known', which is not among the records read" in block
    assert f"{BASE}article/{CYNTHIA_ARTICLE}" in subjects(run.out)


def test_unknown_rights_label(run):
    edit_json(run.root, "sample/posts.json", lambda d: d[1].__setitem__("license", "All rights reserved"))
    r = run.publish(1)
    block = run.assert_held_back("article", MUZIEK, "All rights reserved")
    assert "field license (value: 'All rights reserved')" in block
    assert "unknown rights statement 'All rights reserved'; accepted labels:" in block
    for label in ("'In Copyright'", "'Creative Commons Attribution-ShareAlike 4.0 International'",
                  "'Public Domain Mark 1.0'", "'CC0 1.0 Universal Public Domain Dedication'"):
        assert label in block
    assert "All rights reserved" in r.stdout


@pytest.mark.parametrize("article, index, value, message", [
    (CYNTHIA_ARTICLE, 0, "2021-02-30", "'2021-02-30' is not a calendar date"),
    (MUZIEK, 1, "sometime in spring", "'sometime in spring' is not a date (accepted:"),
])
def test_unparseable_date(run, article, index, value, message):
    edit_json(run.root, "sample/posts.json", lambda d: d[index].__setitem__("datePublished", value))
    run.publish(1)
    block = run.assert_held_back("article", article, value)
    assert f"field datePublished (value: {value!r})" in block
    assert message in block


def test_control_character_and_markup(run):
    edit_json(run.root, "sample/people.json", lambda d: d[0].__setitem__("name", "Cynthia\u0007 Liem"))
    edit_json(run.root, "sample/posts.json",
              lambda d: d[1].__setitem__("description", "Grammofoonplaten, <b>bold</b> gedigitaliseerd."))
    run.publish(1)
    person = run.assert_held_back("person", "cynthia-liem", "Cynthia\u0007 Liem")
    assert "field name (value: 'Cynthia\\x07 Liem')" in person
    assert "contains control character U+0007, which XML cannot carry" in person
    article = run.assert_held_back("article", MUZIEK, "<b>bold</b>")
    assert "field description" in article and "contains markup '<b>'" in article
    assert "\u0007" not in run.report()
    edm = f"edm/article/{MUZIEK}.xml"
    assert snapshot(run.out).get(edm) == run.before[edm]      # the previous EDM version, not the broken one
    assert "bold" not in (run.out / edm).read_text("utf-8")


def test_rights_not_accepted_by_europeana(run):
    """InC-NC is published as linked data but held back from the EDM (Europeana) channel only."""
    edit_json(run.root, "sample/posts.json", lambda d: d[1]["primaryImageOfPage"].__setitem__(
        "license", "In Copyright - Non-Commercial Use Permitted"))
    r = run.publish(1)
    ttl = (run.out / "records/image" / f"{GRAMMOFOON}.ttl").read_text("utf-8")
    assert INC_NC in ttl
    jsonld = (run.out / "records/image" / f"{GRAMMOFOON}.jsonld").read_text("utf-8")
    assert INC_NC in jsonld or "InC-NC" in jsonld
    assert f"{BASE}image/{GRAMMOFOON}" in subjects(run.out)
    assert INC_NC in (run.out / "dataset.nt").read_text("utf-8")
    assert not (run.out / "edm/image" / f"{GRAMMOFOON}.xml").exists()
    assert (run.out / "edm/image/seaside-postcard.xml").exists()
    block = run.record_block("image", GRAMMOFOON)
    assert block.splitlines()[0].endswith("[published, held back from EDM]"), block
    assert "[EDM only]" in block
    assert "Europeana does not accept this rights statement" in block
    assert not (run.out / "edm/article" / f"{MUZIEK}.xml").exists()   # its aggregation carries the same rights
    assert "held back" in r.stdout and "from EDM" in r.stdout


def test_first_publication_leaves_held_back_records_out(project):
    """Without a previous publication a held-back record is published nowhere."""
    edit_json(project, "sample/posts.json", lambda d: (
        d[0].__setitem__("datePublished", "2021-02-30"),
        d[1].__setitem__("license", "All rights reserved"),
        d[2].__setitem__("about", ["nobody-known"])))
    r = cli(project)
    no_traceback(r)
    assert r.returncode == 1, r.stderr
    out = project / "output"
    report = (out / "validation-report.txt").read_text("utf-8")
    for article, text in ((CYNTHIA_ARTICLE, "'2021-02-30' is not a calendar date"),
                          (MUZIEK, "unknown rights statement 'All rights reserved'"),
                          (POSTCARDS, "field about[] (value: 'nobody-known')")):
        assert f"article {article} [held back]" in report and text in report
        assert f"{BASE}article/{article}" not in subjects(out)
        assert not list(out.rglob(f"{article}.*"))
    assert f"{BASE}person/cynthia-liem" in subjects(out)
    for name in ("2021-02-30", "All rights reserved", "nobody-known"):
        assert name not in (out / "dataset.nt").read_text("utf-8")


# -- mappings, shapes, configuration --------------------------------------------------------------

@pytest.mark.parametrize("old, new, key, message", [
    ("      schema:genre: {field: genre, language: en}", "      schema:genre: {field: genre, language: en}: x", "syntax",
     "mapping values are not allowed here"),
    ("      schema:genre: {field: genre, language: en}", "\tschema:genre: {field: genre, language: en}", "syntax",
     "'\\t'"),
    ("dc:title: &title", "dcx:title: &title", "dcx:title", "unknown prefix 'dcx' in 'dcx:title'"),
    ("dc:date: {field: datePublished, transform: date}", "dc:date: {field: datePublished, transform: datum}",
     "transform", "unknown transform 'datum'; known: date,"),
    ("dc:identifier: {field: identifier}", "dc:identifier: {field: identifer}", "field",
     "unknown field 'identifer'; declared fields:"),
    ('uri: "{base}article/{id}"', 'uri: "{base}article/{id"', "uri",
     "malformed template '{base}article/{id': unbalanced braces"),
    ("      edm:type: {value: TEXT}", "      edm:type: {value: TEXT}\n      edm:type: {value: IMAGE}", "edm:type",
     "duplicate key"),
], ids=["yaml-syntax", "yaml-tab", "unknown-prefix", "unknown-transform", "unknown-field", "malformed-template",
        "duplicate-key"])
def test_mapping_errors(run, old, new, key, message):
    text = replace_text(run.root / "mapping/article.yaml", old, new)
    line = line_of(text, new.splitlines()[-1].strip())
    msg = error_line(run.publish(2))
    assert f"mapping/article.yaml:{line}: {key}: " in msg, (line, msg)
    assert message in msg
    run.assert_output_intact()


def test_shapes_syntax_error(run):
    path = run.root / "shapes/schema.ttl"
    path.write_text(path.read_text("utf-8") + "\n<urn:x> <urn:p> ;;; broken [ .\n", "utf-8")
    msg = error_line(run.publish(2))
    assert msg.startswith("error: shapes/schema.ttl: not valid Turtle"), msg
    run.assert_output_intact()


def test_shapes_file_missing(run):
    (run.root / "shapes/europeana.ttl").unlink()
    msg = error_line(run.publish(2))
    assert "shapes/europeana.ttl: shapes file not found" in msg
    run.assert_output_intact()


def test_missing_configuration(run):
    (run.root / "heritage-ld.toml").unlink()
    msg = error_line(run.publish(2))
    assert "heritage-ld.toml: not found" in msg and "--project" in msg
    run.assert_output_intact()


def test_broken_configuration(run):
    replace_text(run.root / "heritage-ld.toml", 'base_uri = "https://data.example.org/"', 'base_uri = "data"')
    msg = error_line(run.publish(2))
    assert "heritage-ld.toml: [project] base_uri 'data' must be an absolute IRI" in msg
    run.assert_output_intact()


@pytest.mark.parametrize("command", ["publish", "validate"])
def test_empty_project_folder(tmp_path, command):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = cli(empty, command)
    no_traceback(r)
    assert r.returncode == 2
    msg = error_line(r)
    assert f"{empty / 'heritage-ld.toml'}: not found" in msg
    assert list(empty.iterdir()) == []                      # nothing written


def test_project_folder_does_not_exist(tmp_path):
    r = cli(tmp_path / "nowhere")
    no_traceback(r)
    assert r.returncode == 2 and "heritage-ld.toml: not found" in error_line(r)
    assert not (tmp_path / "nowhere").exists()


def test_output_folder_is_readable_by_others(good):
    """output/ is for publishing (web server, rsync): not the private 0700 of a temporary folder."""
    import os
    umask = os.umask(0o022)
    os.umask(umask)
    assert (good / "output").stat().st_mode & 0o777 == 0o777 & ~umask


# -- values that cannot be stored, named or carried (issue 12, items 9-12 and 14) ----------------

GOOD_PERSON = {"identifier": "ada-lovelace", "name": "Ada Lovelace", "jobTitle": ["Mathematician"]}


def add_people(root: Path, name: str, text: str) -> None:
    """A second person source ``sample/<name>`` holding ``text`` as written."""
    (root / "sample" / name).write_text(text, "utf-8")
    with (root / "heritage-ld.toml").open("a", encoding="utf-8") as fh:
        fh.write(f'\n[[sources]]\nentity = "person"\npath = "sample/{name}"\n')


def people_text(fmt: str, bad_json: str) -> str:
    """GOOD_PERSON and a bad record (``bad_json``: the JSON text of its object) in the format ``fmt``;
    JSON text is also YAML flow syntax, so the bad record reads the same in every format."""
    good = json.dumps(GOOD_PERSON)
    if fmt == "json":
        return f"[{good},\n{bad_json}]\n"
    if fmt == "jsonl":
        return f"{good}\n{bad_json}\n"
    return f"- {good}\n- {bad_json}\n"


def assert_reports_parse(out: Path) -> None:
    """The report (and the dumps) parse with rdflib and pyoxigraph; the text report is UTF-8 whose
    record headers are single lines."""
    import pyoxigraph as ox
    for name, fmt, oxfmt in (("validation-report.ttl", "turtle", ox.RdfFormat.TURTLE),
                             ("dataset.ttl", "turtle", ox.RdfFormat.TURTLE),
                             ("dataset.nt", "nt", ox.RdfFormat.N_TRIPLES)):
        rdflib.Graph().parse(out / name, format=fmt)
        list(ox.parse(path=str(out / name), format=oxfmt))
    text = (out / "validation-report.txt").read_bytes().decode("utf-8")
    for block in text.split("\n\n")[1:]:
        lines = block.strip().splitlines()
        assert not lines or lines[1].startswith("  source: "), block


def held_block(run: Run, entity: str, record_id: str) -> str:
    block = run.record_block(entity, record_id)
    assert block.splitlines()[0].endswith("[held back]"), block
    assert f"{BASE}{entity}/{record_id}" not in subjects(run.out)
    return block


@pytest.mark.parametrize("fmt", ["json", "jsonl", "yaml"])
def test_lone_surrogate_holds_back_that_record(run, fmt):
    """``"a \\ud800 b"`` cannot be encoded as UTF-8: that record is held back, the others publish."""
    add_people(run.root, f"more.{fmt}", people_text(fmt, '{"identifier": "bad-text", "name": "a \\ud800 b"}'))
    r = run.publish(1)
    block = held_block(run, "person", "bad-text")
    assert f"source: sample/more.{fmt}:" in block
    assert "field name (value: 'a \\\\ud800 b'): contains U+D800, half of a UTF-16 surrogate pair" in block
    assert "bad-text" in r.stdout
    assert f"{BASE}person/ada-lovelace" in subjects(run.out)
    assert_reports_parse(run.out)


@pytest.mark.parametrize("fmt, depth", [("json", 1000), ("json", 150), ("jsonl", 1000), ("yaml", 1000)])
def test_deep_nesting_holds_back_that_record(run, fmt, depth):
    """JSON nested 1,000 deep (past Python's recursion limit) and 150 deep (parsed, but past MAX_DEPTH)."""
    add_people(run.root, f"more.{fmt}", people_text(
        fmt, '{"identifier": "deep", "name": "Deep", "extra": ' + "[" * depth + "]" * depth + "}"))
    run.publish(1)
    block = held_block(run, "person", "deep")
    assert re.search(r"field extra\[0\]\[0\]\S*: nested more than 100 levels deep: flatten it in the source",
                     block), block
    assert f"{BASE}person/ada-lovelace" in subjects(run.out)
    assert_reports_parse(run.out)


@pytest.mark.parametrize("fmt", ["json", "jsonl", "yaml"])
def test_number_too_long_holds_back_that_record(run, fmt):
    add_people(run.root, f"more.{fmt}", people_text(
        fmt, '{"identifier": "big", "name": "Big", "extra": ' + "9" * 5000 + "}"))
    run.publish(1)
    block = held_block(run, "person", "big")
    assert "field extra: a whole number with more than 4300 digits: give it as text" in block
    assert f"{BASE}person/ada-lovelace" in subjects(run.out)


def test_csv_column_nested_too_deep(run):
    (run.root / "sample/more.csv").write_text("identifier,name," + ".".join(["x"] * 150) + "\nbo,Bo,1\n")
    with (run.root / "heritage-ld.toml").open("a") as fh:
        fh.write('\n[[sources]]\nentity = "person"\npath = "sample/more.csv"\n')
    msg = error_line(run.publish(2))
    assert re.search(r"sample/more\.csv:1: column 'x\.x\.x.*' nests more than 100 levels deep", msg), msg
    run.assert_output_intact()


def test_http_source_records_held_back_one_by_one(run, httpserver):
    """One page of an HTTP API: a record with a lone surrogate and one nested 1,000 deep are held
    back; the page's other record publishes."""
    body = ('{"data": [' + json.dumps(GOOD_PERSON) + ', {"identifier": "bad-text", "name": "a \\ud800 b"}, '
            '{"identifier": "deep", "name": "Deep", "extra": ' + "[" * 1000 + "]" * 1000 + "}]}")
    httpserver.expect_request("/people").respond_with_data(body, content_type="application/json")
    with (run.root / "heritage-ld.toml").open("a") as fh:
        fh.write(f'\n[[sources]]\nentity = "person"\nurl = "{httpserver.url_for("/people")}"\nitems = "data"\n'
                 'pagination = "none"\nallow_addresses = ["127.0.0.1"]\n')
    run.publish(1)
    assert "field name (value: 'a \\\\ud800 b'): contains U+D800" in held_block(run, "person", "bad-text")
    assert "nested more than 100 levels deep" in held_block(run, "person", "deep")
    assert f"{BASE}person/ada-lovelace" in subjects(run.out)
    assert_reports_parse(run.out)


def test_id_too_long_for_a_file_name(run):
    """A 2,000-character id would name files of 2,007 bytes (records/, edm/): held back, and said so;
    the longest id that fits (248 bytes percent-encoded, 255 with ``.jsonld``) publishes."""
    longest = "x" * 248
    edit_json(run.root, "sample/people.json", lambda d: d.extend([
        {"identifier": "y" * 2000, "name": "Too Long"},
        {"identifier": "\u00e9" * 42, "name": "Too Long Encoded"},        # 42 x %C3%A9 = 252 bytes
        {"identifier": longest, "name": "Just Fits"}]))
    r = run.publish(1)
    block = held_block(run, "person", "y" * 2000)
    assert ("field identifier (value: 'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy...'): "
            "the id is too long: its 2000 characters make a file name of 2007 bytes") in block
    assert "more than the 255 a file system allows: give the record a shorter id" in block
    assert "the id is too long: its 42 characters make a file name of 259 bytes" in held_block(
        run, "person", "\u00e9" * 42)
    assert "File name too long" not in r.stderr + r.stdout
    assert (run.out / f"records/person/{longest}.jsonld").exists()
    assert f"{BASE}person/{longest}" in subjects(run.out)


@pytest.mark.parametrize("rid", ["line\nbreak", "tab\there", "vt\u000bid", "nc\ufffeid", "del\u007fid"])
def test_id_with_control_character(run, rid):
    edit_json(run.root, "sample/people.json", lambda d: d.append({"identifier": rid, "name": "Odd Id"}))
    run.publish(1)
    code = next(f"U+{ord(c):04X}" for c in rid if not c.isalnum())
    text = run.report()
    assert f"field identifier (value: {rid!r}): the id contains " in text and code in text, text
    assert "Odd Id" not in (run.out / "dataset.nt").read_text("utf-8")
    assert_reports_parse(run.out)


@pytest.mark.parametrize("where, value", [
    ("url", "javascript:alert(1)"),
    ("url", "JavaScript:alert(document.cookie)"),
    ("image.url", "file:///etc/passwd"),
    ("image.url", "data:image/png;base64,iVBORw0KGgo="),
])
def test_iri_with_a_scheme_consumers_cannot_dereference(run, where, value):
    def set_value(d):
        (d[1]["primaryImageOfPage"]["image"] if where == "image.url" else d[1])["url"] = value
    edit_json(run.root, "sample/posts.json", set_value)
    run.publish(1)
    scheme = value.split(":")[0]
    block = run.assert_held_back("article", MUZIEK)
    assert f"field {'primaryImageOfPage.' if where == 'image.url' else ''}{where} (value: {value!r}): {value!r} " \
           f"is not an IRI consumers can dereference: scheme {scheme!r} is not one of http, https" in block
    for f in run.out.rglob("*"):
        if f.is_file() and f.suffix in (".nt", ".ttl", ".jsonld", ".xml", ".nq") and "report" not in f.name:
            assert value not in f.read_text("utf-8"), f


def test_same_as_schemes_and_configured_ones(run):
    """sameAs: javascript: is held back; urn: only where heritage-ld.toml allows it."""
    edit_json(run.root, "sample/people.json", lambda d: (
        d[0].__setitem__("sameAs", ["javascript:alert(1)"]), d[1].__setitem__("sameAs", ["urn:isbn:9780306406157"])))
    run.publish(1)
    assert "field sameAs[] (value: 'javascript:alert(1)')" in run.assert_held_back("person", "cynthia-liem")
    assert "scheme 'urn' is not one of http, https" in run.assert_held_back("person", "emmy-storms")
    replace_text(run.root / "heritage-ld.toml", "[project]\n", '[project]\niri_schemes = ["urn"]\n')
    run.publish(1)
    assert "scheme 'javascript' is not one of http, https, urn" in run.assert_held_back("person", "cynthia-liem")
    assert "<urn:isbn:9780306406157>" in (run.out / "dataset.nt").read_text("utf-8")
    assert "javascript:" not in (run.out / "dataset.nt").read_text("utf-8")


@pytest.mark.parametrize("char, kind", [
    ("\u000b", "control character U+000B, which XML cannot carry"),
    ("\u000c", "control character U+000C, which XML cannot carry"),
    ("\u001c", "control character U+001C, which XML cannot carry"),
    ("\u001f", "control character U+001F, which XML cannot carry"),
    ("\u007f", "control character U+007F"),
    ("\u0085", "control character U+0085"),
    ("\u009f", "control character U+009F"),
    ("\ufffe", "non-character U+FFFE, which XML cannot carry"),
    ("\uffff", "non-character U+FFFF, which XML cannot carry"),
    ("\ufdd0", "non-character U+FDD0, which is not meant for text"),
    ("\U0001fffe", "non-character U+1FFFE, which is not meant for text"),
])
def test_control_and_non_characters_are_reported_not_changed(run, char, kind):
    """A name goes through transform text, which collapses whitespace: U+000B, U+001C-U+001F and
    U+0085 count as whitespace to Python, and were silently made spaces."""
    value = f"Cynthia{char}Liem"
    edit_json(run.root, "sample/people.json", lambda d: d[0].__setitem__("name", value))
    run.publish(1)
    block = run.assert_held_back("person", "cynthia-liem", value)
    assert f"field name (value: {value!r}): contains {kind}: remove it in the source" in block
    assert "Cynthia Liem" in (run.out / "dataset.nt").read_text("utf-8")   # the previous version, as it was
    assert_reports_parse(run.out)


@pytest.mark.parametrize("char", ["\ufffe", "\u0085", "\u00a0", "\u2028", "\ue000", "\u202e"])
def test_iri_with_characters_parsers_refuse(run, char):
    """An IRI taken from data that RFC 3987 or a parser (pyoxigraph, rdflib's N-Triples) refuses is held
    back, and the report, which names it, still parses."""
    value = f"https://www.europeana.eu/en/blog/muziek{char}uit-het-archief"
    edit_json(run.root, "sample/posts.json", lambda d: d[1].__setitem__("url", value))
    run.publish(1)
    block = run.assert_held_back("article", MUZIEK, value)
    assert f"field url (value: {value!r})" in block
    assert_reports_parse(run.out)


def test_report_parses_whatever_the_values(run):
    """Held-back values, ids and field names holding every kind of character: both report files parse."""
    odd = "".join(map(chr, [0, 7, 0xb, 0x1f, 0x7f, 0x85, 0xa0, 0x2028, 0xfffe, 0xffff, 0xfdd0, 0x1fffe, 0x10ffff]))
    lines = [json.dumps(GOOD_PERSON, ensure_ascii=False),
             json.dumps({"identifier": f"odd{odd}", "name": f"x{odd}"}, ensure_ascii=False),
             json.dumps({"identifier": "odd-key", "name": "Odd Key", f"k{odd}": "v"}, ensure_ascii=False),
             json.dumps({"identifier": "odd-url", "name": "Odd", "url": f"https://e.org/{odd}"}, ensure_ascii=False),
             '{"identifier": "odd-\\udfff", "name": "\\ud800\\udbff\\u0000"}']
    add_people(run.root, "more.jsonl", "\n".join(lines) + "\n")
    run.publish(1)
    for rid in (f"odd{odd}", "odd-url", "odd-\\udfff"):
        shown = rid if rid.isprintable() else repr(rid)[1:-1]    # the text report escapes what cannot be shown
        assert f"\nperson {shown} [held back]\n" in run.report(), shown
    assert f"{BASE}person/ada-lovelace" in subjects(run.out)
    assert f"{BASE}person/odd-key" in subjects(run.out)       # an unused field name is no value
    assert_reports_parse(run.out)


BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def cli_bounded(project: Path, memory: int = 1 << 30, seconds: int = 120) -> subprocess.CompletedProcess:
    """``heritage-ld publish`` with its address space bounded (RLIMIT_AS) and a timeout."""
    import resource
    return subprocess.run([*CMD, "publish", "--project", str(project)], capture_output=True, text=True,
                          cwd=project.parent, timeout=seconds,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (memory, memory)))


@pytest.mark.parametrize("text, message", [
    (BOMB, "its aliases expand it by more than 10000 values: write the values out"),
    ("- &a {identifier: loop, name: Loop, knows: [*a]}\n", "an alias refers to a node that contains it"),
    ("- identifier: deep\n  name: Deep\n  x: &x " + "[" * 90 + "]" * 90 + "\n  y: " + "[" * 90 + "*x" + "]" * 90
     + "\n", "its aliases nest it more than 100 levels deep"),
], ids=["billion-laughs", "recursive", "deep-through-aliases"])
def test_yaml_alias_bomb_is_refused(run, text, message):
    """A 342-byte YAML source stands for 387 million strings once its aliases are expanded: refused
    (exit 2), within 1 GB of address space and two minutes."""
    add_people(run.root, "bomb.yaml", text)
    t0 = time.monotonic()
    r = cli_bounded(run.root)
    no_traceback(r)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert time.monotonic() - t0 < 60
    msg = error_line(r)
    assert re.search(r"sample/bomb\.yaml:\d+: malformed YAML: " + re.escape(message), msg), msg
    run.assert_output_intact()


def test_yaml_alias_bomb_in_a_mapping_file(run):
    """The same aliases in a mapping file, where a ``when`` test takes a list: refused (they were taken)."""
    bomb = "".join(f"            - {line.split(': ', 1)[1]}\n" for line in BOMB.splitlines())
    replace_text(run.root / "mapping/person.yaml", "      schema:name: *name\n",
                 "      schema:name: *name\n      schema:alternateName:\n        field: name\n        when:\n"
                 "          field: name\n          equals:\n" + bomb)
    t0 = time.monotonic()
    r = cli_bounded(run.root)
    no_traceback(r)
    assert r.returncode == 2 and time.monotonic() - t0 < 60, r.stderr[-2000:]
    msg = error_line(r)
    assert "mapping/person.yaml:" in msg and "its aliases expand it by more than 10000 values" in msg, msg
    run.assert_output_intact()


def test_yaml_records_read_as_text(run):
    """YAML dates, numbers as keys and impossible dates (which crashed PyYAML's constructor) are text,
    as they would be in JSON; aliases within the bound are fine."""
    add_people(run.root, "more.yaml", "- identifier: bo\n  name: &n Bo\n  2021: x\n  true: y\n  born: 2021-02-30\n"
                                      "- identifier: cy\n  name: *n\n")
    run.publish(0)
    assert {f"{BASE}person/bo", f"{BASE}person/cy"} <= subjects(run.out)


@pytest.mark.parametrize("depth", [99, 100, 101])
def test_a_line_is_cut_at_max_depth_whatever_its_brackets(depth):
    """parse_json skips the depth walk for a line with at most MAX_DEPTH brackets (it cannot nest
    deeper); a line with more, shallow or deep, is walked: only what lies deeper than MAX_DEPTH goes."""
    from heritage_ld.sources import MAX_DEPTH, TOO_DEEP, parse_json
    wide = '{"a": [' + ", ".join(['{"b": []}'] * 150) + "]}"
    assert parse_json(wide) == json.loads(wide)
    expected = json.loads("[" * depth + "]" * depth)
    if depth > MAX_DEPTH:
        inner = expected
        for _ in range(MAX_DEPTH - 1):
            inner = inner[0]
        inner[0] = TOO_DEEP    # the list at depth 101
    assert parse_json("[" * depth + "]" * depth) == expected
