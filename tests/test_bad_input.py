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
