"""File sources: JSON, JSON Lines, CSV with nested columns, YAML, folders, gzip; streaming."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import copy_sample_project
from heritage_ld.config import Config, Source
from heritage_ld.sources import InputError, read

PEOPLE = [{"identifier": "ada", "name": "Ada", "jobTitle": ["Curator", "Editor"], "affiliation": ["org-1"]},
          {"identifier": "bo", "name": "Bo"}]


def config(root: Path) -> Config:
    return Config(root, "https://data.example.org/", {}, [], {}, root / "output", root / "catalog.sqlite")


def records(root: Path, path: str, **options) -> list[tuple[dict, str]]:
    return list(read(config(root), Source("person", path, False, options)))


def test_json_array_and_single_object_with_lines(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(PEOPLE, indent=2))
    (tmp_path / "one.json").write_text(json.dumps(PEOPLE[1]))
    got = records(tmp_path, "a.json")
    assert [r for r, _ in got] == PEOPLE
    assert [o for _, o in got] == ["a.json:2 (record 1)", "a.json:13 (record 2)"]
    assert records(tmp_path, "one.json") == [(PEOPLE[1], "one.json:1")]


def test_jsonl_and_gzip(tmp_path):
    lines = "\n".join(json.dumps(p) for p in PEOPLE) + "\n"
    (tmp_path / "p.jsonl").write_text(lines)
    with gzip.open(tmp_path / "p.jsonl.gz", "wt") as fh:
        fh.write(lines)
    with gzip.open(tmp_path / "p.json.gz", "wt") as fh:
        json.dump(PEOPLE, fh)
    assert [r for r, _ in records(tmp_path, "p.jsonl")] == PEOPLE
    assert [o for _, o in records(tmp_path, "p.jsonl.gz")] == ["p.jsonl.gz:1", "p.jsonl.gz:2"]
    assert [r for r, _ in records(tmp_path, "p.json.gz")] == PEOPLE


def test_csv_with_column_mapping_for_nested_and_list_fields(tmp_path):
    (tmp_path / "p.csv").write_text("ID,Name,Jobs,Employer,Employer name\n"
                                    "ada,Ada,Curator; Editor,org-1,Org One\n"
                                    "bo,Bo,,,\n")
    got = records(tmp_path, "p.csv", columns={"ID": "identifier", "Name": "name", "Jobs": "jobTitle[]",
                                              "Employer": "affiliation.identifier",
                                              "Employer name": "affiliation.name"})
    assert got[0] == ({"identifier": "ada", "name": "Ada", "jobTitle": ["Curator", "Editor"],
                       "affiliation": {"identifier": "org-1", "name": "Org One"}}, "p.csv:2")
    assert got[1] == ({"identifier": "bo", "name": "Bo"}, "p.csv:3")
    with pytest.raises(InputError, match="'Nope'.*not in the header"):
        records(tmp_path, "p.csv", columns={"Nope": "name"})


def test_yaml_list_and_multi_document(tmp_path):
    (tmp_path / "list.yaml").write_text("- identifier: ada\n  name: Ada\n- identifier: bo\n  name: Bo\n")
    (tmp_path / "docs.yml").write_text("identifier: ada\nname: Ada\n---\nidentifier: bo\nname: Bo\n")
    assert [o for _, o in records(tmp_path, "list.yaml")] == ["list.yaml:1 (record 1)", "list.yaml:3 (record 2)"]
    assert [r["identifier"] for r, _ in records(tmp_path, "docs.yml")] == ["ada", "bo"]
    (tmp_path / "bad.yaml").write_text("identifier: [ada\n")
    with pytest.raises(InputError, match=r"bad.yaml:2: malformed YAML"):
        records(tmp_path, "bad.yaml")


def test_folder_reads_every_supported_file_in_name_order(tmp_path):
    d = tmp_path / "export"
    d.mkdir()
    (d / "b.jsonl").write_text(json.dumps(PEOPLE[1]) + "\n")
    (d / "a.json").write_text(json.dumps([PEOPLE[0]]))
    (d / "notes.txt").write_text("ignored")
    assert [o for _, o in records(tmp_path, "export")] == ["export/a.json:1 (record 1)", "export/b.jsonl:1"]


def test_errors_name_file_and_line(tmp_path):
    (tmp_path / "bad.jsonl").write_text(json.dumps(PEOPLE[0]) + "\n{oops\n")
    with pytest.raises(InputError, match=r"bad.jsonl:2:2: malformed JSON"):
        records(tmp_path, "bad.jsonl")
    (tmp_path / "x.xml").write_text("<x/>")
    with pytest.raises(InputError, match="unsupported file type"):
        records(tmp_path, "x.xml")
    with pytest.raises(InputError, match="file not found"):
        records(tmp_path, "missing.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="a record must be an object"):
        records(tmp_path, "list.json")


def test_jsonl_streams_without_loading_the_file(tmp_path):
    """Reading a ~200 MB JSON Lines file keeps memory far below the file size."""
    path = tmp_path / "big.jsonl"
    line = json.dumps({"identifier": "x", "name": "y" * 1000}) + "\n"
    with path.open("w") as fh:
        for _ in range(200_000):
            fh.write(line)
    # VmHWM (peak RSS of this process image; ru_maxrss would inherit the parent's peak across exec)
    code = (f"from pathlib import Path; from heritage_ld.sources import read_jsonl\n"
            f"n = sum(1 for _ in read_jsonl(Path({str(path)!r}), 'big.jsonl', {{}}))\n"
            f"hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
            f"print(n, hwm)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert int(out[0]) == 200_000
    assert int(out[1]) < 120_000  # KiB: the file is ~200,000 KiB


# -- folders, globs and sources that read nothing (issue 14, item 1) --------------------------

def tate_like(tmp_path: Path) -> Path:
    """A collection export laid out like a museum's open-data repository: one JSON file per record,
    in two levels of sub-folders (``artists/a/000/a00001.json``), plus files that are not records."""
    d = tmp_path / "artists"
    for rel, rec in [("b/001/b00101.json", {"identifier": "b101", "name": "Bo"}),
                     ("a/000/a00002.json", {"identifier": "a2", "name": "Ada"}),
                     ("a/000/a00001.json", {"identifier": "a1", "name": "Al"}),
                     ("a/010/a01000.json", {"identifier": "a1000", "name": "Ann"}),
                     (".git/objects/x.json", {"identifier": "not-a-record"})]:
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_text(json.dumps(rec))
    (d / "README.md").write_text("not a record")
    (d / "a" / "processed.csv").write_text("identifier,name\nc1,Cy\n")
    return d


def test_folder_reads_sub_folders_in_path_order(tmp_path):
    tate_like(tmp_path)
    got = records(tmp_path, "artists")
    assert [o for _, o in got] == ["artists/a/000/a00001.json:1", "artists/a/000/a00002.json:1",
                                   "artists/a/010/a01000.json:1", "artists/a/processed.csv:2",
                                   "artists/b/001/b00101.json:1"]
    assert records(tmp_path, "artists/") == got   # a trailing slash changes nothing


def test_glob_source_reads_the_matching_files_in_path_order(tmp_path):
    tate_like(tmp_path)
    assert [r["identifier"] for r, _ in records(tmp_path, "artists/**/*.json")] == ["a1", "a2", "a1000", "b101"]
    assert [r["identifier"] for r, _ in records(tmp_path, "artists/a/0?0/*.json")] == ["a1", "a2", "a1000"]
    assert records(tmp_path, "artists/**/*.yaml") == []
    assert [r["identifier"] for r, _ in records(tmp_path, "artists/.git/*/*.json")] == ["not-a-record"]  # named
    with pytest.raises(InputError, match="nowhere/: folder not found"):
        records(tmp_path, "nowhere/**/*.json")


EXE = Path(sys.executable).parent / "heritage-ld"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=120)


def add_source(project: Path, entity: str, path: str) -> None:
    toml = project / "heritage-ld.toml"
    toml.write_text(toml.read_text().replace("[validation]", f'[[sources]]\nentity = "{entity}"\npath = "{path}"\n\n[validation]'))


def test_a_folder_export_in_sub_folders_is_published(tmp_path):
    """Before: the folder source read none of the sub-folders, published 0 people, said "No problems found"."""
    project = copy_sample_project(tmp_path / "p")
    tate_like(project)
    add_source(project, "person", "artists")
    r = cli("publish", "--project", str(project))
    assert r.returncode == 0, r.stdout + r.stderr
    nt = (project / "output/dataset.nt").read_text()
    for rid in ("a1", "a2", "a1000", "b101", "c1"):
        assert f"<https://data.example.org/person/{rid}> <http://schema.org/name>" in nt


def test_a_source_that_reads_no_record_warns_and_fails_with_strict(tmp_path):
    project = copy_sample_project(tmp_path / "p")
    (project / "export/2024").mkdir(parents=True)
    (project / "export/2024/notes.txt").write_text("the records are elsewhere")
    (project / "empty.json").write_text("[]")
    add_source(project, "person", "export")
    add_source(project, "person", "empty.json")
    add_source(project, "person", "export/**/*.json")
    for command in ("validate", "publish"):
        r = cli(command, "--project", str(project))
        assert r.returncode == 0, r.stdout + r.stderr
        for path in ("export", "empty.json", "export/**/*.json"):
            assert f"warning: source {path} (person) read no record" in r.stderr, r.stderr
        assert "No problems found" not in r.stdout
    report = (project / "output/validation-report.txt").read_text()
    assert "source export (person) read no record" in report and "No problems found" not in report
    before = {p: p.read_bytes() for p in (project / "output").rglob("*") if p.is_file()}
    for command in ("validate", "publish"):
        r = cli(command, "--strict", "--project", str(project))
        assert r.returncode == 2, r.stdout + r.stderr
        assert "error: source export (person) read no record" in r.stderr and "Traceback" not in r.stderr
    assert {p: p.read_bytes() for p in (project / "output").rglob("*") if p.is_file()} == before
    # the same run again stops early (nothing changed): the warning is still there, and --strict still fails
    r = cli("publish", "--project", str(project))
    assert r.returncode == 0 and "warning: source empty.json (person) read no record" in r.stderr
    assert cli("publish", "--strict", "--project", str(project)).returncode == 2
