"""Incremental publishing: idempotence, change and deletion detection, the mass-deletion guard,
provenance, and crash safety under SIGKILL at several points of a real `heritage-ld publish`."""
from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pytest
import rdflib

from heritage_ld import pipeline
from heritage_ld.catalog import VERSION, Catalog, DeletionGuard
from heritage_ld.terms import parse_nt
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


@pytest.mark.parametrize("point", ["mapped", "catalog-written", "tree-marked", "tree-written", "staged", "committed",
                                   "swapped"])
@pytest.mark.parametrize("runs", [1, 2])
def test_sigkill_leaves_old_or_new_state_and_next_run_completes(tmp_path, point, runs):
    """Killed at each point of a run after ``runs`` others (the second run makes the other output tree from
    the first one's files; the third brings that one forward)."""
    (tmp_path / "run").mkdir()
    (tmp_path / "ref").mkdir()
    project, reference = copy_project(tmp_path / "run"), copy_project(tmp_path / "ref")
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(T1)}
    for p in (project, reference):
        subprocess.run([str(EXE), "publish", "--project", str(p)], env=env, check=True, capture_output=True)
        if runs == 2:
            edit(p, "posts.json", lambda d: d[0].update(description=d[0]["description"] + " Updated."))
            subprocess.run([str(EXE), "publish", "--project", str(p)], env={**env, "SOURCE_DATE_EPOCH": str(T1 + 60)},
                           check=True, capture_output=True)
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


# -- a catalog that is not one, and faults of the place a run runs in (issue 12, items 13 and 15) --

def publish_cli(project: Path, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(EXE), "publish", "--project", str(project)], capture_output=True, text=True,
                          env={**os.environ, "SOURCE_DATE_EPOCH": str(T2), **(env or {})}, timeout=300, **kw)


def stopped(r: subprocess.CompletedProcess) -> str:
    """Exit code 2, no traceback, one line on stderr: the message."""
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


@pytest.fixture
def changed(tmp_path) -> tuple[Path, dict, dict]:
    """A project published at T1, then changed; and the output and catalog rows a run at T2 makes."""
    (tmp_path / "ref").mkdir()
    (tmp_path / "run").mkdir()
    reference, project = copy_project(tmp_path / "ref"), copy_project(tmp_path / "run")
    for p in (reference, project):
        assert publish_cli(p, {"SOURCE_DATE_EPOCH": str(T1)}).returncode == 0
        change_and_delete(p)
    assert publish_cli(reference).returncode == 0
    return project, files(reference / "output"), rows(reference)


class Unchanged:
    """The output and catalog of ``project`` as they are now, to compare with after a failed run."""

    def __init__(self, project: Path) -> None:
        self.project, self.output, self.rows = project, files(project / "output"), rows(project)

    def check(self) -> None:
        assert files(self.project / "output") == self.output
        assert rows(self.project) == self.rows
        assert not [p.name for p in self.project.iterdir() if p.name.startswith(".output.")]


def completes(project: Path, reference: tuple[dict, dict]) -> None:
    """The next run, once the fault is gone, publishes what an undisturbed run would have."""
    r = publish_cli(project)
    assert r.returncode == 0, r.stderr
    assert (files(project / "output"), rows(project)) == reference
    assert not [p.name for p in project.iterdir() if p.name.startswith(".output.")]


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(random.Random(1).randbytes(len(data)))
    elif how == "other-sqlite":
        path.unlink()
        db = sqlite3.connect(path)
        db.execute("CREATE TABLE notes (text TEXT)")
        db.commit()
        db.close()
    elif how == "newer":
        db = sqlite3.connect(path)
        db.execute("PRAGMA user_version = 99")
        db.close()
    elif how == "truncated":
        path.write_bytes(data[:len(data) // 2])
    elif how == "corrupted":   # every page after the first, half of each overwritten
        rnd, page = random.Random(2), 4096
        path.write_bytes(data[:page] + b"".join(data[i:i + page // 2] + rnd.randbytes(page // 2)
                                                for i in range(page, len(data), page)))


@pytest.mark.parametrize("how, message", [
    ("empty", "is empty (0 bytes), not a catalog: restore it from a backup. Only if there is none, delete it"),
    ("garbage", "is not a heritage-ld catalog (not an SQLite database): restore it from a backup"),
    ("other-sqlite", "is an SQLite database but not a heritage-ld catalog (no records table)"),
    ("newer", f"was written by a newer heritage-ld (catalog version 99; this one reads up to {VERSION}): upgrade"),
    ("truncated", "is damaged (it is "),
    ("corrupted", "is damaged (database disk image is malformed): restore it from a backup"),
])
def test_a_catalog_that_is_not_a_valid_catalog_is_refused(changed, how, message):
    """Only a missing catalog is a new one: an empty file, another database, a damaged or newer
    catalog stops the run (exit 2), and neither it nor output/ is touched."""
    project, *reference = changed
    catalog = load(project).catalog
    before = files(project / "output")
    damage(catalog, how)
    broken = catalog.read_bytes()
    msg = stopped(publish_cli(project))
    assert f"error: {catalog} {message}" in msg, msg
    assert msg.endswith("; nothing was published: the catalog and output/ are as they were")
    assert catalog.read_bytes() == broken and files(project / "output") == before
    with socket.socket() as sock:  # a free port, should the server start after all
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    commands = [["status"]] + ([["serve", "--port", port]] if how in ("empty", "garbage", "other-sqlite", "newer", "truncated")
                               else [])   # damage deeper in the file shows when a page is read
    for command in commands:
        r = subprocess.run([str(EXE), *command, "--project", str(project)], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert catalog.read_bytes() == broken


def test_a_catalog_from_before_versions_is_upgraded(changed):
    project, *reference = changed
    catalog = load(project).catalog
    db = sqlite3.connect(catalog)
    db.execute("PRAGMA user_version = 0")
    db.close()
    completes(project, tuple(reference))
    db = sqlite3.connect(catalog)
    assert db.execute("PRAGMA user_version").fetchone()[0] == VERSION
    db.close()


def test_a_version_1_catalog_has_its_triples_converted(changed):
    """Version 1 stored triples as JSON lists; the upgrade makes them N-Triples text, and a run then
    publishes exactly what it would have from a catalog of this version."""
    project, *reference = changed
    catalog = load(project).catalog
    db = sqlite3.connect(catalog, isolation_level=None)
    live = dict(db.execute("SELECT entity || '/' || id, triples FROM records"))
    db.create_function("json_of_nt", 1, lambda text: json.dumps([list(t) for t in parse_nt(text)]))
    db.execute("UPDATE records SET triples = json_of_nt(triples)")
    db.execute("PRAGMA user_version = 1")
    db.close()
    Catalog(catalog).close()
    db = sqlite3.connect(catalog)
    assert dict(db.execute("SELECT entity || '/' || id, triples FROM records")) == live
    assert db.execute("PRAGMA user_version").fetchone()[0] == VERSION
    db.close()
    completes(project, tuple(reference))


def test_two_publishes_at_once(changed, tmp_path):
    """A second publish while one runs stops at once (exit 2) saying so; the first is not disturbed."""
    project, *reference = changed
    marker = tmp_path / "paused"
    first = subprocess.Popen([str(EXE), "publish", "--project", str(project)],
                             env={**os.environ, "SOURCE_DATE_EPOCH": str(T2), "HERITAGE_LD_PAUSE_AT": "staged",
                                  "HERITAGE_LD_PAUSE_FILE": str(marker), "HERITAGE_LD_PAUSE_SECONDS": "30"},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not marker.exists() and time.time() < deadline and first.poll() is None:
            time.sleep(0.05)
        assert marker.exists(), first.stderr.read() if first.poll() is not None else "not paused"
        t0 = time.monotonic()
        msg = stopped(publish_cli(project))
        assert time.monotonic() - t0 < 20
        assert f"another heritage-ld publish (pid {first.pid} on {socket.gethostname()}) is running on this " \
               "catalog: wait for it to finish and run again" in msg, msg
        assert first.wait(timeout=120) == 0, first.stderr.read()   # the first goes on and publishes
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert (files(project / "output"), rows(project)) == tuple(reference)


def test_a_catalog_locked_by_another_process(changed):
    """A process holding the catalog's write lock (an sqlite3 shell, say): exit 2 after the busy timeout."""
    project, *reference = changed
    before = Unchanged(project)
    holder = subprocess.Popen([sys.executable, "-c", "import sqlite3, sys\n"
                               f"db = sqlite3.connect({str(load(project).catalog)!r}, isolation_level=None)\n"
                               "db.execute('BEGIN IMMEDIATE'); print('locked', flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        msg = stopped(publish_cli(project))
        assert "is locked by another process (a heritage-ld publish or push, or an sqlite3 shell): wait for it " \
               "to finish and run again; nothing was published" in msg, msg
        before.check()
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    completes(project, tuple(reference))


@contextmanager
def mounted(target: Path, *args: str):
    """``mount *args target`` for the test's duration; skipped where mounting is not permitted
    (it needs root and CAP_SYS_ADMIN, which CI containers often lack)."""
    target.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a file system here (mount {' '.join(args)}: {r.stderr.strip()})")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


@contextmanager
def read_only(folder: Path):
    """``folder`` as a read-only bind mount of itself."""
    with mounted(folder, "--bind", str(folder)):
        r = subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True, text=True)
        if r.returncode:
            pytest.skip(f"cannot remount read-only here: {r.stderr.strip()}")
        yield folder


def test_disk_full(changed, tmp_path):
    """On a real 8 MB file system (tmpfs) filled to a few KB short of what the run needs, at several
    points of the run: exit 2 with a one-line message saying to free space; nothing changed; once
    space is freed the next run publishes what an undisturbed one would."""
    project, *reference = changed
    with mounted(tmp_path / "small", "-t", "tmpfs", "-o", "size=8m", "tmpfs") as small:
        seen = set()
        for free_kb in (24, 80, 200, 400, 700):
            here = small / "project"
            shutil.copytree(project, here, symlinks=True)
            before = Unchanged(here)
            stat = os.statvfs(small)
            filler = small / "filler"
            with filler.open("wb") as fh:
                fh.truncate(0)
                fh.write(b"\0" * max(0, stat.f_bavail * stat.f_frsize - free_kb * 1024))
            r = publish_cli(here)
            if r.returncode == 0:   # it fitted: the next size up will too
                break
            msg = stopped(r)
            assert ("no space left on the device: free some space (df -h) and run again" in msg
                    or "failed (database or disk is full): free some space (df -h)" in msg
                    or "failed (disk I/O error): free some space (df -h)" in msg), msg
            assert msg.endswith("nothing was published: the catalog and output/ are as they were"), msg
            seen.add(msg.split(": ")[1])
            filler.unlink()
            before.check()
            completes(here, tuple(reference))
            shutil.rmtree(here)
        assert len(seen) >= 2, seen  # the full disk was met at more than one point of the run


@pytest.mark.parametrize("limit", [16_000, 60_000, 150_000, 300_000])
def test_file_size_limit(changed, limit):
    """``ulimit -f`` (RLIMIT_FSIZE): a write past it fails (Python ignores SIGXFSZ) at some point of
    the run; exit 2 naming the limit, nothing changed, and the next run without it completes."""
    project, *reference = changed
    before = Unchanged(project)
    r = publish_cli(project, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    msg = stopped(r)
    assert f"raise the file size limit of {limit} bytes (ulimit -f), and run again" in msg \
        or "the file size limit was reached: raise it (ulimit -f) and run again" in msg, msg
    before.check()
    completes(project, tuple(reference))


def test_read_only_output(changed):
    project, *reference = changed
    before = Unchanged(project)
    with read_only(project / "output"):
        msg = stopped(publish_cli(project))
        assert f"error: {project / 'output'}: read-only file system: make it writable, or set output or catalog " \
               "in heritage-ld.toml to a writable place, and run again; nothing was published" in msg, msg
    before.check()
    completes(project, tuple(reference))


def test_output_on_a_mount_point(changed, tmp_path):
    """A folder ``output`` that is a mount point cannot be replaced by the link to a tree: said before
    anything changes (it used to fail after the catalog had committed, naming neither)."""
    project, *reference = changed
    (project / "output").unlink()   # the layout of earlier versions: a folder, here a mount point
    (project / "output").mkdir()
    before = Unchanged(project)
    with mounted(project / "output", "--bind", str(project / "output")):
        msg = stopped(publish_cli(project))
        assert "it is a mount point, which heritage-ld cannot replace in one step: set output in " \
               "heritage-ld.toml to a folder inside it; nothing was published" in msg, msg
    before.check()


def test_the_shown_tree_on_a_mount_point(changed):
    """A mount point at the tree ``output`` shows is no obstacle: the run writes the other tree (no hard links
    across mounts: every file written) and switches the link."""
    project, *reference = changed
    with mounted(project / "output", "--bind", str(project / "output")):
        completes(project, tuple(reference))


def test_read_only_project_folder(changed):
    project, *reference = changed
    before = Unchanged(project)
    with read_only(project):
        msg = stopped(publish_cli(project))
        assert "read-only file system" in msg and "nothing was published" in msg, msg
    before.check()
    completes(project, tuple(reference))


def test_only_staging_folders_of_dead_runs_are_removed(changed):
    """Staging folders of this host's dead runs (and unnamed ones of older versions) go; a live run's
    and another host's stay."""
    project, *reference = changed
    from heritage_ld.work import host_tag
    gone = subprocess.Popen(["true"])
    gone.wait()
    live = subprocess.Popen(["sleep", "600"])
    try:
        names = {"dead": f".output.staging-{host_tag()}-{gone.pid}-abcd1234", "legacy": ".output.staging-k2j4h5g6",
                 "live": f".output.staging-{host_tag()}-{live.pid}-abcd1234",
                 "other": ".output.staging-another.host.example-1-abcd1234"}
        for name in names.values():
            (project / name / "records").mkdir(parents=True)
            (project / name / "records" / "x.ttl").write_text("x")
        assert publish_cli(project).returncode == 0
        assert sorted(p.name for p in project.iterdir() if p.name.startswith(".output.")) == \
            sorted([names["live"], names["other"]])
    finally:
        live.kill()
        live.wait()
    assert publish_cli(project).returncode == 0           # no change: the run stops early, and clears
    assert [p.name for p in project.iterdir() if p.name.startswith(".output.")] == [names["other"]]
    assert (files(project / "output"), rows(project)) == tuple(reference)
