"""The server under hostile load: does OAI-PMH keep answering?

Starts ``heritage-ld serve`` on a published copy of the sample (or uses ``--url``), then for ``--seconds``
runs at once, all from one asyncio process on 127.0.0.1:

- ``--drip`` slow clients of each kind: one sending its request headers one line every 5 s, one sending a
  POST body (to /sparql) one byte every 5 s; each reconnects when the server closes it;
- ``--sparql`` clients each sending a query that never ends (a cartesian product), again as soon as the
  previous one is answered (by the time limit, or 503 when the SPARQL pool is full);
- ``--clients`` normal clients, each looping over OAI-PMH Identify, ListIdentifiers and record pages
  (Turtle, HTML) with a random pause of 0 to 2 x ``--think`` seconds between requests, on a connection kept
  open (HTTP/1.1 keep-alive, as harvesters and browsers do; reopened when the server closes it).

Prints and writes (``--results``, JSON) per kind of request: count, p50, p99, max, errors; the load average
of the machine at the start and end. The target: Identify p99 < 200 ms.

    python benchmarks/server_load.py                       # 30 s, 50 clients, 2 drips, 2 queries
    python benchmarks/server_load.py --results benchmarks/server-load.json
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
HEAVY = "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l . ?m ?n2 ?o }"
TARGET_P99_MS = 200.0


@dataclass
class Stats:
    """Latencies (seconds) and failures per kind of request."""
    times: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, seconds: float, error: str | None = None) -> None:
        self.times.setdefault(kind, []).append(seconds)
        if error:
            self.errors.setdefault(kind, []).append(error)

    def summary(self) -> dict[str, dict]:
        out = {}
        for kind, ts in sorted(self.times.items()):
            ts = sorted(ts)
            out[kind] = {"count": len(ts), "p50_ms": round(1000 * pct(ts, 50), 1),
                         "p99_ms": round(1000 * pct(ts, 99), 1), "max_ms": round(1000 * ts[-1], 1),
                         "errors": len(self.errors.get(kind, [])),
                         "error_examples": sorted(set(self.errors.get(kind, [])))[:5]}
        return out


def pct(sorted_values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of sorted values."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(round(p / 100 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


async def fetch(host: str, port: int, target: str, timeout: float, headers: str = "") -> tuple[int, bytes]:
    """One GET on a new connection (Connection: close); (status, body). Raises on timeout or reset."""
    async def go() -> tuple[int, bytes]:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\n{headers}Connection: close\r\n\r\n".encode())
            await writer.drain()
            data = await reader.read()
        finally:
            writer.close()
        if not data.startswith(b"HTTP/1."):
            raise ConnectionError("no HTTP response (connection closed)")
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), body
    return await asyncio.wait_for(go(), timeout)


class Client:
    """A client keeping its connection open between requests (HTTP/1.1 keep-alive), as harvesters and
    browsers do; it reconnects when the server has closed it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, target: str, timeout: float, headers: str = "") -> int:
        try:
            return await asyncio.wait_for(self._get(target, headers), timeout)
        except BaseException:
            self.close()
            raise

    async def _get(self, target: str, headers: str) -> int:
        for attempt in (1, 2):
            fresh = self.conn is None
            if fresh:
                self.conn = await asyncio.open_connection(self.host, self.port)
            reader, writer = self.conn
            try:
                writer.write(f"GET {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{headers}\r\n".encode())
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
            except (OSError, asyncio.IncompleteReadError):
                self.close()
                if fresh or attempt == 2:
                    raise ConnectionError("no HTTP response (connection closed)") from None
                continue  # the server had closed the idle connection
            fields = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line)
            fields = {k.strip().lower(): v.strip().lower() for k, v in fields.items()}
            await reader.readexactly(int(fields.get(b"content-length", b"0")))
            if fields.get(b"connection") == b"close":
                self.close()
            return int(head.split(b" ", 2)[1])
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn[1].close()
            self.conn = None


async def timed(stats: Stats, kind: str, host: str, port: int, target: str, timeout: float,
                headers: str = "", ok=range(200, 400), client: Client | None = None) -> int | None:
    """One request (on ``client``'s connection, else a new one), recorded in ``stats``; its status."""
    start = time.monotonic()
    try:
        if client is not None:
            status = await client.get(target, timeout, headers)
        else:
            status, _ = await fetch(host, port, target, timeout, headers)
    except (OSError, asyncio.TimeoutError, ValueError, IndexError) as e:
        stats.add(kind, time.monotonic() - start, f"{type(e).__name__}: {e}"[:120])
        return None
    stats.add(kind, time.monotonic() - start, None if status in ok else f"HTTP {status}")
    return status


async def drip(host: str, port: int, kind: str, stop: asyncio.Event, every: float, log: list[str]) -> None:
    """A slow client: headers one line every ``every`` s, or a POST body one byte every ``every`` s."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as e:
            log.append(f"{kind}: connect failed: {e}")
            await asyncio.sleep(every)
            continue
        started = time.monotonic()
        try:
            if kind == "headers":
                writer.write(f"GET /oai?verb=Identify HTTP/1.1\r\nHost: {host}\r\n".encode())
                line = "X-Drip: {}\r\n"
            else:
                writer.write(f"POST /sparql HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded"
                             f"\r\nContent-Length: 100000\r\n\r\nquery=".encode())
                line = "{}"
            n = 0
            while not stop.is_set():
                await writer.drain()
                try:
                    data = await asyncio.wait_for(reader.read(1024), every)
                    # the server answered or closed: this client is cut off, as it should be in time
                    log.append(f"{kind}: server closed after {time.monotonic() - started:.0f} s"
                               + (f" ({data.split(b' ', 2)[1].decode()})" if data.startswith(b"HTTP/") else ""))
                    break
                except asyncio.TimeoutError:
                    pass
                writer.write((line.format(n) if kind == "headers" else "a").encode())
                n += 1
        except OSError as e:
            log.append(f"{kind}: {type(e).__name__} after {time.monotonic() - started:.0f} s")
        finally:
            writer.close()


async def heavy(stats: Stats, host: str, port: int, stop: asyncio.Event, seconds: float) -> None:
    """A client sending a never-ending SPARQL query again as soon as it is answered (or refused)."""
    target = "/sparql?query=" + quote(HEAVY)
    while not stop.is_set():
        status = await timed(stats, "sparql_heavy", host, port, target, seconds + 60,
                             "Accept: application/sparql-results+json\r\n", ok=(503,))
        if status == 503:
            await asyncio.sleep(0.05)  # a refusal comes at once: do not spin


def normal_targets(records: list[str]) -> list[tuple[str, str, str]]:
    """(kind, target, extra headers) of the normal clients' requests."""
    out = [("oai_identify", "/oai?verb=Identify", "")]
    out.append(("oai_listidentifiers", "/oai?verb=ListIdentifiers&metadataPrefix=oai_dc", ""))
    for path in records[:20]:
        out.append(("ld_turtle", path, "Accept: text/turtle\r\n"))
        out.append(("ld_html", path, "Accept: text/html\r\n"))
    return out


async def normal(stats: Stats, host: str, port: int, stop: asyncio.Event, think: float, targets: list,
                 timeout: float, seed: int) -> None:
    rnd = random.Random(seed)
    identify = targets[0]
    client = Client(host, port)
    while not stop.is_set():
        kind, target, headers = identify if rnd.random() < 0.4 else rnd.choice(targets)
        await timed(stats, kind, host, port, target, timeout, headers, client=client)
        await asyncio.sleep(rnd.uniform(0, 2 * think))
    client.close()


async def load(url: str, seconds: float, clients: int, drips: int, sparql: int, think: float,
               records: list[str], drip_every: float = 5.0, timeout: float = 30.0) -> dict:
    """Run the whole mix against ``url`` for ``seconds``; the summary."""
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port
    stats, drip_log, stop = Stats(), [], asyncio.Event()
    load_before = os.getloadavg()
    tasks = [asyncio.create_task(drip(host, port, kind, stop, drip_every, drip_log))
             for kind in ("headers", "body") for _ in range(drips)]
    tasks += [asyncio.create_task(heavy(stats, host, port, stop, seconds)) for _ in range(sparql)]
    await asyncio.sleep(min(2.0, seconds / 5))  # the slow clients and the queries take their places first
    targets = normal_targets(records)
    tasks += [asyncio.create_task(normal(stats, host, port, stop, think, targets, timeout, i)) for i in range(clients)]
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait(tasks, timeout=timeout + 5)
    for t in tasks:
        t.cancel()
    return {"seconds": seconds, "clients": clients, "think_s": think, "drip_clients_per_kind": drips,
            "sparql_clients": sparql, "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()], "requests": stats.summary(),
            "drip_log": drip_log}


# -- the server ------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def published_sample(dest: Path, port: int, extra_toml: str = "") -> Path:
    """A copy of the sample project, base_uri = http://127.0.0.1:PORT/, published."""
    from heritage_ld import pipeline
    for name in ("heritage-ld.toml", "mapping", "shapes", "sample"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, dest / name)
    toml = dest / "heritage-ld.toml"
    toml.write_text(toml.read_text().replace('base_uri = "https://data.example.org/"',
                                             f'base_uri = "http://127.0.0.1:{port}/"') + extra_toml)
    pipeline.publish(dest)
    return dest


def record_paths(project: Path) -> list[str]:
    import sqlite3
    from heritage_ld.config import load
    from heritage_ld.mapping import Mappings
    cfg = load(project)
    maps = Mappings(cfg.mapping_dir, cfg.values)
    with sqlite3.connect(cfg.catalog) as db:
        rows = db.execute("SELECT entity, id FROM records WHERE deleted = 0 AND entity != 'rights' ORDER BY entity, id")
        iris = [maps.iri_for(e, i, cfg.base_uri) for e, i in rows]
    return [urlsplit(i).path for i in iris if i and i.startswith(cfg.base_uri)]


def start_server(project: Path, port: int, workers: int, log: Path) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("heritage-ld")
    proc = subprocess.Popen([str(exe), "serve", "--project", str(project), "--port", str(port),
                             "--workers", str(workers)], stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the server did not start: {log.read_text()[-2000:]}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--think", type=float, default=0.1, help="mean pause of a normal client between requests (s)")
    ap.add_argument("--drip", type=int, default=2, help="slow clients of each kind (headers, body)")
    ap.add_argument("--sparql", type=int, default=2, help="clients sending never-ending queries")
    ap.add_argument("--workers", type=int, default=2, help="heritage-ld serve --workers")
    ap.add_argument("--url", help="an already running server (of a project published with base_uri = URL)")
    ap.add_argument("--results", type=Path, help="append the run to this JSON file")
    ap.add_argument("--label", default="", help="a note kept with the run in --results")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="server-load-"))
    proc = None
    try:
        if args.url:
            url, records = args.url.rstrip("/") + "/", []
        else:
            port = free_port()
            (work / "project").mkdir()
            project = published_sample(work / "project", port)
            records = record_paths(project)
            proc = start_server(project, port, args.workers, work / "server.log")
            url = f"http://127.0.0.1:{port}/"
        summary = asyncio.run(load(url, args.seconds, args.clients, args.drip, args.sparql, args.think, records))
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    summary |= {"label": args.label, "when": time.strftime("%Y-%m-%d %H:%M:%S"),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores", "workers": args.workers}
    ident = summary["requests"].get("oai_identify", {})
    print(json.dumps(summary, indent=1))
    print(f"OAI Identify: p50 {ident.get('p50_ms')} ms, p99 {ident.get('p99_ms')} ms (target < {TARGET_P99_MS:g}),"
          f" {ident.get('errors')} errors of {ident.get('count')}; load {summary['loadavg_before']} -> "
          f"{summary['loadavg_after']}")
    if args.results:
        runs = json.loads(args.results.read_text()) if args.results.is_file() else []
        args.results.write_text(json.dumps(runs + [summary], indent=1) + "\n")


if __name__ == "__main__":
    main()
