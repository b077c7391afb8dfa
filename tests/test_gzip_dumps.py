"""The gzip dumps (writers/gzmembers.py): concatenated standard gzip members, one per block of records, read as
one file by Python's gzip, Debian's gzip/zcat, `oxigraph load` and Virtuoso's bulk loader; a re-run compresses
only the blocks that changed and copies the others from the dump it replaces, trusting nothing it cannot check."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pyoxigraph as ox
import pytest
import requests

from heritage_ld import pipeline
from heritage_ld.catalog import Catalog
from heritage_ld.config import load
from heritage_ld.writers import blocks, gzmembers
from heritage_ld.writers.blocks import plan
from heritage_ld.writers.gzmembers import GzipMembers, index_path, read_index
from heritage_ld.writers.rdf import graph_iri, provenance

from conftest import copy_published, counted_on_close, generated_project
from test_catalog import T1, T2
from test_push import free_port, oxigraph_exe

DUMPS = ("dataset.nt", "dataset.nq")


def tool(name: str, package: str) -> str:
    exe = shutil.which(name)
    if not exe:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing: CI must test the gzip dumps with it (apt-get install {package})")
        pytest.skip(f"{name} not installed (apt-get install {package})")
    return exe


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    """A generated project of 200 articles (~540 records; dumps of 2.4 and 4.3 MB, ~20 and ~35 members),
    published once."""
    root = generated_project(tmp_path_factory.mktemp("gz") / "p", 200)
    pipeline.publish(root, now=T1)
    return root


@pytest.fixture
def project(published, tmp_path) -> Path:
    return copy_published(published, tmp_path / "p")


@pytest.fixture
def written(monkeypatch) -> dict[str, tuple[int, int]]:
    """dump file name -> (bytes compressed, bytes copied) as each GzipMembers closes (counted, not changed)."""
    return counted_on_close(monkeypatch, GzipMembers, "compressed", "copied")


def members(out: Path, name: str) -> list[tuple[bytes, bytes]]:
    """(block digest, member bytes) of each member of ``out/name``, as its index lists them."""
    gz = (out / name).read_bytes()
    entries = read_index(out / name)
    assert [off for _d, off, _n, _s in entries] == [sum(n for _d, _o, n, _s in entries[:i]) for i in range(len(entries))]
    assert sum(n for _d, _o, n, _s in entries) == len(gz)
    return [(d, gz[off:off + n]) for d, off, n, _s in entries]


def size(member: bytes) -> int:
    """The uncompressed size a member's trailer gives."""
    return int.from_bytes(member[-4:], "little")


def articles(project: Path) -> list[dict]:
    return [json.loads(line) for line in (project / "data/articles.jsonl").read_text("utf-8").splitlines()]


def save_articles(project: Path, recs: list[dict]) -> None:
    (project / "data/articles.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs),
                                                 "utf-8")


def edit_article(project: Path, i: int) -> None:
    recs = articles(project)
    recs[i]["description"] += " Updated."
    save_articles(project, recs)


def assert_dumps_whole(out: Path) -> None:
    """Each gzip dump decompresses (Python's gzip, all members) to exactly its plain dump."""
    for name in DUMPS:
        assert gzip.decompress((out / f"{name}.gz").read_bytes()) == (out / name).read_bytes(), name


def catalog_counts(project: Path) -> tuple[dict[str, int], int]:
    """Per record graph, its quads in the N-Quads dump; and the distinct triples of the N-Triples dump."""
    cfg = load(project)
    pub = SimpleNamespace(config=cfg)
    cat = Catalog(cfg.catalog)
    try:
        graphs, triples = {}, set()
        for row in cat.rows():
            g = graph_iri(pub, row.entity, row.id)
            graphs[g] = len(set(row.triples) | set(provenance(pub, f"<{g}>", row)))
            triples.update(row.triples)
        return graphs, len(triples)
    finally:
        cat.close()


# -- every member is standard gzip, and every reader reads them all ----------------------------------

def test_dumps_are_standard_gzip_members_read_by_python_and_debian_gzip(project):
    out = project / "output"
    for name in DUMPS:
        parts = members(out, f"{name}.gz")
        assert len(parts) >= 10, (name, len(parts))
        for _digest, m in parts:   # each a complete gzip stream of its own: deflate, no name, mtime 0, OS unknown
            assert m[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
            assert len(gzip.decompress(m)) == size(m)
        assert b"".join(gzip.decompress(m) for _d, m in parts) == (out / name).read_bytes()
        assert index_path(out / f"{name}.gz").name == f".{name}.gz.members"   # a dotfile: never served
    assert_dumps_whole(out)
    gz = tool("gzip", "gzip")
    for name in DUMPS:
        subprocess.run([gz, "-t", str(out / f"{name}.gz")], check=True, timeout=60)
        zcat = subprocess.run([gz, "-dc", str(out / f"{name}.gz")], check=True, capture_output=True, timeout=60)
        assert zcat.stdout == (out / name).read_bytes()
    zcat = subprocess.run([tool("zcat", "gzip"), str(out / "dataset.nt.gz")], check=True, capture_output=True,
                          timeout=60)
    assert zcat.stdout == (out / "dataset.nt").read_bytes()


def test_oxigraph_loads_the_member_dumps(project, tmp_path):
    out = project / "output"
    graphs, triples = catalog_counts(project)
    q = "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g"
    subprocess.run([oxigraph_exe(), "load", "--location", str(tmp_path / "nq"), "--file", str(out / "dataset.nq.gz")],
                   check=True, capture_output=True, timeout=120)
    res = subprocess.run([oxigraph_exe(), "query", "--location", str(tmp_path / "nq"), "--query", q,
                          "--results-format", "json"], check=True, capture_output=True, timeout=120).stdout
    assert {s["g"].value: int(s["n"].value) for s in ox.parse_query_results(res, format=ox.QueryResultsFormat.JSON)} \
        == graphs
    subprocess.run([oxigraph_exe(), "load", "--location", str(tmp_path / "nt"), "--file", str(out / "dataset.nt.gz")],
                   check=True, capture_output=True, timeout=120)
    res = subprocess.run([oxigraph_exe(), "query", "--location", str(tmp_path / "nt"), "--query",
                          "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", "--results-format", "json"],
                         check=True, capture_output=True, timeout=120).stdout
    assert int(next(iter(ox.parse_query_results(res, format=ox.QueryResultsFormat.JSON)))["n"].value) == triples


VIRTUOSO_INI = """[Database]
DatabaseFile = {d}/virtuoso.db
ErrorLogFile = {d}/virtuoso.log
LockFile = {d}/virtuoso.lck
TransactionFile = {d}/virtuoso.trx
xa_persistent_file = {d}/virtuoso.pxa
[TempDatabase]
DatabaseFile = {d}/virtuoso-temp.db
TransactionFile = {d}/virtuoso-temp.trx
[Parameters]
ServerPort = 127.0.0.1:{sql}
DisableUnixSocket = 1
NumberOfBuffers = 10000
MaxDirtyBuffers = 6000
DirsAllowed = {d}, {load}
[HTTPServer]
ServerPort = 127.0.0.1:{http}
ServerRoot = {d}
ServerThreads = 2
[SPARQL]
ResultSetMaxRows = 100000
"""


def test_virtuoso_bulk_loader_reads_the_member_dumps(project, tmp_path):
    """Debian's Virtuoso, started here on 127.0.0.1 with a temporary database, loads both dumps with
    ld_dir + rdf_loader_run(): every record graph with its quads, and the N-Triples into the fallback graph."""
    exe, isql = tool("virtuoso-t", "virtuoso-opensource"), tool("isql-vt", "virtuoso-opensource")
    out, d = project / "output", tmp_path / "virtuoso"
    d.mkdir()
    sql, http = free_port(), free_port()
    (d / "virtuoso.ini").write_text(VIRTUOSO_INI.format(d=d, sql=sql, http=http, load=out))
    url = f"http://127.0.0.1:{http}/sparql"
    with open(d / "stdout.log", "wb") as log:
        proc = subprocess.Popen([exe, "+configfile", str(d / "virtuoso.ini"), "+foreground"], cwd=d, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, \
                f"Virtuoso did not start: {(d / 'virtuoso.log').read_text()[-2000:]}"
            time.sleep(0.2)
        fallback = "urn:x-heritage-ld:nt"
        loaded = subprocess.run([isql, f"127.0.0.1:{sql}", "dba", "dba",
                                 f"exec=ld_dir('{out}', 'dataset.n%.gz', '{fallback}'); rdf_loader_run(); "
                                 "select 'LOADED', ll_file, ll_state, coalesce(ll_error, 'ok') from DB.DBA.LOAD_LIST;"],
                                capture_output=True, text=True, timeout=300)
        assert loaded.returncode == 0 and "*** Error" not in loaded.stdout + loaded.stderr, loaded.stdout + loaded.stderr
        assert sorted(line.split()[1:] for line in loaded.stdout.splitlines() if line.startswith("LOADED")) == \
            [[str(out / "dataset.nq.gz"), "2", "ok"], [str(out / "dataset.nt.gz"), "2", "ok"]]

        def select(query: str) -> list[dict]:
            r = requests.get(url, params={"query": query}, headers={"Accept": "application/sparql-results+json"},
                             timeout=60)
            r.raise_for_status()
            return r.json()["results"]["bindings"]
        graphs, triples = catalog_counts(project)
        base = graph_iri(SimpleNamespace(config=load(project)), "", "")[:-1]
        got = select("SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } "
                     f"FILTER(STRSTARTS(STR(?g), '{base}')) }} GROUP BY ?g")
        assert {b["g"]["value"]: int(b["n"]["value"]) for b in got} == graphs
        got = select(f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{fallback}> {{ ?s ?p ?o }} }}")
        assert int(got[0]["n"]["value"]) == triples
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- a re-run compresses what changed, copies the rest ------------------------------------------------

def changed_members(before: list[tuple[bytes, bytes]], after: list[tuple[bytes, bytes]]) -> list[bytes]:
    old = {d for d, _m in before}
    return [m for d, m in after if d not in old]


def test_a_rerun_after_one_change_compresses_only_that_block(project, tmp_path, written):
    out = project / "output"
    before = {name: members(out, f"{name}.gz") for name in DUMPS}
    edit_article(project, 120)
    _, changes = pipeline.publish(project, now=T2)
    assert changes.changed == 1
    assert_dumps_whole(out)
    for name in DUMPS:
        new = changed_members(before[name], members(out, f"{name}.gz"))
        compressed, copied = written[f"{name}.gz"]
        assert 1 <= len(new) <= 2, (name, len(new))     # its block; and the next if the record ends a block
        assert compressed == sum(size(m) for m in new)   # those members were compressed, every other one copied
        assert compressed + copied == (out / name).stat().st_size and compressed < copied / 10
    # the N-Triples (no datestamps) are byte for byte what a first publication of the same sources writes
    fresh = tmp_path / "fresh"
    copy_published(project, fresh, fresh=True)
    pipeline.publish(fresh, now=T2)
    for f in ("dataset.nt.gz", ".dataset.nt.gz.members"):
        assert (fresh / "output" / f).read_bytes() == (out / f).read_bytes(), f


def test_an_inserted_and_a_removed_record_change_only_their_blocks(project, written):
    out = project / "output"
    before = {name: members(out, f"{name}.gz") for name in DUMPS}
    recs = articles(project)
    new = json.loads(json.dumps(recs[50]))
    new["identifier"] += "-new"
    new["url"] += "-new"
    new["primaryImageOfPage"]["identifier"] = "img-new"
    new["primaryImageOfPage"]["image"]["url"] = "https://media.example.org/en/img-new.png"
    removed = recs.pop(150)
    recs.insert(51, new)
    save_articles(project, recs)
    _, changes = pipeline.publish(project, now=T2, allow_deletions=True)
    assert changes.added == 2 and {d[1] for d in changes.deleted} == {removed["identifier"],
                                                                    removed["primaryImageOfPage"]["identifier"]}
    assert_dumps_whole(out)
    for name in DUMPS:
        fresh = changed_members(before[name], members(out, f"{name}.gz"))
        compressed, copied = written[f"{name}.gz"]
        # two records in, two out (an article and its image each), in four places: at most two blocks each, of ~20
        assert 1 <= len(fresh) <= 8, (name, len(fresh))
        assert compressed == sum(size(m) for m in fresh)
        assert compressed + copied == (out / name).stat().st_size and compressed < copied


def rewrite_index(dump: Path, entries: list[tuple[bytes, int, int, bytes]]) -> None:
    index_path(dump).write_bytes(gzmembers._MAGIC + b"".join(gzmembers._ENTRY.pack(*e) for e in entries))


def swap_blocks(dump: Path, i: int, j: int) -> set[bytes]:
    """A well-formed index that pairs blocks i and j with each other's members."""
    e = read_index(dump)
    e[i], e[j] = (e[j][0], *e[i][1:]), (e[i][0], *e[j][1:])
    rewrite_index(dump, e)
    return {e[i][0], e[j][0]}


def damage_member(dump: Path, i: int) -> set[bytes]:
    """One byte inside member i's compressed data inverted."""
    digest, offset, _n, _sha = read_index(dump)[i]
    with open(dump, "r+b") as fh:
        fh.seek(offset + 100)
        b = fh.read(1)
        fh.seek(offset + 100)
        fh.write(bytes([b[0] ^ 0xFF]))
    return {digest}


NT_GZ = "dataset.nt.gz"
DAMAGE = {   # each damages output/dataset.nt.gz or its index; returns the blocks it spoilt (a set), else all are
    "garbage index": lambda gz: index_path(gz).write_bytes(os.urandom(5000)),
    "truncated index": lambda gz: index_path(gz).write_bytes(index_path(gz).read_bytes()[:-30]),
    "foreign index (the N-Quads')": lambda gz: shutil.copy(index_path(gz.with_name("dataset.nq.gz")), index_path(gz)),
    "index of another compressor": lambda gz: index_path(gz).write_bytes(
        index_path(gz).read_bytes().replace(b" level 2\n", b" level 3\n", 1)),
    "no dump beside its index": lambda gz: gz.unlink(),
    "two blocks' members swapped in the index": lambda gz: swap_blocks(gz, 2, 7),
    "a damaged member": lambda gz: damage_member(gz, 3),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_or_foreign_index_is_not_trusted(project, written, damage):
    """Whatever happened to the index or the dump it describes, the next run writes a whole, exact dump:
    what it cannot check it compresses again."""
    out = project / "output"
    before = {d for d, *_ in read_index(out / NT_GZ)}
    spoilt = DAMAGE[damage](out / NT_GZ)
    edit_article(project, 120)
    pipeline.publish(project, now=T2)
    assert_dumps_whole(out)
    subprocess.run([tool("gzip", "gzip"), "-t", str(out / NT_GZ)], check=True, timeout=60)
    compressed, copied = written[NT_GZ]
    total = (out / "dataset.nt").stat().st_size
    if not isinstance(spoilt, set):
        assert (compressed, copied) == (total, 0)
    else:   # the spoilt blocks and the changed one compressed again, every other one copied
        assert compressed == sum(size(m) for d, m in members(out, NT_GZ) if d in spoilt or d not in before)
        assert copied == total - compressed and len(spoilt) * 1000 < compressed < total / 2
    nq_compressed, nq_copied = written["dataset.nq.gz"]
    assert nq_copied > 10 * nq_compressed                                # the other dump's index was fine


def test_an_empty_dump_is_one_empty_member(tmp_path):
    GzipMembers(tmp_path / "empty.nt.gz").close()
    data = (tmp_path / "empty.nt.gz").read_bytes()
    assert gzip.decompress(data) == b"" and len(read_index(tmp_path / "empty.nt.gz")) == 1
    subprocess.run([tool("gzip", "gzip"), "-t", str(tmp_path / "empty.nt.gz")], check=True, timeout=60)


def test_blocks_are_cut_by_the_records_keys(tmp_path):
    """Blocks of ``TARGET`` records on average, ``MAX`` at most, cut by the keys: a record inserted or removed
    anywhere changes its own block (or two), never the ones after it; a changed record only its own."""
    cat = Catalog(tmp_path / "catalog.sqlite")
    rows = [("article", f"a-{i:05d}", f"{i:064x}") for i in range(3000)]

    def store(recs) -> list[bytes]:
        cat.db.execute("DELETE FROM records")
        cat.db.executemany("INSERT INTO records (entity, id, sets, source, hash, first_published, last_changed, "
                           "triples, mapping) VALUES (?, ?, '[]', 'x', ?, 0, 0, '', 'm')", recs)
        found = plan(cat, 0)
        assert sum(b.count for b in found) == len(recs) and max(b.count for b in found) <= blocks.MAX
        return [b.content for b in found]
    first = store(rows)
    assert blocks.TARGET / 2 < len(rows) / len(first) < blocks.TARGET * 2
    for at in (10, 1500, 2990):
        for edited in (rows[:at] + [("article", f"a-{at:05d}-new", "f" * 64)] + rows[at:],   # inserted
                       rows[:at] + rows[at + 1:],                                          # removed
                       rows[:at] + [rows[at][:2] + ("e" * 64,)] + rows[at + 1:]):          # changed
            again = store(edited)
            assert 1 <= len(set(again) - set(first)) <= 2 and len(set(first) - set(again)) <= 2
    cat.close()
