"""A run costs what changed (issue 15): ``output`` is a link to one of two trees; a run brings the other
tree forward from the catalog state it was written from (the per-record files of the records changed
since, the dumps block by block, copying unchanged blocks from the output being replaced) and switches
the link. Whatever the edits, the output is byte for byte what a write from scratch of the same catalog
gives, and the tree being shown is never touched."""
from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
from pathlib import Path

import pytest

from heritage_ld import executor, pipeline
from heritage_ld.config import load
from heritage_ld.writers import blocks
from heritage_ld.writers.blocks import DumpWriter, index_path

from conftest import copy_published, counted_on_close, generated_project

T0 = 1_800_000_000
DUMPS = ("dataset.nt", "dataset.nq", "dataset.ttl", "dataset.jsonld")


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def lines(project: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (project / "data" / name).read_text("utf-8").splitlines()]


def save(project: Path, name: str, recs: list[dict]) -> None:
    (project / "data" / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), "utf-8")


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    """A generated project of 120 articles (~320 records, ~20 blocks), published once."""
    root = generated_project(tmp_path_factory.mktemp("trees") / "p", 120)
    pipeline.publish(root, now=T0)
    return root


@pytest.fixture
def project(published, tmp_path) -> Path:
    return copy_published(published, tmp_path / "p")


@pytest.fixture
def written(monkeypatch) -> dict[str, tuple[int, int]]:
    """dump file name -> (bytes made, bytes copied) as each DumpWriter of the last run closes."""
    return counted_on_close(monkeypatch, DumpWriter, "made", "copied")


def from_scratch(project: Path, dest: Path, now: int) -> dict[str, bytes]:
    """The output a write from scratch of ``project``'s catalog gives: a copy without its output, published
    again (its inputs are unchanged, so the run only writes the output, all of it, from the catalog)."""
    shutil.copytree(project, dest, ignore=shutil.ignore_patterns("output", ".output-*"))
    _pub, changes = pipeline.publish(dest, now=now)
    assert not changes
    return files(dest / "output")


def shown(project: Path) -> Path:
    return project / os.readlink(project / "output")


def edit(project: Path, rnd: random.Random, held: set[str]) -> None:
    """Random edits of the generated sources: changed, added and removed articles, articles broken (held
    back) and mended, a renamed person (linked from articles' EDM), and images whose file (a resource
    outside the dataset, described by two records) is shared with another article's, or changed."""
    arts = lines(project, "articles.jsonl")
    for a in rnd.sample(arts, 3):
        a["description"] = a.get("description", "") + rnd.choice([" Updated.", " Edited again.", " Revised."])
    for _ in range(rnd.randint(0, 2)):
        new = json.loads(json.dumps(rnd.choice(arts)))
        tag = f"-{rnd.randrange(10 ** 6)}"
        new["identifier"] += tag
        new["url"] += tag
        new["primaryImageOfPage"]["identifier"] += tag
        arts.insert(rnd.randrange(len(arts) + 1), new)
    for _ in range(rnd.randint(0, 1)):
        arts.pop(rnd.randrange(len(arts)))
    for a in rnd.sample(arts, 2):   # two articles show the same image file
        b = rnd.choice(arts)
        if a is not b:
            a["primaryImageOfPage"]["image"] = json.loads(json.dumps(b["primaryImageOfPage"]["image"]))
    for a in rnd.sample(arts, 2):   # an image file described anew (every record that shows it changes)
        a["primaryImageOfPage"]["image"]["description"] = f"Described anew {rnd.randrange(10 ** 6)}."
    if rnd.random() < 0.6:          # held back: its published version stays
        a = rnd.choice(arts)
        a["datePublished"] = "2021-02-30"
        held.add(a["identifier"])
    for a in arts:
        if a["identifier"] in held and rnd.random() < 0.5:
            a["datePublished"] = "2021-02-28"
            held.discard(a["identifier"])
    save(project, "articles.jsonl", arts)
    people = lines(project, "people.jsonl")
    rnd.choice(people)["name"] += " Jr."
    save(project, "people.jsonl", people)


def test_random_edits_give_the_output_of_a_write_from_scratch(project, tmp_path, written):
    """Rounds of random edits (one or two processes writing): after each run, every file of the output is what a
    write from scratch of the same catalog gives; the tree shown before the run is untouched (readers of it see
    it whole); most of every dump is copied; and the per-record files of unchanged records are not written."""
    rnd, held = random.Random(15), set()
    for n in range(1, 7):
        before_tree, before = shown(project), files(shown(project))
        edit(project, rnd, held)
        stamps = {p: p.stat().st_mtime_ns for p in (before_tree.parent / f".output-{'ab'[before_tree.name[-1] == 'a']}")
                  .rglob("*.ttl")} if n > 2 else {}
        now = T0 + 3600 * n
        _pub, changes = pipeline.publish(project, now=now, allow_deletions=True,
                                         run=executor.make(workers=1 + n % 2))
        assert changes.changed and shown(project) != before_tree
        for name in DUMPS if n % 2 == 0 else ():   # (in one process: the helpers' counts stay there)
            made, copied = written[name]
            assert made and copied, (n, name)
        written.clear()
        assert files(before_tree) == before, f"round {n}: the tree shown before the run changed"
        assert files(project / "output") == from_scratch(project, tmp_path / f"fresh{n}", now), f"round {n}"
        if stamps:   # written again: only the Turtle files of records changed since that tree was written
            again = {p for p, t in stamps.items() if p.exists() and p.stat().st_mtime_ns != t}
            assert 0 < len(again) < len(stamps) / 4, (n, len(again), len(stamps))


def edit_one(project: Path, i: int = 60) -> None:
    arts = lines(project, "articles.jsonl")
    arts[i]["description"] += " Updated."
    save(project, "articles.jsonl", arts)


def test_one_changed_article_makes_one_block_of_each_dump(project, tmp_path, written):
    edit_one(project)
    pipeline.publish(project, now=T0 + 3600)
    for name in DUMPS:
        made, copied = written[name]
        sizes = {e.length for e in blocks.read_index(project / "output" / name).values()}
        assert made in sizes and copied == (project / "output" / name).stat().st_size - made - \
            min(e.offset for e in blocks.read_index(project / "output" / name).values()) - \
            (len(b"\n]}\n") if name == "dataset.jsonld" else 0), name
    assert files(project / "output") == from_scratch(project, tmp_path / "fresh", T0 + 3600)


@pytest.mark.parametrize("how", ["the first record to list them changes", "an earlier record lists them too"])
def test_a_copied_block_whose_shared_lines_change_fate_is_made_again(project, tmp_path, how, monkeypatch):
    """Two articles far apart (in blocks of their own) show one image file, described alike by both:
    dataset.nt lists its triples under the first. When that one shows another file, or an earlier article
    comes to show the same file, the later article's block (the same records: the file is described as
    before) lists them, or drops them, and is made again."""
    arts = sorted(lines(project, "articles.jsonl"), key=lambda a: a["identifier"])
    first, last = arts[2], arts[-3]

    def same_image(a: dict, b: dict) -> None:   # a shows b's image file, described alike
        a["primaryImageOfPage"] = {**json.loads(json.dumps(b["primaryImageOfPage"])),
                                   "identifier": a["primaryImageOfPage"]["identifier"]}
        a.pop("license", None)
        if "license" in b:
            a["license"] = b["license"]
    if how == "the first record to list them changes":
        same_image(last, first)
    save(project, "articles.jsonl", arts)
    pipeline.publish(project, now=T0 + 3600)
    if how == "the first record to list them changes":
        first["primaryImageOfPage"]["image"]["url"] = "https://media.example.org/en/another.png"
    else:
        same_image(first, last)
    save(project, "articles.jsonl", arts)
    answers = []
    copies = blocks.Dedupe.copies
    monkeypatch.setattr(blocks.Dedupe, "copies", lambda self, old: answers.append(copies(self, old)) or answers[-1])
    pipeline.publish(project, now=T0 + 7200)
    assert False in answers and answers.count(True) > 10   # that block made again, most copied
    assert files(project / "output") == from_scratch(project, tmp_path / "fresh", T0 + 7200)


def test_a_tree_whose_update_was_interrupted_is_made_again(project, tmp_path):
    """A tree without ``.state`` (its update stopped half-way) is made again from the shown tree's files (hard
    links, until a record changes) and brought forward; the shown tree keeps its files."""
    rnd = random.Random(3)
    edit(project, rnd, set())
    pipeline.publish(project, now=T0 + 3600, allow_deletions=True)
    live = shown(project)
    other = project / f".output-{'ab'[live.name[-1] == 'a']}"
    (other / ".state").unlink()
    (other / "records" / "article").rename(other / "records" / "gone")   # half-way: anything goes
    keep = files(live)
    edit(project, rnd, set())
    pipeline.publish(project, now=T0 + 7200, allow_deletions=True)
    assert shown(project) == other and files(other) == from_scratch(project, tmp_path / "fresh", T0 + 7200)
    assert files(live) == keep
    ttl = list((other / "records").rglob("*.ttl"))
    changed = [p for p in ttl if p.stat().st_nlink == 1]
    assert changed and len(ttl) - len(changed) > 4 * len(changed)   # the others: shared with the shown tree


def test_an_output_folder_of_an_earlier_version_becomes_the_link(project, tmp_path):
    """``output`` as a folder (how earlier versions wrote it) is replaced by the link in one step."""
    out = project / "output"
    tree = shown(project)
    out.unlink()
    shutil.copytree(tree, out)
    for t in (project / ".output-a", project / ".output-b"):
        shutil.rmtree(t, ignore_errors=True)
    (out / ".state").write_text(json.dumps({"state": "x", "run": 1, "writers": "y"}))   # as 0.x wrote it
    edit(project, random.Random(5), set())
    pipeline.publish(project, now=T0 + 3600, allow_deletions=True)
    assert out.is_symlink() and files(out) == from_scratch(project, tmp_path / "fresh", T0 + 3600)
    assert sorted(p.name for p in project.iterdir() if p.name.startswith(".output")) == [".output-a"]


def _each_block(dump: Path, change) -> None:
    """``change(data, entries)`` applied to the bytes of ``dump`` (its index left as it is)."""
    entries = sorted(blocks.read_index(dump).values(), key=lambda e: e.offset)
    data = bytearray(dump.read_bytes())
    change(data, entries)
    dump.write_bytes(bytes(data))


def _flip(data: bytearray, entries) -> None:
    for e in entries:
        if e.length:
            data[e.offset] ^= 1


def _swap(data: bytearray, entries) -> None:
    for a, b in zip(entries[::2], entries[1::2]):
        n = min(a.length, b.length)
        data[a.offset:a.offset + n], data[b.offset:b.offset + n] = data[b.offset:b.offset + n], data[a.offset:a.offset + n]


DAMAGE = {   # each damages the shown tree's dataset.nq or its index
    "garbage index": lambda d: index_path(d).write_bytes(os.urandom(3000)),
    "truncated index": lambda d: index_path(d).write_bytes(index_path(d).read_bytes()[:-40]),
    "foreign index (the N-Triples')": lambda d: shutil.copy(index_path(d.with_name("dataset.nt")), index_path(d)),
    "index of another file": lambda d: d.write_bytes(d.read_bytes() + b"\n"),
    "a bit of each block flipped": lambda d: _each_block(d, _flip),
    "blocks swapped pairwise": lambda d: _each_block(d, _swap),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_dump_or_index_is_not_copied_from(project, tmp_path, damage, written, caplog):
    """Whatever happened to a dump or its index, the next run writes an exact dump: a block whose bytes do not
    have its CRC-32 is not copied (the dump is written again without copying), an index that does not check
    out is not read."""
    DAMAGE[damage](shown(project) / "dataset.nq")
    edit_one(project)
    pipeline.publish(project, now=T0 + 3600, allow_deletions=True)
    made, copied = written["dataset.nq"]
    assert copied == 0 and made > 0
    assert written["dataset.nt"][1] > 2 * written["dataset.nt"][0]   # the others were fine
    assert files(project / "output") == from_scratch(project, tmp_path / "fresh", T0 + 3600)
    # a block that fails its check is said (the disk may be failing); an index that does not check out is not
    said = [r.getMessage() for r in caplog.records if "CRC-32" in r.getMessage()]
    assert bool(said) == damage.startswith(("a bit", "blocks swapped")), said
    assert all("dataset.nq" in m and "written again whole" in m for m in said)


def test_the_catalog_replaced_is_not_taken_for_the_trees(project, tmp_path):
    """A catalog made anew (same clock, same run numbers) is not the one the trees were written from: the tree
    is written from scratch, not brought forward from run numbers of another catalog."""
    pipeline.publish(project, now=T0 + 3600, allow_deletions=True)   # (nothing changed)
    edit(project, random.Random(9), set())
    cfg = load(project)
    shutil.rmtree(cfg.catalog.parent)
    pipeline.publish(project, now=T0, allow_deletions=True)   # run 1 again, of other sources
    edit(project, random.Random(10), set())
    pipeline.publish(project, now=T0 + 3600, allow_deletions=True)   # run 2: the other tree is from run 1 of before
    assert files(project / "output") == from_scratch(project, tmp_path / "fresh", T0 + 3600)
    db = sqlite3.connect(cfg.catalog)
    assert [r for r, _d in json.loads(db.execute("SELECT value FROM meta WHERE key = 'outputs'").fetchone()[0])] \
        == [1, 2]
    db.close()
