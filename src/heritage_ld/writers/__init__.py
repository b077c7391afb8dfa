"""Output formats, one module each, found through one registry.

A format registers a name, a media type, a file extension, ``record`` (one record's triples ->
bytes, used by ``heritage-ld map``), ``fragments`` (what it stores of each record, made once, on
the workers, where the record is checked: ``Serialiser``) and ``sink`` (opens its files in the
output folder and is then fed the catalog's live records one by one, in (entity, id) order, and
closed; it writes the stored fragments, so no record is serialised again). ``write_all``
reads the catalog once for all formats into a staging folder and swaps it with ``output/`` in one
atomic step, so readers see the old output or the new one, never half. Per-record files of
records unchanged since the output being replaced are hard-linked from it, not written again.
With ``processes`` > 1 the formats are shared out (by their measured ``cost``) among forked
helper processes, which this process feeds the catalog rows it reads; each format writes the same
bytes wherever it runs.
"""
from __future__ import annotations

import ctypes
import errno
import hashlib
import importlib
import json
import multiprocessing
import os
import re
import shutil
import sqlite3
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

from .. import code_digest
from ..catalog import decode_row, pid_alive
from ..work import host_tag

if TYPE_CHECKING:
    from ..catalog import Catalog, Row
    from ..pipeline import Publication


class Sink(Protocol):
    def add(self, row: "Row", fresh: str) -> None:
        """``fresh``: the row's N-Triples lines not already in the dataset (several records may describe
        one external resource, e.g. an image file, and a dataset dump lists each triple once)."""
    def close(self) -> None: ...


class Seen:
    """Triples about resources outside ``base`` already written, as 8-byte digests in a scratch
    SQLite table (memory stays flat); triples about the dataset's own IRIs belong to one record."""

    def __init__(self, base: str) -> None:
        self.base = f"<{base}"
        self.line = f"\n<{base}"
        self.db = sqlite3.connect("")  # private temporary database, on disk when large
        self.db.execute("CREATE TABLE seen (h BLOB PRIMARY KEY) WITHOUT ROWID")

    def fresh(self, nt: str) -> str:
        """The lines of ``nt`` (a record's N-Triples) not written before: all, unless a subject lies outside ``base``."""
        if not nt or nt.count("\n") == nt.count(self.line) + nt.startswith(self.base):
            return nt   # every line's subject is the dataset's own (each line ends in "\n")
        out = []
        for line in nt[:-1].split("\n"):
            if line.startswith(self.base) or self.db.execute(
                    "INSERT OR IGNORE INTO seen VALUES (?)",
                    (hashlib.blake2b(line.encode(), digest_size=8).digest(),)).rowcount:
                out.append(line)
        return "\n".join(out) + "\n" if out else ""

    def close(self) -> None:
        self.db.close()


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
    fresh: bool = False    # the sink uses ``fresh`` (de-duplicated N-Triples lines); else it is given ""
    local: bool = False    # must run in the process that holds the catalog connection
    folder: str | None = None  # where its per-record files go; formats sharing one run in one process
                               # (two processes creating files in one directory contend for its lock)


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


class Files:
    """Per-record files in the staging folder. A record whose catalog row has not changed since the
    output being replaced was written (its ``run`` is not newer) gets a hard link to the old file.
    With ``enabled`` false (``record_files = false``) none are written. ``old`` is the output being
    replaced whatever made it, for caches that check what they take (the gzip members)."""

    def __init__(self, staging: Path, previous: Path | None, upto: int, enabled: bool = True,
                 old: Path | None = None) -> None:
        self.staging, self.previous, self.upto, self.enabled, self.old = staging, previous, upto, enabled, old
        self._dirs: set[str] = set()

    def reusable(self, row: "Row") -> bool:
        return self.previous is not None and row.run <= self.upto

    def read_previous(self, rel: str) -> bytes | None:
        """The file ``rel`` of the output being replaced, if there."""
        try:
            with open(f"{self.previous}/{rel}", "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            return None

    def write(self, rel: str, row: "Row", make: Callable[[], bytes]) -> None:
        if not self.enabled:
            return
        dest = f"{self.staging}/{rel}"   # strings, not Paths: this runs for every file of every record
        folder = dest.rpartition("/")[0]
        if folder not in self._dirs:
            os.makedirs(folder, exist_ok=True)
            self._dirs.add(folder)
        if self.reusable(row):
            try:
                os.link(f"{self.previous}/{rel}", dest)
                return
            except FileNotFoundError:
                pass
        with open(dest, "wb") as fh:
            fh.write(make())


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


def write_all(pub: "Publication", catalog: "Catalog", out: Path, state: str = "",
              before_swap: Callable[[], object] | None = None, processes: int = 1,
              after_swap: Callable[[], object] | None = None) -> None:
    """Write every format from the catalog's live records into a staging folder, then swap it in for ``out``.

    ``state`` is stored in ``.state`` (what the output was made from); ``before_swap`` runs once
    the staging folder is complete (the catalog commits there), ``after_swap`` once it has become
    ``out``; ``processes`` > 1 shares the formats among that many processes (this one and forked
    helpers). An ``out`` that cannot be replaced (read-only, a mount point) is an OSError before
    anything is written."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    recover(out)
    replaceable(out)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-{host_tag()}-{os.getpid()}-", dir=out.parent))
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes it 0700; the published folder must be readable
    helpers: list[_Helper] = []
    try:
        old = read_state(out)
        digest = writers_digest(pub)
        reuse = out.is_dir() and old.get("writers") == digest and isinstance(old.get("run"), int)
        files = Files(staging, out if reuse else None, old.get("run", 0) if reuse else 0, pub.config.record_files,
                      out if out.is_dir() else None)
        mine, *others = share(list(formats().values()), processes)
        helpers = [_Helper(pub, staging, files, group) for group in others]
        feed = Group(pub, staging, files, mine)
        run, batch = 0, []
        for raw in catalog.raw_rows():
            row = decode_row(raw)
            run = max(run, row.run)
            feed.add(row)
            if helpers:
                batch.append(raw)
                if len(batch) == _BATCH:
                    for h in helpers:
                        h.send(batch)
                    batch = []
        feed.close()
        for h in helpers:
            h.send(batch)
            h.finish()
        (staging / ".state").write_text(json.dumps({"state": state, "run": run, "writers": digest}))
        _sync(staging)
        if before_swap:
            before_swap()
        swap(staging, out)
        if after_swap:
            after_swap()
    finally:
        for h in helpers:
            h.stop()
        shutil.rmtree(staging, ignore_errors=True)


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


_BATCH = 256        # catalog rows a message to a helper process
_READ_COST = 2.5    # seconds group 0 spends reading the catalog and feeding helpers, per 10k articles


class Group:
    """Some formats' sinks, fed rows in catalog order (``fresh`` computed once, if one of them uses it)."""

    def __init__(self, pub: "Publication", staging: Path, files: Files, fmts: list[Format]) -> None:
        self.sinks = [f.sink(pub, staging, files) for f in fmts]
        self.seen = Seen(pub.config.base_uri) if any(f.fresh for f in fmts) else None

    def add(self, row: "Row") -> None:
        fresh = self.seen.fresh(row.nt) if self.seen else ""
        for sink in self.sinks:
            sink.add(row, fresh)

    def close(self) -> None:
        if self.seen:
            self.seen.close()
        for sink in self.sinks:
            sink.close()


class _Helper:
    """A forked process writing some formats from the raw catalog rows it is sent (None: the end).
    It answers None when done; else the OSError that stopped it (raised here as it is, so a full disk
    reads the same as in one process) or the traceback of anything else."""

    def __init__(self, pub: "Publication", staging: Path, files: Files, fmts: list[Format]) -> None:
        ctx = multiprocessing.get_context("fork")
        self.names = ", ".join(f.name for f in fmts)
        rows_in, self.rows = ctx.Pipe(duplex=False)
        self.answer, answer_out = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_helper_main, args=(pub, staging, files, fmts, rows_in, self.rows, answer_out),
                                name=f"heritage-ld writer ({self.names})", daemon=True)
        self.proc.start()
        rows_in.close()
        answer_out.close()

    def send(self, batch: list) -> None:
        try:
            self.rows.send(batch)
        except (BrokenPipeError, ConnectionResetError):
            self.finish()  # the helper stopped early: raise what it says

    def finish(self) -> None:
        try:
            self.rows.send(None)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            error = self.answer.recv()
        except EOFError:
            self.proc.join()
            raise RuntimeError(f"the writer process for {self.names} died (exit code {self.proc.exitcode})") from None
        self.proc.join()
        if isinstance(error, OSError):
            raise error
        if error:
            raise RuntimeError(f"the writer process for {self.names} failed:\n{error}")

    def stop(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join()
        self.rows.close()
        self.answer.close()


def _helper_main(pub, staging, files, fmts, rows_in, rows_out, answer) -> None:
    rows_out.close()  # this end is the parent's: with it closed here, a dead parent means EOF
    try:
        group = Group(pub, staging, files, fmts)
        while (batch := rows_in.recv()) is not None:
            for raw in batch:
                group.add(decode_row(raw))
        group.close()
        answer.send(None)
    except OSError as e:
        answer.send(OSError(e.errno, e.strerror or str(e), e.filename))
    except BaseException:
        answer.send(traceback.format_exc())


def _sync(root: Path) -> None:
    """Flush the staging folder to disk: one syncfs(2) for its file system where there is one,
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


def swap(new: Path, out: Path) -> None:
    """Make ``new`` the content of ``out``. Linux: one renameat2(RENAME_EXCHANGE); else two renames
    with a ``.previous`` folder that ``recover`` restores if a crash falls between them."""
    if out.exists():
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            rc = libc.renameat2(_AT_FDCWD, os.fsencode(new), _AT_FDCWD, os.fsencode(out), _RENAME_EXCHANGE)
            if rc == 0:
                return  # `new` now holds the old output and is removed by the caller
        except (AttributeError, OSError):
            pass
        previous = out.with_name(f".{out.name}.previous")
        shutil.rmtree(previous, ignore_errors=True)
        os.rename(out, previous)
        os.rename(new, out)
        shutil.rmtree(previous, ignore_errors=True)
    else:
        os.rename(new, out)


def recover(out: Path) -> None:
    """Put back ``out`` if a crash fell between the two renames of ``swap``, and remove the staging
    folders of dead runs: those of this host whose process is gone, and ones without host and pid
    in their name (made by earlier versions; ``publish`` holds the catalog's lock, so no run of
    this version can be writing them). Staging folders of live runs and of other hosts are theirs
    to remove."""
    out = out.resolve()
    previous = out.with_name(f".{out.name}.previous")
    if previous.exists() and not out.exists():
        os.rename(previous, out)
    here = host_tag()
    for stale in out.parent.glob(f".{out.name}.staging-*"):
        m = _STAGING.fullmatch(stale.name[len(out.name) + 10:])
        if m is None or (m["host"] == here and not pid_alive(int(m["pid"]))):
            shutil.rmtree(stale, ignore_errors=True)


_STAGING = re.compile(r"(?P<host>.+)-(?P<pid>\d+)-[^-]+")


def replaceable(out: Path) -> None:
    """An OSError unless ``swap`` can replace ``out`` and remove the old one: a read-only folder
    or a mount point cannot be (a read-only parent shows when the staging folder is made there)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise OSError(errno.ENOTDIR, "the output folder is a file", str(out))
    if os.statvfs(out).f_flag & os.ST_RDONLY:
        raise OSError(errno.EROFS, "Read-only file system", str(out))
    if not os.access(out, os.W_OK):
        raise OSError(errno.EACCES, "Permission denied", str(out))
    if _is_mount_point(out):
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
