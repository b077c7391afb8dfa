"""OAI-PMH speed at any depth, measured against the real server over HTTP.

Starts ``heritage-ld serve`` on a project (make one with ``make_catalog.py``), then times with
requests: ListIdentifiers and ListRecords (metadataPrefix=edm) at the first page and deep in the
list (cursor ~990,000, reached with a valid signed token made by ``Repository.make_token``, not by
paging), and GetRecord (edm) for random records. Prints medians, deep/first ratios and targets;
writes benchmarks/oai-results.json.

    python benchmarks/make_catalog.py /tmp/oai-bench -n 1000000
    python benchmarks/oai_bench.py /tmp/oai-bench
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

from heritage_ld import oai

HERE = Path(__file__).resolve().parent
TARGETS = {"deep_over_first": 1.5, "edm_page_ms": 50.0, "getrecord_ms": 5.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(project: Path, port: int, workers: int) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("heritage-ld")
    log = open(project / ".heritage-ld" / "bench-server.log", "wb")
    proc = subprocess.Popen([str(exe), "serve", "--project", str(project), "--port", str(port),
                             "--workers", str(workers)], stdout=log, stderr=log)
    for _ in range(600):
        try:
            if requests.get(f"http://127.0.0.1:{port}/oai?verb=Identify", timeout=1).ok:
                return proc
        except requests.ConnectionError:
            time.sleep(0.1)
        if proc.poll() is not None:
            raise SystemExit(f"server exited; see {log.name}")
    proc.terminate()
    raise SystemExit("server did not answer within 60 s")


def timed(session: requests.Session, url: str, params: dict, repeat: int, expect: str) -> float:
    """Median milliseconds of ``repeat`` requests (after two warm-up requests)."""
    times = []
    for i in range(repeat + 2):
        t = time.perf_counter()
        r = session.get(url, params=params, timeout=60)
        ms = (time.perf_counter() - t) * 1000
        if r.status_code != 200 or expect.encode() not in r.content or b"<error" in r.content:
            raise SystemExit(f"unexpected answer to {params}: {r.content[:500]!r}")
        if i >= 2:
            times.append(ms)
    return statistics.median(times)


def deep_token(repo: oai.Repository, verb: str, depth: int) -> tuple[str, int, int]:
    """A signed token at cursor ~``depth`` of the full edm list: (token, cursor, completeListSize)."""
    q = oai.Query(verb, "edm", None, None, repo.response_date())
    size = repo.count(q)
    cursor = max(0, min(depth, size - 2 * repo.settings.page_size))
    where, params = repo._where(q, None, "records")
    db = sqlite3.connect(repo.cfg.catalog)
    pos = db.execute(f"SELECT last_changed, entity, id FROM records INDEXED BY records_by_datestamp WHERE {where} "
                     "ORDER BY last_changed, entity, id LIMIT 1 OFFSET ?", params + [cursor - 1]).fetchone()
    db.close()
    return repo.make_token(q, tuple(pos), cursor, size), cursor, size


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("project", type=Path, help="project folder with a catalog (see make_catalog.py)")
    ap.add_argument("--repeat", type=int, default=30, help="timed requests per measurement")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--depth", type=int, default=990_000, help="cursor of the deep pages")
    ap.add_argument("--out", type=Path, default=HERE / "oai-results.json")
    args = ap.parse_args(argv)

    repo = oai.Repository(args.project)   # same project, same key: tokens it makes are valid for the server
    port = free_port()
    server = start_server(args.project, port, args.workers)
    url = f"http://127.0.0.1:{port}/oai"
    results: dict = {}
    try:
        with requests.Session() as s:
            for verb, item in (("ListIdentifiers", "<header>"), ("ListRecords", "<record>")):
                first = timed(s, url, {"verb": verb, "metadataPrefix": "edm"}, args.repeat, item)
                token, cursor, size = deep_token(repo, verb, args.depth)
                deep = timed(s, url, {"verb": verb, "resumptionToken": token}, args.repeat, f'cursor="{cursor}"')
                results[verb] = {"first_ms": round(first, 2), "deep_ms": round(deep, 2), "deep_cursor": cursor,
                                 "complete_list_size": size, "deep_over_first": round(deep / first, 2)}
            db = sqlite3.connect(repo.cfg.catalog)
            n = db.execute("SELECT max(rowid) FROM records").fetchone()[0]
            ids = []
            for rowid in range(1, n + 1, max(1, n // 50)):
                row = db.execute("SELECT entity, id FROM records WHERE rowid >= ? AND edm_xml IS NOT NULL "
                                 "ORDER BY rowid LIMIT 1", (rowid,)).fetchone()
                if row:
                    ids.append(repo.identifier(*row))
            db.close()
            times = [timed(s, url, {"verb": "GetRecord", "metadataPrefix": "edm", "identifier": i},
                           max(1, args.repeat // 10), "<rdf:RDF") for i in ids]
            results["GetRecord"] = {"median_ms": round(statistics.median(times), 2), "records_sampled": len(ids)}
    finally:
        server.terminate()
        server.wait(30)

    catalog = repo.cfg.catalog
    records = sqlite3.connect(catalog).execute("SELECT count(*) FROM records").fetchone()[0]
    report = {
        "records": records, "catalog_gib": round(catalog.stat().st_size / 2**30, 2),
        "page_size": repo.settings.page_size, "workers": args.workers, "repeat": args.repeat,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "sqlite": sqlite3.sqlite_version},
        "results": results, "targets": TARGETS,
        "met": {"deep_over_first": all(results[v]["deep_over_first"] <= TARGETS["deep_over_first"]
                                       for v in ("ListIdentifiers", "ListRecords")),
                "edm_page_ms": max(results["ListRecords"]["first_ms"], results["ListRecords"]["deep_ms"])
                < TARGETS["edm_page_ms"],
                "getrecord_ms": results["GetRecord"]["median_ms"] < TARGETS["getrecord_ms"]},
    }
    print(f"{records:,} records, page size {repo.settings.page_size}, median of {args.repeat} requests over HTTP")
    for verb in ("ListIdentifiers", "ListRecords"):
        r = results[verb]
        print(f"  {verb:16} edm  first page {r['first_ms']:7.2f} ms   cursor {r['deep_cursor']:>9,} "
              f"{r['deep_ms']:7.2f} ms   deep/first {r['deep_over_first']:.2f}")
    print(f"  GetRecord        edm  {results['GetRecord']['median_ms']:.2f} ms "
          f"(median over {len(ids)} records)")
    print("  targets met: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in report["met"].items()))
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
