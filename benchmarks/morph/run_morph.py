"""Run Morph-KGC on the YARRRML mapping beside this file; run with the Python of Morph-KGC's own venv.

    .venv/morph-kgc/bin/python benchmarks/morph/run_morph.py DIR [--processes 1]

DIR holds articles.json, people.json and organisations.json (JSON arrays of the records of
data/*.jsonl). Writes DIR/out.nt and prints one JSON object as its last line, like measure.py:
seconds (mapping loaded and records materialised, as `python -m morph_kgc` does it), peak_rss_mb
(VmHWM of this process; with --processes > 1 the workers' memory is not included) and triples.
"""
from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
import time
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent


def vmhwm_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmHWM not in /proc/self/status")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", type=Path)
    ap.add_argument("--processes", type=int, default=1)
    args = ap.parse_args()
    os.chdir(args.dir)
    Path("out.nt").unlink(missing_ok=True)
    Path("config.ini").write_text(
        "[CONFIGURATION]\noutput_file = out.nt\noutput_format = N-TRIPLES\n"
        f"number_of_processes = {args.processes}\nlogging_level = WARNING\n"
        f"[DataSource]\nmappings = {HERE / 'mapping.yml'}\n")
    sys.argv = ["morph_kgc", "config.ini"]
    t0 = time.perf_counter()
    runpy.run_module("morph_kgc", run_name="__main__", alter_sys=True)
    seconds = time.perf_counter() - t0
    peak = vmhwm_mb()
    with open("out.nt", "rb") as fh:
        triples = sum(1 for line in fh if line.strip())
    print(json.dumps({"seconds": round(seconds, 4), "peak_rss_mb": round(peak, 1), "triples": triples,
                      "processes": args.processes, "morph_kgc": version("morph-kgc")}))


if __name__ == "__main__":
    main()
