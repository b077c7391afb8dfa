"""The dumps by blocks: a run writes again only the blocks of records that changed, and copies the others.

Every dump (``dataset.nt``, ``.nq``, ``.ttl``, ``.jsonld``) lists the live records in (entity, id) order,
cut into the same **blocks**: a block ends after a record whose key hashes to 0 modulo ``TARGET`` (blocks
of ``TARGET`` records on average), or at ``MAX`` records. The cuts depend on the keys only, so a changed
record changes only its own block, and an added or removed one its block (or two, where its key cuts).

``plan`` reads what each record's bytes depend on from a covering index of the catalog (its key, hash,
last change, source, mapping and run: none of its triples or fragments) and digests it per block. A block's
**version** in a dump is the digest of that, of the dump's name, of ``writers_digest`` (code,
configuration, mappings, prefixes) and of what the block's bytes depend on in the blocks before it (for
``dataset.jsonld``, whether a record was listed before: its separator). Two blocks of one version have the
same bytes.

``.<dump>.blocks``, beside each dump (a dotfile: never served), lists each block's version, offset,
length and CRC-32 (and for ``dataset.nt`` what ``Dedupe`` needs, below), and ends with its own sha256.
The next run copies a block from the dump it replaces when its version is there and the bytes at that
offset still have that CRC-32 (``Damaged`` otherwise, and the run writes the dump again without copying);
an index that is damaged, foreign, or does not describe the file beside it (another size) is ignored.
Only blocks that are new, or changed, are made from the catalog's rows.

``dataset.nt`` lists each triple once (several records may describe one external resource: an image file
described by its article and by its image record): a triple whose subject is not one of the dataset's own
IRIs is written where it first appears. A block's bytes therefore depend on the "foreign" triples of the
blocks before it. Its index entry keeps the 8-byte digest of each foreign line of the block, in order, and
whether it was written; ``Dedupe`` copies a block only if every one of those lines is written or dropped
as before, and follows only the lines some changed block has (the others cannot have changed their fate).
"""
from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import struct
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable
from zlib import crc32 as _key_crc   # only to cut blocks by key: stable, and fast

from isal import isal_zlib

from ..terms import RDF_TYPE
from .gzmembers import GzipMembers

if TYPE_CHECKING:
    from ..catalog import Catalog

TARGET = 16        # mean records a block (a power of 2)
MAX = 64           # a block is cut here whatever the keys say


@dataclass
class Block:
    """Consecutive live records, and what their bytes depend on."""
    first: tuple[str, str]          # (entity, id) of its first record
    count: int
    content: bytes                  # digest of its records' keys and content hashes
    provenance: bytes               # ... and their last change, source and mapping
    changed: list[tuple[str, str]] | None = field(default_factory=list)  # records changed since the
                                    # tree being brought up to date was written (None: all of them)


def plan(catalog: "Catalog", since: int | None) -> list[Block]:
    """The blocks of the live records; ``changed`` lists those whose run is after ``since`` (None: every one)."""
    blocks: list[Block] = []
    content: list[str] = []
    prov: list[str] = []
    changed: list[tuple[str, str]] | None = None if since is None else []
    first: tuple[str, str] | None = None
    n = 0
    for entity, rid, run, h, last_changed, source, mapping in catalog.versions():
        key = f"{entity}\0{rid}"
        if first is None:
            first = (entity, rid)
        content.append(f"{key}\0{h}")
        prov.append(f"{last_changed}\0{source}\0{mapping}")
        if changed is not None and run > since:
            changed.append((entity, rid))
        n += 1
        if n >= MAX or not _key_crc(key.encode("utf-8", "surrogatepass")) & (TARGET - 1):
            text = "\n".join(content)
            blocks.append(Block(first, n, _digest(text), _digest(text + "\n" + "\n".join(prov)), changed))
            content, prov, first, n = [], [], None, 0
            changed = None if since is None else []
    if n:
        text = "\n".join(content)
        blocks.append(Block(first, n, _digest(text), _digest(text + "\n" + "\n".join(prov)), changed))
    return blocks


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def version(name: str, writers: str, basis: bytes, state: bytes = b"") -> bytes:
    """The version of a block in the dump ``name``: what its bytes are made of."""
    return hashlib.sha256(f"{name}\0{writers}\0".encode() + basis + b"\0" + state).digest()


# -- the index of a dump's blocks ----------------------------------------------------------------------
_MAGIC = b"heritage-ld dump blocks 1\n"
_HEAD = struct.Struct(">QQ")             # offset of the first block (the header's length), the dump's size
_ENTRY = struct.Struct(">32sQQII")       # version, offset, length, CRC-32, length of the extra that follows


@dataclass(frozen=True)
class Entry:
    """A block of a dump as its index lists it."""
    version: bytes
    offset: int
    length: int
    crc: int
    extra: bytes = b""


def index_path(dump: Path) -> Path:
    return dump.with_name(f".{dump.name}.blocks")


def read_index(dump: Path) -> dict[bytes, Entry]:
    """The blocks of ``dump`` by version, from the index beside it; {} unless the index is whole, is one this
    version writes, and describes the file beside it (its blocks one after the other, its size)."""
    try:
        data = index_path(dump).read_bytes()
        size = dump.stat().st_size
    except OSError:
        return {}
    body, check = data[:-32], data[-32:]
    if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + _HEAD.size + 32 \
            or hashlib.sha256(body).digest() != check:
        return {}
    start, total = _HEAD.unpack_from(body, len(_MAGIC))
    if total != size:
        return {}
    found: dict[bytes, Entry] = {}
    pos, expect = len(_MAGIC) + _HEAD.size, start
    while pos < len(body):
        if pos + _ENTRY.size > len(body):
            return {}
        v, offset, length, crc, n = _ENTRY.unpack_from(body, pos)
        pos += _ENTRY.size
        if offset != expect or pos + n > len(body):
            return {}
        found[v] = Entry(v, offset, length, crc, body[pos:pos + n])
        pos, expect = pos + n, offset + length
    return found if expect <= total else {}


class Damaged(Exception):
    """A block of the dump being copied from does not have the CRC-32 its index gives: the dump is written
    again without copying (args: its name, what is wrong)."""


class DumpWriter:
    """Writes ``path`` (and ``path.gz`` as gzip members, one a block, if ``gz``) block by block, with their
    indexes, copying blocks from ``source`` (the same dump in the output being replaced) where the caller
    says so. ``made`` and ``copied`` count the bytes of the blocks each way."""

    def __init__(self, path: Path, source: Path | None, header: bytes, gz: bool) -> None:
        self.path = path
        self.fh = path.open("wb")
        self.fh.write(header)
        self.offset, self.entries = len(header), [_MAGIC + _HEAD.pack(len(header), 0)]
        self.made = self.copied = 0
        self.source = source
        self.old = None
        self.gz = GzipMembers(path.with_name(f"{path.name}.gz"), source.with_name(f"{source.name}.gz") if source else None) \
            if gz else None

    def block(self, v: bytes, copy: Entry | None, make: Callable[[], bytes], extra: bytes = b"") -> None:
        """Write one block: the bytes of ``copy`` in the source dump (checked against its CRC-32), or else
        what ``make`` returns."""
        if copy is not None:
            if self.old is None:
                self.old = open(self.source, "rb")
            data = os.pread(self.old.fileno(), copy.length, copy.offset)
            crc = isal_zlib.crc32(data)
            if len(data) != copy.length or crc != copy.crc:
                raise Damaged(self.source.name, f"{self.source}: the {copy.length} bytes at offset {copy.offset} do "
                                                "not have the CRC-32 its block index gives")
            self.copied += len(data)
        else:
            data = make()
            crc = isal_zlib.crc32(data)
            self.made += len(data)
        self.fh.write(data)
        if self.gz is not None:
            self.gz.add_block(v, data, crc)
        self.entries.append(_ENTRY.pack(v, self.offset, len(data), crc, len(extra)) + extra)
        self.offset += len(data)

    def close(self, footer: bytes = b"") -> None:
        self.fh.write(footer)
        self.fh.close()
        if self.old is not None:
            self.old.close()
        self.entries[0] = _MAGIC + _HEAD.pack(_HEAD.unpack_from(self.entries[0], len(_MAGIC))[0],
                                              self.offset + len(footer))
        body = b"".join(self.entries)
        index_path(self.path).write_bytes(body + hashlib.sha256(body).digest())
        if self.gz is not None:
            self.gz.close()


# -- each foreign triple once (dataset.nt) ---------------------------------------------------------------
_NT_EXTRA = struct.Struct(">III")   # lines written, foreign lines, classes; then the digests, the bits, the classes
_CLASS = struct.Struct(">HI")       # length of a class IRI (that follows), its rdf:type lines


@dataclass
class Foreign:
    """The foreign lines of a block of ``dataset.nt`` (their digests, in order, and which were written),
    with the block's lines and rdf:type lines per class as written (for void.ttl)."""
    digests: array = field(default_factory=lambda: array("Q"))
    kept: bytearray = field(default_factory=bytearray)   # one bit a digest
    lines: int = 0
    classes: Counter = field(default_factory=Counter)

    def pack(self) -> bytes:
        d = self.digests if _LITTLE else _swapped(self.digests)
        out = [_NT_EXTRA.pack(self.lines, len(self.digests), len(self.classes)), d.tobytes(), bytes(self.kept)]
        for cls, n in sorted(self.classes.items()):
            b = cls.encode("utf-8")
            out += [_CLASS.pack(len(b), n), b]
        return b"".join(out)

    @classmethod
    def unpack(cls, extra: bytes) -> "Foreign":
        lines, n, k = _NT_EXTRA.unpack_from(extra)
        pos = _NT_EXTRA.size
        digests = array("Q", extra[pos:pos + 8 * n])
        if not _LITTLE:
            digests.byteswap()
        pos += 8 * n
        kept = bytearray(extra[pos:pos + (n + 7) // 8])
        pos += (n + 7) // 8
        classes: Counter = Counter()
        for _ in range(k):
            size, count = _CLASS.unpack_from(extra, pos)
            pos += _CLASS.size
            classes[extra[pos:pos + size].decode("utf-8")] = count
            pos += size
        return cls(digests, kept, lines, classes)

    def is_kept(self, i: int) -> bool:
        return bool(self.kept[i >> 3] >> (i & 7) & 1)


_LITTLE = array("Q", [1]).tobytes()[0] == 1


def _swapped(a: array) -> array:
    b = array("Q", a)
    b.byteswap()
    return b


def line_digest(line: str) -> int:
    return int.from_bytes(hashlib.blake2b(line.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


class Lines:
    """A set of line digests, memory flat: a bitmap in front (one bit a digest, so a false positive now and
    then) of an exact table in a scratch SQLite database."""

    BITS = 1 << 26   # 8 MB: ~1% false positives at 4 million digests

    def __init__(self, db: sqlite3.Connection, name: str) -> None:
        self.db, self.name = db, name
        self.bits = bytearray(self.BITS >> 3)
        db.execute(f"CREATE TABLE {name} (h INTEGER PRIMARY KEY)")

    def add(self, h: int) -> bool:
        """Add ``h``; True if it was not there."""
        i = h & (self.BITS - 1)
        self.bits[i >> 3] |= 1 << (i & 7)
        return bool(self.db.execute(f"INSERT OR IGNORE INTO {self.name} VALUES (?)", (_signed(h),)).rowcount)

    def __contains__(self, h: int) -> bool:
        i = h & (self.BITS - 1)
        return bool(self.bits[i >> 3] >> (i & 7) & 1) and self.db.execute(
            f"SELECT 1 FROM {self.name} WHERE h = ?", (_signed(h),)).fetchone() is not None

    def isdisjoint(self, digests: Iterable[int]) -> bool:
        bits, mask = self.bits, self.BITS - 1
        return not any(bits[(h & mask) >> 3] >> (h & 7) & 1 and h in self for h in digests)


class Dedupe:
    """Which foreign lines of ``dataset.nt`` are written, block by block, across a run that copies blocks.

    ``changed`` (None when no block is copied) holds the digests of every foreign line of the blocks that
    are new in this dump or gone from it (``changed_lines``): only those can be written in one dump and
    dropped in the other. ``seen`` holds, of those (of all lines when ``changed`` is None), the ones listed
    so far."""

    def __init__(self, base: str) -> None:
        self.base, self.line = f"<{base}", f"\n<{base}"
        self.db = sqlite3.connect("")   # private temporary database, on disk when large
        self.seen = Lines(self.db, "seen")
        self.changed: Lines | None = None

    def follow(self, digests: Iterable[int]) -> None:
        """Copy blocks from now on, following the lines ``digests`` (``changed``)."""
        self.changed = Lines(self.db, "changed")
        for h in digests:
            self.changed.add(h)

    def foreign(self, nt: str) -> list[str]:
        """The lines of ``nt`` (a record's N-Triples) whose subject is not one of the dataset's own IRIs."""
        if not nt or nt.count("\n") == nt.count(self.line) + nt.startswith(self.base):
            return []   # every line's subject is the dataset's own (each line ends in "\n")
        return [line for line in nt[:-1].split("\n") if not line.startswith(self.base)]

    def copies(self, old: Foreign) -> bool:
        """Whether a block written before as ``old`` (its version unchanged) writes and drops the same lines
        here; if so, it is noted as listed."""
        changed = self.changed
        if changed is None:
            return False
        if changed.isdisjoint(old.digests):
            return True
        here: set[int] = set()
        mine = []
        for i, h in enumerate(old.digests):
            if h in changed:
                if (h not in here and h not in self.seen) != old.is_kept(i):
                    return False
                mine.append(h)
            here.add(h)
        for h in mine:
            self.seen.add(h)
        return True

    def fresh(self, nts: Iterable[str], old: Foreign | None) -> tuple[list[str], Foreign]:
        """Each record's lines to write, and the block's ``Foreign``. ``old``: the block as written before
        (the same records), whose lines outside ``changed`` keep their fate."""
        out: list[str] = []
        f = Foreign()
        kept: list[bool] = []
        for nt in nts:
            if not self.foreign(nt):
                out.append(nt)
                f.lines += nt.count("\n")
                continue
            mine = []
            for line in nt[:-1].split("\n"):
                if line.startswith(self.base):
                    mine.append(line)
                    continue
                h = line_digest(line)
                i = len(f.digests)
                f.digests.append(h)
                if old is None or self.changed is None or h in self.changed:
                    keep = self.seen.add(h)
                else:
                    keep = old.is_kept(i)
                kept.append(keep)
                if keep:
                    mine.append(line)
            text = "\n".join(mine) + "\n" if mine else ""
            out.append(text)
            f.lines += len(mine)
        f.kept = _bits(kept)
        for text in out:
            f.classes.update(_classes(text))
        return out, f

    def close(self) -> None:
        self.db.close()


def _signed(h: int) -> int:
    return h - (1 << 64) if h >= 1 << 63 else h


def _bits(flags: list[bool]) -> bytearray:
    out = bytearray((len(flags) + 7) // 8)
    for i, flag in enumerate(flags):
        if flag:
            out[i >> 3] |= 1 << (i & 7)
    return out


CLASS = re.compile(f"^\\S+ {re.escape(RDF_TYPE)} (\\S+) \\.$", re.M)   # the class of an rdf:type line


def _classes(text: str) -> list[str]:
    """The class of each rdf:type line of N-Triples ``text``."""
    return CLASS.findall(text) if RDF_TYPE in text else []


def changed_lines(dedupe: Dedupe, blocks: list[tuple[Block, bytes]], old: dict[bytes, Entry],
                  triples: Callable[[Block], list[str]]) -> Iterable[int]:
    """The digests of the foreign lines of the blocks new in the N-Triples dump (their triples read from the
    catalog) and of those gone from it (from its index): ``Dedupe.changed``."""
    versions = set()
    for b, v in blocks:
        versions.add(v)
        if v not in old:
            for nt in triples(b):
                yield from map(line_digest, dedupe.foreign(nt))
    for v, e in old.items():
        if v not in versions:
            yield from Foreign.unpack(e.extra).digests
