"""The streaming pipeline: what a re-run skips (no change: everything after reading; a change:
the per-record files of unchanged records, hard-linked), the work database's life, and dumps that
list each triple once."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pyoxigraph as ox
import pytest

from heritage_ld import pipeline
from heritage_ld import work as work_mod
from heritage_ld.config import load

from conftest import copy_published, generated_project
from test_catalog import files
from test_outputs import copy_project

T1, T2, T3 = 1_700_000_000, 1_700_003_600, 1_700_007_200
EMMY = "records/person/emmy-storms.ttl"
GEORGIA = "records/person/georgia-evans.ttl"


def keep(path: Path, tmp: Path) -> int:
    """The file's inode, kept alive by a link of our own (so a new file cannot reuse the number)."""
    os.link(path, tmp / f"kept-{path.name}")
    return path.stat().st_ino


def edit_people(project: Path, old: str, new: str) -> None:
    path = project / "sample/people.json"
    path.write_text(path.read_text("utf-8").replace(old, new), "utf-8")


def test_unchanged_inputs_stop_after_reading(tmp_path):
    project = copy_project(tmp_path)
    first, _ = pipeline.publish(project, now=T1)
    again, changes = pipeline.publish(project, now=T2)
    assert not first.unchanged and again.unchanged and not changes and changes.unchanged == 22
    assert "map" not in again.seconds  # nothing was mapped or validated
    assert [vars(i) for i in again.issues] == [vars(i) for i in first.issues] and again.warnings == first.warnings > 0
    # a change to a mapping, a shape or the configuration is a change of inputs
    for name in ("mapping/person.yaml", "shapes/schema.ttl", "heritage-ld.toml"):
        path = project / name
        text = path.read_text("utf-8")
        path.write_text(text + "\n# edited\n", "utf-8")
        pub, _ = pipeline.publish(project, now=T3)
        assert not pub.unchanged, name
        path.write_text(text, "utf-8")


def test_unchanged_source_files_are_not_parsed_again(tmp_path, monkeypatch):
    """Source files byte for byte those of the last run: the run stops before parsing them (a
    daily run over a million records that did not change takes seconds). Files rewritten with the
    same records are parsed once (found unchanged), then skipped again; new code rebuilds."""
    project = copy_project(tmp_path)
    first, _ = pipeline.publish(project, now=T1)
    parse = pipeline.sources.read
    calls: list = []
    monkeypatch.setattr(pipeline.sources, "read", lambda *a: (calls.append(a), parse(*a))[1])
    again, changes = pipeline.publish(project, now=T2)
    assert again.unchanged and calls == [] and changes.unchanged == 22
    assert (again.records_read, again.published, again.triple_count, again.edm_count, again.warnings) == \
        (first.records_read, first.published, first.triple_count, first.edm_count, first.warnings)
    assert [vars(i) for i in again.issues] == [vars(i) for i in first.issues]
    path = project / "sample/people.json"
    path.write_text(json.dumps(json.loads(path.read_text("utf-8")), indent=4), "utf-8")
    third, changes = pipeline.publish(project, now=T3)
    assert third.unchanged and calls and changes.unchanged == 22
    calls.clear()
    fourth, _ = pipeline.publish(project, now=T3 + 1)
    assert fourth.unchanged and calls == []
    monkeypatch.setattr(pipeline, "code_digest", lambda: "the digest of other code")
    fifth, changes = pipeline.publish(project, now=T3 + 2)
    assert not fifth.unchanged and calls and changes.unchanged == 22


def test_unchanged_records_files_are_linked_not_rewritten(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    project = copy_project(tmp_path / "a")
    pipeline.publish(project, now=T1)
    out = project / "output"
    before = {rel: keep(out / rel, tmp_path) for rel in (EMMY, GEORGIA)}
    edit_people(project, "Violinist", "Violist")
    _, changes = pipeline.publish(project, now=T2)
    assert changes.changed == 1
    assert (out / GEORGIA).stat().st_ino == before[GEORGIA]          # same file, linked into the new output
    assert (out / EMMY).stat().st_ino != before[EMMY] and "Violist" in (out / EMMY).read_text("utf-8")
    # the output is what a first publication of the same sources gives
    fresh = copy_project(tmp_path / "b")
    shutil.copy(project / "sample/people.json", fresh / "sample/people.json")
    pipeline.publish(fresh, now=T2)
    ours, theirs = files(out), files(fresh / "output")
    ours.pop(".state"), theirs.pop(".state")
    assert ours.keys() == theirs.keys()
    differ = sorted(k for k in ours if ours[k] != theirs[k])
    # only the dumps with datestamps (N-Quads provenance) may differ: first publication T1 here
    assert set(differ) <= {"dataset.nq", "dataset.nq.gz", ".dataset.nq.gz.members", ".dataset.nq.blocks"}, differ


def test_a_changed_writer_configuration_rewrites_every_file(tmp_path):
    project = copy_project(tmp_path)
    pipeline.publish(project, now=T1)
    ino = keep(project / "output" / GEORGIA, tmp_path.parent)
    toml = project / "heritage-ld.toml"
    toml.write_text(toml.read_text("utf-8").replace('name = ', 'name = "Renamed" #', 1), "utf-8")
    pipeline.publish(project, now=T2)
    assert (project / "output" / GEORGIA).stat().st_ino != ino


def test_dumps_list_each_triple_once(tmp_path):
    project = copy_project(tmp_path)
    pipeline.publish(project, now=T1)
    out = project / "output"
    lines = (out / "dataset.nt").read_text("utf-8").splitlines()
    assert len(lines) == len(set(lines))
    # the image file is described by the article's record and the image's record: both graphs have it
    quads = list(ox.parse(path=out / "dataset.nq", format=ox.RdfFormat.N_QUADS))
    image = ox.NamedNode("https://media.example.org/editorial/grammofoonplaten.jpg")
    assert len({q.graph_name for q in quads if q.subject == image}) == 2
    void = {(str(t.predicate), str(t.object)) for t in ox.parse(path=out / "void.ttl", format=ox.RdfFormat.TURTLE)}
    assert ("<http://rdfs.org/ns/void#triples>", f'"{len(lines)}"^^<http://www.w3.org/2001/XMLSchema#integer>') in void


def test_work_database_is_removed_and_stale_ones_cleared(tmp_path):
    project = copy_project(tmp_path)
    folder = load(project).catalog.parent
    folder.mkdir(parents=True)
    from heritage_ld.work import host_tag
    for name in (f"work-{host_tag()}-999999999-abc", "work-999999999-def"):   # runs of this host that died
        (folder / f"{name}.sqlite").write_bytes(b"x")
    other = folder / "work-another-host.example-999999999-abc.sqlite"     # on a shared volume: not ours to judge
    other.write_bytes(b"x")
    pipeline.publish(project, now=T1)
    assert list(folder.glob("work-*")) == [other]
    pipeline.build(project)
    assert list(folder.glob("work-*")) == [other]


def test_state_file_names_what_the_output_was_made_from(tmp_path):
    project = copy_project(tmp_path)
    pipeline.publish(project, now=T1)
    state = json.loads((project / "output/.state").read_text())
    assert set(state) == {"state", "run", "catalog", "writers"} and state["run"] == 1
    assert os.stat(project / "output" / EMMY).st_nlink == 1


# -- results taken from the last run (the memo) ------------------------------------------------

def _jsonl_edit(path: Path, edit) -> None:
    """Rewrite a JSON Lines file with ``edit(records)`` applied to its records."""
    records = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    edit(records)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")


def _published(project: Path) -> dict:
    """Everything a run published: catalog records, report, output files."""
    import sqlite3
    db = sqlite3.connect(load(project).catalog)
    rows = db.execute("SELECT * FROM records ORDER BY entity, id").fetchall()
    report = db.execute("SELECT severity, issue FROM report ORDER BY seq").fetchall()
    db.close()
    out = project / "output"
    return {"rows": rows, "report": report, **{f.relative_to(out).as_posix(): f.read_bytes()
                                               for f in sorted(out.rglob("*")) if f.is_file()}}


def test_results_taken_from_the_last_run_are_those_it_would_compute(tmp_path):
    """A re-run takes each record's mapping and validation from the last published run (its work
    database, kept as the memo) where all they read recurs: record, parents, the answers of its link
    checks, linked records' triples, mappings, shapes, code. After edits of every kind, what it publishes is
    byte for byte what the same runs publish without a memo."""
    with_memo, without = tmp_path / "memo", tmp_path / "none"
    generated_project(with_memo, 80, seed=3)
    copy_published(with_memo, without)
    memo = work_mod.memo_path(load(without).catalog)

    def publish_both(now: int) -> tuple[pipeline.Publication, object]:
        memo.unlink(missing_ok=True)
        plain, _ = pipeline.publish(without, now=now)
        pub, changes = pipeline.publish(with_memo, now=now)
        assert plain.reused == 0 and _published(with_memo) == _published(without)
        return pub, changes

    def edit(name: str, change) -> None:
        for project in (with_memo, without):
            _jsonl_edit(project / f"data/{name}.jsonl", change)

    first, _ = publish_both(T1)
    assert first.reused == 0 and first.held_back and work_mod.memo_path(load(with_memo).catalog).is_file()
    total = first.published + len(first.held_back)

    def edit_some(articles):
        articles[3]["description"] += " Updated."
        articles[7]["description"] = "<p>markup</p>"          # now held back
        articles[11]["author"][0]["name"] += " Jr."            # one copy of an embedded person: a conflict
    edit("articles", edit_some)
    edit("people", lambda people: people[0].update(name="Renamed Person"))  # its linkers' EDM changes
    second, changes = publish_both(T2)
    assert changes.changed and total * 0.8 < second.reused < total

    # ids gone and new (records whose links resolve otherwise are mapped again), one fixed
    gone = json.loads((with_memo / "data/articles.jsonl").read_text("utf-8").splitlines()[0])["about"][0]

    def edit_more(articles):
        articles[7]["description"] = "Fixed."
        new = {k: v for k, v in articles[2].items() if k not in ("about", "mentions")}
        articles.append({**new, "identifier": "a-new-article", "name": "A new article"})  # its image: 2 parents
    edit("articles", edit_more)
    for name in ("people", "organisations"):
        edit(name, lambda records: [records.remove(r) for r in [r for r in records if r["identifier"] == gone]])
    third, changes = publish_both(T3)
    assert changes.added and changes.changed and total / 2 < third.reused < total


@pytest.mark.parametrize("workers", [1, 2])
def test_an_edited_mapping_applies_to_the_next_run_in_the_same_process(tmp_path, workers):
    """Workers keep the compiled project by its digest: a library caller (or a long-lived Dask
    worker) running again after an edit uses the edited mapping."""
    from heritage_ld import executor
    project = copy_project(tmp_path)
    pipeline.publish(project, now=T1, run=executor.make(workers=workers))
    path = project / "mapping/person.yaml"
    text = path.read_text("utf-8")
    line = next(line for line in text.splitlines() if "skos:prefLabel" in line)
    path.write_text(text.replace(line, f"{line}\n{line[:line.index('skos')]}schema:disambiguatingDescription: "
                                       "{value: from the edited mapping}"), "utf-8")
    _pub, changes = pipeline.publish(project, now=T2, run=executor.make(workers=workers))
    nt = (project / "output/dataset.nt").read_text("utf-8")
    assert changes.changed and '<http://schema.org/disambiguatingDescription> "from the edited mapping"' in nt


def test_a_damaged_or_foreign_memo_is_ignored(tmp_path):
    """The memo is a cache: garbage, or a work database of another version, costs only the reuse."""
    import sqlite3
    project = copy_project(tmp_path)
    first, _ = pipeline.publish(project, now=T1)
    memo = work_mod.memo_path(load(project).catalog)

    def foreign() -> None:
        memo.unlink()
        db = sqlite3.connect(memo)
        db.execute("CREATE TABLE result (entity TEXT, id TEXT, triples TEXT)")
        db.commit()
        db.close()
    def pages() -> None:   # its header and meta table whole (it looks like this project's), the rest garbage
        db = sqlite3.connect(memo)
        size = db.execute("PRAGMA page_size").fetchone()[0]
        meta = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'meta'").fetchone()[0]
        db.close()
        data = bytearray(memo.read_bytes())
        for page in range(2, len(data) // size + 1):
            if page != meta:
                data[(page - 1) * size:page * size] = b"\xa5" * size
        memo.write_bytes(bytes(data))
    names = ["Emmy Storms", "Emmy R. Storms", "Emmy Storms", "Emmy R. Storms", "Emmy Storms"]
    for n, damage in enumerate((lambda: memo.write_bytes(b"not a database" * 100), foreign, pages, lambda: None)):
        damage()
        edit_people(project, names[n], names[n + 1])
        pub, changes = pipeline.publish(project, now=T2 + n)
        assert changes.changed == 1 and pub.published == first.published and memo.is_file()
        assert (pub.reused > 0) == (n == 3), n   # only the memo the last run kept is taken


def test_a_memo_that_cannot_be_kept_does_not_fail_the_published_run(tmp_path):
    """Keeping the memo comes after the catalog commit and the output swap: if it fails (here its
    path is taken by a folder), the run has still published, and no work file is left behind."""
    project = copy_project(tmp_path)
    catalog = load(project).catalog
    work_mod.memo_path(catalog).mkdir(parents=True)
    (work_mod.memo_path(catalog) / "x").write_text("in the way")
    pub, changes = pipeline.publish(project, now=T1)
    assert changes.added == pub.published == 22 and (project / "output/dataset.nt").is_file()
    assert not list(catalog.parent.glob("work-*"))


# -- issue 15: the work database's read path ----------------------------------------------------------------

def test_copies_merge_across_write_batches(tmp_path, monkeypatch):
    """Records are written a batch at a time: a copy in a later batch still merges with the first,
    one whose digest differs but not its canonical form (keys in another order) too, a different
    record under that id is still a conflict naming every copy, parents keep their order."""
    import pickle
    monkeypatch.setattr(work_mod.Work, "BATCH", 2)
    w = work_mod.Work(tmp_path / "w.sqlite")

    def add(rid, data, source, parent=None):
        blob = pickle.dumps(data)
        w.add("person", rid, blob, hashlib.sha1(blob).digest(), source, parent, False)
    try:
        add("a", {"n": 1, "m": 2}, "f:1", ("article", "x"))
        add("b", {"n": 2}, "f:2")
        add("a", {"n": 1, "m": 2}, "f:3", ("article", "y"))    # a copy, next batch
        add("a", {"m": 2, "n": 1}, "f:4", ("article", "x"))    # the same record, keys in another order
        add("c", {"n": 3}, "f:5")
        add("d", {"n": 4}, "f:7")
        add("b", {"n": 9}, "f:6")                              # another record, same id: unwritten yet
        assert list(w.conflicts()) == [("person", "b", 2, "f:2; f:6")]
        w.commit()
        db = work_mod.Reader(str(w.path))
        got = {r[:2]: r for r in db.incoming([("person", "a"), ("person", "b"), ("person", "c")])}
        assert got[("person", "a")][3] == "f:1" and got[("person", "a")][5] == [("article", "x"), ("article", "y")]
        assert got[("person", "b")][3] == "f:2; f:6"     # a conflict's source names every copy
        assert pickle.loads(got[("person", "c")][2]) == {"n": 3}
        db.db.close()
    finally:
        w.close()


def pickle_loads(data: bytes):
    import pickle
    return pickle.loads(data)


def pickle_dumps(data) -> bytes:
    import pickle
    return pickle.dumps(data)


@pytest.mark.parametrize("held", [100_000, 1])
def test_link_checks_read_ids_held_or_looked_up(tmp_path, monkeypatch, held):
    """An entity's ids are held in memory for link checks up to KNOWN_IN_MEMORY, looked up beyond:
    the answers, and the checks recorded for the memo, are the same."""
    monkeypatch.setattr(work_mod, "KNOWN_IN_MEMORY", held)
    w = work_mod.Work(tmp_path / "w.sqlite")
    try:
        for rid in ("p1", "p2", "p3"):
            w.add("person", rid, b"", b"", "f", None, False)
        w.add("organisation", "o1", b"", b"", "f", None, False)
        w.commit()
        db = work_mod.Reader(str(w.path))
        asked: list = []
        for known in (work_mod.KnownIds(db), work_mod.KnownIds(db, asked)):
            people, orgs, none = known.get("person"), known.get("organisation"), known.get("image")
            assert ("p2" in people, "p9" in people, "o1" in people, "o1" in orgs, "p1" in none) == \
                (True, False, False, True, False)
        assert asked == [("person", "p2", True), ("person", "p9", False), ("person", "o1", False),
                         ("organisation", "o1", True), ("image", "p1", False)]
        assert [db.has("person", r) for r in ("p3", "p4")] == [True, False]
        db.db.close()
    finally:
        w.close()


def test_a_chunk_of_keys_far_apart_is_read_one_by_one(tmp_path):
    """``Reader.incoming`` reads a run of keys as one range; keys with many others between them
    are read one by one, with the same result."""
    w = work_mod.Work(tmp_path / "w.sqlite")
    try:
        for i in range(50):
            w.add("person", f"p{i:02}", pickle_dumps({"i": i}), b"", f"f:{i}", ("article", f"a{i}") if i % 2 else None,
                  False)
        w.commit()
        db = work_mod.Reader(str(w.path))
        run = [("person", f"p{i:02}") for i in range(10, 20)]
        apart = [("person", "p01"), ("person", "p48")]
        statements: list[str] = []
        db.db.set_trace_callback(statements.append)
        for keys in (run, apart, list(reversed(apart))):
            statements.clear()
            rows = db.incoming(keys)
            assert len(statements) == (2 if keys is run else 1 + 2 * len(keys))   # one range, or key by key
            assert [r[:2] for r in rows] == keys
            for entity, rid, data, source, _canon, parents in rows:
                i = int(rid[1:])
                assert (pickle_loads(data), source, parents) == ({"i": i}, f"f:{i}", [("article", f"a{i}")] if i % 2 else [])
        assert db.incoming([]) == []
        db.db.close()
    finally:
        w.close()


def test_copies_in_json_lines_merge_by_content_not_by_bytes(project):
    """Records from JSON Lines are digested by their pickle, not their canonical JSON: an author
    embedded with its keys in another order still merges, a different author under that id is
    still a duplicate, and a lone surrogate in an embedded copy is still held back."""
    lines = [
        {"identifier": "jl-1", "name": "One", "author": [{"identifier": "jl-ann", "name": "Ann", "jobTitle": "Editor"}]},
        {"name": "Two", "identifier": "jl-2", "author": [{"jobTitle": "Editor", "name": "Ann", "identifier": "jl-ann"}]},
        {"identifier": "jl-3", "name": "Three", "author": [{"identifier": "jl-bo", "name": "Bo"}]},
        {"identifier": "jl-4", "name": "Four", "author": [{"identifier": "jl-bo", "name": "Bob"}]},
        {"identifier": "jl-5", "name": "Five", "author": [{"identifier": "jl-cy", "name": "Cy", "x": "\ud800"}]},
    ]
    (project / "sample/more.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    with (project / "heritage-ld.toml").open("a") as fh:
        fh.write('\n[[sources]]\nentity = "article"\npath = "sample/more.jsonl"\n')
    pub = pipeline.build(project)
    by = {}
    for i in pub.issues:
        by.setdefault((i.entity, i.record_id), []).append(i.message)
    assert not any("duplicate id" in m for m in by.get(("person", "jl-ann"), []))
    assert any(m.startswith("duplicate id 'jl-bo': 2 different records use it (sample/more.jsonl:3 > author[0]; "
                            "sample/more.jsonl:4 > author[0])") for m in by[("person", "jl-bo")])
    assert any("U+D800" in m for m in by[("person", "jl-cy")])   # in a field no mapping reads
    assert ("person", "jl-ann") not in pub.held_back and ("person", "jl-cy") in pub.held_back
