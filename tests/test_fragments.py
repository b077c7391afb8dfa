"""Serialise once (issue 15): each published record's fragments (Turtle and JSON-LD documents,
JSON-LD nodes, oai_dc) are made once, where the record is checked, and stored in the catalog; the
writers, OAI-PMH, push and record pages read them. These tests pin that nothing is serialised twice,
that stored fragments stay exactly what would be made, and that they are made again when what they
depend on (prefixes, code) changes although the records do not."""
from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote

from heritage_ld import pipeline
from heritage_ld.catalog import unpack
from heritage_ld.config import load
from heritage_ld.writers import _serialisers

from test_outputs import copy_project

T0 = 1_764_547_200


def files(out: Path) -> dict[str, bytes]:
    """Every file of an output folder but its state (which names the catalog run)."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != ".state"}


def made() -> int:
    """Fragments the writers had to make themselves (rows without stored ones of the current key)."""
    return sum(s.made for s in _serialisers.values())


def fragment_rows(project: Path) -> list[tuple]:
    db = sqlite3.connect(load(project).catalog)
    try:
        return db.execute("SELECT entity, id, hash, frag_key, fragments FROM records WHERE deleted = 0 "
                          "ORDER BY entity, id").fetchall()
    finally:
        db.close()


def test_writers_write_what_the_check_stored(tmp_path):
    """A publish stores every live record's fragments, and the writers make none of their own."""
    project = copy_project(tmp_path)
    before = made()
    pipeline.publish(project, now=T0)
    assert made() == before
    rows = fragment_rows(project)
    assert rows and all(key and blob for _e, _i, _h, key, blob in rows)
    names = set(unpack(rows[0][4]))
    assert {"turtle", "jsonld", "jsonld.nodes", "oai_dc"} <= names
    out = project / "output"
    for entity, rid, _h, _key, blob in rows:   # the record files are the stored fragments
        stored = unpack(blob)
        name = f"records/{entity}/{quote(rid, safe='')}"
        assert (out / f"{name}.ttl").read_bytes() == stored["turtle"]
        assert (out / f"{name}.jsonld").read_bytes() == stored["jsonld"]


def test_stored_or_made_again_the_output_is_the_same(tmp_path):
    """Rows whose fragments are missing (a catalog upgraded from version 1) are written from their
    triples, byte for byte what stored fragments give."""
    project = copy_project(tmp_path)
    pipeline.publish(project, now=T0)
    stored = files(project / "output")
    db = sqlite3.connect(load(project).catalog, isolation_level=None)
    live = db.execute("SELECT count(*) FROM records WHERE deleted = 0").fetchone()[0]
    db.execute("UPDATE records SET fragments = NULL, frag_key = NULL")
    db.close()
    (project / "output/.state").unlink()   # the output is written again from the catalog
    before = made()
    pipeline.publish(project, now=T0 + 60)   # nothing changed: the run stops before checking anything
    assert files(project / "output") == stored
    assert made() - before == live   # the writers made every record's fragments themselves, once


def test_fragments_are_made_again_when_the_prefixes_change(tmp_path):
    """A prefix added to mapping/prefixes.yaml changes no record (same hash, same datestamp) but every
    Turtle document: the fragments are made again and the output is that of a first publish."""
    project = copy_project(tmp_path)
    pipeline.publish(project, now=T0)
    first = {r[:3]: r[3] for r in fragment_rows(project)}
    prefixes = project / "mapping/prefixes.yaml"
    prefixes.write_text(prefixes.read_text() + "person: https://data.example.org/person/\n")
    _pub, changes = pipeline.publish(project, now=T0 + 60)
    assert not changes   # no record changed: no new datestamps
    again = {r[:3]: r[3] for r in fragment_rows(project)}
    assert set(again) == set(first)              # same records, same hashes
    assert set(again.values()) != set(first.values())   # made with the new key
    (tmp_path / "fresh").mkdir()
    fresh = copy_project(tmp_path / "fresh")
    (fresh / "mapping/prefixes.yaml").write_text(prefixes.read_text())
    pipeline.publish(fresh, now=T0)   # (the datestamps, in dataset.nq, are those of the first run)
    assert files(project / "output") == files(fresh / "output")
    assert b"person:sanne-de-vries" in (project / "output/records/article/muziek-uit-het-archief.ttl").read_bytes()


def test_fragments_stored_before_they_were_deflated_are_read(tmp_path):
    """A catalog published by the version that stored fragments pickled but not deflated (catalog version
    2 too) is read as it is: OAI-PMH, record pages and the writers get the same bytes."""
    import pickle
    from heritage_ld.catalog import Catalog
    project = copy_project(tmp_path)
    pipeline.publish(project, now=T0)
    rows = fragment_rows(project)
    db = sqlite3.connect(load(project).catalog, isolation_level=None)
    for entity, rid, _h, _key, blob in rows:
        db.execute("UPDATE records SET fragments = ? WHERE entity = ? AND id = ?",
                   (pickle.dumps(unpack(blob), pickle.HIGHEST_PROTOCOL), entity, rid))
    db.close()
    cat = Catalog(load(project).catalog)
    try:
        assert [(r.entity, r.id, r.fragments) for r in cat.rows()] == [(e, i, unpack(b)) for e, i, _h, _k, b in rows]
    finally:
        cat.close()
