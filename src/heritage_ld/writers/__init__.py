"""Output formats, one module each, found through one registry.

A format registers a name, a media type, a file extension, ``record`` (one record's triples ->
bytes, used by ``heritage-ld map``), ``fragments`` (what it stores of each record, made once, on
the workers, where the record is checked: ``Serialiser``), ``dump`` (the whole-dataset file it
writes, if any: ``DumpSpec``) and ``sink`` (opens its files, is then fed the catalog's live records
block by block in (entity, id) order, ``Job``, and closed; it writes the stored fragments, so no
record is serialised again).

The output is two trees beside ``output``, ``.output-a`` and ``.output-b``, and ``output`` is a
symbolic link to one of them. ``write_all`` brings the other tree from the catalog state it was
written from to the current one, then points the link at it with one rename(2): readers see the
old output or the new one, never half. Bringing a tree forward costs what changed: the per-record
files of the records changed since that tree was written are written again (those of withdrawn
records removed), and the dumps copy every block of records that did not change from the output
being replaced (``blocks``). A tree whose update was interrupted has no ``.state`` and is made again,
from the other tree's per-record files (hard links) where that one is up to date. With
``processes`` > 1 the formats are shared out (by their measured ``cost``) among forked helper
processes, which this process feeds the blocks it reads; each format writes the same bytes
wherever it runs.
"""
from __future__ import annotations

import ctypes
import errno
import hashlib
import importlib
import json
import logging
import multiprocessing
import os
import re
import secrets
import shutil
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol
from urllib.parse import quote

from .. import code_digest
from ..catalog import decode_row, pid_alive
from ..work import host_tag
from .blocks import Block, Damaged, Dedupe, Entry, Foreign, changed_lines, plan, read_index, version

if TYPE_CHECKING:
    from ..catalog import Catalog, Row
    from ..pipeline import Publication


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DumpSpec:
    """A whole-dataset file written block by block (``blocks``)."""
    file: str                   # its name in the output, e.g. "dataset.nt"
    gz: bool = False            # and ``file``.gz, as gzip members (one a block)
    provenance: bool = False    # its bytes depend on each record's last change, source and mapping too
    dedupe: bool = False        # each foreign triple once: made from ``Job.fresh``
    separated: bool = False     # a record after the first listed one is preceded by a separator


@dataclass
class Job:
    """One block of the dumps, and the per-record files of its records that changed."""
    block: Block
    versions: dict[str, bytes]          # dump file -> the block's version there
    copy: dict[str, Entry]              # dump file -> the same block in the dump being replaced, to copy
    rows: list[tuple]                   # raw rows: the whole block where a dump makes it, else those in ``files``
    files: list[int]                    # which of ``rows`` get their per-record files written
    foreign: Foreign                    # dataset.nt: the block's foreign lines, lines and classes
    fresh: list[str] | None = None      # dataset.nt: each row's lines to write, where it makes the block
    first: bool = True                  # no record listed before this block (its version says so too)


class Sink(Protocol):
    def block(self, job: Job, rows: list["Row"]) -> None:
        """One block: ``rows`` are ``job.rows`` decoded."""
    def close(self) -> None: ...


@dataclass(frozen=True)
class Format:
    name: str
    media_type: str
    extension: str
    description: str
    sink: Callable[["Publication", Path, "Files"], Sink]
    record: Callable[["Publication", list[tuple[str, str, str]], str], bytes] | None = None
    # what the format stores of a record (name -> bytes), made once where the record is checked
    fragments: Callable[["Serialiser", list[tuple[str, str, str]]], dict[str, bytes]] | None = None
    cost: float = 1.0      # seconds to write 10k articles (benchmarks: write_<name>), to share formats among processes
    local: bool = False    # must run in the process that holds the catalog connection
    folder: str | None = None  # where its per-record files go (``<folder>/<entity>/<id>.<extension>``); formats
                               # sharing one run in one process (two processes creating files in one directory
                               # contend for its lock)
    dump: DumpSpec | None = None


FORMATS: dict[str, Format] = {}
_MODULES = ("rdf", "jsonld", "edm", "void", "report")


def register(fmt: Format) -> Format:
    FORMATS[fmt.name] = fmt
    return fmt


def formats() -> dict[str, Format]:
    for m in _MODULES:
        importlib.import_module(f"{__name__}.{m}")
    return FORMATS


class Serialiser:
    """What a project's fragments are made with: its configuration and mappings (prefixes, the
    JSON-LD context), and formats' caches (``cache``). ``key`` identifies it: a fragment stored with
    another key (another version, other prefixes) is made again."""

    def __init__(self, config, mappings) -> None:
        self.config, self.mappings = config, mappings
        self.key = writers_digest(self)
        self.cache: dict[str, object] = {}
        self.made = 0   # rows ``fragment`` made fragments for (none stored with this key)

    def fragments(self, triples: list[tuple[str, str, str]]) -> dict[str, bytes]:
        """Every format's fragments of one record."""
        out: dict[str, bytes] = {}
        for fmt in formats().values():
            if fmt.fragments is not None:
                out.update(fmt.fragments(self, triples))
        return out

    def fragment(self, row: "Row", name: str) -> bytes:
        """The stored fragment ``name`` of ``row``; where none is stored with this key (a catalog upgraded
        and not published since), every format's fragments of the row are made now, once."""
        if row.frag_key != self.key or not row.fragments or name not in row.fragments:
            self.made += 1
            row.fragments, row.frag_key = self.fragments(row.triples), self.key
        return row.fragments[name]


_serialisers: dict[str, Serialiser] = {}


def serialiser(config, mappings) -> Serialiser:
    """This process's serialiser of a project (one per key)."""
    s = Serialiser(config, mappings)
    return _serialisers.setdefault(s.key, s)


def record_file(entity: str, record_id: str, ext: str, folder: str = "records") -> str:
    """``<folder>/<entity>/<id>.<ext>`` with the id made safe as one file name."""
    return f"{folder}/{entity}/{quote(record_id, safe='')}.{ext}"


class Files:
    """Where the sinks write: per-record files into ``tree`` (the tree being brought up to date; none with
    ``enabled`` false, ``record_files = false``), top-level files into ``staging`` (moved into the tree
    when all are written); ``source`` is the output being replaced, whose dump blocks are copied."""

    def __init__(self, tree: Path, staging: Path, source: Path | None, enabled: bool = True) -> None:
        self.tree, self.staging, self.source, self.enabled = tree, staging, source, enabled
        self.distrusted: set[str] = set()   # dumps of ``source`` found damaged: nothing is copied from them
        self._dirs: set[str] = set()

    def dump_source(self, name: str) -> Path | None:
        """The dump ``name`` of the output being replaced, to copy blocks from (None: none to trust)."""
        return self.source / name if self.source is not None and name not in self.distrusted else None

    def write(self, rel: str, data: bytes) -> None:
        """``data`` as the file ``rel``: written over the file there (no new inode, which costs more than
        writing a record here), or, where that file is shared with the other tree (a hard link), as a new one."""
        if not self.enabled:
            return
        dest = f"{self.tree}/{rel}"   # strings, not Paths: this runs for every file of every changed record
        try:
            fd = os.open(dest, os.O_WRONLY)
        except FileNotFoundError:
            fd = None
        if fd is not None and os.fstat(fd).st_nlink > 1:
            os.close(fd)
            os.unlink(dest)
            fd = None
        if fd is None:
            folder = dest.rpartition("/")[0]
            if folder not in self._dirs:
                os.makedirs(folder, exist_ok=True)
                self._dirs.add(folder)
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        with open(fd, "wb") as fh:
            fh.write(data)
            fh.truncate()

    def remove(self, rel: str) -> None:
        if self.enabled:
            try:
                os.unlink(f"{self.tree}/{rel}")
            except FileNotFoundError:
                pass


def read_state(out: Path) -> dict:
    """What ``out`` was made from (``.state``): {"state": digest, "run": catalog run, "writers": digest}."""
    try:
        text = (out / ".state").read_text()
    except OSError:
        return {}
    try:
        state = json.loads(text)
    except ValueError:
        return {}
    return state if isinstance(state, dict) else {}


def writers_digest(pub) -> str:
    """Everything besides a record's row that its files depend on: code, configuration, mappings
    (of ``pub``: a Publication, or anything with its ``config`` and ``mappings``)."""
    h = hashlib.sha256(code_digest().encode())
    h.update((pub.config.root / "heritage-ld.toml").read_bytes())
    for m in sorted(pub.mappings.entities.values(), key=lambda m: m.entity):
        h.update(f"{m.entity}:{m.digest}\n".encode())
    h.update(json.dumps(sorted(pub.mappings.prefixes.items())).encode())   # Turtle and JSON-LD use them
    return h.hexdigest()


_LINEAGE = "outputs"   # catalog meta: [run, catalog digest] of the last outputs written, oldest first
_LINEAGE_KEPT = 8


def write_all(pub: "Publication", catalog: "Catalog", out: Path, state: str = "",
              before_swap: Callable[[], object] | None = None, processes: int = 1,
              after_swap: Callable[[], object] | None = None) -> None:
    """Bring the tree ``out`` does not show to the catalog's live records, then point ``out`` at it.

    ``state`` is stored in the tree's ``.state`` (what the output was made from); ``before_swap`` runs
    once the tree is complete (the catalog commits there), ``after_swap`` once ``out`` shows it;
    ``processes`` > 1 shares the formats among that many processes (this one and forked helpers). An
    ``out`` that cannot be replaced (read-only, a mount point) is an OSError before anything is written."""
    out = place(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    recover(out)
    replaceable(out)
    digest = writers_digest(pub)
    current = [catalog.max_run(), catalog.summary()[1]]
    lineage = _lineage(catalog, current)
    live = _live(out)
    target = _target(out, live, digest, lineage)
    st = read_state(target)
    if not (state and st.get("state") == state and [st.get("run"), st.get("catalog")] == current
            and st.get("writers") == digest):   # else: it is complete, and made from this state already
        source = out if out.is_dir() else next((t for t in _trees(out) if t != target and t.is_dir()), None)
        _update(pub, catalog, target, live, source, _base(st, digest, lineage) if target.is_dir() else None,
                _base(read_state(live), digest, lineage) if live else None, processes)
        _sync(target)   # every file on disk before the tree is marked complete
        mark = target / ".state.new"
        with open(mark, "w") as fh:
            fh.write(json.dumps({"state": state, "run": current[0], "catalog": current[1], "writers": digest}))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(mark, target / ".state")
        _fsync_dir(target)
    if before_swap:
        before_swap()
    switch(out, target)
    if after_swap:
        after_swap()


def _lineage(catalog: "Catalog", current: list) -> list[list]:
    """The catalog states outputs were written from, this one last (kept in the catalog, inside the run's
    transaction): a tree made from one of them can be brought forward from its run."""
    try:
        found = json.loads(catalog.get_meta(_LINEAGE) or "[]")
    except ValueError:
        found = []
    if not isinstance(found, list):
        found = []
    if found[-1:] != [current]:
        found = (found + [current])[-_LINEAGE_KEPT:]
        catalog.set_meta(_LINEAGE, json.dumps(found))
    return found


def _base(st: dict, digest: str, lineage: list[list]) -> int | None:
    """The run a tree with state ``st`` can be brought forward from (its records with a later run are the
    ones that changed since): None unless it is complete, written by these writers, and from a state of
    this catalog's lineage."""
    if st.get("writers") == digest and isinstance(st.get("run"), int) and [st["run"], st.get("catalog")] in lineage:
        return st["run"]
    return None


def _trees(out: Path) -> tuple[Path, Path]:
    return out.with_name(f".{out.name}-a"), out.with_name(f".{out.name}-b")


def _live(out: Path) -> Path | None:
    """The tree ``out`` links to (None: it is no link of ours: a folder of an earlier version, or nothing)."""
    if out.is_symlink():
        to = os.readlink(out)
        return next((t for t in _trees(out) if to == t.name), None)
    return None


def _target(out: Path, live: Path | None, digest: str, lineage: list[list]) -> Path:
    """The tree to write: the one ``out`` does not show; without a link, the one furthest on."""
    a, b = _trees(out)
    if live is not None:
        return b if live == a else a
    bases = [(_base(read_state(t), digest, lineage), -i, t) for i, t in enumerate((a, b)) if t.is_dir()]
    bases = [x for x in bases if x[0] is not None]
    return max(bases)[2] if bases else a


def _update(pub: "Publication", catalog: "Catalog", tree: Path, live: Path | None, source: Path | None,
            since: int | None, live_since: int | None, processes: int) -> None:
    """Bring ``tree`` from the run ``since`` (None: from nothing) to the catalog's live records."""
    if since is not None:
        (tree / ".state").unlink(missing_ok=True)   # incomplete until the new one is written
        _fsync_dir(tree)
    else:   # a tree left incomplete, or out of date: made again, from the shown one's per-record files if it can be
        if tree.exists():
            shutil.rmtree(tree)
        tree.mkdir()
        _fsync_dir(tree.parent)
        if live is not None and live_since is not None and pub.config.record_files:
            try:
                _clone(live, tree)
                since = live_since
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.EMLINK, errno.EPERM):
                    raise
                shutil.rmtree(tree)   # no hard links here (another file system, a mount): every file written
                tree.mkdir()
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(tree, 0o777 & ~umask)  # the published folder must be readable
    _checkpoint("tree-marked")
    staging = tree / ".staging"
    files = Files(tree, staging, source, pub.config.record_files)
    while True:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        try:
            fill(pub, catalog, files, since, list(formats().values()), processes)
            break
        except Damaged as e:   # a block of that dump is not what its index says: copy nothing from it
            if e.args[0] in files.distrusted:
                raise
            log.warning("%s: it is written again whole (is the disk failing?)", e.args[1])
            files.distrusted.add(e.args[0])
    _checkpoint("tree-written")
    for p in staging.iterdir():
        os.replace(p, tree / p.name)
        if os.path.lexists(p):   # rename(2) does nothing where both names link one file (a report kept as it was)
            os.unlink(p)
    staging.rmdir()


def _checkpoint(name: str) -> None:
    from ..pipeline import checkpoint   # (the tests stop a run there)
    checkpoint(name)


def _clone(live: Path, tree: Path) -> None:
    """``tree`` with the per-record files of ``live``, as hard links (written as files of their own when they change)."""
    for folder in sorted({f.folder for f in formats().values() if f.folder}):
        src = live / folder
        if not src.is_dir():
            continue
        for dirpath, _dirs, names in os.walk(src):
            dest = tree / Path(dirpath).relative_to(live)
            dest.mkdir(parents=True, exist_ok=True)
            for name in names:
                os.link(f"{dirpath}/{name}", f"{dest}/{name}")


def fill(pub: "Publication", catalog: "Catalog", files: Files, since: int | None, fmts: list[Format],
         processes: int = 1) -> None:
    """Write ``fmts`` from the catalog's live records: the per-record files of those changed after the run
    ``since`` (None: all), removing those of the records withdrawn since; the dumps block by block, copying
    from ``files.source`` the blocks whose version it has; the top-level files into ``files.staging``."""
    if since is not None and files.enabled:
        for entity, rid in catalog.withdrawn_since(since):
            for f in fmts:
                if f.folder:
                    files.remove(record_file(entity, rid, f.extension, f.folder))
    blocks = plan(catalog, since)
    digest = writers_digest(pub)
    dumps = [f.dump for f in fmts if f.dump]
    old = {d.file: read_index(source) if (source := files.dump_source(d.file)) else {} for d in dumps}
    nt = next((d for d in dumps if d.dedupe), None)
    nt_versions = [version(nt.file, digest, b.content) if nt else b"" for b in blocks]
    dedupe = Dedupe(pub.config.base_uri)
    if nt and old[nt.file] and 2 * sum(v not in old[nt.file] for v in nt_versions) <= len(blocks):
        # (with more than half the blocks new, the dump is made whole: following their lines costs more)
        dedupe.follow(changed_lines(dedupe, list(zip(blocks, nt_versions)), old[nt.file],
                                    lambda b: catalog.triples_from(*b.first, b.count)))
    mine, *others = share(fmts, processes)
    helpers = [_Helper(pub, files, group) for group in others]
    feed = Group(pub, files, mine)
    try:
        first, batch, size = True, [], 0
        for b, v_nt in zip(blocks, nt_versions):
            versions: dict[str, bytes] = {}
            copy: dict[str, Entry] = {}
            hint = None
            for d in dumps:
                v = v_nt if d is nt else version(d.file, digest, b.provenance if d.provenance else b.content,
                                                 (b"first" if first else b"next") if d.separated else b"")
                versions[d.file] = v
                e = old[d.file].get(v)
                if e is not None and d is nt:
                    hint = Foreign.unpack(e.extra)
                    if not dedupe.copies(hint):
                        e = None
                if e is not None:
                    copy[d.file] = e
            keys = None if b.changed is None else set(b.changed)
            if len(copy) < len(dumps) or b.changed is None:
                rows = catalog.raw_rows_from(*b.first, b.count)
                wanted = [i for i, r in enumerate(rows) if keys is None or (r[0], r[1]) in keys]
            else:
                rows = [r for r in (catalog.raw_row(*k) for k in b.changed) if r is not None]
                wanted = list(range(len(rows)))
            job = Job(b, versions, copy, rows, wanted, hint if nt and nt.file in copy else Foreign(), first=first)
            if nt and nt.file not in copy:
                job.fresh, job.foreign = dedupe.fresh([r[8] for r in rows], hint)
            for d in dumps:
                if d.separated:
                    e = copy.get(d.file)
                    first = first and (e.length == 0 if e is not None else not any(r[8] for r in rows))
            feed.add(job)
            if helpers:
                batch.append(job)
                size += len(rows) + 1
                if size >= _BATCH:
                    for h in helpers:
                        h.send(batch)
                    batch, size = [], 0
        feed.close()
        for h in helpers:
            h.send(batch)
            h.finish()
    finally:
        dedupe.close()
        for h in helpers:
            h.stop()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def share(fmts: list[Format], processes: int) -> list[list[Format]]:
    """Formats in ``processes`` groups of about equal cost, heaviest first into the lightest group;
    group 0 (this process, which also reads the catalog) takes the ``local`` ones, and formats
    with the same per-record ``folder`` stay together."""
    units: dict[str, list[Format]] = {}
    for f in sorted(fmts, key=lambda f: f.name):
        units.setdefault(f.folder or f"\0{f.name}", []).append(f)
    groups: list[list[Format]] = [[] for _ in range(max(1, min(processes, len(units))))]
    load = [_READ_COST] + [0.0] * (len(groups) - 1)
    for unit in sorted(units.values(), key=lambda u: (not any(f.local for f in u), -sum(f.cost for f in u),
                                                     u[0].name)):
        g = 0 if any(f.local for f in unit) else min(range(len(groups)), key=lambda i: (load[i], i))
        groups[g] += unit
        load[g] += sum(f.cost for f in unit)
    return [g for g in groups if g] or [[]]


_BATCH = 256        # catalog rows (and blocks) a message to a helper process
_READ_COST = 2.5    # seconds group 0 spends reading the catalog and feeding helpers, per 10k articles


class Group:
    """Some formats' sinks, fed the blocks in catalog order (each row decoded once)."""

    def __init__(self, pub: "Publication", files: Files, fmts: list[Format]) -> None:
        self.sinks = [f.sink(pub, files.staging, files) for f in fmts]

    def add(self, job: Job) -> None:
        rows = [decode_row(r) for r in job.rows]
        for sink in self.sinks:
            sink.block(job, rows)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


class _Helper:
    """A forked process writing some formats from the jobs it is sent (None: the end). It answers None
    when done; else the OSError or ``Damaged`` that stopped it (raised here as it is, so a full disk
    reads the same as in one process) or the traceback of anything else."""

    def __init__(self, pub: "Publication", files: Files, fmts: list[Format]) -> None:
        ctx = multiprocessing.get_context("fork")
        self.names = ", ".join(f.name for f in fmts)
        jobs_in, self.jobs = ctx.Pipe(duplex=False)
        self.answer, answer_out = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_helper_main, args=(pub, files, fmts, jobs_in, self.jobs, answer_out),
                                name=f"heritage-ld writer ({self.names})", daemon=True)
        self.proc.start()
        jobs_in.close()
        answer_out.close()

    def send(self, batch: list[Job]) -> None:
        try:
            self.jobs.send(batch)
        except (BrokenPipeError, ConnectionResetError):
            self.finish()  # the helper stopped early: raise what it says

    def finish(self) -> None:
        try:
            self.jobs.send(None)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            error = self.answer.recv()
        except EOFError:
            self.proc.join()
            raise RuntimeError(f"the writer process for {self.names} died (exit code {self.proc.exitcode})") from None
        self.proc.join()
        if isinstance(error, (OSError, Damaged)):
            raise error
        if error:
            raise RuntimeError(f"the writer process for {self.names} failed:\n{error}")

    def stop(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join()
        self.jobs.close()
        self.answer.close()


def _helper_main(pub, files, fmts, jobs_in, jobs_out, answer) -> None:
    jobs_out.close()  # this end is the parent's: with it closed here, a dead parent means EOF
    try:
        group = Group(pub, files, fmts)
        while (batch := jobs_in.recv()) is not None:
            for job in batch:
                group.add(job)
        group.close()
        answer.send(None)
    except OSError as e:
        answer.send(OSError(e.errno, e.strerror or str(e), e.filename))
    except Damaged as e:
        answer.send(e)
    except BaseException:
        answer.send(traceback.format_exc())


def _sync(root: Path) -> None:
    """Flush the tree ``root`` to disk: one syncfs(2) for its file system where there is one,
    else an fsync per file."""
    fd = os.open(root, os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).syncfs(fd) == 0:
            return
    except (AttributeError, OSError):
        pass
    finally:
        os.close(fd)
    for dirpath, _dirs, names in os.walk(root):
        for f in names:
            fd = os.open(os.path.join(dirpath, f), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def place(out: Path) -> Path:
    """Where the output link is: ``out`` with its folder resolved, or where a symbolic link of the user's
    (to a folder of an earlier version, say a web server's) leads."""
    out = Path(os.path.abspath(out))
    for _ in range(40):
        if not out.is_symlink() or os.readlink(out) in (t.name for t in _trees(out)):
            break
        out = Path(os.path.abspath(os.path.join(out.parent, os.readlink(out))))
    return out.parent.resolve() / out.name


def switch(out: Path, tree: Path) -> None:
    """Point ``out`` at ``tree`` in one step: a new link renamed over it (rename(2) replaces it whole).
    A folder there (the layout of earlier versions) is swapped with the link (renameat2 RENAME_EXCHANGE,
    on Linux; else two renames with a ``.previous`` folder that ``recover`` restores if a crash falls
    between them) and removed."""
    link = out.with_name(f".{out.name}.link-{host_tag()}-{os.getpid()}-{secrets.token_hex(4)}")
    os.symlink(tree.name, link)
    if out.is_symlink() or not os.path.lexists(out):
        os.replace(link, out)
    else:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            swapped = libc.renameat2(_AT_FDCWD, os.fsencode(link), _AT_FDCWD, os.fsencode(out), _RENAME_EXCHANGE) == 0
        except (AttributeError, OSError):
            swapped = False
        if swapped:
            shutil.rmtree(link, ignore_errors=True)   # the folder, now under the link's name
        else:
            previous = out.with_name(f".{out.name}.previous")
            shutil.rmtree(previous, ignore_errors=True)
            os.rename(out, previous)
            os.rename(link, out)
            shutil.rmtree(previous, ignore_errors=True)
    _fsync_dir(out.parent)


def recover(out: Path) -> None:
    """Put back ``out`` if a crash fell between the two renames of ``switch``, and remove what dead runs
    left beside it: links not yet renamed (``.output.link-*``), and staging folders of earlier versions
    (``.output.staging-*``): those of this host whose process is gone, and ones without host and pid in
    their name (``publish`` holds the catalog's lock, so no run of this version can be writing them).
    Those of live runs and of other hosts are theirs to remove."""
    out = place(out)
    previous = out.with_name(f".{out.name}.previous")
    if previous.exists() and not os.path.lexists(out):
        os.rename(previous, out)
    here = host_tag()
    for kind in ("staging", "link"):
        for stale in out.parent.glob(f".{out.name}.{kind}-*"):
            m = _STAGING.fullmatch(stale.name[len(out.name) + len(kind) + 3:])
            if m is None or (m["host"] == here and not pid_alive(int(m["pid"]))):
                if stale.is_symlink() or not stale.is_dir():
                    stale.unlink(missing_ok=True)
                else:
                    shutil.rmtree(stale, ignore_errors=True)


_STAGING = re.compile(r"(?P<host>.+)-(?P<pid>\d+)-[^-]+")


def replaceable(out: Path) -> None:
    """An OSError unless ``switch`` can point ``out`` at a new tree: the output shown read-only, or a folder
    there that is a mount point, cannot be (a read-only parent shows when a tree is made there)."""
    shown = place(out)
    if not os.path.lexists(shown):
        return
    if not shown.is_dir():
        raise OSError(errno.ENOTDIR, "the output folder is a file", str(out))
    if os.statvfs(shown).f_flag & os.ST_RDONLY:
        raise OSError(errno.EROFS, "Read-only file system", str(out))
    if not os.access(shown, os.W_OK) or not os.access(shown.parent, os.W_OK):
        raise OSError(errno.EACCES, "Permission denied", str(out))
    if not shown.is_symlink() and _is_mount_point(shown):
        raise OSError(errno.EBUSY, "the output folder is a mount point, which cannot be replaced by a rename",
                      str(out))


def _is_mount_point(path: Path) -> bool:
    """``os.path.ismount``, which misses a bind mount within one file system: Linux lists those in
    /proc/self/mountinfo (the fifth field, with octal escapes)."""
    if os.path.ismount(path):
        return True
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as fh:
            points = {re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), line.split()[4]) for line in fh}
    except (OSError, IndexError):
        return False
    return str(path.resolve()) in points
