"""Incremental publishing: idempotence, change and deletion detection, the mass-deletion guard,
provenance, and crash safety under SIGKILL at several points of a real `heritage-ld publish`."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import rdflib

from heritage_ld import pipeline
from heritage_ld.catalog import Catalog, DeletionGuard
from heritage_ld.config import load

from test_outputs import copy_project

EXE = Path(sys.executable).parent / "heritage-ld"
T1, T2 = 1_700_000_000, 1_700_086_400


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def rows(project: Path) -> dict:
    cat = Catalog(load(project).catalog)
    try:
        return {(r.entity, r.id): (r.hash, r.first_published, r.last_changed, r.deleted) for r in cat.rows(True)}
    finally:
        cat.close()


def edit(project: Path, name: str, fn) -> None:
    path = project / "sample" / name
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data, indent=2))


def change_and_delete(project: Path) -> None:
    """Two records change: a person and an organisation."""
    edit(project, "people.json", lambda d: d[1].update(jobTitle=["Violinist", "Teacher"]))
    edit(project, "organisations.json", lambda d: d[1].update(name="Multimedia Computing Group (TU Delft)"))


@pytest.fixture
def project(tmp_path) -> Path:
    (tmp_path / "p").mkdir()
    return copy_project(tmp_path / "p")


def test_second_run_changes_nothing(project):
    _pub, ch1 = pipeline.publish(project, now=T1)
    assert ch1.added == 22 and not ch1.changed
    before, state = files(project / "output"), rows(project)
    _pub, ch2 = pipeline.publish(project, now=T2)
    assert not ch2 and ch2.unchanged == 22
    assert files(project / "output") == before
    assert rows(project) == state


def test_changed_record_gets_new_datestamp_only(project):
    pipeline.publish(project, now=T1)
    change_and_delete(project)
    _pub, ch = pipeline.publish(project, now=T2)
    assert ch.changed == 2
    r = rows(project)
    assert sorted(k for k, v in r.items() if v[2] == T2) == [("organisation", "multimedia-computing-group"),
                                                             ("person", "emmy-storms")]
    assert r[("person", "emmy-storms")][1:3] == (T1, T2)
    assert r[("person", "georgia-evans")][1:3] == (T1, T1)
    nq = rdflib.Dataset().parse(project / "output/dataset.nq", format="nquads")
    g = rdflib.URIRef("https://data.example.org/graph/person/emmy-storms")
    PROV = rdflib.Namespace("http://www.w3.org/ns/prov#")
    assert nq.graph(g).value(g, PROV.generatedAtTime).toPython() == datetime.fromtimestamp(T2, timezone.utc)
    assert '"2023-11-15T22:13:20Z"^^<http://www.w3.org/2001/XMLSchema#dateTime>' in (
        project / "output/dataset.nq").read_text()
    assert "Teacher" in (project / "output/dataset.nt").read_text()


def test_deleted_record_becomes_tombstone(project):
    pipeline.publish(project, now=T1)
    edit(project, "people.json", lambda d: d.pop(1))             # Emmy Storms leaves the export
    edit(project, "organisations.json", lambda d: d[2].update(member=["cynthia-liem"]))
    edit(project, "posts.json", lambda d: d[0].update(mentions=["magma-duo"]))
    _pub, ch = pipeline.publish(project, now=T2)
    assert ch.deleted == [("person", "emmy-storms")]
    r = rows(project)
    assert r[("person", "emmy-storms")][2:] == (T2, True)
    assert "emmy-storms" not in (project / "output/dataset.nt").read_text()
    assert not (project / "output/records/person/emmy-storms.ttl").exists()
    r = subprocess.run([str(EXE), "status", "--project", str(project), "--since", "2023-11-15T00:00:00Z"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "withdrawn  person emmy-storms" in r.stdout, r.stdout
    # it comes back: a new datestamp, not deleted any more
    edit(project, "people.json", lambda d: d.append({"identifier": "emmy-storms", "name": "Emmy Storms"}))
    pipeline.publish(project, now=T2 + 60)
    assert rows(project)[("person", "emmy-storms")][2:] == (T2 + 60, False)


def test_mass_deletion_guard(project):
    pipeline.publish(project, now=T1)
    (project / "sample/organisations.json").write_text("[]")
    edit(project, "people.json", lambda d: [p.pop("affiliation", None) or p.pop("memberOf", None) for p in d])
    edit(project, "posts.json", lambda d: d[0].update(mentions=[]))
    before = files(project / "output")
    with pytest.raises(DeletionGuard, match="allow-deletions"):
        pipeline.publish(project, now=T2)
    assert files(project / "output") == before
    r = subprocess.run([str(EXE), "publish", "--project", str(project)], capture_output=True, text=True)
    assert r.returncode == 2 and "--allow-deletions" in r.stderr and "Traceback" not in r.stderr
    _pub, ch = pipeline.publish(project, now=T2, allow_deletions=True)
    assert len(ch.deleted) == 3


@pytest.mark.parametrize("point", ["mapped", "catalog-written", "staged", "committed"])
def test_sigkill_leaves_old_or_new_state_and_next_run_completes(tmp_path, point):
    (tmp_path / "run").mkdir()
    (tmp_path / "ref").mkdir()
    project, reference = copy_project(tmp_path / "run"), copy_project(tmp_path / "ref")
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(T1)}
    for p in (project, reference):
        subprocess.run([str(EXE), "publish", "--project", str(p)], env=env, check=True, capture_output=True)
        change_and_delete(p)
    old_files, old_rows = files(project / "output"), rows(project)
    env2 = {**os.environ, "SOURCE_DATE_EPOCH": str(T2)}
    subprocess.run([str(EXE), "publish", "--project", str(reference)], env=env2, check=True, capture_output=True)
    new_files, new_rows = files(reference / "output"), rows(reference)
    assert new_files != old_files and new_rows != old_rows

    marker = tmp_path / "paused"
    proc = subprocess.Popen([str(EXE), "publish", "--project", str(project)],
                            env={**env2, "HERITAGE_LD_PAUSE_AT": point, "HERITAGE_LD_PAUSE_FILE": str(marker)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert marker.read_text() == point
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # consistent: the old state or the new one, never a mix
    assert files(project / "output") in (old_files, new_files)
    assert rows(project) in (old_rows, new_rows)
    # the next run completes and produces exactly what an uninterrupted run would
    subprocess.run([str(EXE), "publish", "--project", str(project)], env=env2, check=True, capture_output=True)
    assert files(project / "output") == new_files
    assert rows(project) == new_rows
    assert not [p.name for p in project.iterdir() if p.name.startswith(".output.")]
