"""Make a project with a synthetic catalog of N records (default 1,000,000) for the OAI-PMH benchmark.

How the rows are made: the bundled sample is published for real (mapping, validation, our EDM
writer), and its published rows are the templates. Each synthetic row is a copy of a template
with the record id substituted in its triples and its EDM RDF/XML (so the EDM stays valid,
2.5-3.9 KB a record); rows are written straight into the catalog, not mapped one by one.
Mix: 98.5% CHOs with EDM (articles and images), 1% people and organisations, 0.5% tombstones of
CHOs; datestamps spread over 1,000 publish runs a day apart, rows of a run in index order, as
``publish`` writes them. The OAI-PMH counts are then built from the rows (``oai.prepare``).

    python benchmarks/make_catalog.py /tmp/oai-bench -n 1000000
"""
from __future__ import annotations

import argparse
import shutil
import sqlite3
import sys
import time
from pathlib import Path

from heritage_ld import oai, pipeline

ROOT = Path(__file__).resolve().parents[1]

RUNS = 1000
START = 1577836800  # 2020-01-01T00:00:00Z
COLUMNS = "entity, id, sets, source, hash, first_published, last_changed, deleted, triples, edm_xml, mapping"


def make_project(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("heritage-ld.toml", "mapping", "shapes", "sample"):
        if not (dest / name).exists():
            (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, dest / name)
    return dest


def templates(catalog: Path) -> tuple[list[tuple], list[tuple]]:
    """(CHO rows with EDM, agent rows) of the published sample."""
    db = sqlite3.connect(catalog)
    rows = db.execute(f"SELECT {COLUMNS} FROM records WHERE deleted = 0 ORDER BY entity, id").fetchall()
    db.close()
    return [r for r in rows if r[9] is not None], [r for r in rows if r[0] in ("person", "organisation")]


def synthetic(template: tuple, n: int, stamp: int, deleted: bool) -> tuple:
    entity, rid = template[0], template[1]
    new = f"{rid}-{n:07d}"
    swap = lambda text: text.replace(f"/{entity}/{rid}", f"/{entity}/{new}")   # noqa: E731
    if deleted:
        return (entity, new, template[2], f"synthetic:{n}", f"{n:064x}", stamp, stamp, 1, "[]", None, template[10])
    edm = swap(template[9].decode()).encode() if template[9] is not None else None
    return (entity, new, template[2], f"synthetic:{n}", f"{n:064x}", stamp, stamp, 0, swap(template[8]), edm,
            template[10])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dest", type=Path, help="project folder to create (a copy of the sample project)")
    ap.add_argument("-n", "--records", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    project = make_project(args.dest)
    pub, _ = pipeline.publish(project)
    chos, agents = templates(pub.config.catalog)
    db = sqlite3.connect(pub.config.catalog, isolation_level=None)
    db.execute("PRAGMA journal_mode = DELETE")  # one bulk transaction: no WAL copy of every page
    db.execute("PRAGMA synchronous = OFF")
    for name in ("oai_records_insert", "oai_records_update", "oai_records_delete"):
        db.execute(f"DROP TRIGGER IF EXISTS {name}")
    db.execute("DROP TABLE IF EXISTS oai_counts")
    db.execute("DROP TABLE IF EXISTS oai_edm_entities")
    db.execute("BEGIN")
    db.execute("DELETE FROM records")
    per_run = max(1, args.records // RUNS)
    for start in range(0, args.records, per_run):
        stamp = START + (start // per_run) * 86400
        rows = []
        for n in range(start, min(start + per_run, args.records)):
            kind = n % 200        # of 200: 197 CHOs, 2 agents, 1 tombstone
            if kind < 197:
                rows.append(synthetic(chos[n % len(chos)], n, stamp, False))
            elif kind < 199:
                rows.append(synthetic(agents[n % len(agents)], n, stamp, False))
            else:
                rows.append(synthetic(chos[n % len(chos)], n, stamp, True))
        rows.sort(key=lambda r: (r[0], r[1]))
        db.executemany(f"INSERT INTO records ({COLUMNS}) VALUES ({', '.join('?' * 11)})", rows)
    db.execute("COMMIT")
    db.execute("PRAGMA journal_mode = WAL")
    db.close()
    t1 = time.perf_counter()
    oai.prepare(pub.config.catalog)
    size = pub.config.catalog.stat().st_size
    print(f"{args.records} records in {pub.config.catalog} ({size / 2**30:.2f} GiB): rows {t1 - t0:.0f} s, "
          f"OAI counts {time.perf_counter() - t1:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
