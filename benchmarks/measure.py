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
import pickle
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

from heritage_ld import config as config_mod
from heritage_ld import pipeline
from heritage_ld.mapping import Context, Mappings
from heritage_ld.validate import Shapes, validate

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


def map_records(root: Path):
    """Read + extract + compile + map, as ``pipeline.build`` does before validation."""
    cfg = config_mod.load(root)
    mappings = Mappings(cfg.mapping_dir, cfg.values)
    records, _issues, linked_only, _read = pipeline.read_records(cfg, mappings)
    known: dict[str, set[str]] = defaultdict(set)
    for r in records:
        known[r.entity].add(r.id)
    ctx = Context(cfg.base_uri, cfg.values, "", dict(known), mappings)
    mapped = []
    for r in records:
        ctx.record_id = r.id
        mapped.append(mappings.entities[r.entity].map(r, ctx))
    referenced = {t[2] for m in mapped for t in m.triples if t[2].startswith("<")}
    mapped = [m for m in mapped if (m.record.entity, m.record.id) not in linked_only
              or any(f"<{s}>" in referenced for s in m.subjects.values())]
    return cfg, mappings, mapped


def triples_of(mapped) -> int:
    return sum(len(m.triples) for m in mapped)


# -- ours ------------------------------------------------------------------------------------

@measure("map")
def m_map(root: Path, work: Path, t: Timer, args) -> dict:
    with t:
        _cfg, _m, mapped = map_records(root)
    return {"records": len(mapped), "triples": triples_of(mapped)}


def _validate(root: Path, t: Timer, reference: bool) -> dict:
    cfg, mappings, mapped = map_records(root)
    draft = pipeline.Publication(cfg, mappings, mapped, {}, {}, [], 0)
    fields_of = lambda e: mappings.entities[e].fields_by_predicate
    issues = []
    with t:  # as pipeline.build: shapes loaded (and compiled), then chunk by chunk
        shapes = Shapes.load(root, cfg.shapes)
        for i in range(0, len(mapped), cfg.chunk_size):
            issues.extend(validate(mapped[i:i + cfg.chunk_size], draft.linked_triples, shapes, fields_of, reference))
    return {"records": len(mapped), "triples": triples_of(mapped), "chunk_size": cfg.chunk_size,
            "violations": sum(i.severity == "Violation" for i in issues),
            "records_with_violations": len({(i.entity, i.record_id) for i in issues if i.severity == "Violation"})}


@measure("validate")
def m_validate(root: Path, work: Path, t: Timer, args) -> dict:
    """The default path: shapes compiled to Python checks (shaclc), pyshacl for what does not compile."""
    return _validate(root, t, reference=False)


@measure("validate_pyshacl")
def m_validate_pyshacl(root: Path, work: Path, t: Timer, args) -> dict:
    """--reference-validation: pyshacl on each chunk of records, one call a chunk."""
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
    pipeline.build = wrap(pipeline.build, "build done (read, map, validate, EDM XML)")
    for fmt in list(formats().values()):
        FORMATS[fmt.name] = dataclasses.replace(fmt, dataset=wrap(fmt.dataset, f"writer {fmt.name} done"))

    def sample() -> None:
        while True:
            time.sleep(30)
            note("(running)")
    threading.Thread(target=sample, daemon=True).start()


def _publish(root: Path, work: Path, t: Timer, now: int, prepare: bool = False, name: str = "publish") -> dict:
    traced_stages(work, name)
    with t:
        view, changes = pipeline.publish(root, now=now)
    if prepare:  # what the writer measurements start from (not timed)
        state = {k: getattr(view, k) for k in ("published", "held_back", "edm_held_back", "issues", "records_read",
                                                 "edm_xml", "rows")}
        with open(work / "prepared.pickle", "wb") as fh:
            pickle.dump(state, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return {"records": len(view.published), "triples": sum(len(m.triples) for m in view.published),
            "held_back": len(view.held_back), "edm_held_back": len(view.edm_held_back),
            "edm_records": len(view.edm_xml), "added": len(changes.added), "changed": len(changes.changed),
            "deleted": len(changes.deleted), "unchanged": changes.unchanged,
            "stages": {k: round(v, 3) for k, v in view.seconds.items()}}


@measure("publish")
def m_publish(root: Path, work: Path, t: Timer, args) -> dict:
    return _publish(root, work, t, NOW, prepare=True)


@measure("publish_noop")
def m_publish_noop(root: Path, work: Path, t: Timer, args) -> dict:
    return _publish(root, work, t, NOW + 3600, name="publish_noop")


@measure("publish_1pct")
def m_publish_1pct(root: Path, work: Path, t: Timer, args) -> dict:
    return _publish(root, work, t, NOW + 7200, name="publish_1pct")


def prepared(root: Path, work: Path) -> pipeline.Publication:
    """The Publication that ``publish`` handed its writers, as saved by the publish measurement."""
    cfg = config_mod.load(root)
    state = pickle.loads((work / "prepared.pickle").read_bytes())
    pub = pipeline.Publication(cfg, Mappings(cfg.mapping_dir, cfg.values), state["published"], state["held_back"],
                               state["edm_held_back"], state["issues"], state["records_read"])
    pub.edm_xml, pub.rows = state["edm_xml"], state["rows"]
    return pub


def writer(fmt: str):
    def run(root: Path, work: Path, t: Timer, args) -> dict:
        from heritage_ld.writers import formats
        pub = prepared(root, work)
        out = work / f"out-{fmt}"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        with t:
            formats()[fmt].dataset(pub, out)
        size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
        files = sum(1 for f in out.rglob("*") if f.is_file())
        shutil.rmtree(out, ignore_errors=True)
        return {"records": len(pub.published), "triples": sum(len(m.triples) for m in pub.published),
                "rss_before_mb": round(t.rss_before, 1), "files": files, "bytes": size}
    return run


for _fmt in ("ntriples", "nquads", "turtle", "jsonld", "edm", "void", "report"):
    MEASURES[f"write_{_fmt}"] = writer(_fmt)


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
    draft = pipeline.Publication(cfg, mappings, mapped, {}, {}, [], 0)
    step = max(1, len(mapped) // args.sample)
    sample = mapped[::step][:args.sample]
    docs = ["".join(f"{s} {p} {o} .\n" for s, p, o in set(m.triples + draft.linked_triples(m))) for m in sample]
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
