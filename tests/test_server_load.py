"""The real server (``heritage-ld serve``) under slow clients and never-ending SPARQL queries: OAI-PMH and
the record pages go on answering, slow clients are cut off in bounded time, and a full SPARQL pool answers
503 with Retry-After. A short run of ``benchmarks/server_load.py`` (the benchmark runs 30 s, 50 clients)."""
from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from conftest import copy_sample_project
from test_linked_data import ARTICLE, serve_project

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import server_load  # noqa: E402

REQUEST_TIMEOUT = 3
SPARQL_TIMEOUT = 6


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    project = copy_sample_project(tmp_path_factory.mktemp("load") / "project")
    extra = f"\n[server]\nrequest_timeout = {REQUEST_TIMEOUT}\n\n[sparql]\ntimeout = {SPARQL_TIMEOUT}\n"
    for url, project, _proc in serve_project(project, extra):
        yield SimpleNamespace(url=url)


def test_slow_clients_and_endless_queries_leave_oai_and_pages_answering(srv):
    summary = asyncio.run(server_load.load(srv.url, seconds=12, clients=5, drips=2, sparql=2, think=0.2,
                                           records=["/" + ARTICLE], drip_every=1.0, timeout=10))
    seen = summary["requests"]
    for kind in ("oai_identify", "ld_turtle", "ld_html"):
        assert seen[kind]["count"] >= 10 and seen[kind]["errors"] == 0, (kind, seen[kind])
        assert seen[kind]["max_ms"] < 2000, (kind, seen[kind])
    # every slow client was cut off within request_timeout (plus one drip interval), over and over
    cut = [int(m.group(1)) for line in summary["drip_log"] if (m := re.search(r"closed after (\d+) s", line))]
    assert len(cut) >= 4 and max(cut) <= REQUEST_TIMEOUT + 2, summary["drip_log"]
    assert any("408" in line for line in summary["drip_log"]), summary["drip_log"]  # the body drip is told why
    assert seen["sparql_heavy"]["count"] >= 2


def test_a_full_sparql_pool_answers_503_at_once(srv):
    """Two queries at once (the default [sparql] concurrency, shared by the server processes): of three
    endless queries, one is refused at once (503, Retry-After), while OAI-PMH answers."""
    answers = []

    def query() -> None:
        start = time.monotonic()
        r = requests.get(srv.url + "sparql", params={"query": server_load.HEAVY}, timeout=SPARQL_TIMEOUT + 30)
        answers.append((time.monotonic() - start, r))
    threads = [threading.Thread(target=query) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    probes = []
    for _ in range(8):
        start = time.monotonic()
        assert requests.get(srv.url + "oai", params={"verb": "Identify"}, timeout=10).status_code == 200
        probes.append(time.monotonic() - start)
        time.sleep(0.25)
    for t in threads:
        t.join(SPARQL_TIMEOUT + 40)
    busy = [(t, r) for t, r in answers if "busy" in r.text]
    assert busy and all(r.status_code == 503 and int(r.headers["Retry-After"]) == SPARQL_TIMEOUT and t < 4
                        for t, r in busy), answers
    stopped = [t for t, r in answers if r.status_code == 503 and "limit" in r.text]
    assert len(stopped) == 2 and all(SPARQL_TIMEOUT - 1 < t < SPARQL_TIMEOUT + 10 for t in stopped), answers
    assert max(probes) < 2, probes


@pytest.mark.parametrize("section", ['[server]\nrequest_timeout = "soon"', "[server]\nconnections = 1",
                                     "[sparql]\nconcurrency = 0", '[sparql]\nservice_endpoints = ["ftp://x/"]',
                                     '[sparql]\nallow_addresses = ["not an address"]'])
def test_bad_server_settings_stop_serve_with_a_message(tmp_path, section):
    from heritage_ld import pipeline
    project = copy_sample_project(tmp_path / "project")
    pipeline.publish(project)
    toml = project / "heritage-ld.toml"
    toml.write_text(toml.read_text() + "\n" + section + "\n")
    r = subprocess.run([str(Path(sys.executable).with_name("heritage-ld")), "serve", "--project", str(project),
                        "--port", "1"], capture_output=True, text=True, timeout=120)
    key = section.split("\n")[1].split(" ")[0]
    assert r.returncode == 2 and f"{key} must be" in r.stderr and "Traceback" not in r.stderr, r.stderr
