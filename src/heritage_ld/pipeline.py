"""The publishing pipeline as a library: read -> map -> validate -> catalog -> writers.

Records stream through a work database (``work.py``) in passes, chunk by chunk on an executor,
so memory stays flat in the number of records:

1. read: every source record, embedded records extracted, copies of one record merged;
2. map: each record to triples (link checks look ids up in the work database);
3. check: SHACL per record with the triples of the records it links to, then its EDM document;
4. the few records that link to a held-back record lose that link's context in EDM and get a warning.

``build(project)`` runs these and returns the report (``Publication``); ``publish(project)`` then
applies the results to the catalog and writes ``output/`` from it, atomically. A run whose inputs
(records, mappings, shapes, configuration, code) are those of the last published run stops
early: before pass 1 where the source files are byte for byte those last read, else after it.
"""
from __future__ import annotations

import errno
import gc
import hashlib
import json
import os
import pickle
import re
import sqlite3
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from . import code_digest
from . import config as config_mod
from . import sources, terms
from .catalog import Catalog, CatalogError, Changes, DeletionGuard, content_hash, describe, pack, publishing
from .executor import Executor, Serial, project
from .mapping import Context, Issue, Mapped, Mappings, Record
from .oai import linked_records, oai_dc
from .terms import LINES, Triple, nt_lines, parse_nt, split_literal
from .validate import Shapes, validate
from .work import KnownIds, Reader, Work, canonical, memo, memo_id, memo_path, path_for, reader, remove_stale
from .writers.edmxml import edm_record, is_provided_cho
from .writers import serialiser
from .writers import record_file

NAME_MAX = 255  # bytes of one file name (ext4, XFS, Btrfs, APFS, NTFS in UTF-16 units)

Key = tuple[str, str]  # (entity, id)
MAPPING_CHECK = "https://w3id.org/heritage-ld#MappingConstraint"
EDM_CHECK = "https://w3id.org/heritage-ld#EdmXmlConstraint"


@dataclass
class Publication:
    """What a run produced: counts and the report (the records themselves are in the catalog)."""
    config: config_mod.Config
    mappings: Mappings
    held_back: dict[Key, list[Issue]]           # record -> violations that hold it back entirely
    edm_held_back: dict[Key, list[Issue]]       # record -> violations that keep it out of EDM XML
    issues: Iterable[Issue]                     # every issue in report order (a list, or IssueLog)
    records_read: int
    published: int = 0                          # records published (by this run, or live in the catalog)
    triple_count: int = 0
    edm_count: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    inputs: str = ""                            # digest of the records read and project_digest
    sources: str | None = None                  # the same with the source files' bytes (None: HTTP sources)
    reused: int = 0                             # records whose validation and EDM were those of the last run
    unchanged: bool = False                     # the inputs were those of the last published run: not rebuilt
    warnings: int = 0
    notes: int = 0                              # Info results: what a transform approximated
    report_digest: str = ""
    source_warnings: list[str] = field(default_factory=list)   # about whole sources (one that read no record...)

    def check_sources(self, strict: bool) -> None:
        """With ``strict``, a source that read no record is an error (InputError) instead of a warning."""
        if strict and self.source_warnings:
            raise sources.InputError("; ".join(self.source_warnings) + " (--strict)")

    def state_digest(self, catalog_digest: str) -> str:
        """Identifies everything the output is made of: the catalog state, this run's report, and
        what the writers depend on besides (configuration, mappings, code)."""
        from .writers import writers_digest
        return hashlib.sha256(f"{catalog_digest}\n{self.report_digest}\n{writers_digest(self)}\n"
                              f"{json.dumps(self.source_warnings)}".encode()).hexdigest()

    def take_report(self, issues: Iterable[Issue]) -> Iterator[Issue]:
        """Pass ``issues`` (in report order) through, noting held-back records, warnings and the digest."""
        self.held_back, self.edm_held_back, self.warnings, self.notes = {}, {}, 0, 0
        h = hashlib.sha256()
        for i in issues:
            if i.holds_back:
                (self.held_back if i.channel == "all" else self.edm_held_back).setdefault(
                    (i.entity, i.record_id), []).append(i)
            elif i.severity == "Info":
                self.notes += 1
            else:
                self.warnings += 1
            h.update(repr(tuple(vars(i).values())).encode())
            yield i
        self.report_digest = h.hexdigest()


class IssueLog:
    """The last run's report as the catalog holds it, read lazily: it can be larger than memory."""

    def __init__(self, path: Path, db: sqlite3.Connection | None = None, violations_only: bool = False) -> None:
        self.path, self.db = path, db   # ``db``: read through the publishing transaction
        self.where = "WHERE severity NOT IN ('Warning', 'Info')" if violations_only else ""

    def __iter__(self) -> Iterator[Issue]:
        db = self.db or sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            for (text,) in db.execute(f"SELECT issue FROM report {self.where} ORDER BY seq"):
                yield Issue(*json.loads(text))
        finally:
            if db is not self.db:
                db.close()


def load_project(root: Path) -> tuple[config_mod.Config, Mappings, Shapes]:
    cfg = config_mod.load(root)
    mappings = Mappings(cfg.mapping_dir, cfg.values, cfg.iri_schemes)
    for s in cfg.sources:
        if s.entity not in mappings.entities:
            raise config_mod.ConfigError(f"{root / 'heritage-ld.toml'}: source {s.path}: no mapping for entity "
                                         f"{s.entity!r} (known: {', '.join(mappings.entities)})")
    return cfg, mappings, Shapes.load(root, cfg.shapes)


def _issue(entity: str, rid: str, source: str, message: str, field: str | None = None,
           value: str | None = None) -> Issue:
    return Issue(entity, rid, source, field, value, message, component=MAPPING_CHECK)


# where a pickled record may hold a lone surrogate: pickle writes text as UTF-8 with surrogates passed
# through (ED A0..BF ..), which valid UTF-8 never has
_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]")


_settled = False


def _settle() -> None:
    """Once a process, before its first pass: what is alive then (modules, the loaded project) lives
    as long as the process, so it leaves the collector's generations (``gc.freeze``). Full collections
    then scan only what runs make: map-only at 2,000 articles takes ~15% less time. Forked workers
    inherit it."""
    global _settled
    if not _settled:
        _settled = True
        gc.freeze()


def read_records(cfg: config_mod.Config, mappings: Mappings, work: Work,
                 warnings: list[str] | None = None) -> tuple[int, dict[Key, list[Issue]], str]:
    """Pass 1: every record into ``work``, embedded ones extracted; returns (source records read,
    issues by record, digest of everything read). A source that reads no record adds a line to
    ``warnings``.

    Identical copies of a record (an author embedded in two articles) merge; different records
    with one id are both held back, as is a record without an id."""
    _settle()
    issues: dict[Key, list[Issue]] = defaultdict(list)
    digest = hashlib.sha256()
    read = 0
    for src in cfg.sources:
        before = read
        # records as json.loads gives them can fail canonical() only through a lone surrogate: the
        # digest of their pickle serves, unless it may hold one (copies whose digests differ are then
        # compared by their canonical form: Work.add)
        plain = sources.plain_json(cfg, src)
        for data, origin in sources.read(cfg, src, warnings.append if warnings is not None else lambda _m: None):
            read += 1
            for entity, rid, rec_data, where in mappings.extract(src.entity, data, origin):
                embedded_in = rec_data.get("_embeddedIn")
                if embedded_in:
                    rec_data = {k: v for k, v in rec_data.items() if k != "_embeddedIn"}
                problems = []
                blob = pickle.dumps(rec_data, pickle.HIGHEST_PROTOCOL)
                if plain and not _SURROGATE.search(blob):
                    canon = hashlib.sha1(blob).digest()
                else:
                    try:
                        canon = hashlib.sha1(canonical(rec_data)).digest()
                    except (UnicodeEncodeError, TypeError, ValueError, RecursionError):  # sources.usable says why
                        rec_data, problems = sources.usable(rec_data)
                        canon, rid = hashlib.sha1(canonical(rec_data)).digest(), mappings.record_id(entity, rec_data)
                        blob = pickle.dumps(rec_data, pickle.HIGHEST_PROTOCOL)
                id_field = mappings.entities[entity].id_path
                if rid is None:
                    rid = f"(no id) {where}"
                    problems.insert(0, (id_field, None, f"record has no id: fill {id_field!r}"))
                elif problem := _id_problem(entity, rid):
                    problems.insert(0, (id_field, rid if len(rid) <= 80 else rid[:77] + "...", problem))
                for field_path, value, message in problems:
                    issues[(entity, rid)].append(_issue(entity, rid, where, message, field_path, value))
                parent = next(((e, ids[0]) for e, ids in embedded_in.items()), None) if embedded_in else None
                digest.update(b"\x1e".join([entity.encode(), rid.encode(), canon, where.encode(),
                                            repr((parent, src.linked_only)).encode()]))
                work.add(entity, rid, blob, canon, where, parent, src.linked_only)
        if read == before and warnings is not None:
            warnings.append(f"source {src.path} ({src.entity}) read no record: {sources.empty_reason(cfg, src)}")
    for entity, rid, copies, where in work.conflicts():
        issues[(entity, rid)].append(_issue(
            entity, rid, where, f"duplicate id {rid!r}: {copies} different records use it ({where}); give each its "
            "own id", mappings.entities[entity].id_path, rid))
    return read, dict(issues), digest.hexdigest()


def _id_problem(entity: str, rid: str) -> str | None:
    """Why ``rid`` cannot be a record's id, if it cannot: ids name files (``records/<entity>/<id>.jsonld``,
    at most NAME_MAX bytes), IRIs, named graphs and OAI-PMH identifiers."""
    if not (rid.isascii() and rid.isprintable()) and (problem := terms.unusable_char(rid, terms.UNUSABLE_IN_ID)):
        return f"the id {problem}: remove it in the source"
    if len(rid) * 3 + 7 <= NAME_MAX and rid.isascii():  # percent-encoded, with ".jsonld", it fits
        return None
    name = record_file(entity, rid, "jsonld").rpartition("/")[2]
    if len(name) > NAME_MAX:
        return (f"the id is too long: its {len(rid)} characters make a file name of {len(name)} bytes "
                f"(records/{entity}/<id>.jsonld, percent-encoded), more than the {NAME_MAX} a file system "
                "allows: give the record a shorter id")
    return None


def project_digest(root: Path, cfg: config_mod.Config, mappings: Mappings) -> str:
    """Everything a run's results depend on besides the records: mappings (and their prefixes), shapes,
    configuration, code."""
    h = hashlib.sha256(f"{code_digest()}\n".encode())
    h.update((root / "heritage-ld.toml").read_bytes())
    for m in sorted(mappings.entities.values(), key=lambda m: m.entity):
        h.update(f"{m.entity}:{m.digest}\n".encode())
    h.update(json.dumps(sorted(mappings.prefixes.items())).encode())
    for name in sorted(cfg.shapes):
        h.update(name.encode() + (root / name).read_bytes())
    return h.hexdigest()


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def build(root: Path, progress: Callable[[int], None] | None = None, *, reference: bool = False,
          run: Executor | None = None, on_report: Callable[[Publication], object] | None = None,
          strict: bool = False) -> Publication:
    """Read, map and validate the project's sources; nothing is published. With ``strict``, a
    source that reads no record stops the run (InputError).

    The returned report lists every issue; with ``on_report``, that function gets the
    publication while its issues are still read lazily from the run's work database (a report
    larger than memory), and the returned one has none."""
    cfg = config_mod.load(root)
    try:
        remove_stale(cfg.catalog.parent)
        work = Work(path_for(cfg.catalog))
        try:
            pub = _build(root, work, progress, reference, run or Serial(), strict=strict)
            if on_report is None:
                pub.issues = list(report(work))
            else:
                pub.issues = _Replay(work)
                on_report(pub)
                pub.issues = []
            return pub
        finally:
            work.close()
    except (OSError, sqlite3.Error) as e:
        raise _run_error(e, cfg, cfg.catalog.parent, "nothing was published") from e


class _Replay:
    """The run's report, read again from the work database on each iteration."""

    def __init__(self, work: Work) -> None:
        self.work = work

    def __iter__(self) -> Iterator[Issue]:
        return report(self.work)


def _build(root: Path, work: Work, progress: Callable[[int], None] | None, reference: bool, run: Executor,
           stop_if: Callable[[str, str], int | None] = lambda _key, _digest: None, strict: bool = False,
           catalog: str | None = None) -> Publication:
    """Passes 1-4 into ``work`` (with ``catalog``, the one published to, the fragments it lacks too). ``stop_if(key, digest)`` -> the records read by the last run if its
    ``key`` digest ("sources": the source files' bytes, then "inputs": the records read) was this one:
    nothing can have changed and the run stops there (``unchanged``)."""
    t0 = time.perf_counter()
    cfg, mappings, _shapes = load_project(root)
    project_key = project_digest(root, cfg, mappings)
    fingerprint = sources.fingerprint(cfg)
    quick = fingerprint and _digest(project_key, "sources", fingerprint).hex()
    read = stop_if("sources", quick) if quick else None
    if read is not None:
        return Publication(cfg, mappings, {}, {}, [], read, seconds={"read": time.perf_counter() - t0},
                           sources=quick, unchanged=True)
    empty: list[str] = []
    read, read_issues, records_digest = read_records(cfg, mappings, work, empty)
    pub = Publication(cfg, mappings, {}, {}, [], read, seconds={"read": time.perf_counter() - t0}, sources=quick,
                      source_warnings=empty)
    pub.check_sources(strict)
    pub.inputs = _digest(project_key, "records", records_digest).hex()
    if stop_if("inputs", pub.inputs) is not None:
        pub.unchanged = True
        return pub
    work.commit()

    t1 = time.perf_counter()
    shared = Shared(str(work.path), project_key, memo_id(cfg.catalog), reference, catalog)
    # the shapes compiled here, once: forked workers inherit them (and what falls back to pyshacl is said once)
    project(str(root), project_key)[2].compiled_for(reference)
    # records whose mapping read what it read last time take it from the last run's work database (SQL);
    # the others are mapped on the workers
    if work.attach_memo(memo_path(cfg.catalog) if shared.memo else None, project_key, reference):
        work.reuse_mapped({e: (m.digest, json.dumps(cfg.sets(e))) for e, m in mappings.entities.items()})
    unmapped = work.keys(where="NOT EXISTS (SELECT 1 FROM result r WHERE r.entity = incoming.entity AND r.id = "
                               "incoming.id)")
    for part in run.run(_map_chunk, root, shared, _chunks(unmapped, cfg.chunk_size)):
        work.add_mapped(part)
        if progress:
            progress(len(part))
    for (entity, rid), found in read_issues.items():   # no id, duplicate id: held back
        row = work.db.execute("SELECT issues FROM result WHERE entity = ? AND id = ?", (entity, rid)).fetchone()
        issues = pickle.dumps(found + (pickle.loads(row[0]) if row[0] else []))
        work.db.execute("UPDATE result SET issues = ?, pre_issues = ? WHERE entity = ? AND id = ?",
                        (issues, issues, entity, rid))
    work.index()
    t2 = time.perf_counter()

    if work.attached:   # and pass 3 where nothing it reads changed either (unless the memo proved damaged)
        pub.reused += work.reuse_checked()
    if work.attached:
        work.detach_memo()
    unchecked = work.keys(table="result", where="reused < 2")
    for part in run.run(_check_chunk, root, shared, _chunks(unchecked, cfg.chunk_size)):
        for row in part:
            pub.reused += row[-1]
            work.set_checked(*row[:-1])
    _unreferenced_vocabulary(work)
    _links_to_held(work, cfg, mappings, shared)
    work.commit()
    t3 = time.perf_counter()

    for _ in pub.take_report(report(work)):
        pass
    pub.published, pub.triple_count, pub.edm_count = work.db.execute(
        f"SELECT count(*), coalesce(sum({LINES.format('triples')}), 0), count(edm) FROM result WHERE publish").fetchone()
    pub.seconds.update({"map": t2 - t1, "validate+edm": t3 - t2})
    return pub


def report(work: Work) -> Iterator[Issue]:
    """The run's issues in report order, record by record, from the work database."""
    for (blob,) in work.db.execute("SELECT issues FROM result WHERE issues IS NOT NULL AND (publish OR held) "
                                   "ORDER BY entity, id"):
        yield from _report_order(pickle.loads(blob))


def _report_order(issues: list[Issue]) -> list[Issue]:
    """One record's issues: violations first; one field feeding several properties (dc:date and
    schema:datePublished) reports once."""
    issues.sort(key=lambda i: (i.entity, i.record_id, not i.holds_back, i.field or "", i.message,
                               i.focus or "", i.predicate or ""))
    unique: dict[tuple, Issue] = {}
    for i in issues:
        unique.setdefault((i.entity, i.record_id, i.severity, i.field, i.value, i.message, i.channel,
                           None if i.field else i.focus), i)
    return list(unique.values())


def map_records(cfg: config_mod.Config, mappings: Mappings, db: Reader, keys: list[Key]) -> list[Mapped]:
    """Map the records ``keys`` of a work database; links are checked against the records it holds."""
    ctx = Context(cfg.base_uri, cfg.values, "", KnownIds(db), mappings)
    return [_map_one(mappings, ctx, *row) for row in db.records(keys)]


def _map_one(mappings: Mappings, ctx: Context, entity: str, rid: str, data: dict, source: str,
             parents: list[tuple[str, str]]) -> Mapped:
    if parents:
        embedded_in: dict[str, list[str]] = {}
        for pe, pid in parents:
            embedded_in.setdefault(pe, []).append(pid)
        data = {**data, "_embeddedIn": embedded_in}
    ctx.record_id = rid
    return mappings.entities[entity].map(Record(entity, rid, data, source), ctx)


@dataclass(frozen=True)
class Shared:
    """What every chunk task of a run gets besides its keys."""
    work: str                                # the work database
    project: str                             # digest of configuration, mappings, shapes, code (``project``)
    memo: tuple[str, int, int] | None        # the last published run's work database (``work.memo_id``)
    reference: bool                          # pyshacl itself validates (nothing of pass 3 is taken again)
    catalog: str | None = None               # publishing to this catalog: fragments for what it lacks


def _digest(*parts: str | bytes | None) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(part if isinstance(part, bytes) else str(part).encode())
        h.update(b"\x00\x1f")
    return h.digest()


def _map_chunk(root: str, shared: Shared, keys: list[Key]) -> list[tuple]:
    """Pass 2 on a worker: map records (or take them from the memo), as rows for ``Work.add_mapped``."""
    cfg, mappings, _shapes = project(root, shared.project)
    db, last = reader(shared.work), memo(shared.memo)
    asked: list[tuple[str, str, bool]] = []   # the link checks of the record being mapped
    ctx = Context(cfg.base_uri, cfg.values, "", KnownIds(db, asked), mappings)
    out = []
    for entity, rid, data, source, canon, parents in db.incoming(keys):
        mapping = mappings.entities[entity]
        key = _digest(shared.project, "map", entity, rid, canon, source, repr(parents), mapping.digest)
        found = last.mapped(entity, rid, key) if last else None
        if found is None or any(db.has(e, i) != f for e, i, f in json.loads(found[3])):  # a link resolves otherwise
            asked.clear()
            m = _map_one(mappings, ctx, entity, rid, pickle.loads(data), source, parents)
            found = (nt_lines(m.triples), json.dumps(m.subjects),
                     pickle.dumps(m.issues) if m.issues else None, json.dumps(asked))
        out.append((entity, rid, *found, json.dumps(cfg.sets(entity)), mapping.digest, source, key))
    return out


def _linked(db, key: Key, triples: list[Triple], published_only: bool = False) -> tuple[list[Triple], set[str]]:
    """The triples of the records ``key`` links to about the linked resources, and those resources."""
    out: list[Triple] = []
    links: set[str] = set()
    for o in sorted({t[2] for t in triples if t[2][0] == "<"}):
        for owner in db.owners(o):
            if tuple(owner) == key or (published_only and db.held(*owner)):
                continue
            links.add(o)
            out.extend(t for t in db.triples_of(*owner) if t[0] == o)
    return out, links


def _linked_digests(db: Reader, key: Key, triples: list[Triple]) -> tuple[set[str], list[str | bytes]]:
    """What ``_linked`` reads, as digests (each linked resource, its records, their triples), and the
    linked resources."""
    links, parts = set(), []
    for o in sorted({t[2] for t in triples if t[2][0] == "<"}):
        for owner in sorted(db.owners(o)):
            if tuple(owner) != key:
                links.add(o)
                parts += [f"{o} {owner[0]} {owner[1]}", db.triples_digest(*owner)]
    return links, parts


def _check_chunk(root: str, shared: Shared, keys: list[Key]) -> list[tuple]:
    """Pass 3 on a worker: SHACL, then EDM, oai_dc and the fragments the catalog lacks for the
    records that stay published (or all from the memo); rows for ``Work.set_checked`` and whether
    the memo's were taken."""
    cfg, mappings, shapes = project(root, shared.project)
    made = Fragments(cfg, mappings, shared.catalog)
    try:
        return _check(cfg, mappings, shapes, shared, made, keys)
    finally:
        made.close()


def _check(cfg: config_mod.Config, mappings: Mappings, shapes: Shapes, shared: Shared, made: "Fragments",
           keys: list[Key]) -> list[tuple]:
    db, last = reader(shared.work), (None if shared.reference else memo(shared.memo))
    batch, linked, links, keyed, out = [], {}, {}, {}, {}
    for key in keys:
        t, s, blob, sets, mapping, source = db.result_raw(*key)
        triples = parse_nt(t)
        links[key], parts = _linked_digests(db, key, triples)
        keyed[key] = _digest(shared.project, "check", shared.reference, *key, t, s, blob, sets, mapping, source,
                             *parts)
        found = last.checked(*key, keyed[key]) if last else None
        if found is not None and (found[1] or not made.needed(key, found[4])):  # else: fragments to make
            issues, held, edm_held, edm, digest = found
            out[key] = (*key, issues, bool(held), bool(edm_held), edm, digest, links[key], keyed[key], None, None,
                        True)
            continue
        linked[key] = _linked(db, key, triples)[0]
        m = Mapped(Record(key[0], key[1], {}, source), triples, pickle.loads(blob) if blob else [], json.loads(s))
        m.sets = json.loads(sets)  # type: ignore[attr-defined]
        batch.append(m)
    found_issues: dict[Key, list[Issue]] = defaultdict(list)
    for i in validate(batch, lambda m: linked[(m.record.entity, m.record.id)], shapes,
                      lambda e: mappings.entities[e].fields_by_predicate, shared.reference):
        found_issues[(i.entity, i.record_id)].append(i)
    for m in batch:
        key = (m.record.entity, m.record.id)
        _explain_shared(db, key, m.triples, found_issues.get(key, []))
        issues = m.issues + found_issues.get(key, [])
        held, edm_held, edm = _edm(m, issues, linked[key])
        dc = b"" if held else _dc(db, m.triples, cfg.base_uri)
        digest = content_hash(m.triples, edm, m.sets, dc) + mappings.entities[key[0]].digest
        fragments = None if held else made(key, digest, m.triples, dc)
        out[key] = (*key, pickle.dumps(issues) if issues else None, held, edm_held, edm, digest, links[key],
                    keyed[key], fragments, made.key if fragments else None, False)
    return [out[key] for key in keys]


class Fragments:
    """Makes a published record's fragments (``writers.Serialiser``) where the catalog lacks them:
    a new or changed record, or one whose fragments were made with another serialiser key. It reads
    the catalog for a chunk of records and is then closed (an open reader would keep the catalog's
    write-ahead log from being checkpointed when the run ends)."""

    def __init__(self, cfg: config_mod.Config, mappings: Mappings, catalog: str | None) -> None:
        self.serialiser = serialiser(cfg, mappings) if catalog else None
        self.key = self.serialiser.key if self.serialiser else None
        self.catalog = catalog and sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)

    def close(self) -> None:
        if self.catalog:
            self.catalog.close()

    def needed(self, key: Key, digest: str) -> bool:
        if not self.catalog:
            return False   # not publishing (validate): none are made
        row = self.catalog.execute("SELECT hash, frag_key FROM records WHERE entity = ? AND id = ? AND deleted = 0 "
                                   "AND fragments IS NOT NULL", key).fetchone()
        return row is None or row[0] != digest or row[1] != self.key

    def __call__(self, key: Key, digest: str, triples: list[Triple], dc: bytes) -> bytes | None:
        """The pickled fragments of a record, if ``needed``."""
        if not self.needed(key, digest):
            return None
        return pack({**self.serialiser.fragments(triples), "oai_dc": dc})


def _dc(db: Reader, triples: list[Triple], base: str, published_only: bool = False) -> bytes:
    """The record's oai_dc document, with the labels of the records it links to (``oai.linked_records``)."""
    linked: list[Triple] = []
    for e, i in linked_records(triples, base):
        if db.mapped(e, i) and not (published_only and db.held(e, i)):
            linked += db.triples_of(e, i)
    return oai_dc(triples, linked)


def _explain_shared(db: Reader, key: Key, triples: list[Triple], issues: list[Issue]) -> None:
    """A result on a resource that other records describe too, with other values of the property
    (a time span IRI minted from a value that does not decide its label): say that the IRI is
    shared, and by which records, rather than blame this record alone."""
    for i in issues:
        if not i.focus or not i.predicate:
            continue
        focus, pred = f"<{i.focus}>", f"<{i.predicate}>"
        if not any(t[0] == focus for t in triples):
            continue   # a resource of another record, checked from here (a nested shape): not shared
        others = [tuple(o) for o in db.owners(focus) if tuple(o) != key]
        if not others:
            continue
        own = sorted(t[2] for t in triples if t[0] == focus and t[1] == pred)
        differ = [o for o in others if sorted(t[2] for t in db.triples_of(*o) if t[0] == focus and t[1] == pred) != own]
        if not differ:
            continue
        names = ", ".join(f"{e} {r}" for e, r in differ[:5]) + (f" and {len(differ) - 5} more" if len(differ) > 5 else "")
        here = ", ".join(split_literal(o)[0] if o.startswith('"') else o for o in own) or "none"
        i.message = (f"The IRI {i.focus} is shared with {names}, which give it other values of "
                     f"{i.predicate.rsplit('/', 1)[-1].rsplit('#', 1)[-1]} (this record: {here}): a shared IRI "
                     "needs the same description in every record, so make its template depend on what decides "
                     f"that value (e.g. a period's IRI and label from the same transform). ({i.message})")


def _edm(m: Mapped, issues: list[Issue], linked: list[Triple]) -> tuple[bool, bool, bytes | None]:
    """(held back, held back from EDM, EDM document): the document only for a published ProvidedCHO;
    a document that cannot be written is an EDM-channel violation added to ``issues``."""
    held = any(i.holds_back and i.channel == "all" for i in issues)
    edm_held = any(i.holds_back and i.channel == "edm" for i in issues)
    main = next(iter(m.subjects.values()), None)
    if held or edm_held or not main or not is_provided_cho(m.triples, main):
        return held, edm_held, None
    try:
        return held, edm_held, edm_record(m.triples + linked, main)
    except ValueError as e:
        issues.append(Issue(m.record.entity, m.record.id, m.record.source, None, None,
                            f"cannot be written as Europeana EDM: {e}", focus=main, component=EDM_CHECK, channel="edm"))
        return held, True, None


def _unreferenced_vocabulary(work: Work) -> None:
    """Vocabulary records (linked_only sources: rights statements) are published only where a record refers to them."""
    work.db.execute(
        "UPDATE result SET publish = 0, held = 0, issues = NULL, check_key = NULL WHERE EXISTS (SELECT 1 FROM incoming i WHERE "
        "i.entity = result.entity AND i.id = result.id AND i.linked_only) AND NOT EXISTS (SELECT 1 FROM subject s "
        "JOIN links l ON l.target = s.iri WHERE s.entity = result.entity AND s.id = result.id)")


def _links_to_held(work: Work, cfg: config_mod.Config, mappings: Mappings, shared: Shared) -> None:
    """Pass 4: a published record linking to a held-back one gets a warning (the link dangles until it is
    fixed), and its EDM document is made again without the held-back record's description."""
    held_iris = {}
    for entity, rid, subjects in work.db.execute("SELECT entity, id, subjects FROM result WHERE held"):
        for iri in json.loads(subjects).values():
            held_iris[f"<{iri}>"] = (entity, rid)
    if not held_iris:
        return
    work.commit()
    db = reader(str(work.path))
    made = Fragments(cfg, mappings, shared.catalog)
    try:
        _relink(work, db, made, cfg, held_iris)
    finally:
        made.close()


def _relink(work: Work, db: Reader, made: Fragments, cfg: config_mod.Config, held_iris: dict[str, Key]) -> None:
    affected = sorted({tuple(k) for k in work.db.execute(
        "SELECT DISTINCT l.entity, l.id FROM links l JOIN subject s ON s.iri = l.target JOIN result h "
        "ON h.entity = s.entity AND h.id = s.id WHERE h.held AND NOT (h.entity = l.entity AND h.id = l.id)")})
    for key in affected:
        triples, subjects, blob, sets, mapping, source = db.result(*key)
        if not work.db.execute("SELECT publish FROM result WHERE entity = ? AND id = ?", key).fetchone()[0]:
            continue
        issues = [i for i in (pickle.loads(blob) if blob else []) if i.component != EDM_CHECK]
        own = {f"<{iri}>" for iri in subjects.values()}   # a resource it describes too (a shared period)
        for s, p, o in triples:
            if o in held_iris and o not in own:
                target = held_iris[o]
                issues.append(Issue(key[0], key[1], source, None, o[1:-1],
                                    f"links to {target[0]} {target[1]}, which is held back: the link has no "
                                    "target until that record is fixed", "Warning", focus=s[1:-1], predicate=p[1:-1],
                                    component=MAPPING_CHECK))
        m = Mapped(Record(key[0], key[1], {}, source), triples, issues, subjects)
        # validation issues are stored with the mapping ones (pass 3): EDM is judged on them again
        held, edm_held, edm = _edm(m, issues, _linked(db, key, triples, published_only=True)[0])
        dc = _dc(db, triples, cfg.base_uri, published_only=True)
        digest = content_hash(triples, edm, json.loads(sets), dc) + mapping
        fragments = made(key, digest, triples, dc)
        work.db.execute("UPDATE result SET issues = ?, edm_held = ?, edm = ?, hash = ?, check_key = NULL, "
                        "fragments = ?, frag_key = ? WHERE entity = ? AND id = ?",
                        (pickle.dumps(issues), int(edm_held), edm, digest, fragments, fragments and made.key, *key))


def checkpoint(name: str) -> None:
    """Fault-injection hook for the crash and concurrency tests: with HERITAGE_LD_PAUSE_AT=name the
    run stops here (announcing it in HERITAGE_LD_PAUSE_FILE) until it is killed, or for
    HERITAGE_LD_PAUSE_SECONDS seconds and then goes on."""
    if os.environ.get("HERITAGE_LD_PAUSE_AT") == name:
        marker = Path(os.environ["HERITAGE_LD_PAUSE_FILE"])
        marker.with_suffix(".tmp").write_text(name)
        marker.with_suffix(".tmp").replace(marker)  # appears whole: the test reads it at once
        time.sleep(float(os.environ.get("HERITAGE_LD_PAUSE_SECONDS") or 600))


def _last_report(catalog: Catalog, pub: Publication) -> None:
    """Take the last run's report (its inputs were this run's): its violations, the number of its
    warnings and its digest."""
    for _ in pub.take_report(IssueLog(catalog.path, catalog.db, violations_only=True)):
        pass
    pub.warnings = catalog.db.execute("SELECT count(*) FROM report WHERE severity = 'Warning'").fetchone()[0]
    pub.notes = catalog.db.execute("SELECT count(*) FROM report WHERE severity = 'Info'").fetchone()[0]
    pub.report_digest = catalog.get_meta("report")


class RunError(Exception):
    """A run stopped by the place it runs in: no space left, a file size limit, a read-only folder,
    a locked or damaged catalog. str() is one line: what happened, what to do, what changed."""


_OS_ADVICE = {
    errno.ENOSPC: "no space left on the device: free some space (df -h) and run again",
    errno.EDQUOT: "the disk quota is used up: free some space and run again",
    errno.EFBIG: "the file size limit was reached: raise it (ulimit -f) and run again",
    errno.EROFS: "read-only file system: make it writable, or set output or catalog in heritage-ld.toml to "
                 "a writable place, and run again",
    errno.EACCES: "permission denied: make it writable for this user and run again",
    errno.EPERM: "operation not permitted: make it writable for this user and run again",
    errno.EBUSY: "it is a mount point, which heritage-ld cannot replace in one step: set output in "
                 "heritage-ld.toml to a folder inside it",
    errno.EIO: "input/output error: check the disk and run again",
}


def _run_error(e: OSError | sqlite3.Error | CatalogError, cfg: config_mod.Config, writing: Path,
               state: str) -> RunError:
    """``e`` as a RunError: what happened (in ``writing`` where ``e`` names no file), what to do, ``state``."""
    if isinstance(e, CatalogError):
        what = str(e)
    elif isinstance(e, sqlite3.Error):
        what = describe(e, cfg.catalog)
    else:
        what = f"{e.filename or f'writing {writing}'}: {_OS_ADVICE.get(e.errno) or e.strerror or e}"
    return RunError(f"{what}; {state}")


def publish(root: Path, progress: Callable[[int], None] | None = None, *, now: int | None = None,
            allow_deletions: bool = False, reference: bool = False,
            run: Executor | None = None, strict: bool = False) -> tuple[Publication, Changes]:
    """Build, apply the changes to the catalog and write ``output/``; crash-safe at every point.
    With ``strict``, a source that reads no record stops the run before anything is written.

    Order: catalog changes in one transaction -> output written to a staging folder ->
    commit -> staging swapped in. A crash before the commit leaves both old; after it, the next
    run sees the catalog digest differ from ``output/.state`` and rewrites the output. One
    publish at a time per catalog (a second one is a CatalogError); a failure of the place it
    runs in (disk full, read-only, damaged catalog) is a RunError saying what changed."""
    from .writers import recover, replaceable
    cfg = config_mod.load(root)
    if now is None and os.environ.get("SOURCE_DATE_EPOCH"):  # reproducible-builds convention: a fixed clock
        now = int(os.environ["SOURCE_DATE_EPOCH"])
    committed: list[bool] = []
    try:
        with publishing(cfg.catalog):
            remove_stale(cfg.catalog.parent)
            recover(cfg.output)      # leftovers of runs that died
            replaceable(cfg.output)  # a read-only output/ stops the run before any work
            return _publish(root, cfg, progress, now, allow_deletions, reference, run or Serial(), committed, strict)
    except (OSError, sqlite3.Error, CatalogError) as e:
        raise _run_error(e, cfg, cfg.output, "the catalog has this run's changes but output/ does not yet: run "
                         "heritage-ld publish again once fixed" if committed else
                         "nothing was published: the catalog and output/ are as they were") from e


def _publish(root: Path, cfg: config_mod.Config, progress: Callable[[int], None] | None, now: int | None,
             allow_deletions: bool, reference: bool, run: Executor, committed: list[bool], strict: bool
             ) -> tuple[Publication, Changes]:
    """``publish`` under the catalog's lock; ``committed`` gets an item once the catalog has committed."""
    from .writers import read_state, write_all

    def commit() -> None:
        catalog.commit()
        committed.append(True)

    catalog = Catalog(cfg.catalog)
    work = Work(path_for(cfg.catalog))
    log = IssueLog(catalog.path, catalog.db)
    published = False
    try:
        def last_read(key: str, digest: str) -> int | None:
            last = catalog.last_run()
            if last and digest == catalog.get_meta(key) and catalog.get_meta("report") is not None:
                return last["read"]
            return None

        # --reference-validation validates again even when nothing changed (no early stop)
        pub = _build(root, work, progress, reference, run,
                     stop_if=(lambda _key, _digest: None) if reference else last_read,
                     strict=strict, catalog=str(cfg.catalog))
        if pub.unchanged:
            _last_report(catalog, pub)
            pub.source_warnings = json.loads(catalog.get_meta("source_warnings") or "[]")
            pub.check_sources(strict)
        checkpoint("mapped")
        t = time.perf_counter()
        live = catalog.live()
        changes = Changes(unchanged=live) if pub.unchanged else catalog.plan(work.path)
        if changes.deleted and not allow_deletions and len(changes.deleted) > cfg.max_delete_share * live:
            raise DeletionGuard(
                f"this run would withdraw {len(changes.deleted)} of {live} published records "
                f"(more than {cfg.max_delete_share:.0%}), e.g. {', '.join('/'.join(k) for k in changes.deleted[:3])}. "
                "If the sources really dropped them, run again with --allow-deletions")
        now = catalog.announce(now)  # harvesters see "publish in progress" until commit (Catalog.announce)
        catalog.begin()
        try:
            if not pub.unchanged:
                catalog.apply(changes, now, catalog.next_run())
                held = [[k[0], k[1], v[0].message] for k, v in sorted(pub.held_back.items())]
                catalog.record_run(now, pub.records_read, pub.published, changes, held)
                catalog.replace_report(pub.take_report(report(work)))
                catalog.set_meta("inputs", pub.inputs)
                catalog.set_meta("report", pub.report_digest)
                catalog.set_meta("source_warnings", json.dumps(pub.source_warnings))
            catalog.set_meta("sources", pub.sources or "")  # the next run stops early if the files are these
            checkpoint("catalog-written")
            (pub.published, pub.triple_count, pub.edm_count), catalog_digest = catalog.summary()
            pub.issues = log
            state = pub.state_digest(catalog_digest)
            if read_state(cfg.output).get("state") == state:
                commit()
            else:
                write_all(pub, catalog, cfg.output, state, processes=run.workers,
                          before_swap=lambda: (checkpoint("staged"), commit(), checkpoint("committed")),
                          after_swap=lambda: checkpoint("swapped"))
            published = True
        finally:
            catalog.rollback()
    finally:
        catalog.close()  # and with it the work database attached to it (``plan``)
        if published and not pub.unchanged:
            work.keep_as(memo_path(cfg.catalog))   # the next run takes the results of records that recur
        else:
            work.close()
        log.db = None  # read from the file from now on
    pub.seconds["catalog+write"] = time.perf_counter() - t
    return pub, changes
