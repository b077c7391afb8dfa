"""The publication catalog: what is published, since when, and what was withdrawn.

One SQLite file (embedded, no server, crash-safe through its journal) holding per record: id,
entity, sets, source, content hash, first-published and last-changed datestamps (UTC seconds),
deleted flag, the triples and the EDM document. Every output (files, OAI-PMH, SPARQL) is derived
from it, so they agree. A run applies its changes in one transaction: a crash leaves the old
state or the new one.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pickle
import resource
import socket
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from isal import isal_zlib

from .terms import LINES, Triple, nt_lines, parse_nt

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    entity TEXT NOT NULL, id TEXT NOT NULL,
    sets TEXT NOT NULL,                 -- JSON list of set specs
    source TEXT NOT NULL,               -- file:line or URL this version was read from
    hash TEXT NOT NULL,                 -- sha256 of the canonical triples + EDM document
    first_published INTEGER NOT NULL,   -- UTC seconds
    last_changed INTEGER NOT NULL,      -- UTC seconds: the OAI-PMH datestamp
    deleted INTEGER NOT NULL DEFAULT 0,
    triples TEXT NOT NULL,              -- N-Triples lines, sorted (terms.nt_lines; '' once deleted)
    edm_xml BLOB,                       -- EDM RDF/XML, NULL if held back from the EDM channel
    mapping TEXT NOT NULL,              -- digest of the mapping file that produced it
    run INTEGER NOT NULL DEFAULT 0,     -- rowid in ``runs`` of the run that last changed it
    fragments BLOB,                     -- what the formats store of it ({name: bytes}, ``pack``ed; writers.Serialiser)
    frag_key TEXT,                      -- the Serialiser.key they were made with
    PRIMARY KEY (entity, id)
);
CREATE INDEX IF NOT EXISTS records_by_datestamp ON records (last_changed, entity, id);
CREATE TABLE IF NOT EXISTS runs (
    started INTEGER NOT NULL, read INTEGER, published INTEGER, added INTEGER, changed INTEGER,
    deleted INTEGER, held_back TEXT      -- JSON list of [entity, id, first message]
);
CREATE TABLE IF NOT EXISTS publishing (  -- runs about to stamp records: "publish in progress since T"
    since INTEGER NOT NULL, pid INTEGER NOT NULL, host TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS push_state (  -- per Graph Store endpoint: what it has acknowledged (push.py)
    endpoint TEXT NOT NULL, graph TEXT NOT NULL,
    version TEXT NOT NULL,              -- "<hash>@<last_changed>" of the record PUT, or "deleted"
    pushed INTEGER NOT NULL,            -- UTC seconds of the acknowledgment
    PRIMARY KEY (endpoint, graph)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB);  -- inputs and report digests of the last run
CREATE TABLE IF NOT EXISTS report (      -- the last run's validation report, in report order
    seq INTEGER PRIMARY KEY, severity TEXT NOT NULL, issue TEXT NOT NULL  -- JSON list of the Issue fields
);
"""


# What the writers read of every record to know what its published bytes are, without its triples, EDM
# document and fragments (``Catalog.versions``): a covering index, since columns after the large ones
# are read by walking the row's overflow pages.
VERSIONS_INDEX = ("CREATE INDEX IF NOT EXISTS records_versions ON records "
                  "(entity, id, deleted, run, hash, last_changed, source, mapping)")
ROW_COLUMNS = ("entity, id, sets, source, hash, first_published, last_changed, deleted, triples, edm_xml, mapping, "
               "run, fragments, frag_key")   # a row as ``decode_row`` reads it


VERSION = 2  # PRAGMA user_version of the catalogs this code writes (0: before versions were recorded;
            # 2: triples as N-Triples text, was JSON; the records' fragments)
REQUIRED_COLUMNS = {"entity", "id", "sets", "source", "hash", "first_published", "last_changed", "deleted",
                    "triples", "edm_xml", "mapping"}
SQLITE_HEADER = b"SQLite format 3\x00"


class DeletionGuard(Exception):
    """A run would withdraw more records than allowed; str() says how many and how to proceed."""


class CatalogError(Exception):
    """A catalog that cannot be used (not a catalog, damaged, of a newer version, in use); str()
    names the file and says what to do."""


@dataclass
class Row:
    entity: str
    id: str
    sets: list[str]
    source: str
    hash: str
    first_published: int
    last_changed: int
    deleted: bool
    nt: str                              # the triples as N-Triples lines
    edm_xml: bytes | None
    mapping: str
    run: int = 0
    fragments: dict[str, bytes] | None = None
    frag_key: str | None = None

    @property
    def triples(self) -> list[Triple]:
        return parse_nt(self.nt)


@dataclass
class Changes:
    """What a run changes: counts, and the withdrawn records (a few, or the deletion guard stops the run)."""
    added: int = 0
    changed: int = 0
    deleted: list[tuple[str, str]] = field(default_factory=list)
    unchanged: int = 0

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.deleted)


def content_hash(triples: list[Triple], edm_xml: bytes | None, sets: list[str] = (), oai_dc: bytes = b"") -> str:
    """Identifies a published version: its triples, its EDM and oai_dc documents (which show what it
    links to) and its OAI-PMH sets: what a harvester gets, so its datestamp changes with any of them."""
    h = hashlib.sha256("\x1f".join(sets).encode() + b"\x00")
    for t in triples:
        h.update(" ".join(t).encode("utf-8") + b"\n")
    h.update(b"\x00" + (edm_xml or b""))
    h.update(b"\x00" + oai_dc)
    return h.hexdigest()


def pack(fragments: dict[str, bytes]) -> bytes:
    """A record's fragments as stored: pickled and deflated (ISA-L level 1: ~5x smaller for ~25 µs a
    record, so the catalog and the work database stay about half the size)."""
    return isal_zlib.compress(pickle.dumps(fragments, pickle.HIGHEST_PROTOCOL), 1)


def unpack(blob: bytes) -> dict[str, bytes]:
    """A record's fragments from what ``pack`` stored; also a plain pickle (catalogs written before the
    fragments were deflated: a pickle starts with its protocol, 0x80, a zlib stream with 0x78)."""
    return pickle.loads(blob if blob[:1] == b"\x80" else isal_zlib.decompress(blob))


def decode_row(r: tuple) -> Row:
    try:
        return Row(r[0], r[1], json.loads(r[2]), r[3], r[4], r[5], r[6], bool(r[7]), r[8], r[9], r[10], r[11],
                   unpack(r[12]) if r[12] else None, r[13])
    except (ValueError, TypeError, AttributeError, pickle.UnpicklingError, EOFError, isal_zlib.error):
        raise sqlite3.DatabaseError(f"the row of {r[0]} {r[1]} is damaged") from None


def describe(e: sqlite3.Error, path: Path) -> str:
    """What a SQLite error on the database ``path`` means for the user, and what to do."""
    name = getattr(e, "sqlite_errorname", "")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in str(e):
        return (f"{path} is locked by another process (a heritage-ld publish or push, or an sqlite3 shell): "
                "wait for it to finish and run again")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in str(e) or "damaged" in str(e):
        return (f"{path} is damaged ({e}): restore it from a backup, or try `sqlite3 {path} .recover`; deleting "
                "it starts a new catalog and loses the tombstones and datestamps harvesters rely on")
    if name.startswith(("SQLITE_FULL", "SQLITE_IOERR")):
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        size = "" if limit == resource.RLIM_INFINITY else f" of {limit} bytes"
        return (f"writing in {path.parent}/ failed ({e}): free some space (df -h), or raise the file size "
                f"limit{size} (ulimit -f), and run again")
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")):
        return f"cannot write {path} ({e}): make it and its folder writable for this user and run again"
    return f"{path}: {e}"


def _create(path: Path) -> None:
    """A new, empty catalog at ``path``, made complete under another name first: a file at ``path``
    is always a whole catalog (a crash cannot leave an empty one there to be taken for new)."""
    tmp = path.with_name(f".{path.name}.new-{os.getpid()}")
    try:
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            db.execute(f"PRAGMA user_version = {VERSION}")
        finally:
            db.close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made it meanwhile
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{tmp}{suffix}").unlink(missing_ok=True)


def _check_header(path: Path) -> None:
    with path.open("rb") as fh:
        header = fh.read(100)
        size = fh.seek(0, os.SEEK_END)
    head = header[:len(SQLITE_HEADER)]
    if not head:
        raise CatalogError(f"{path} is empty (0 bytes), not a catalog: restore it from a backup. Only if there "
                           "is none, delete it to start a new catalog (the tombstones, datestamps and deletion "
                           "guard of what was published are then lost)")
    if head != SQLITE_HEADER:
        raise CatalogError(f"{path} is not a heritage-ld catalog (not an SQLite database): restore it from a "
                           "backup, or check [project] catalog in heritage-ld.toml")
    # the database size the header records (valid when written by the same change as the counter beside
    # it): a shorter file lost its end, which SQLite only notices when it reads a missing page
    page = int.from_bytes(header[16:18], "big") if len(header) == 100 else 0
    pages, counter, valid_for = (int.from_bytes(header[i:i + 4], "big") for i in (28, 24, 92)) if page else (0, 0, 1)
    if page and counter == valid_for and size < pages * (65536 if page == 1 else page):
        raise CatalogError(f"{path} is damaged (it is {size} bytes, its header says {pages} pages of {page}: the "
                           "end of the file is missing): restore it from a backup, or try `sqlite3 "
                           f"{path} .recover`; deleting it starts a new catalog and loses the tombstones and "
                           "datestamps harvesters rely on")


class Catalog:
    def __init__(self, path: Path) -> None:
        """Open the catalog at ``path``, or make a new one if there is no file there; a file that is
        not a catalog of this version (empty, another database, damaged, newer) is a CatalogError."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        if not path.exists():
            _create(path)
        _check_header(path)
        self.db = sqlite3.connect(path, isolation_level=None)
        try:
            version, columns = self._check_schema()   # before anything is written to it
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)  # tables added since the catalog was made
            if "run" not in columns:  # catalogs before 0.2
                self.db.execute("ALTER TABLE records ADD COLUMN run INTEGER NOT NULL DEFAULT 0")
            for column in ("fragments BLOB", "frag_key TEXT"):  # catalogs before version 2
                if column.split()[0] not in columns:
                    self.db.execute(f"ALTER TABLE records ADD COLUMN {column}")
            self.db.execute(VERSIONS_INDEX)   # made once, on a catalog of an earlier version: reads every row
            if version < VERSION:
                self._upgrade(version)
        except sqlite3.Error as e:
            self.db.close()
            raise CatalogError(describe(e, path)) from None
        except CatalogError:
            self.db.close()
            raise
        self._announced: int | None = None   # rowid of this run's row in ``publishing``

    def _check_schema(self) -> tuple[int, set[str]]:
        """(catalog version, columns of ``records``), or a CatalogError if it is no catalog of this version."""
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > VERSION:
            raise CatalogError(f"{self.path} was written by a newer heritage-ld (catalog version {version}; "
                               f"this one reads up to {VERSION}): upgrade heritage-ld")
        columns = {c[1] for c in self.db.execute("PRAGMA table_info(records)")}
        if not REQUIRED_COLUMNS <= columns:
            raise CatalogError(f"{self.path} is an SQLite database but not a heritage-ld catalog (no records "
                               "table): restore the catalog from a backup, or check [project] catalog in "
                               "heritage-ld.toml")
        return version, columns

    def _upgrade(self, version: int) -> None:
        """Bring a catalog of an earlier ``version`` to this one, in one transaction."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if version < 2:  # triples were JSON lists of [s, p, o]
                self.db.create_function("nt_of_json", 1, lambda text: nt_lines(map(tuple, json.loads(text))),
                                        deterministic=True)
                self.db.execute("UPDATE records SET triples = nt_of_json(triples) WHERE triples LIKE '[%'")
            self.db.execute(f"PRAGMA user_version = {VERSION}")
            self.db.execute("COMMIT")
        finally:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")

    def close(self) -> None:
        self.db.close()

    # -- reading ---------------------------------------------------------------------------
    def rows(self, include_deleted: bool = False) -> Iterator[Row]:
        return map(decode_row, self.raw_rows(include_deleted))

    def raw_rows(self, include_deleted: bool = False) -> Iterator[tuple]:
        """Rows as stored, in (entity, id) order (``decode_row`` makes a ``Row`` of one)."""
        return self.db.execute(f"SELECT {ROW_COLUMNS} FROM records" + ("" if include_deleted else " WHERE deleted = 0")
                               + " ORDER BY entity, id")

    def raw_rows_from(self, entity: str, record_id: str, n: int) -> list[tuple]:
        """The ``n`` live rows from (``entity``, ``record_id``) on, in order, as stored."""
        return self.db.execute(f"SELECT {ROW_COLUMNS} FROM records WHERE (entity, id) >= (?, ?) AND deleted = 0 "
                               "ORDER BY entity, id LIMIT ?", (entity, record_id, n)).fetchall()

    def raw_row(self, entity: str, record_id: str) -> tuple | None:
        return self.db.execute(f"SELECT {ROW_COLUMNS} FROM records WHERE entity = ? AND id = ?",
                               (entity, record_id)).fetchone()

    def triples_from(self, entity: str, record_id: str, n: int) -> list[str]:
        """The N-Triples of the ``n`` live rows from (``entity``, ``record_id``) on, in order."""
        return [t for (t,) in self.db.execute("SELECT triples FROM records WHERE (entity, id) >= (?, ?) AND deleted = 0 "
                                              "ORDER BY entity, id LIMIT ?", (entity, record_id, n))]

    def versions(self) -> Iterator[tuple[str, str, int, str, int, str, str]]:
        """(entity, id, run, hash, last_changed, source, mapping) of each live record, in (entity, id) order:
        what its published bytes depend on, read from an index (none of the records' large columns)."""
        return self.db.execute("SELECT entity, id, run, hash, last_changed, source, mapping FROM records "
                               "INDEXED BY records_versions WHERE deleted = 0 ORDER BY entity, id")

    def withdrawn_since(self, run: int) -> list[tuple[str, str]]:
        """The records withdrawn by a run after ``run``."""
        return self.db.execute("SELECT entity, id FROM records INDEXED BY records_versions WHERE deleted = 1 "
                               "AND run > ? ORDER BY entity, id", (run,)).fetchall()

    def max_run(self) -> int:
        """The last run that changed a record (0: none)."""
        return self.db.execute("SELECT coalesce(max(run), 0) FROM records").fetchone()[0]

    def digest(self) -> str:
        """Changes whenever anything published changes (used to skip rewriting identical output)."""
        h = hashlib.sha256()
        for row in self.db.execute("SELECT entity, id, hash, last_changed, deleted, source FROM records "
                                   "ORDER BY entity, id"):
            h.update(json.dumps(row).encode())
        return h.hexdigest()

    def last_run(self) -> dict | None:
        r = self.db.execute("SELECT started, read, published, added, changed, deleted, held_back FROM runs "
                            "ORDER BY rowid DESC LIMIT 1").fetchone()
        if r is None:
            return None
        return {"started": r[0], "read": r[1], "published": r[2], "added": r[3], "changed": r[4],
                "deleted": r[5], "held_back": json.loads(r[6])}

    def counts(self) -> dict[str, dict[str, int]]:
        """Live and deleted records per entity and per set."""
        out: dict[str, dict[str, int]] = {"entity": {}, "set": {}, "deleted": {}}
        for entity, sets, deleted in self.db.execute("SELECT entity, sets, deleted FROM records"):
            if deleted:
                out["deleted"][entity] = out["deleted"].get(entity, 0) + 1
                continue
            out["entity"][entity] = out["entity"].get(entity, 0) + 1
            for s in json.loads(sets):
                out["set"][s] = out["set"].get(s, 0) + 1
        return out

    def summary(self) -> tuple[tuple[int, int, int], str]:
        """(``totals()``, ``digest()``), kept in the meta table until ``apply`` changes the records."""
        stored = self.get_meta("summary")
        if stored:
            *totals, digest = json.loads(stored)
            return (totals[0], totals[1], totals[2]), digest
        found = self.totals(), self.digest()
        self.set_meta("summary", json.dumps([*found[0], found[1]]))
        return found

    def live(self) -> int:
        return self.db.execute("SELECT count(*) FROM records WHERE deleted = 0").fetchone()[0]

    def totals(self) -> tuple[int, int, int]:
        """(live records, their triples, their EDM documents)."""
        return self.db.execute(f"SELECT count(*), coalesce(sum({LINES.format('triples')}), 0), count(edm_xml) "
                               "FROM records WHERE deleted = 0").fetchone()

    def changed_since(self, since: int) -> list[tuple[str, str, int, bool]]:
        return list(self.db.execute("SELECT entity, id, last_changed, deleted FROM records WHERE last_changed >= ? "
                                    "ORDER BY last_changed, entity, id", (since,)))

    # -- writing ---------------------------------------------------------------------------
    def plan(self, work: Path) -> Changes:
        """What applying the run's results (``work.result``, see work.py) would change.

        A record present in the sources but held back keeps its previous published version and is
        not withdrawn; records gone from the sources (or unreferenced vocabulary) are withdrawn."""
        if "w" not in {r[1] for r in self.db.execute("PRAGMA database_list")}:
            self.db.execute("ATTACH DATABASE ? AS w", (str(work),))
        ch = Changes()
        ch.added, ch.changed, ch.unchanged = self.db.execute(
            "SELECT coalesce(sum(c.id IS NULL OR c.deleted), 0), coalesce(sum(c.deleted = 0 AND c.hash != r.hash), 0), "
            "coalesce(sum(c.deleted = 0 AND c.hash = r.hash), 0) "
            "FROM w.result r LEFT JOIN records c ON c.entity = r.entity AND c.id = r.id WHERE r.publish").fetchone()
        ch.deleted = self.db.execute(
            "SELECT entity, id FROM records c WHERE deleted = 0 AND NOT EXISTS (SELECT 1 FROM w.result r "
            "WHERE r.entity = c.entity AND r.id = c.id AND (r.publish OR r.held)) ORDER BY entity, id").fetchall()
        return ch

    def announce(self, now: int | None = None) -> int:
        """Record "publish in progress since T" (autocommitted, before ``begin``); returns the datestamp
        for this run's changes: ``now`` if given, else the clock read after the announcement is visible.

        ``commit`` removes the row in the transaction that makes the changes visible. A reader (the
        OAI-PMH server) reads its clock, then this table, and answers with responseDate =
        min(clock, oldest T): either it saw the row (responseDate <= T <= datestamp) or its clock was
        read before the datestamp was. So an incremental harvest from that responseDate never misses
        this run's changes. Rows of crashed runs (dead pid on this host) are ignored and cleared here."""
        host = socket.gethostname()
        for rowid, pid in self.db.execute("SELECT rowid, pid FROM publishing WHERE host = ?", (host,)).fetchall():
            if not pid_alive(pid):
                self.db.execute("DELETE FROM publishing WHERE rowid = ?", (rowid,))
        since = int(time.time()) if now is None else now
        self._announced = self.db.execute("INSERT INTO publishing VALUES (?, ?, ?)",
                                          (since, os.getpid(), host)).lastrowid
        return max(since, int(time.time())) if now is None else now

    def begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        if self._announced is not None:
            self.db.execute("DELETE FROM publishing WHERE rowid = ?", (self._announced,))
        self.db.execute("COMMIT")
        self._announced = None

    def rollback(self) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")
        if self._announced is not None:  # a failed run: withdraw the announcement
            self.db.execute("DELETE FROM publishing WHERE rowid = ?", (self._announced,))
            self._announced = None

    def apply(self, changes: Changes, now: int, run: int) -> None:
        """Write the planned changes (inside ``begin``/``commit``, after ``plan`` attached the work database)."""
        self.db.execute("DELETE FROM meta WHERE key = 'summary'")
        self.db.execute(
            "INSERT INTO records (entity, id, sets, source, hash, first_published, last_changed, deleted, triples, "
            "edm_xml, mapping, run, fragments, frag_key) SELECT r.entity, r.id, r.sets, r.source, r.hash, ?, ?, 0, "
            "r.triples, r.edm, r.mapping, ?, r.fragments, r.frag_key FROM w.result r LEFT JOIN records c "
            "ON c.entity = r.entity AND c.id = r.id "
            "WHERE r.publish AND (c.id IS NULL OR c.deleted OR c.hash != r.hash) ORDER BY r.entity, r.id "
            "ON CONFLICT (entity, id) DO UPDATE SET sets = excluded.sets, source = excluded.source, "
            "hash = excluded.hash, last_changed = excluded.last_changed, deleted = 0, triples = excluded.triples, "
            "edm_xml = excluded.edm_xml, mapping = excluded.mapping, run = excluded.run, "
            "fragments = excluded.fragments, frag_key = excluded.frag_key", (now, now, run))
        # unchanged records whose fragments were made again (another Serialiser key: new code, prefixes...)
        self.db.execute(
            "UPDATE records SET fragments = r.fragments, frag_key = r.frag_key FROM w.result r "
            "WHERE r.entity = records.entity AND r.id = records.id AND r.publish AND r.fragments IS NOT NULL "
            "AND records.deleted = 0 AND records.hash = r.hash AND records.frag_key IS NOT r.frag_key")
        self.db.executemany("UPDATE records SET deleted = 1, last_changed = ?, triples = '', edm_xml = NULL, run = ?, "
                            "fragments = NULL, frag_key = NULL WHERE entity = ? AND id = ?",
                            ((now, run, e, i) for e, i in changes.deleted))

    def next_run(self) -> int:
        """The rowid ``record_run`` will give this run (inside the transaction)."""
        return (self.db.execute("SELECT max(rowid) FROM runs").fetchone()[0] or 0) + 1

    def get_meta(self, key: str) -> bytes | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: bytes | str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def replace_report(self, issues: Iterable) -> None:
        """The run's report (inside the transaction), in order."""
        self.db.execute("DELETE FROM report")
        self.db.executemany("INSERT INTO report (severity, issue) VALUES (?, ?)",
                            ((i.severity, json.dumps(list(vars(i).values()), ensure_ascii=False)) for i in issues))

    def record_run(self, now: int, read: int, published: int, changes: Changes, held_back: list) -> int:
        return self.db.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                               (now, read, published, changes.added, changes.changed, len(changes.deleted),
                                json.dumps(held_back))).lastrowid


@contextmanager
def publishing(path: Path) -> Iterator[None]:
    """Held for a whole publish: a second one on the same catalog is a CatalogError at once (the
    lock is the kernel's, on ``<catalog>.lock``: it goes with the process that held it, however it ended)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(path.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
            raise CatalogError(f"{path}: another heritage-ld publish{f' ({holder})' if holder else ''} is running "
                               "on this catalog: wait for it to finish and run again") from None
        try:  # who holds it, for the message above
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        except OSError:
            pass
        yield
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def in_progress_since(db: sqlite3.Connection) -> int | None:
    """Oldest "publish in progress since T" of a run still alive (runs on other hosts count until cleared)."""
    host = socket.gethostname()
    live = [since for since, pid, h in db.execute("SELECT since, pid, host FROM publishing")
            if h != host or pid_alive(pid)]
    return min(live, default=None)
