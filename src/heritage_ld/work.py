"""The run's work database: every record read, then its mapping, validation and EDM results.

A run streams its records through SQLite (a file beside the catalog) instead of holding them in
memory, so memory stays flat however many records there are. Workers (local processes or Dask
workers on a shared volume) open it read-only between passes; only the coordinating process
writes. Triples are stored as N-Triples text, as in the catalog. A published run's work database is
kept as the next run's ``Memo``: a record whose inputs recur takes its results from there.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import socket
import sqlite3
import uuid
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator

from .terms import Triple, parse_nt

SCHEMA = """
CREATE TABLE incoming (               -- one row per record id; copies of an embedded record merge
    entity TEXT NOT NULL, id TEXT NOT NULL,
    data BLOB NOT NULL,               -- pickled source record, without _embeddedIn
    canon BLOB NOT NULL,              -- digest of its pickle or canonical JSON: copies with another one
                                      -- conflict if their canonical JSON differs too
    source TEXT NOT NULL, sources TEXT NOT NULL, copies INTEGER NOT NULL DEFAULT 1,
    conflict INTEGER NOT NULL DEFAULT 0, linked_only INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (entity, id)
);
CREATE TABLE parents (entity TEXT, id TEXT, pentity TEXT, pid TEXT, UNIQUE (entity, id, pentity, pid));
CREATE TABLE result (
    entity TEXT NOT NULL, id TEXT NOT NULL,
    triples TEXT NOT NULL,            -- N-Triples lines (terms.nt_lines), in the mapping's order
    subjects TEXT NOT NULL,           -- JSON {block: IRI}
    issues BLOB,                      -- pickled list of Issue, NULL if none
    held INTEGER NOT NULL DEFAULT 0, edm_held INTEGER NOT NULL DEFAULT 0,
    publish INTEGER NOT NULL DEFAULT 0,
    edm BLOB, hash TEXT, sets TEXT, mapping TEXT, source TEXT,
    map_key BLOB,                     -- digest of all that mapping the record read (see pipeline.Shared)
    asked TEXT,                       -- and the link checks it made: JSON [[entity, id, found], ...]
    mapped_issues BLOB,               -- the mapping's issues alone (``issues`` gains the others)
    check_key BLOB,                   -- digest of all that pass 3 read; NULL once pass 4 or the
                                      -- vocabulary rule changed the row (then it is not reused)
    fragments BLOB, frag_key TEXT,    -- the formats' fragments, where the catalog's are not these (catalog.py)
    pre_issues BLOB,                  -- ``issues`` as pass 3 found them where not ``mapped_issues`` (no id, duplicate id)
    reused INTEGER NOT NULL DEFAULT 0,  -- taken from the memo: 1 the mapping, 2 the mapping and pass 3
    PRIMARY KEY (entity, id)
);
CREATE TABLE subject (iri TEXT NOT NULL, entity TEXT NOT NULL, id TEXT NOT NULL);
CREATE TABLE objects (iri TEXT NOT NULL, entity TEXT NOT NULL, id TEXT NOT NULL);   -- the IRIs a record links to
CREATE TABLE links (entity TEXT NOT NULL, id TEXT NOT NULL, target TEXT NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value);   -- the run's project digest and reference flag
"""
INDEXES = """
CREATE INDEX IF NOT EXISTS subject_iri ON subject (iri);
CREATE INDEX IF NOT EXISTS objects_iri ON objects (iri);
CREATE INDEX IF NOT EXISTS links_target ON links (target);
"""

Key = tuple[str, str]
CACHED = 5000  # entries in a reader's caches (least recently used forgotten), so memory stays bounded
KNOWN_IN_MEMORY = 100_000  # ids of an entity a reader holds for link checks; beyond, each is looked up
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=repr)


def canonical(data: Any) -> bytes:
    """A record's canonical form: UTF-8 JSON with sorted keys (UnicodeEncodeError, TypeError,
    ValueError or RecursionError if it has none: ``sources.usable`` says why)."""
    return _CANONICAL.encode(data).encode()


def _same_record(a: bytes, b: bytes) -> int:
    """1 if two pickled records have the same canonical form (copies read from other serialisations:
    keys in another order, another kind of source), else 0."""
    try:
        return int(canonical(pickle.loads(a)) == canonical(pickle.loads(b)))
    except Exception:  # noqa: BLE001 -- not comparable: a conflict, reported as such
        return 0


class Work:
    """The coordinating process's read-write handle."""

    def __init__(self, path: Path) -> None:
        self.path = path
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None)
        self.attached = False   # the memo, as ``m`` (``attach_memo``)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=OFF")   # scratch: a crash discards it anyway
        self.db.execute("PRAGMA cache_size=-65536")
        self.db.create_function("same_record", 2, _same_record, deterministic=True)
        self.db.executescript(SCHEMA)
        self.db.execute("BEGIN")
        self._incoming: list[tuple] = []   # records added, written a batch at a time (``flush``)
        self._parents: list[tuple] = []

    def commit(self) -> None:
        """Make what was written visible to the workers."""
        self.flush()
        self.db.execute("COMMIT")
        self.db.execute("BEGIN")

    def close(self) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")
        self.db.close()
        close_readers(str(self.path))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def keep_as(self, memo: Path) -> bool:
        """Close and become ``memo`` (the next run's ``Memo``), replacing the one there; False (and
        deleted) where another connection still has it open (Dask workers keep theirs)."""
        if self.db.in_transaction:
            self.db.execute("COMMIT")
        close_readers(str(self.path))
        try:  # one file, no WAL: a reader may open it under another name
            kept = self.db.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"
        except sqlite3.OperationalError:
            kept = False
        if not kept:
            self.close()
            return False
        self.db.close()
        try:  # the run is published: a memo that cannot be kept costs only the next run's reuse
            os.replace(self.path, memo)
        except OSError:
            kept = False
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        return kept

    # -- pass 1: records read ------------------------------------------------------------
    BATCH = 1000   # records added before they are written

    def add(self, entity: str, rid: str, data: bytes, canon: bytes, source: str, parent: Key | None,
            linked_only: bool) -> None:
        """A record read (``data`` pickled; ``canon`` a digest of it or of its canonical form); a
        copy of one already added merges with it, and is a conflict if its digest differs and its
        canonical form too. Written by ``flush``."""
        self._incoming.append((entity, rid, data, canon, source, source, int(linked_only)))
        if parent:
            self._parents.append((entity, rid, *parent))
        if len(self._incoming) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        """Write the records added, in the order they were (copies merge in that order)."""
        if self._incoming:
            self.db.executemany(
                "INSERT INTO incoming (entity, id, data, canon, source, sources, linked_only) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (entity, id) DO UPDATE SET copies = copies + 1, sources = sources || '; ' || excluded.source, "
                "conflict = CASE WHEN conflict OR canon = excluded.canon THEN conflict "
                "ELSE NOT same_record(data, excluded.data) END, "
                "linked_only = linked_only OR excluded.linked_only",
                self._incoming)
            self._incoming = []
        if self._parents:
            self.db.executemany("INSERT OR IGNORE INTO parents VALUES (?, ?, ?, ?)", self._parents)
            self._parents = []

    def conflicts(self) -> Iterator[tuple[str, str, int, str]]:
        self.flush()
        return self.db.execute("SELECT entity, id, copies, sources FROM incoming WHERE conflict ORDER BY entity, id")

    def keys(self, table: str = "incoming", page: int = 5000, where: str = "1") -> Iterator[Key]:
        """Every key in order (those of ``table`` matching ``where``), a page at a time (keyset paging:
        the table may be written meanwhile)."""
        self.flush()
        last: Key = ("", "")
        while True:
            rows = self.db.execute(f"SELECT entity, id FROM {table} WHERE {where} AND (entity, id) > (?, ?) "
                                   f"ORDER BY entity, id LIMIT {page}", last).fetchall()
            yield from rows
            if len(rows) < page:
                return
            last = rows[-1]

    # -- pass 2: mapped --------------------------------------------------------------------
    def add_mapped(self, rows: Iterable[tuple[str, str, str, str, bytes | None, str, str, str, str, bytes]]) -> None:
        """(entity, id, triples (N-Triples), subjects JSON, issues, link checks JSON, sets JSON, mapping digest,
        source, map key) per record."""
        for entity, rid, triples, subjects, issues, asked, sets, mapping, source, key in rows:
            self.db.execute("INSERT INTO result (entity, id, triples, subjects, issues, mapped_issues, asked, sets, "
                            "mapping, source, map_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (entity, rid, triples, subjects, issues, issues, asked, sets, mapping, source, key))
            parsed = parse_nt(triples)
            self.db.executemany("INSERT INTO subject VALUES (?, ?, ?)", ((s, entity, rid) for s in {t[0] for t in parsed}))
            self.db.executemany("INSERT INTO objects VALUES (?, ?, ?)",
                                ((o, entity, rid) for o in {t[2] for t in parsed if t[2][0] == "<"}))

    def index(self) -> None:
        self.db.executescript(INDEXES + "BEGIN;")  # executescript commits first

    # -- what the memo gives: results of records whose inputs recur, found with SQL --------------
    def attach_memo(self, memo: Path | None, project: str, reference: bool) -> bool:
        """Note this run's project digest and reference flag; attach the last published run's work
        database as ``m`` if it was made by the same project (code, configuration, mappings, shapes)
        and without ``reference``. False (nothing attached) otherwise, or if it cannot be read."""
        self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", (("project", project), ("reference", reference)))
        if memo is None or reference:
            return False
        self.flush()
        self.db.execute("COMMIT")   # (no ATTACH inside a transaction)
        try:
            self.db.execute("ATTACH DATABASE ? AS m", (str(memo),))   # read only: nothing here writes to it
        except sqlite3.Error:
            return False
        finally:
            self.db.execute("BEGIN")
        try:
            same = dict(self.db.execute("SELECT key, value FROM m.meta")) == {"project": project, "reference": 0}
        except sqlite3.Error:   # damaged, or of another version
            same = False
        self.attached = same
        if not same:
            self.detach_memo()
        return same

    def detach_memo(self) -> None:
        self.attached = False
        self.flush()
        self.db.execute("COMMIT")
        try:
            self.db.execute("DETACH DATABASE m")
        finally:
            self.db.execute("BEGIN")

    @contextmanager
    def _from_memo(self) -> Iterator[None]:
        """Take results from the attached memo; where its pages turn out damaged part way (its header and
        meta table read well), undo what was taken, drop its scratch tables and detach it: the records are
        then mapped and checked afresh. Other errors (a full disk) go on, to stop the run."""
        self.flush()
        self.db.execute("COMMIT")   # what came before is kept whatever happens here
        self.db.execute("BEGIN")
        try:
            yield
        except sqlite3.DatabaseError as e:
            if getattr(e, "sqlite_errorname", "") not in ("SQLITE_CORRUPT", "SQLITE_NOTADB"):
                raise
            self.db.execute("ROLLBACK")
            if self.db.execute("PRAGMA main.quick_check(1)").fetchone()[0] != "ok":
                raise
            for table in ("mappings", "pnow", "pmemo", "changed", "linking"):
                self.db.execute(f"DROP TABLE IF EXISTS temp.{table}")
            self.db.execute("DETACH DATABASE m")
            self.db.execute("BEGIN")
            self.attached = False

    def reuse_mapped(self, entities: dict[str, tuple[str, str]]) -> int:
        """Pass 2 from the memo, in SQL, for every record whose mapping read the same as last time: its
        canonical data, where it came from, its parents (in order), its mapping (``entities``: entity ->
        (mapping digest, sets JSON)), and the answers of its link checks. Returns how many (0, and the memo
        detached, if it is damaged)."""
        n = 0
        with self._from_memo():
            n = self._reuse_mapped(entities)
        return n

    def _reuse_mapped(self, entities: dict[str, tuple[str, str]]) -> int:
        self.db.execute("CREATE TEMP TABLE mappings (entity TEXT PRIMARY KEY, mapping TEXT, sets TEXT)")
        self.db.executemany("INSERT INTO temp.mappings VALUES (?, ?, ?)", ((e, d, s) for e, (d, s) in entities.items()))
        for name, db in (("pnow", "main"), ("pmemo", "m")):   # each record's parents, in the order read
            self.db.execute(f"CREATE TEMP TABLE {name} AS SELECT entity, id, group_concat(pentity || char(31) || pid, "
                            f"char(30)) AS ps FROM (SELECT * FROM {db}.parents ORDER BY entity, id, rowid) "
                            "GROUP BY entity, id")
            self.db.execute(f"CREATE INDEX temp.{name}_key ON {name} (entity, id)")
        source = "CASE WHEN {0}.conflict THEN {0}.sources ELSE {0}.source END"
        n = self.db.execute(
            "INSERT INTO result (entity, id, triples, subjects, issues, mapped_issues, asked, sets, mapping, source, "
            f"map_key, reused) SELECT i.entity, i.id, r.triples, r.subjects, r.mapped_issues, r.mapped_issues, r.asked, "
            f"d.sets, d.mapping, {source.format('i')}, r.map_key, 1 FROM main.incoming i "
            "JOIN m.incoming mi ON mi.entity = i.entity AND mi.id = i.id "
            "JOIN m.result r ON r.entity = i.entity AND r.id = i.id "
            "JOIN temp.mappings d ON d.entity = i.entity "
            "LEFT JOIN temp.pnow pn ON pn.entity = i.entity AND pn.id = i.id "
            "LEFT JOIN temp.pmemo pm ON pm.entity = i.entity AND pm.id = i.id "
            f"WHERE mi.canon = i.canon AND {source.format('mi')} = {source.format('i')} AND r.mapping = d.mapping "
            "AND r.map_key IS NOT NULL AND pn.ps IS pm.ps AND NOT EXISTS ("
            "  SELECT 1 FROM json_each(r.asked) a WHERE (a.value ->> 2) != EXISTS ("
            "    SELECT 1 FROM main.incoming x WHERE x.entity = a.value ->> 0 AND x.id = a.value ->> 1))").rowcount
        for table in ("subject", "objects"):
            self.db.execute(f"INSERT INTO {table} SELECT t.iri, t.entity, t.id FROM m.{table} t JOIN result r "
                            "ON r.entity = t.entity AND r.id = t.id WHERE r.reused")
        self.db.execute("DROP TABLE temp.mappings")
        self.db.execute("DROP TABLE temp.pnow")
        self.db.execute("DROP TABLE temp.pmemo")
        return n

    def reuse_checked(self) -> int:
        """Pass 3 from the memo, in SQL, for records whose mapping was taken from it (``reuse_mapped``),
        whose issues before pass 3 are the same, and none of whose linked resources changed: no
        record describing it was mapped again, added or removed. Returns how many (0, and the memo detached,
        if it is damaged)."""
        n = 0
        with self._from_memo():
            n = self._reuse_checked()
        return n

    def _reuse_checked(self) -> int:
        self.db.execute(
            "CREATE TEMP TABLE changed AS SELECT s.iri FROM main.subject s JOIN main.result r ON r.entity = s.entity "
            "AND r.id = s.id WHERE NOT r.reused UNION SELECT s.iri FROM m.subject s WHERE NOT EXISTS ("
            "SELECT 1 FROM main.result r WHERE r.entity = s.entity AND r.id = s.id AND r.reused)")
        self.db.execute("CREATE TEMP TABLE linking (entity TEXT, id TEXT, PRIMARY KEY (entity, id)) WITHOUT ROWID")
        self.db.execute("INSERT OR IGNORE INTO temp.linking SELECT o.entity, o.id FROM temp.changed c "
                        "JOIN main.objects o ON o.iri = c.iri")   # records linking to a changed resource
        n = self.db.execute(
            "UPDATE result SET issues = mr.issues, held = mr.held, edm_held = mr.edm_held, edm = mr.edm, hash = mr.hash, "
            "publish = NOT mr.held, check_key = mr.check_key, reused = 2 FROM m.result mr "
            "WHERE mr.entity = result.entity AND mr.id = result.id AND result.reused = 1 AND mr.check_key IS NOT NULL "
            "AND coalesce(result.pre_issues, result.mapped_issues) IS coalesce(mr.pre_issues, mr.mapped_issues) "
            "AND NOT EXISTS (SELECT 1 FROM temp.linking l WHERE l.entity = result.entity AND l.id = result.id)").rowcount
        self.db.execute("INSERT INTO links SELECT l.entity, l.id, l.target FROM m.links l JOIN result r "
                        "ON r.entity = l.entity AND r.id = l.id WHERE r.reused = 2")
        self.db.execute("DROP TABLE temp.changed")
        self.db.execute("DROP TABLE temp.linking")
        return n

    # -- pass 3: checked -------------------------------------------------------------------
    def set_checked(self, entity: str, rid: str, issues: bytes | None, held: bool, edm_held: bool,
                    edm: bytes | None, digest: str | None, links: Iterable[str], key: bytes | None,
                    fragments: bytes | None = None, frag_key: str | None = None) -> None:
        self.db.execute("UPDATE result SET issues = ?, held = ?, edm_held = ?, edm = ?, hash = ?, publish = ?, "
                        "check_key = ?, fragments = ?, frag_key = ? WHERE entity = ? AND id = ?",
                        (issues, int(held), int(edm_held), edm, digest, int(not held), key, fragments, frag_key,
                         entity, rid))
        self.db.executemany("INSERT INTO links VALUES (?, ?, ?)", ((entity, rid, t) for t in links))


class LRU(dict):
    """A dict of at most ``size`` entries that forgets the least recently used (memory stays bounded,
    and the few records many others link to, rights and people, stay)."""

    def __init__(self, size: int = CACHED) -> None:
        super().__init__()
        self.size = size

    def get(self, key, default=None):
        value = dict.pop(self, key, _MISSING)
        if value is _MISSING:
            return default
        self[key] = value   # now the most recent
        return value

    def __setitem__(self, key, value) -> None:
        if len(self) >= self.size:
            del self[next(iter(self))]
        dict.__setitem__(self, key, value)


_MISSING = object()


class Reader:
    """A worker's read-only view (one per process and work database)."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None,
                                  check_same_thread=False)
        self.db.execute("PRAGMA cache_size=-32768")
        # decoded triples and owners of linked records (rights, people...): many records link to few
        self._triples: LRU = LRU()
        self._owners: LRU = LRU()
        self._digests: LRU = LRU()
        # the ids of each entity read (False: too many to hold), and answers looked up for the others
        self._ids: dict[str, frozenset[str] | bool] = {}
        self._has: LRU = LRU()

    def records(self, keys: list[Key]) -> list[tuple[str, str, Any, str, list[tuple[str, str]]]]:
        """(entity, id, data, source, parents) for ``keys``; the source of a conflicting id lists every copy."""
        return [(entity, rid, pickle.loads(data), source, parents)
                for entity, rid, data, source, _canon, parents in self.incoming(keys)]

    def incoming(self, keys: list[Key]) -> list[tuple[str, str, bytes, str, bytes, list[tuple[str, str]]]]:
        """(entity, id, pickled data, source, digest of the data, parents) for ``keys``: read in one
        range where they are a run of ``keys()`` (as the passes' chunks are), else one by one."""
        if not keys:
            return []
        low, high = min(keys), max(keys)
        rows = self.db.execute(
            "SELECT entity, id, data, CASE WHEN conflict THEN sources ELSE source END, canon FROM incoming "
            "WHERE (entity, id) >= (?, ?) AND (entity, id) <= (?, ?) LIMIT ?", (*low, *high, 2 * len(keys))).fetchall()
        found = {(r[0], r[1]): r[2:] for r in rows} if len(rows) < 2 * len(keys) else {}   # else: keys far apart
        parents: dict[Key, list[tuple[str, str]]] = {}
        if found:
            for entity, rid, pentity, pid in self.db.execute(
                    "SELECT entity, id, pentity, pid FROM parents WHERE (entity, id) >= (?, ?) AND (entity, id) <= (?, ?) "
                    "ORDER BY rowid", (*low, *high)):
                parents.setdefault((entity, rid), []).append((pentity, pid))
        out = []
        for key in keys:
            row = found.get(key)
            if row is None:
                row = self.db.execute("SELECT data, CASE WHEN conflict THEN sources ELSE source END, canon "
                                      "FROM incoming WHERE entity = ? AND id = ?", key).fetchone()
                got = self.db.execute("SELECT pentity, pid FROM parents WHERE entity = ? AND id = ? ORDER BY rowid",
                                      key).fetchall()
            else:
                got = parents.get(key, [])
            out.append((*key, *row, got))
        return out

    def _held(self, entity: str) -> frozenset[str] | bool:
        ids = self._ids.get(entity)
        if ids is None:
            rows = self.db.execute("SELECT id FROM incoming WHERE entity = ? LIMIT ?",
                                   (entity, KNOWN_IN_MEMORY + 1)).fetchall()
            ids = self._ids[entity] = frozenset(r[0] for r in rows) if len(rows) <= KNOWN_IN_MEMORY else False
        return ids

    def ids(self, entity: str) -> frozenset[str] | None:
        """The ids of the ``entity`` records read (pass 1 is over), if there are at most KNOWN_IN_MEMORY."""
        ids = self._held(entity)
        return None if ids is False else ids

    def has(self, entity: str, rid: str) -> bool:
        """Is ``rid`` the id of an ``entity`` record read? Held in memory (``ids``), or looked up."""
        ids = self._held(entity)
        if ids is not False:
            return rid in ids
        found = self._has.get((entity, rid))
        if found is None:
            found = self._has[(entity, rid)] = self.db.execute(
                "SELECT 1 FROM incoming WHERE entity = ? AND id = ?", (entity, rid)).fetchone() is not None
        return found

    def result(self, entity: str, rid: str) -> tuple[list[Triple], dict[str, str], bytes | None, str, str, str]:
        """(triples, subjects, issues, sets JSON, mapping digest, source) of a mapped record."""
        t, s, i, sets, mapping, source = self.result_raw(entity, rid)
        return parse_nt(t), json.loads(s), i, sets, mapping, source

    def result_raw(self, entity: str, rid: str) -> tuple[str, str, bytes | None, str, str, str]:
        """``result`` with triples and subjects as stored (N-Triples, JSON)."""
        return self.db.execute("SELECT triples, subjects, issues, sets, mapping, source FROM result "
                               "WHERE entity = ? AND id = ?", (entity, rid)).fetchone()

    def owners(self, iri: str) -> list[Key]:
        found = self._owners.get(iri)
        if found is None:
            found = self._owners[iri] = self.db.execute("SELECT entity, id FROM subject WHERE iri = ?", (iri,)).fetchall()
        return found

    def mapped(self, entity: str, rid: str) -> bool:
        return self.db.execute("SELECT 1 FROM result WHERE entity = ? AND id = ?", (entity, rid)).fetchone() is not None

    def held(self, entity: str, rid: str) -> bool:
        return bool(self.db.execute("SELECT held FROM result WHERE entity = ? AND id = ?", (entity, rid)).fetchone()[0])

    def triples_of(self, entity: str, rid: str) -> list[Triple]:
        """A mapped record's triples (they do not change after pass 2, so they are cached)."""
        found = self._triples.get((entity, rid))
        if found is None:
            t = self.db.execute("SELECT triples FROM result WHERE entity = ? AND id = ?", (entity, rid)).fetchone()[0]
            found = self._triples[(entity, rid)] = parse_nt(t)
        return found

    def triples_digest(self, entity: str, rid: str) -> bytes:
        """A digest of a mapped record's triples (cached as ``triples_of``)."""
        found = self._digests.get((entity, rid))
        if found is None:
            t = self.db.execute("SELECT triples FROM result WHERE entity = ? AND id = ?", (entity, rid)).fetchone()[0]
            found = self._digests[(entity, rid)] = hashlib.blake2b(t.encode(), digest_size=16).digest()
        return found


_readers: dict[tuple[str, int], Reader] = {}


def reader(path: str) -> Reader:
    """This process's reader of a work database (a forked worker opens its own; a few are kept)."""
    key = (path, os.getpid())
    found = _readers.get(key)
    if found is None:
        if len(_readers) >= 4:
            close_readers(next(iter(_readers))[0])
        found = _readers[key] = Reader(path)
    return found


def close_readers(path: str) -> None:
    """Forget the readers of ``path``, closing this process's (one inherited by fork is not ours to close)."""
    for key in [k for k in _readers if k[0] == path]:
        r = _readers.pop(key)
        if key[1] == os.getpid():
            r.db.close()


class KnownIds:
    """``known`` for the mapping's link checks: is (entity, id) among the records read? Each
    answer is appended to ``asked`` if given (what a record's mapping depended on)."""

    def __init__(self, db: Reader, asked: list | None = None) -> None:
        self.db, self.asked = db, asked
        self._ids: dict[str, _Ids] = {}

    def get(self, entity: str, _default=()) -> "_Ids | frozenset[str]":
        ids = self._ids.get(entity)
        if ids is None:
            held = self.db.ids(entity) if self.asked is None else None
            ids = self._ids[entity] = held if held is not None else _Ids(self, entity)
        return ids


class _Ids:
    def __init__(self, known: KnownIds, entity: str) -> None:
        self.known, self.entity = known, entity

    def __contains__(self, rid: object) -> bool:
        if not isinstance(rid, str):
            return False
        found = self.known.db.has(self.entity, rid)
        if self.known.asked is not None:
            self.known.asked.append((self.entity, rid, found))
        return found


class Memo:
    """The last published run's work database, read-only: results to take again where the digest
    of everything a record's mapping (``map_key``) or checking (``check_key``) read is the same."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, isolation_level=None,
                                  check_same_thread=False)
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(result)")}
        if not {"map_key", "asked", "mapped_issues", "check_key"} <= columns:
            raise sqlite3.DatabaseError(f"{path}: not a memo of this version")

    def mapped(self, entity: str, rid: str, key: bytes) -> tuple[str, str, bytes | None, str] | None:
        """(triples (N-Triples), subjects JSON, mapping issues, link checks JSON) as mapped last time, if ``key``
        is the same."""
        try:
            return self.db.execute("SELECT triples, subjects, mapped_issues, asked FROM result WHERE entity = ? "
                                   "AND id = ? AND map_key = ?", (entity, rid, key)).fetchone()
        except sqlite3.DatabaseError:  # damaged: computed again
            return None

    def checked(self, entity: str, rid: str, key: bytes) -> tuple[bytes | None, int, int, bytes | None, str] | None:
        """(issues, held, edm_held, EDM document, hash) as pass 3 found them last time, if ``key`` is the same."""
        try:
            return self.db.execute("SELECT issues, held, edm_held, edm, hash FROM result WHERE entity = ? "
                                   "AND id = ? AND check_key = ?", (entity, rid, key)).fetchone()
        except sqlite3.DatabaseError:  # damaged: computed again
            return None


def memo_path(catalog: Path) -> Path:
    return catalog.parent / f"{catalog.stem}-memo.sqlite"


def memo_id(catalog: Path) -> tuple[str, int, int] | None:
    """(path, inode, mtime) of the memo if there is one: workers open it once per version."""
    path = memo_path(catalog)
    try:
        st = path.stat()
    except OSError:
        return None
    return str(path), st.st_ino, st.st_mtime_ns


@lru_cache(maxsize=2)
def _memo(ident: tuple[str, int, int], pid: int) -> Memo | None:
    try:
        return Memo(Path(ident[0]))
    except sqlite3.Error:
        return None  # gone, damaged or of another version: everything is computed


def memo(ident: tuple[str, int, int] | None) -> Memo | None:
    return _memo(ident, os.getpid()) if ident else None


def remove_stale(folder: Path) -> None:
    """Work databases of runs of this host that died (their pid is gone) are removed; those of other
    hosts sharing the folder are theirs to clear."""
    from .catalog import pid_alive
    here = host_tag()
    for f in folder.glob("work-*.sqlite"):
        m = _WORK_NAME.fullmatch(f.stem)   # names from before 0.3 have no host: this host's
        if m and m["host"] in (None, here) and not pid_alive(int(m["pid"])):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{f}{suffix}").unlink(missing_ok=True)


_WORK_NAME = re.compile(r"work-(?:(?P<host>.+)-)?(?P<pid>\d+)-[^-]+")


def host_tag() -> str:
    """This host's name as file names carry it."""
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in socket.gethostname())


def path_for(catalog: Path) -> Path:
    """A new work database for a run of this process (a new name each run: workers cache readers by path)."""
    return catalog.parent / f"work-{host_tag()}-{os.getpid()}-{uuid.uuid4().hex[:12]}.sqlite"
