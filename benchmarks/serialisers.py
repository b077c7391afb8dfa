"""Per-record cost of the Turtle and EDM RDF/XML writers against their references, on a published project.

    python benchmarks/generate.py -n 2000 DEST && heritage-ld publish --project DEST
    python benchmarks/serialisers.py DEST [--rounds 5]

Turtle: ``writers.rdf.turtle`` (text) against pyoxigraph's serialiser (``rdf._oxigraph_turtle``, what
``turtle`` did before); EDM: ``writers.edmxml.edm_record`` against the lxml writer it replaced
(``tests/reference_edm.py``; needs the test extra). The records are the catalog's, each EDM input the
record's triples and those of the records it links to. Each round warms the writers' memos on every
other record and times the others, as fresh string objects (as records arrive in a run); CPU time,
best of the rounds, in µs per record.
"""
from __future__ import annotations

import argparse
import gc
import pickle
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import reference_edm  # noqa: E402
from test_serialisers import records  # noqa: E402

from heritage_ld import config  # noqa: E402
from heritage_ld.mapping import Mappings  # noqa: E402
from heritage_ld.writers import edmxml, rdf  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("project", type=Path)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    cfg = config.load(args.project)
    prefixes = Mappings(cfg.mapping_dir, cfg.values).prefixes
    triples, edm = records(args.project)
    edm = [(t, cho) for t, cho, _ in edm]
    writers = {"turtle": (triples, {"pyoxigraph": lambda t: rdf._oxigraph_turtle(sorted(t, key=rdf._order), prefixes),
                                    "text": lambda t: rdf.turtle(t, prefixes)}),
               "edm": (edm, {"lxml": lambda x: reference_edm.edm_record(*x), "text": lambda x: edmxml.edm_record(*x)})}
    for name, (items, fs) in writers.items():
        best = dict.fromkeys(fs, float("inf"))
        for _ in range(args.rounds):
            for label, f in fs.items():
                warm, timed = items[0::2], [pickle.loads(pickle.dumps(x)) for x in items[1::2]]  # new strs
                rdf._WRITERS.clear()
                for c in edmxml.CLASSES:
                    for p in c.props.values():
                        p.elements.clear()
                for x in warm:
                    f(x)
                gc.collect()
                start = time.process_time()
                for x in timed:
                    f(x)
                best[label] = min(best[label], (time.process_time() - start) / len(timed) * 1e6)
        (ref, ref_us), (new, new_us) = best.items()
        print(f"{name}: {ref} {ref_us:.1f} µs/record, {new} {new_us:.1f} µs/record ({ref_us / new_us:.2f}x), "
              f"{len(items)} records")
    print(f"turtle records written by pyoxigraph instead (rdf.FALLBACKS): {dict(rdf.FALLBACKS) or 0}")


if __name__ == "__main__":
    main()
