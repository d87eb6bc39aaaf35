"""Reading an .npz file with care: what `np.load` does, for files that may be damaged or crafted.

`open_npz` reads every entry's .npy header when it opens the file, and each entry's data only
on request; it refuses what `np.load(allow_pickle=False)` would read unsafely or not at all: an
object array (pickle), an entry whose size disagrees with its header, a compression numpy never
writes, a repeated name. All the data of a file inflates to at most max(64 MiB, 32 x the file's
size), the entries' own sizes and what `Npz.inflate` unpacks from them counted together, so a
crafted file (a zip bomb) costs no more memory than its size allows. Every refusal is an
NpzError whose message completes "cannot load PATH: ".

    with open_npz("m.npz") as npz:
        shape = npz.members["W"].shape  # from the entry's header: no data read yet
        W = npz.read("W")
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from numpy.lib import format as npy_format

from rnnac.errors import quote

INFLATE_FLOOR, INFLATE_RATIO = 64 * 2**20, 32  # all data inflates to at most max(64 MiB, 32 x the file's size)

_NPY_HEADER_READERS = {(1, 0): npy_format.read_array_header_1_0, (2, 0): npy_format.read_array_header_2_0}
# What zipfile, zlib and numpy's header parser raise for a damaged file (RuntimeError: an encrypted entry).
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError, RuntimeError)


class NpzError(Exception):
    """Why a file cannot be read as an .npz, in words that follow "cannot load PATH: "."""


@dataclass
class Member:
    """One .npy entry of an .npz: its header read, its data not yet."""

    info: zipfile.ZipInfo
    shape: tuple[int, ...]
    fortran_order: bool
    dtype: np.dtype
    offset: int  # where the data starts, after the .npy header

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


class Npz:
    """An .npz read with care: every entry's .npy header at opening (`members`, by name without
    ".npy"), data only on request, and no more inflated data in all than max(64 MiB, 32 x the
    file's size)."""

    def __init__(self, file):
        self.zip = zipfile.ZipFile(file)
        status = os.fstat(file.fileno())
        self.identity = (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)  # the file, not its name
        infos = self.zip.infolist()
        allowed = max(INFLATE_FLOOR, INFLATE_RATIO * status.st_size)
        self.budget = allowed - sum(info.file_size for info in infos)  # what `inflate` may still unpack
        if self.budget < 0:
            raise NpzError(f"its entries inflate to {allowed - self.budget:,} bytes, more than a file "
                           f"of its size may ({allowed:,}; a zip bomb?)")
        self.members: dict[str, Member] = {}
        for info in infos:
            self._add(info)

    def _add(self, info: zipfile.ZipInfo) -> None:
        """Read the .npy header of one entry, refusing anything but a plain array of the size the zip says."""
        name = info.filename.removesuffix(".npy")
        if name == info.filename:
            raise NpzError("not an rnnac checkpoint (a zip with entries that are not arrays)")
        if name in self.members or info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise NpzError(f"not a valid .npz file (entry {quote(name)} is repeated or compressed "
                           "in a way numpy never writes)")
        with self.zip.open(info) as f:
            read_header = _NPY_HEADER_READERS.get(npy_format.read_magic(f))
            if read_header is None:
                raise NpzError(f"entry {quote(name)} is not a .npy array numpy writes (version 1 or 2)")
            member = Member(info, *read_header(f), offset=f.tell())
        if member.dtype.hasobject:  # an object array, which only pickle can rebuild
            raise NpzError("it holds pickled objects, which rnnac refuses to load")
        if info.file_size != member.offset + member.nbytes:
            raise NpzError(f"not a valid .npz file (entry {quote(name)} is {info.file_size:,} bytes, "
                           f"its header says {member.offset + member.nbytes:,})")
        self.members[name] = member

    def read_bytes(self, name: str) -> bytes:
        """The data of entry `name`, exactly the bytes its header announced (checked against the zip)."""
        member = self.members[name]
        with self.zip.open(member.info) as f:
            f.seek(member.offset)
            data = f.read(member.nbytes)  # reads to the end of the entry, so zipfile checks its CRC
        if len(data) != member.nbytes:
            raise EOFError(name)
        return data

    def read(self, name: str) -> np.ndarray:
        """Entry `name` as a fresh, writable array."""
        member = self.members[name]
        array = np.frombuffer(bytearray(self.read_bytes(name)), dtype=member.dtype)
        return array.reshape(member.shape, order="F" if member.fortran_order else "C")

    def inflate(self, name: str, limit: int) -> bytes:
        """The zlib stream in entry `name`, inflated to at most `limit` bytes (and the file's inflation budget)."""
        limit = min(limit, self.budget)
        inflater = zlib.decompressobj()
        data = inflater.decompress(self.read_bytes(name), limit + 1)  # one byte more than allowed tells "too much"
        if len(data) > limit or not inflater.eof or inflater.unused_data:
            raise NpzError(f"{name} is not one zlib stream of at most {limit:,} bytes")
        self.budget -= len(data)
        return data


def _open_regular(path: str | os.PathLike) -> BinaryIO:
    """The file at `path` opened for reading; NpzError if it is missing, unreadable or not a
    regular file. Opened without blocking, so that a FIFO is refused at once instead of waiting
    for a writer, and checked on the open descriptor, so that nothing is swapped in between."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise NpzError("no such file") from None
    except IsADirectoryError:
        raise NpzError("it is a directory") from None
    except OSError as e:
        raise NpzError(e.strerror or "it cannot be read") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NpzError("it is a directory" if stat.S_ISDIR(mode) else "not a regular file (a FIFO or a device?)")
    return open(fd, "rb")


@contextlib.contextmanager
def open_npz(path: str | os.PathLike) -> Iterator[Npz]:
    """An Npz of the file at `path`; NpzError if it is missing, unreadable or not an .npz, there or
    while the block reads it."""
    file = _open_regular(path)
    with file:
        try:
            magic = file.read(6)
            if magic.startswith(b"\x93NUMPY"):
                raise NpzError("not a valid .npz file: a single .npy array, which is not an rnnac checkpoint")
            if magic[:4] not in (b"PK\x03\x04", b"PK\x05\x06"):  # what np.load takes for a zip
                raise NpzError("not a valid .npz file (truncated or corrupt?)")
            yield Npz(file)
        except _DAMAGED:
            raise NpzError("not a valid .npz file (truncated or corrupt?)") from None
