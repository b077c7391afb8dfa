"""The benchmark harness: heritage-ld against its baselines on the same synthetic records.

    python benchmarks/run.py -n 10000        # or: make bench N=10000 (make bench: N=100000)

Generates (or reuses) the project for N articles (generate.py), runs every measurement in a process
of its own (measure.py; Morph-KGC in its own venv, morph/run_morph.py), and merges the figures into
``benchmarks/results.json`` (keyed by N) and ``benchmarks/results.md``, printing the table. A
measurement that fails, runs past ``--timeout`` or grows past ``--max-rss-gb`` is stopped and
recorded as an error; the others still run.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from generate import SOURCES, generate  # noqa: E402

MORPH_PYTHON = ROOT / ".venv" / "morph-kgc" / "bin" / "python"
WRITERS = ["write_ntriples", "write_nquads", "write_turtle", "write_jsonld", "write_edm", "write_void", "write_report"]
# (name, runs on: "project" = the generated sources, "run" = the copy the publish runs change, "fresh" = a new copy)
ORDER = [("raw_limit", "project"), ("map", "project"), ("validate", "project"), ("validate_pyshacl", "project"),
         ("publish", "run"), ("publish_noop", "run"), ("publish_1pct", "run"), ("publish_1rec", "run"), *[(w, "run") for w in WRITERS],
         ("write_gzip", "run"),
         ("publish_workers2", "fresh"), ("publish_dask", "fresh"), ("publish_dask_nofiles", "fresh"),
         ("pyshacl_graph", "project"), ("pyshacl_record", "project"),
         ("rdflib_parse", "run"), ("rdflib_ntriples", "run"), ("rdflib_turtle", "run"), ("morph_kgc", "project")]
NEEDS_PUBLISH = {"publish_noop", "publish_1pct", "publish_1rec", *WRITERS, "write_gzip", "rdflib_parse", "rdflib_ntriples", "rdflib_turtle"}
LABELS = {
    "map": "ours: map only (read+extract+compile+map)", "validate": "ours: validate (compiled shapes, default)",
    "validate_pyshacl": "ours: validate (--reference-validation: pyshacl per record)", "publish": "ours: publish end-to-end (first run)",
    "publish_noop": "ours: publish again, no change", "publish_1pct": "ours: publish again, 1% of articles changed",
    "publish_1rec": "ours: publish again, one article changed",
    "publish_workers2": "ours: publish end-to-end, --workers 2 (coordinator RSS)",
    "publish_dask": "ours: publish end-to-end, Dask LocalCluster of 2 workers (coordinator RSS)",
    "publish_dask_nofiles": "ours: the same, record_files = false (no records/, edm/)",
    **{w: f"ours: writer {w[6:]}" for w in WRITERS},
    "write_gzip": "ours: gzip dumps (.nt.gz + .nq.gz), first run",
    "raw_limit": "raw limit: json.loads + f-string N-Triples", "morph_kgc": "Morph-KGC: YARRRML -> N-Triples",
    "pyshacl_graph": "pyshacl: whole graph, one call", "pyshacl_record": "pyshacl: one record a call (extrapolated)",
    "rdflib_parse": "rdflib: parse dataset.nt", "rdflib_ntriples": "rdflib: serialise N-Triples",
    "rdflib_turtle": "rdflib: serialise Turtle",
}
# (what, ours, baseline): speed = baseline seconds / our seconds on the same records (>1: ours is faster)
RATIOS = [("map only vs Morph-KGC", "map", "morph_kgc"),
          ("end-to-end publish vs Morph-KGC", "publish", "morph_kgc"),
          ("end-to-end publish, --workers 2, vs Morph-KGC", "publish_workers2", "morph_kgc"),
          ("map only vs raw f-string limit", "map", "raw_limit"),
          ("end-to-end publish vs raw f-string limit", "publish", "raw_limit"),
          ("validate (default) vs pyshacl whole graph", "validate", "pyshacl_graph"),
          ("validate (default) vs pyshacl per record", "validate", "pyshacl_record"),
          ("validate (--reference-validation) vs pyshacl whole graph", "validate_pyshacl", "pyshacl_graph"),
          ("validate (--reference-validation) vs pyshacl per record", "validate_pyshacl", "pyshacl_record"),
          ("N-Triples writer vs rdflib", "write_ntriples", "rdflib_ntriples"),
          ("Turtle writer vs rdflib", "write_turtle", "rdflib_turtle")]


def run_limited(cmd: list[str], timeout: float, max_rss_gb: float, cwd: Path | None = None) -> dict:
    """Run ``cmd``; its last stdout line is its JSON result. Stopped past the time or memory limit."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
    t0, peak, stop = time.monotonic(), 0.0, None
    while proc.poll() is None:
        try:
            rss = next(int(l.split()[1]) for l in open(f"/proc/{proc.pid}/status") if l.startswith("VmRSS:")) / 2**20
            peak = max(peak, rss)
        except (OSError, StopIteration):
            rss = 0.0
        if rss > max_rss_gb:
            stop = f"stopped: memory passed {max_rss_gb} GB"
        elif time.monotonic() - t0 > timeout:
            stop = f"stopped: still running after {timeout:.0f} s"
        if stop:
            proc.kill()
            proc.communicate()
            return {"error": stop}
        time.sleep(0.5)
    out, err = proc.communicate()
    if proc.returncode != 0:
        return {"error": f"exit {proc.returncode}: " + " | ".join(err.strip().splitlines()[-3:])}
    return json.loads(out.strip().splitlines()[-1])


def change_one_percent(project: Path, step: int = 100, start: int = 0) -> int:
    """Edit the description of every ``step``th article from ``start`` in place (what the 1% incremental run
    sees; with a ``step`` past the number of articles, one article)."""
    path = project / SOURCES["article"]
    lines = path.read_text("utf-8").splitlines(keepends=True)
    changed = 0
    for i in range(start, len(lines), step):
        rec = json.loads(lines[i])
        rec["description"] = rec.get("description", "") + " Updated."
        lines[i] = json.dumps(rec, ensure_ascii=False) + "\n"
        changed += 1
    path.write_text("".join(lines), "utf-8")
    return changed


def json_arrays(project: Path, dest: Path) -> None:
    """The JSON Lines sources as JSON arrays, for Morph-KGC (its JSON reader takes one document)."""
    dest.mkdir(parents=True, exist_ok=True)
    for rel in SOURCES.values():
        with open(project / rel, encoding="utf-8") as src, open(dest / (Path(rel).stem + ".json"), "w",
                                                                 encoding="utf-8") as out:
            out.write("[\n")
            for i, line in enumerate(l for l in src if l.strip()):
                out.write((",\n" if i else "") + line.rstrip("\n"))
            out.write("\n]\n")


def versions() -> dict:
    out = {}
    for p in ("heritage-ld", "rdflib", "pyshacl", "pyoxigraph"):
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = None
    return out


def measure_all(n: int, work: Path, args) -> dict:
    base = work / f"n{n}"
    project, run, tmp = base / "project", base / "run", base / "tmp"
    t0 = time.monotonic()
    manifest = generate(project, n, args.seed)
    print(f"[bench] N={n}: {manifest['counts']['records']} records in {project} "
          f"({time.monotonic() - t0:.0f} s to generate or reuse)", file=sys.stderr)
    shutil.rmtree(run, ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(project, run)
    tmp.mkdir(parents=True)
    records = manifest["counts"]["records"]
    results: dict[str, dict] = {}
    for name, where in ORDER:
        if args.only and name not in args.only:
            continue
        root = {"project": project, "run": run, "fresh": tmp / "fresh"}[where]
        if where == "fresh":
            shutil.rmtree(root, ignore_errors=True)
            shutil.copytree(project, root)
        if args.skip and name in args.skip:
            results[name] = {"skipped": "--skip"}
            print(f"[bench] {name:17} skipped (--skip)", file=sys.stderr)
            continue
        if name in NEEDS_PUBLISH and "seconds" not in results.get("publish", {}):
            results[name] = {"skipped": "needs the publish run of the same invocation (not selected, or it did not "
                                        "complete)"}
            continue
        if name == "publish_1pct":
            results[name + "_edited"] = {"articles_changed": change_one_percent(run)}
        if name == "publish_1rec":   # one article the 1% run did not change, in the middle of the file
            results[name + "_edited"] = {"articles_changed": change_one_percent(run, 10**9, n // 2 + 1)}
        if name == "morph_kgc":
            python = Path(os.environ.get("MORPH_KGC_PYTHON", MORPH_PYTHON))
            if not python.exists():
                r = {"skipped": f"Morph-KGC not installed ({python} missing): run `make bench-setup`"}
            else:
                json_arrays(project, tmp / "morph")
                r = run_limited([str(python), str(HERE / "morph" / "run_morph.py"), str(tmp / "morph")],
                                args.timeout, args.max_rss_gb)
                shutil.rmtree(tmp / "morph", ignore_errors=True)
        else:
            r = run_limited([sys.executable, str(HERE / "measure.py"), name, str(root), str(tmp),
                             "--sample", str(args.sample)], args.timeout, args.max_rss_gb)
        if "seconds" in r:
            r["records_per_s"] = round(records / r["seconds"], 1) if r["seconds"] else None
            if r.get("triples"):
                r["triples_per_s"] = round(r["triples"] / r["seconds"]) if r["seconds"] else None
        if where == "fresh":
            shutil.rmtree(root, ignore_errors=True)
        trace = tmp / f"trace-{name}.txt"
        if "error" in r and trace.is_file():  # how far a stopped publish got
            r["progress"] = trace.read_text().splitlines()[-6:]
        r["measured"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        results[name] = r
        shown = r.get("error") or r.get("skipped") or f"{r['seconds']:.2f} s, {r['records_per_s']:,.0f} records/s, " \
                                                       f"peak {r['peak_rss_mb']:,.0f} MB"
        print(f"[bench] {name:17} {shown}", file=sys.stderr)
    for name in ("publish_1pct", "publish_1rec"):
        edited = results.pop(name + "_edited", None)
        if edited and name in results:
            results[name].update(edited)
    shutil.rmtree(tmp, ignore_errors=True)
    return {"n": n, "records": records, "manifest": manifest, "measurements": results}


def ratios(run: dict) -> dict:
    m = run["measurements"]
    out = {}
    for what, ours, base in RATIOS:
        a, b = m.get(ours, {}), m.get(base, {})
        if "seconds" in a and "seconds" in b and a["seconds"] and b["seconds"]:
            out[what] = {"ours": ours, "baseline": base, "speed": float(f"{b['seconds'] / a['seconds']:.3g}"),
                         "rss": float(f"{a['peak_rss_mb'] / b['peak_rss_mb']:.3g}")}  # 3 significant digits
        else:
            out[what] = {"ours": ours, "baseline": base, "speed": None, "rss": None,
                         "why": a.get("error") or a.get("skipped") or b.get("error") or b.get("skipped") or "not run"}
    return out


def _merged(run: dict) -> list[str]:
    """A line saying so where a partial run (--only) merged its figures into an earlier run's."""
    if not run.get("merged"):
        return []
    days = sorted({r["measured"][:10] for r in run["measurements"].values() if "measured" in r})
    when = f" (measured {days[0]} to {days[-1]})" if len(days) > 1 else ""
    return [f"Figures of several runs{when}: `--only` runs updated some of them; `measured` in results.json says "
            "when each was taken.", ""]


def table(run: dict) -> str:
    m, c = run["measurements"], run["manifest"]["counts"]
    lines = [f"### N = {run['n']:,} articles ({run['records']:,} records, "
             f"{m.get('publish', {}).get('triples', 0):,} triples published)", "",
             f"{run['started']}; {run['machine']['cpus']} cores; load average {run['machine']['load_before']} before, "
             f"{run['machine']['load_after']} after; records: {c['articles']:,} articles, {c['images']:,} images, "
             f"{c['people'] + c['authors'] + c['photographers']:,} people, {c['organisations']:,} organisations.", "",
             *_merged(run),
             "| measurement | seconds | records/s | triples/s | peak RSS MB |", "|---|---:|---:|---:|---:|"]
    for name, r in m.items():
        label = LABELS.get(name, name)
        if "seconds" not in r:
            lines.append(f"| {label} | {r.get('error') or r.get('skipped')} | | | |")
            continue
        lines.append(f"| {label} | {r['seconds']:,.2f} | {r['records_per_s']:,.0f} | "
                     f"{r.get('triples_per_s') or 0:,} | {r['peak_rss_mb']:,.0f} |")
    lines += ["", "| comparison (same records) | speed: ours ÷ baseline records/s | peak RSS: ours ÷ baseline |",
              "|---|---:|---:|"]
    for what, r in run["ratios"].items():
        lines.append(f"| {what} | {r['speed']}× | {r['rss']}× |" if r["speed"] is not None
                     else f"| {what} | n/a ({r['why']}) | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=100000, help="number of articles (default 100000)")
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--work", type=Path, default=HERE / "work", help="generated projects and scratch space")
    ap.add_argument("--results", type=Path, default=HERE / "results.json")
    ap.add_argument("--sample", type=int, default=500, help="records in the per-record pyshacl sample")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds one measurement may take")
    ap.add_argument("--max-rss-gb", type=float, default=8.0, help="memory one measurement may use")
    ap.add_argument("--only", nargs="*", help="run only these measurements (names as in results.json)")
    ap.add_argument("--skip", nargs="*", help="do not run these measurements")
    args = ap.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    load_before = os.getloadavg()[0]
    run = measure_all(args.n, args.work, args)
    run["started"] = started
    run["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "versions": versions(),
                      "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)}
    previous = json.loads(args.results.read_text()) if args.results.is_file() else {}
    runs = previous.get("runs", {})
    if args.only and str(args.n) in runs:  # a partial run updates the figures it measured
        old = runs[str(args.n)]
        old["measurements"].update({k: v for k, v in run["measurements"].items() if "skipped" not in v})
        run["measurements"], run["merged"] = old["measurements"], True
    run["ratios"] = ratios(run)
    runs[str(args.n)] = run
    doc = {"about": "benchmarks/README.md explains every figure. seconds: the timed part of each measurement; "
                    "records_per_s: all source records (embedded ones included) / seconds; peak_rss_mb: VmHWM of "
                    "the measuring process; ratios.speed: baseline seconds / our seconds (>1: ours faster).",
           "runs": dict(sorted(runs.items(), key=lambda kv: int(kv[0])))}
    args.results.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    md = "# Benchmark results\n\nMade by `benchmarks/run.py` (see benchmarks/README.md).\n\n" + \
         "\n".join(table(r) for r in doc["runs"].values())
    args.results.with_suffix(".md").write_text(md)
    print(table(run))


if __name__ == "__main__":
    main()
