"""The publishing pipeline as a library: read -> map -> validate -> publication (-> writers).

``build(project)`` returns a ``Publication``; ``publish(project)`` also writes ``output/``
atomically. The CLI is a thin layer over these two functions.
"""
from __future__ import annotations

import hashlib
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import config as config_mod
from . import sources
from .executor import Executor, Serial, project
from .catalog import Catalog, Changes, DeletionGuard, Row, content_hash
from .mapping import Context, Issue, Mapped, Mappings, Record
from .terms import Triple
from .validate import Shapes, validate
from .writers.edmxml import edm_record, is_provided_cho

Key = tuple[str, str]  # (entity, id)
MAPPING_CHECK = "https://w3id.org/heritage-ld#MappingConstraint"


@dataclass
class Publication:
    """Everything the writers need: the published records and what was held back, and why."""
    config: config_mod.Config
    mappings: Mappings
    published: list[Mapped]                     # sorted by (entity, id)
    held_back: dict[Key, list[Issue]]           # record -> violations that hold it back entirely
    edm_held_back: dict[Key, list[Issue]]       # record -> violations that keep it out of EDM XML
    issues: list[Issue]                         # every issue, warnings included
    records_read: int
    seconds: dict[str, float] = field(default_factory=dict)
    edm_xml: dict[Key, bytes] = field(default_factory=dict)   # EDM RDF/XML per published CHO record
    rows: dict[Key, Row] = field(default_factory=dict)          # catalog rows (datestamps, provenance)
    by_subject: dict[str, list[Mapped]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for m in self.published:
            for s in {t[0][1:-1] for t in m.triples}:
                self.by_subject.setdefault(s, []).append(m)

    @property
    def triple_count(self) -> int:
        return len({t for m in self.published for t in m.triples})

    def state_digest(self, catalog_digest: str) -> str:
        """Identifies everything the output is made of: the catalog state and this run's report."""
        h = hashlib.sha256(catalog_digest.encode())
        for i in self.issues:
            h.update(repr((i.entity, i.record_id, i.severity, i.field, i.value, i.message, i.source)).encode())
        return h.hexdigest()

    def linked_triples(self, m: Mapped) -> list[Triple]:
        """The triples of the published records ``m`` refers to (people, organisations, rights...)."""
        out: list[Triple] = []
        for o in {t[2][1:-1] for t in m.triples if t[2].startswith("<")}:
            for other in self.by_subject.get(o, []):
                if other is not m:
                    out.extend(t for t in other.triples if t[0] == f"<{o}>")
        return out


def load_project(root: Path) -> tuple[config_mod.Config, Mappings, Shapes]:
    cfg = config_mod.load(root)
    mappings = Mappings(cfg.mapping_dir, cfg.values)
    for s in cfg.sources:
        if s.entity not in mappings.entities:
            raise config_mod.ConfigError(f"{root / 'heritage-ld.toml'}: source {s.path}: no mapping for entity "
                                         f"{s.entity!r} (known: {', '.join(mappings.entities)})")
    return cfg, mappings, Shapes.load(root, cfg.shapes)


def _issue(rec: Record, message: str, field: str | None = None, value: str | None = None) -> Issue:
    return Issue(rec.entity, rec.id, rec.source, field, value, message, component=MAPPING_CHECK)


def read_records(cfg: config_mod.Config, mappings: Mappings) -> tuple[list[Record], list[Issue], set[Key], int]:
    """All records with embedded ones extracted and duplicates resolved.

    Identical copies of a record (an author embedded in two articles) merge; different records
    with one id are both held back, as is a record without an id.
    """
    found: dict[Key, list[Record]] = defaultdict(list)
    issues: list[Issue] = []
    linked_only: set[Key] = set()
    read = 0
    for src in cfg.sources:
        for data, origin in sources.read(cfg, src):
            read += 1
            for entity, rid, rec_data, where in mappings.extract(src.entity, data, origin):
                if rid is None:
                    rec = Record(entity, f"(no id) {where}", rec_data, where)
                    id_field = mappings.entities[entity].id_path
                    issues.append(_issue(rec, f"record has no id: fill {id_field!r}", id_field))
                    found[(entity, rec.id)].append(rec)
                    continue
                found[(entity, rid)].append(Record(entity, rid, rec_data, where))
                if src.linked_only:
                    linked_only.add((entity, rid))
    records = []
    for key, copies in sorted(found.items()):
        first = copies[0]
        strip = lambda d: {k: v for k, v in d.items() if k != "_embeddedIn"}
        if all(strip(c.data) == strip(first.data) for c in copies[1:]):
            parents: dict[str, list[str]] = defaultdict(list)
            for c in copies:
                for ent, ids in c.data.get("_embeddedIn", {}).items():
                    parents[ent].extend(i for i in ids if i not in parents[ent])
            data = {**first.data, "_embeddedIn": dict(parents)} if parents else first.data
            records.append(Record(first.entity, first.id, data, first.source))
        else:
            where = "; ".join(c.source for c in copies)
            rec = Record(first.entity, first.id, first.data, where)
            records.append(rec)
            issues.append(_issue(rec, f"duplicate id {first.id!r}: {len(copies)} different records use it "
                                 f"({where}); give each its own id", mappings.entities[first.entity].id_path,
                                 first.id))
    return records, issues, linked_only, read


def build(root: Path, progress: Callable[[int], None] | None = None, *, reference: bool = False,
          run: Executor | None = None) -> Publication:
    """Read, map and validate the project's sources; nothing is written.

    Mapping, validation and EDM documents run per chunk of records on ``run`` (this process by
    default; local processes or a Dask cluster): results are gathered in order, so the
    publication is the same whatever runs it."""
    run = run or Serial()
    t0 = time.perf_counter()
    cfg, mappings, shapes = load_project(root)
    records, issues, linked_only, read = read_records(cfg, mappings)
    t1 = time.perf_counter()

    known: dict[str, set[str]] = defaultdict(set)
    for r in records:
        known[r.entity].add(r.id)
    mapped = [m for part in run.run(_map_chunk, root, dict(known), _chunks(records, cfg.chunk_size)) for m in part]
    if progress:
        progress(len(mapped))
    for m in mapped:
        issues.extend(m.issues)
    # vocabulary records (rights statements) are published only where something refers to them
    referenced = {t[2] for m in mapped for t in m.triples if t[2].startswith("<")}
    mapped = [m for m in mapped if (m.record.entity, m.record.id) not in linked_only
              or any(f"<{s}>" in referenced for s in m.subjects.values())]
    t2 = time.perf_counter()

    draft = Publication(cfg, mappings, mapped, {}, {}, [], read)
    items = [(m, draft.linked_triples(m)) for m in mapped]
    for part in run.run(_check_chunk, root, reference, _chunks(items, cfg.chunk_size)):
        issues.extend(part)
    t3 = time.perf_counter()

    held: dict[Key, list[Issue]] = defaultdict(list)
    edm_held: dict[Key, list[Issue]] = defaultdict(list)
    for i in issues:
        if i.severity == "Violation":
            (held if i.channel == "all" else edm_held)[(i.entity, i.record_id)].append(i)
    published = [m for m in mapped if (m.record.entity, m.record.id) not in held]
    issues.extend(_links_to_held(mapped, held))
    pub = Publication(cfg, mappings, published, dict(held), dict(edm_held), issues, read,
                      {"read": t1 - t0, "map": t2 - t1, "validate": t3 - t2})
    cho = [(m, pub.linked_triples(m)) for m in published if (m.record.entity, m.record.id) not in edm_held]
    for part in run.run(_edm_chunk, root, None, _chunks(cho, cfg.chunk_size)):
        for m, xml, error in part:
            key = (m.record.entity, m.record.id)
            if xml is not None:
                pub.edm_xml[key] = xml
            elif error:
                i = Issue(m.record.entity, m.record.id, m.record.source, None, None,
                          f"cannot be written as Europeana EDM: {error}", focus=next(iter(m.subjects.values())),
                          component="https://w3id.org/heritage-ld#EdmXmlConstraint", channel="edm")
                issues.append(i)
                pub.edm_held_back.setdefault(key, []).append(i)
    pub.seconds["edm"] = time.perf_counter() - t3
    # one field feeding several properties (dc:date and schema:datePublished) reports once
    issues.sort(key=lambda i: (i.entity, i.record_id, i.severity != "Violation", i.field or "", i.message,
                               i.focus or "", i.predicate or ""))
    unique: dict[tuple, Issue] = {}
    for i in issues:
        unique.setdefault((i.entity, i.record_id, i.severity, i.field, i.value, i.message, i.channel,
                           None if i.field else i.focus), i)
    issues[:] = unique.values()
    return pub


def _links_to_held(mapped: list[Mapped], held: dict[Key, list[Issue]]) -> list[Issue]:
    """Warn where a published record links to a record that is held back (the link would dangle)."""
    held_iris = {f"<{iri}>": m.record for m in mapped if (m.record.entity, m.record.id) in held
                 for iri in m.subjects.values()}
    out = []
    for m in mapped:
        if (m.record.entity, m.record.id) in held:
            continue
        for s, p, o in m.triples:
            if o in held_iris and o != s:
                target = held_iris[o]
                out.append(Issue(m.record.entity, m.record.id, m.record.source, None, o[1:-1],
                                 f"links to {target.entity} {target.id}, which is held back: the link has no "
                                 "target until that record is fixed", "Warning", focus=s[1:-1], predicate=p[1:-1],
                                 component=MAPPING_CHECK))
    return out


def _chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _map_chunk(root: str, known: dict[str, set[str]], records: list[Record]) -> list[Mapped]:
    """Map a chunk of records (runs on a worker); the source data is dropped from the result."""
    cfg, mappings, _shapes = project(root)
    ctx = Context(cfg.base_uri, cfg.values, "", known, mappings)
    out = []
    for r in records:
        ctx.record_id = r.id
        m = mappings.entities[r.entity].map(r, ctx)
        m.record = Record(r.entity, r.id, {}, r.source)
        out.append(m)
    return out


def _check_chunk(root: str, reference: bool, items: list[tuple[Mapped, list[Triple]]]) -> list[Issue]:
    """Validate a chunk of mapped records, each with the triples of the records it links to."""
    _cfg, mappings, shapes = project(root)
    linked = {id(m): triples for m, triples in items}
    return validate([m for m, _ in items], lambda m: linked[id(m)], shapes,
                    lambda e: mappings.entities[e].fields_by_predicate, reference)


def _edm_chunk(root: str, _shared: None, items: list[tuple[Mapped, list[Triple]]]
               ) -> list[tuple[Mapped, bytes | None, str | None]]:
    """EDM RDF/XML for the records whose main subject is a ProvidedCHO; a refusal is a reason."""
    out = []
    for m, linked in items:
        main = next(iter(m.subjects.values()), None)
        if not main or not is_provided_cho(m.triples, main):
            continue
        try:
            out.append((m, edm_record(m.triples + linked, main), None))
        except ValueError as e:
            out.append((m, None, str(e)))
    return out


def checkpoint(name: str) -> None:
    """Fault-injection hook for the crash and concurrency tests: with HERITAGE_LD_PAUSE_AT=name the
    run stops here (announcing it in HERITAGE_LD_PAUSE_FILE) until it is killed, or for
    HERITAGE_LD_PAUSE_SECONDS seconds and then goes on."""
    if os.environ.get("HERITAGE_LD_PAUSE_AT") == name:
        marker = Path(os.environ["HERITAGE_LD_PAUSE_FILE"])
        marker.with_suffix(".tmp").write_text(name)
        marker.with_suffix(".tmp").replace(marker)  # appears whole: the test reads it at once
        time.sleep(float(os.environ.get("HERITAGE_LD_PAUSE_SECONDS") or 600))


def publish(root: Path, progress: Callable[[int], None] | None = None, *, now: int | None = None,
            allow_deletions: bool = False, reference: bool = False,
            run: Executor | None = None) -> tuple[Publication, Changes]:
    """Build, apply the changes to the catalog and write ``output/``; crash-safe at every point.

    Order: catalog changes in one transaction -> output written to a staging folder ->
    commit -> staging swapped in. A crash before the commit leaves both old; after it, the next
    run sees the catalog digest differ from ``output/.state`` and rewrites the output."""
    from .writers import write_all
    pub = build(root, progress, reference=reference, run=run)
    checkpoint("mapped")
    cfg = pub.config
    if now is None and os.environ.get("SOURCE_DATE_EPOCH"):  # reproducible-builds convention: a fixed clock
        now = int(os.environ["SOURCE_DATE_EPOCH"])
    t = time.perf_counter()
    catalog = Catalog(cfg.catalog)
    try:
        current = {}
        for m in pub.published:
            key = (m.record.entity, m.record.id)
            edm = pub.edm_xml.get(key)
            mapping = pub.mappings.entities[m.record.entity].digest
            sets = cfg.sets(m.record.entity)
            current[key] = (content_hash(m.triples, edm, sets) + mapping, m.record.source, sets,
                            m.triples, edm, mapping)
        changes = catalog.plan(current, set(current) | set(pub.held_back))
        live = sum(pub_counts for pub_counts in catalog.counts()["entity"].values())
        if changes.deleted and not allow_deletions and len(changes.deleted) > cfg.max_delete_share * live:
            raise DeletionGuard(
                f"this run would withdraw {len(changes.deleted)} of {live} published records "
                f"(more than {cfg.max_delete_share:.0%}), e.g. {', '.join('/'.join(k) for k in changes.deleted[:3])}. "
                "If the sources really dropped them, run again with --allow-deletions")
        now = catalog.announce(now)  # harvesters see "publish in progress" until commit (Catalog.announce)
        catalog.begin()
        try:
            catalog.apply(current, changes, now)
            held = [[k[0], k[1], v[0].message] for k, v in sorted(pub.held_back.items())]
            catalog.record_run(now, pub.records_read, len(current), changes, held)
            checkpoint("catalog-written")
            view = from_catalog(pub, catalog)
            state = view.state_digest(catalog.digest())
            state_file = cfg.output / ".state"
            if state_file.is_file() and state_file.read_text() == state:
                catalog.commit()
            else:
                write_all(view, cfg.output, state, before_swap=lambda: (checkpoint("staged"), catalog.commit(), checkpoint("committed")))
        finally:
            catalog.rollback()
    finally:
        catalog.close()
    view.seconds = {**pub.seconds, "catalog+write": time.perf_counter() - t}
    return view, changes


def from_catalog(pub: Publication, catalog: Catalog) -> Publication:
    """The publication as the catalog holds it: live records (a held-back record keeps its last
    published version), their datestamps and provenance, and this run's report."""
    rows = {(r.entity, r.id): r for r in catalog.rows()}
    published = [Mapped(Record(r.entity, r.id, {}, r.source), r.triples, [], {}) for r in rows.values()]
    view = Publication(pub.config, pub.mappings, published, pub.held_back, pub.edm_held_back, pub.issues,
                       pub.records_read, dict(pub.seconds))
    view.edm_xml = {k: r.edm_xml for k, r in rows.items() if r.edm_xml is not None}
    view.rows = rows
    return view
