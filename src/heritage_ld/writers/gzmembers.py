"""Gzip dumps as concatenated gzip members, one per block of records, each reused while its block is unchanged.

Every member is a complete, standard gzip stream (RFC 1952: no name, mtime 0); gzip readers read the
concatenation as one file. The blocks are those of the plain dump (``blocks``: cut by the records' keys,
so inserting, removing or changing one record changes only its own block, or two).

``.<name>.gz.members``, beside the dump (a dotfile: never served), lists each member's block version,
offset, length and sha256. The next run takes a member from the dump it replaces when its block's version
is there and the member's bytes still hash to that sha256 and their gzip trailer holds the block's CRC-32
and length; an index that is damaged, foreign or made by another compressor finds nothing, and the block
is compressed again.
"""
from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import isal
from isal import isal_zlib

LEVEL = 2                     # ISA-L's default: ~2 GB/s here, the ratio of zlib level 1 (benchmarks/README.md)
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"   # deflate, no flags, mtime 0, OS unknown
_MAGIC = f"heritage-ld gzip members 2; isal {isal.__version__} level {LEVEL}\n".encode()
_ENTRY = struct.Struct(">32sQI32s")                     # block digest, offset, length, member sha256


def index_path(dump: Path) -> Path:
    return dump.with_name(f".{dump.name}.members")


def _trailer(block: bytes, crc: int | None = None) -> bytes:
    return struct.pack("<II", isal_zlib.crc32(block) if crc is None else crc, len(block) & 0xFFFFFFFF)


def member(block: bytes, crc: int | None = None) -> bytes:
    """One gzip member holding ``block`` (``crc``: its CRC-32, where known)."""
    return _HEADER + isal_zlib.compress(block, LEVEL, -15) + _trailer(block, crc)


def read_index(dump: Path) -> list[tuple[bytes, int, int, bytes]]:
    """(block digest, offset, length, member sha256) of each member, from the index beside ``dump``; [] if
    there is none this version would have written."""
    try:
        data = index_path(dump).read_bytes()
    except OSError:
        return []
    body = data[len(_MAGIC):]
    if not data.startswith(_MAGIC) or len(body) % _ENTRY.size:
        return []
    return list(_ENTRY.iter_unpack(body))


class GzipMembers:
    """Writes ``path`` from blocks given in order (``add_block``), reusing members of ``previous`` (the same
    dump in the output being replaced, if any). ``compressed`` and ``copied`` count the uncompressed bytes
    each way."""

    def __init__(self, path: Path, previous: Path | None = None) -> None:
        self.path, self.fh = path, path.open("wb")
        self.cache = {d: (off, n, sha) for d, off, n, sha in read_index(previous)} if previous else {}
        try:
            self.old = open(previous, "rb") if self.cache else None
        except OSError:
            self.cache, self.old = {}, None
        self.entries: list[bytes] = []
        self.offset = self.compressed = self.copied = 0

    def add_block(self, digest: bytes, block: bytes, crc: int | None = None) -> None:
        """One block's bytes, and the digest (version) that identifies them (``crc``: their CRC-32, where
        known)."""
        gz = self._reuse(digest, block, crc)
        if gz is None:
            gz = member(block, crc)
            self.compressed += len(block)
        else:
            self.copied += len(block)
        self.fh.write(gz)
        self.entries.append(_ENTRY.pack(digest, self.offset, len(gz), hashlib.sha256(gz).digest()))
        self.offset += len(gz)

    def _reuse(self, digest: bytes, block: bytes, crc: int | None) -> bytes | None:
        """The previous dump's member for this block, if it checks out. It is read, checked and written from
        memory (not copy_file_range'd): the bytes written are the bytes checked."""
        hit = self.cache.get(digest)
        if hit is None or hit[1] > len(block) + (len(block) >> 8) + 64:   # past deflate's worst case: damaged
            return None
        offset, length, sha = hit
        gz = os.pread(self.old.fileno(), length, offset)
        if hashlib.sha256(gz).digest() != sha or not gz.startswith(_HEADER) or gz[-8:] != _trailer(block, crc):
            return None
        return gz

    def close(self) -> None:
        """Finish the dump and its index. An empty dump is one empty member."""
        if not self.entries:
            self.add_block(hashlib.sha256(b"").digest(), b"")
        self.fh.close()
        if self.old:
            self.old.close()
        index_path(self.path).write_bytes(_MAGIC + b"".join(self.entries))
