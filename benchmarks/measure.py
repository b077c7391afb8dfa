"""One measurement in this process; ``run.py`` starts one process per measurement.

    python benchmarks/measure.py NAME PROJECT WORK [--sample 500] [--profile FILE]

Prints one JSON object as its last line: ``seconds`` (the timed part only; set-up such as mapping
the records for the validation measurements is not timed), ``peak_rss_mb`` (VmHWM of this process
from /proc/self/status, read when the timed part ends; ru_maxrss would also count the parent's peak
across exec) and what the measurement counted. ``--profile`` writes cProfile statistics of the
timed part.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

from heritage_ld import config as config_mod
from heritage_ld import pipeline
from heritage_ld import executor
from heritage_ld.executor import Serial
from heritage_ld.mapping import Mapped, Mappings, Record
from heritage_ld.validate import Shapes, validate
from heritage_ld.work import Reader, Work, path_for

MEASURES: dict[str, Callable] = {}
NOW = 1_800_000_000  # fixed clock for the publish runs: 2027-01-15T08:00:00Z, then +1 h per run


def measure(name: str):
    def register(fn):
        MEASURES[name] = fn
        return fn
    return register


def status_mb(key: str) -> float:
    """VmHWM (peak) or VmRSS (now) of this process, in MB."""
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


class Timer:
    """Times (and optionally profiles) the block; keeps the peak RSS at its end."""

    def __init__(self, profile: Path | None) -> None:
        self.profiler = cProfile.Profile() if profile else None
        self.profile = profile
        self.seconds = self.peak = 0.0

    def __enter__(self) -> "Timer":
        self.rss_before = status_mb("VmRSS")
        if self.profiler:
            self.profiler.enable()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.t0
        if self.profiler:
            self.profiler.disable()
            self.profiler.dump_stats(self.profile)
        self.peak = status_mb("VmHWM")


def read_into(root: Path, work: Work):
    """Pass 1 as ``pipeline.build`` runs it: read + extract + merge copies, into a work database."""
    cfg = config_mod.load(root)
    mappings = Mappings(cfg.mapping_dir, cfg.values)
    pipeline.read_records(cfg, mappings, work)
    work.commit()
    return cfg, mappings


def map_records(root: Path):
    """Every record mapped, in memory (for the pyshacl baselines, which need one graph anyway)."""
    work = Work(path_for(config_mod.load(root).catalog))
    try:
        cfg, mappings = read_into(root, work)
        db = Reader(str(work.path))
        keys = list(work.keys())
        vocabulary = set(work.keys(where="linked_only = 1"))
        mapped = [m for i in range(0, len(keys), 500) for m in pipeline.map_records(cfg, mappings, db, keys[i:i + 500])]
        db.db.close()
    finally:
        work.close()
    # vocabulary records are published only where something refers to them
    referenced = {t[2] for m in mapped for t in m.triples if t[2][0] == "<"}
    mapped = [m for m in mapped if (m.record.entity, m.record.id) not in vocabulary
              or any(f"<{s}>" in referenced for s in m.subjects.values())]
    return cfg, mappings, mapped


def linked_of(mapped) -> Callable:
    """m -> the triples of the other records about what m links to (as the pipeline validates)."""
    by_subject: dict[str, list] = defaultdict(list)
    for m in mapped:
        for s in {t[0] for t in m.triples}:
            by_subject[s].append(m)
    return lambda m: [t for o in {t[2] for t in m.triples if t[2][0] == "<"} for other in by_subject.get(o, [])
                      if other is not m for t in other.triples if t[0] == o]


def triples_of(mapped) -> int:
    return sum(len(m.triples) for m in mapped)


# -- ours ------------------------------------------------------------------------------------

@measure("map")
def m_map(root: Path, work: Path, t: Timer, args) -> dict:
    """Read + extract + map, writing the triples as N-Triples (as Morph-KGC and the raw limit do)."""
    out = work / "map.nt"
    records = triples = 0
    with t:
        w = Work(path_for(config_mod.load(root).catalog))
        try:
            cfg, mappings = read_into(root, w)
            db = Reader(str(w.path))
            with out.open("w", encoding="utf-8") as fh:
                for chunk in pipeline._chunks(w.keys(), cfg.chunk_size):
                    for m in pipeline.map_records(cfg, mappings, db, chunk):
                        fh.write("".join(f"{s} {p} {o} .\n" for s, p, o in m.triples))
                        records += 1
                        triples += len(m.triples)
            db.db.close()
        finally:
            w.close()
    out.unlink()
    return {"records": records, "triples": triples}


def _validate(root: Path, t: Timer, reference: bool) -> dict:
    """Passes 1-2 (not timed), then validation as pass 3 runs it: per chunk, each record with the
    triples of the records it links to, read from the work database."""
    cfg = config_mod.load(root)
    w = Work(path_for(cfg.catalog))
    issues = []
    try:
        cfg, mappings = read_into(root, w)
        shared = pipeline.Shared(str(w.path), "measure", None, False)  # no memo: everything is mapped
        for part in Serial().run(pipeline._map_chunk, root, shared, pipeline._chunks(w.keys(), cfg.chunk_size)):
            w.add_mapped(part)
        w.index()
        w.commit()
        keys = w.db.execute("SELECT entity, id FROM result ORDER BY entity, id").fetchall()
        db = Reader(str(w.path))
        fields_of = lambda e: mappings.entities[e].fields_by_predicate
        records = triples = 0
        with t:  # shapes loaded (and compiled), then chunk by chunk
            shapes = Shapes.load(root, cfg.shapes)
            for chunk in pipeline._chunks(keys, cfg.chunk_size):
                batch, linked = [], {}
                for key in chunk:
                    tr, subjects, _blob, _sets, _mapping, source = db.result(*key)
                    m = Mapped(Record(key[0], key[1], {}, source), tr, [], subjects)
                    linked[key] = pipeline._linked(db, key, tr)[0]
                    batch.append(m)
                    records += 1
                    triples += len(tr)
                issues.extend(validate(batch, lambda m: linked[(m.record.entity, m.record.id)], shapes, fields_of,
                                       reference))
        db.db.close()
    finally:
        w.close()
    return {"records": records, "triples": triples, "chunk_size": cfg.chunk_size,
            "violations": sum(i.severity == "Violation" for i in issues),
            "records_with_violations": len({(i.entity, i.record_id) for i in issues if i.severity == "Violation"})}


@measure("validate")
def m_validate(root: Path, work: Path, t: Timer, args) -> dict:
    """The default path: shapes compiled to Python checks (shaclc), pyshacl for what does not compile."""
    return _validate(root, t, reference=False)


@measure("validate_pyshacl")
def m_validate_pyshacl(root: Path, work: Path, t: Timer, args) -> dict:
    """--reference-validation: pyshacl one call per record (its graph, its focus nodes as targets)."""
    return _validate(root, t, reference=True)


def traced_stages(work: Path, name: str) -> None:
    """Log when build and each writer end, with the memory then, to WORK/trace-NAME.txt: if the run
    is stopped (time or memory limit), run.py reports how far it got."""
    import dataclasses
    import threading
    from heritage_ld.writers import FORMATS, formats
    log = open(work / f"trace-{name}.txt", "w", buffering=1)
    t0 = time.perf_counter()

    def note(event: str) -> None:
        log.write(f"{time.perf_counter() - t0:7.1f} s {status_mb('VmRSS'):8.0f} MB  {event}\n")

    def wrap(fn, event):
        def run(*a, **k):
            out = fn(*a, **k)
            note(event)
            return out
        return run
    pipeline.read_records = wrap(pipeline.read_records, "pass 1 done (read)")
    pipeline._unreferenced_vocabulary = wrap(pipeline._unreferenced_vocabulary, "passes 2-3 done (map, validate, EDM)")
    for fmt in list(formats().values()):
        FORMATS[fmt.name] = dataclasses.replace(fmt, sink=wrap(fmt.sink, f"writer {fmt.name} opened"))

    def sample() -> None:
        while True:
            time.sleep(30)
            note("(running)")
    threading.Thread(target=sample, daemon=True).start()


def cpu_seconds(children: bool = True) -> float:
    """CPU time (user + system) of this process (and its waited-for children)."""
    import resource
    return sum(getattr(resource.getrusage(who), f)
               for who in (resource.RUSAGE_SELF, *([resource.RUSAGE_CHILDREN] if children else []))
               for f in ("ru_utime", "ru_stime"))


def _publish(root: Path, work: Path, t: Timer, now: int, name: str = "publish", workers: int = 1) -> dict:
    from heritage_ld import writers
    traced_stages(work, name)
    spent = {"write": 0.0, "write_cpu": 0.0}
    write_all = writers.write_all

    def timed(*a, **k):   # the writers' share of "catalog+write", wall and CPU
        t0, c0 = time.perf_counter(), cpu_seconds()
        try:
            return write_all(*a, **k)
        finally:
            spent["write"] += time.perf_counter() - t0
            spent["write_cpu"] += cpu_seconds() - c0
    writers.write_all = timed
    c0 = cpu_seconds()
    with t:
        pub, changes = pipeline.publish(root, now=now, run=executor.make(workers=workers))
    return {"records": pub.published, "triples": pub.triple_count, "held_back": len(pub.held_back),
            "edm_held_back": len(pub.edm_held_back), "edm_records": pub.edm_count, "added": changes.added,
            "changed": changes.changed, "deleted": len(changes.deleted), "unchanged": changes.unchanged,
            "cpu_seconds": round(cpu_seconds() - c0, 3),
            "stages": {**{k: round(v, 3) for k, v in pub.seconds.items()},
                       **{k: round(v, 3) for k, v in spent.items()}}}


@measure("publish")
def m_publish(root: Path, work: Path, t: Timer, args) -> dict:
    return _publish(root, work, t, NOW)


@measure("publish_noop")
def m_publish_noop(root: Path, work: Path, t: Timer, args) -> dict:
    return _publish(root, work, t, NOW + 3600, name="publish_noop")


@measure("publish_1pct")
def m_publish_1pct(root: Path, work: Path, t: Timer, args) -> dict:
    return _publish(root, work, t, NOW + 7200, name="publish_1pct")


@measure("publish_1rec")
def m_publish_1rec(root: Path, work: Path, t: Timer, args) -> dict:
    return _publish(root, work, t, NOW + 10800, name="publish_1rec")


@measure("publish_workers2")
def m_publish_workers2(root: Path, work: Path, t: Timer, args) -> dict:
    """``publish --workers 2`` on a fresh copy: mapping, validation, EDM and the writers in two processes."""
    return _publish(root, work, t, NOW, name="publish_workers2", workers=2)


def _timed_task(task, root: str, shared, chunk: list) -> tuple:
    """Runs on a Dask worker in place of ``task``: the project loaded first (CPU timed apart: once a
    worker and project), then the task; CPU of this thread (the worker's one task thread)."""
    t0 = time.thread_time()
    executor.project(root, shared.project)[2].compiled_for(shared.reference)
    t1 = time.thread_time()
    out = task(root, shared, chunk)
    return out, t1 - t0, time.thread_time() - t1, len(chunk)


class TimedDask(executor.Dask):
    """The Dask executor, each chunk task timed on its worker (``_timed_task``): CPU per pass."""

    def __init__(self, scheduler: str) -> None:
        super().__init__(scheduler)
        self.cpu: dict[str, float] = defaultdict(float)     # task name -> CPU seconds of its chunks
        self.records: dict[str, int] = defaultdict(int)
        self.tasks: dict[str, int] = defaultdict(int)
        self.load = 0.0                                     # loading + compiling the project on the workers

    def run(self, task, root, shared, chunks):
        from functools import partial
        for out, load, cpu, n in super().run(partial(_timed_task, task), root, shared, chunks):
            self.load += load
            self.cpu[task.__name__] += cpu
            self.records[task.__name__] += n
            self.tasks[task.__name__] += 1
            yield out


class CoordinatorCpu:
    """CPU of this thread (the coordinator's pipeline) in the functions named, each call's time
    without that of the named functions it calls (exclusive), by label."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self.stack: list[str] = []

    def wrap(self, owner, attr: str, label: str) -> None:
        fn = getattr(owner, attr)

        def timed(*a, **k):
            self.stack.append(label)
            t0 = time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                spent = time.thread_time() - t0
                self.stack.pop()
                self.cpu[label] += spent
                if self.stack:
                    self.cpu[self.stack[-1]] -= spent
        setattr(owner, attr, timed)


@measure("publish_dask")
def m_publish_dask(root: Path, work: Path, t: Timer, args, name: str = "publish_dask") -> dict:
    """``publish --executor dask`` on a fresh copy, on a LocalCluster of 2 worker processes (1 thread
    each, 127.0.0.1) started before and closed after the timed part, with CPU seconds: on the workers
    (each chunk task, by pass; the worker processes in all), and on the coordinator by stage."""
    from distributed import LocalCluster
    from heritage_ld import catalog as catalog_mod, validate as validate_mod, writers, work as work_mod
    coord = CoordinatorCpu()
    for owner, method in ((pipeline, "load_project"), (pipeline, "project_digest"), (pipeline, "project"),
                          (validate_mod.Shapes, "compiled_for")):
        coord.wrap(owner, method, "project load + compile (once a run)")
    coord.wrap(pipeline, "read_records", "read (pass 1)")
    coord.wrap(work_mod.Work, "add_mapped", "work DB: store mapped (pass 2)")
    coord.wrap(work_mod.Work, "index", "work DB: store mapped (pass 2)")
    coord.wrap(work_mod.Work, "set_checked", "work DB: store checked (pass 3)")
    coord.wrap(pipeline, "_unreferenced_vocabulary", "pass 4 (vocabulary, links to held-back records)")
    coord.wrap(pipeline, "_links_to_held", "pass 4 (vocabulary, links to held-back records)")
    for method in ("live", "plan", "apply", "record_run", "replace_report", "summary", "commit"):
        coord.wrap(catalog_mod.Catalog, method, "catalog (plan, apply, report, commit)")
    coord.wrap(writers, "write_all", "writers (all formats, swap)")
    traced_stages(work, name)
    t0 = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        run = TimedDask(cluster.scheduler_address)
        started = time.perf_counter() - t0
        try:
            def worker_cpu() -> dict:
                return run.client.run(cpu_seconds, False)
            before = worker_cpu()
            self_before, thread_before = cpu_seconds(False), time.thread_time()
            with t:
                pub, changes = pipeline.publish(root, now=NOW, run=run)
            thread_cpu, process_cpu = time.thread_time() - thread_before, cpu_seconds(False) - self_before
            after = worker_cpu()
        finally:
            run.close()
    records = run.records["_map_chunk"]   # a fresh project: every record is mapped, then checked
    workers_cpu = {a: after[a] - before[a] for a in after}
    tasks = {"map (pass 2)": run.cpu["_map_chunk"], "validate+EDM+fragments (pass 3)": run.cpu["_check_chunk"]}
    worker_total = sum(workers_cpu.values())
    named = dict(coord.cpu)
    named["other (paging keys, submitting, taking results)"] = thread_cpu - sum(named.values())
    us = lambda cpu: round(cpu / records * 1e6, 1)
    return {"records": pub.published, "records_mapped": records, "records_checked": run.records["_check_chunk"],
            "triples": pub.triple_count, "held_back": len(pub.held_back), "added": changes.added,
            "stages": {k: round(v, 3) for k, v in pub.seconds.items()},
            "workers": len(workers_cpu), "chunks": dict(run.tasks), "cluster_start_seconds": round(started, 2),
            "cpu_seconds": {
                "worker_tasks": {k: round(v, 3) for k, v in tasks.items()},
                "worker_project_load": round(run.load, 3),
                "worker_processes": round(worker_total, 3),
                "worker_dask_overhead": round(worker_total - sum(tasks.values()) - run.load, 3),
                "coordinator_thread": {k: round(v, 3) for k, v in named.items()},
                "coordinator_thread_total": round(thread_cpu, 3),
                # + the threads of the scheduler, the client and the nannies (in this process with a LocalCluster)
                "coordinator_process": round(process_cpu, 3),
            },
            "us_per_record": {
                **{f"worker {k}": us(v) for k, v in tasks.items()},
                "worker process in all (tasks, project load, Dask)": us(worker_total),
                **{f"coordinator {k}": us(v) for k, v in named.items()},
                "coordinator thread in all": us(thread_cpu),
                "coordinator process in all (+ scheduler, client, nannies)": us(process_cpu),
            }}


@measure("publish_dask_nofiles")
def m_publish_dask_nofiles(root: Path, work: Path, t: Timer, args) -> dict:
    """``publish_dask`` with ``record_files = false`` (no records/ or edm/ files: what a large
    collection served by ``heritage-ld serve`` sets; the copy's heritage-ld.toml is edited)."""
    toml = root / "heritage-ld.toml"
    text = toml.read_text()
    if "record_files" not in text:
        toml.write_text(text.replace("[project]\n", "[project]\nrecord_files = false\n", 1))
    assert config_mod.load(root).record_files is False, "no [project] table in heritage-ld.toml"
    return m_publish_dask(root, work, t, args, name="publish_dask_nofiles")


def writer(fmt: str):
    def run(root: Path, work: Path, t: Timer, args) -> dict:
        """One format written from scratch from the catalog's live records, as ``write_all`` writes it
        (``writers.fill`` into an empty folder: every block made, every per-record file written)."""
        from heritage_ld.writers import Files, fill, formats
        pub, cat = _writing(root)
        out = work / f"out-{fmt}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        with t:
            fill(pub, cat, Files(out, out, None, pub.config.record_files), None, [formats()[fmt]])
        records, triples, _edm = cat.totals()
        cat.close()
        size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file() and not f.name.startswith("."))
        files = sum(1 for f in out.rglob("*") if f.is_file() and not f.name.startswith("."))
        shutil.rmtree(out, ignore_errors=True)
        return {"records": records, "triples": triples, "rss_before_mb": round(t.rss_before, 1), "files": files,
                "bytes": size}
    return run


def _writing(root: Path):
    """A Publication as ``publish`` has it when the writers run (the catalog's totals and last report), and the
    catalog."""
    from heritage_ld.catalog import Catalog
    cfg, mappings, _shapes = pipeline.load_project(root)
    pub = pipeline.Publication(cfg, mappings, {}, {}, [], 0)
    cat = Catalog(cfg.catalog)
    pipeline._last_report(cat, pub)
    pub.issues = pipeline.IssueLog(cat.path, cat.db)
    pub.published, pub.triple_count, pub.edm_count = cat.totals()
    return pub, cat


for _fmt in ("ntriples", "nquads", "turtle", "jsonld", "edm", "void", "report"):
    MEASURES[f"write_{_fmt}"] = writer(_fmt)


@measure("write_gzip")
def m_write_gzip(root: Path, work: Path, t: Timer, args) -> dict:
    """The gzip dumps (N-Triples, N-Quads) from the plain dumps' blocks as ``publish`` cuts them (the plain
    dumps made first, not timed): a first run; a re-run after every 100th article changed (the blocks holding
    one changed, the others the same), with the first run's dumps as the ones it replaces; and the whole dumps
    as one zlib level 6 stream (how they were written before)."""
    import gzip
    import hashlib
    from heritage_ld.writers import Files, blocks, fill, formats
    from heritage_ld.writers.gzmembers import GzipMembers
    pub, cat = _writing(root)
    out = work / "out-gzip"
    shutil.rmtree(out, ignore_errors=True)
    for d in ("prepare", "first", "rerun", "zlib6"):
        (out / d).mkdir(parents=True)
    prep = out / "prepare"
    fill(pub, cat, Files(prep, prep, None, False), None, [formats()["ntriples"], formats()["nquads"]])
    plan = blocks.plan(cat, None)
    keys = [(e, i) for e, i, *_ in cat.versions()]
    edit = set([k for k in keys if k[0] == "article"][::100])
    cat.close()
    edited, pos = [], 0   # per block: does it hold a changed article?
    for b in plan:
        edited.append(any(k in edit for k in keys[pos:pos + b.count]))
        pos += b.count
    dumps: dict[str, list[tuple[bytes, bytes]]] = {}   # gzip dump name -> (version, bytes) of each block
    changed: dict[str, list[tuple[bytes, bytes]]] = {}
    for name in ("dataset.nt", "dataset.nq"):
        entries = sorted(blocks.read_index(prep / name).values(), key=lambda e: e.offset)
        assert len(entries) == len(plan), name
        data = (prep / name).read_bytes()
        dumps[name + ".gz"] = [(e.version, data[e.offset:e.offset + e.length]) for e in entries]
        changed[name + ".gz"] = [(hashlib.sha256(v + b"edited").digest(), d.replace(b'"', b'"Updated. ', 1))
                                 if hit else (v, d) for (v, d), hit in zip(dumps[name + ".gz"], edited)]

    def write(folder: str, records: dict, previous: str | None = None) -> dict:
        stats = {}
        for name, recs in records.items():
            g = GzipMembers(out / folder / name, out / previous / name if previous else None)
            for v, data in recs:
                g.add_block(v, data)
            g.close()
            stats[name] = (g.compressed, g.copied, (out / folder / name).stat().st_size)
        return stats
    with t:
        first = write("first", dumps)
    t0 = time.perf_counter()
    rerun = write("rerun", changed, "first")
    rerun_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    zlib6 = {}
    for name, recs in dumps.items():
        with open(out / "zlib6" / name, "wb") as raw, gzip.GzipFile("", "wb", 6, raw, mtime=0) as fh:
            for _v, data in recs:
                fh.write(data)
        zlib6[name] = (out / "zlib6" / name).stat().st_size
    zlib6_s = time.perf_counter() - t0
    for name in dumps:   # the re-runs wrote exactly the changed blocks
        assert gzip.decompress((out / "rerun" / name).read_bytes()) == b"".join(d for _v, d in changed[name])
    shutil.rmtree(out, ignore_errors=True)
    plain = sum(len(d) for recs in dumps.values() for _v, d in recs)
    return {"records": len(keys), "articles_changed": len(edit), "blocks": len(plan),
            "blocks_changed": sum(edited), "plain_bytes": plain,
            "gzip_bytes": sum(s[2] for s in first.values()), "zlib6_bytes": sum(zlib6.values()),
            "zlib6_seconds": round(zlib6_s, 4), "rerun_1pct_seconds": round(rerun_s, 4),
            "rerun_1pct_compressed_bytes": sum(s[0] for s in rerun.values()),
            "rerun_1pct_copied_bytes": sum(s[1] for s in rerun.values())}


# -- baselines -------------------------------------------------------------------------------

@measure("raw_limit")
def m_raw(root: Path, work: Path, t: Timer, args) -> dict:
    sys.path.insert(0, str(Path(__file__).parent))
    import raw_limit
    out = work / "raw.nt"
    with t:
        n = raw_limit.run(root, out)
    out.unlink()
    return {"triples": n}


def _shacl(data, shapes_graph):
    from pyshacl import validate as shacl_validate
    return shacl_validate(data, shacl_graph=shapes_graph, inference="none", advanced=False, allow_warnings=True)


def _violations(report) -> int:
    from rdflib.namespace import SH
    return sum(1 for r in report.objects(None, SH.result) if report.value(r, SH.resultSeverity) == SH.Violation)


@measure("pyshacl_graph")
def m_pyshacl_graph(root: Path, work: Path, t: Timer, args) -> dict:
    """pyshacl over all mapped records as one graph, one call (the triples parsed into rdflib first)."""
    import rdflib
    cfg, _m, mapped = map_records(root)
    shapes = Shapes.load(root, cfg.shapes)
    text = "".join(sorted({f"{s} {p} {o} .\n" for m in mapped for s, p, o in m.triples}))
    del mapped
    with t:
        t0 = time.perf_counter()
        data = rdflib.Graph()
        data.parse(data=text, format="nt")
        load = time.perf_counter() - t0
        _conforms, report, _text = _shacl(data, shapes.graph)
    return {"triples": len(data), "load_seconds": round(load, 3), "validate_seconds": round(t.seconds - load, 3),
            "violations": _violations(report)}


@measure("pyshacl_record")
def m_pyshacl_record(root: Path, work: Path, t: Timer, args) -> dict:
    """pyshacl one record a call (its triples plus those of the records it links to), on an even
    sample of records; ``seconds`` is extrapolated to all records."""
    import rdflib
    cfg, mappings, mapped = map_records(root)
    shapes = Shapes.load(root, cfg.shapes)
    linked = linked_of(mapped)
    step = max(1, len(mapped) // args.sample)
    sample = mapped[::step][:args.sample]
    docs = ["".join(f"{s} {p} {o} .\n" for s, p, o in set(m.triples + linked(m))) for m in sample]
    violations = 0
    with t:
        for doc in docs:
            data = rdflib.Graph()
            data.parse(data=doc, format="nt")
            violations += _violations(_shacl(data, shapes.graph)[1])
    measured = t.seconds
    t.seconds = measured / len(sample) * len(mapped)
    return {"records": len(mapped), "triples": triples_of(mapped), "sample": len(sample),
            "sample_seconds": round(measured, 3),
            "extrapolated": True, "sample_violations": violations}


def _rdflib(root: Path, work: Path, t: Timer, fmt: str | None) -> dict:
    import rdflib
    source = root / "output" / "dataset.nt"
    g = rdflib.Graph()
    if fmt is None:
        with t:
            g.parse(source, format="nt")
        return {"triples": len(g)}
    g.parse(source, format="nt")
    out = work / f"rdflib.{fmt}"
    with t:
        g.serialize(destination=str(out), format=fmt)
    size = out.stat().st_size
    out.unlink()
    return {"triples": len(g), "bytes": size}


@measure("rdflib_parse")
def m_rdflib_parse(root: Path, work: Path, t: Timer, args) -> dict:
    return _rdflib(root, work, t, None)


@measure("rdflib_turtle")
def m_rdflib_turtle(root: Path, work: Path, t: Timer, args) -> dict:
    return _rdflib(root, work, t, "turtle")


@measure("rdflib_ntriples")
def m_rdflib_nt(root: Path, work: Path, t: Timer, args) -> dict:
    return _rdflib(root, work, t, "nt")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("name", choices=sorted(MEASURES))
    ap.add_argument("project", type=Path)
    ap.add_argument("work", type=Path)
    ap.add_argument("--sample", type=int, default=500, help="records in the per-record pyshacl sample")
    ap.add_argument("--profile", type=Path, help="write cProfile stats of the timed part here")
    args = ap.parse_args()
    t = Timer(args.profile)
    result = MEASURES[args.name](args.project.resolve(), args.work.resolve(), t, args)
    print(json.dumps({"seconds": round(t.seconds, 4), "peak_rss_mb": round(t.peak, 1), **result}))


if __name__ == "__main__":
    main()
