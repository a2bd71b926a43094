"""Reading the files people hand to commands, never more of one than its stated limit.

    from steamer.inputs import InputTooLarge, open_input, read_input
    data = read_input(path, 4096, "a signed profile")      # bytes, or InputTooLarge
    with open_input(path, 512 << 20, "a trace") as f:      # a binary reader, bounded
        for line in f: ...

Every file input goes through here: a regular file larger than its limit is refused from
its size before anything is read, and a pipe or a device (/dev/zero) once it has given
more than the limit, so no input is held in memory whole whatever its size. Reads go in
chunks through Python code, so Ctrl-C and SIGTERM end a read that never finishes.
OSError (missing, unreadable, a folder) comes through as it is, for the caller to word.
"""
from __future__ import annotations

import io
import os
import stat
from contextlib import contextmanager
from typing import BinaryIO, Iterator

_CHUNK = 1 << 16


class InputTooLarge(ValueError):
    """An input file is larger than its limit. `reason` is the problem without the file's
    name (for callers that put the name first their own way); str() has both."""

    def __init__(self, path: str | os.PathLike, max_bytes: int, what: str):
        self.path = os.fspath(path)
        self.max_bytes = max_bytes
        self.reason = f"more than {size_text(max_bytes)}: too large for {what}"
        super().__init__(f"{self.path}: {self.reason}")


def size_text(n_bytes: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n_bytes >= 1 << shift and n_bytes % (1 << shift) == 0:
            return f"{n_bytes >> shift} {unit}"
    return f"{n_bytes} bytes"


class _Bounded(io.RawIOBase):
    """A file's bytes up to max_bytes; reading past them raises InputTooLarge."""

    def __init__(self, f: io.FileIO, path: str | os.PathLike, max_bytes: int, what: str):
        self._f = f
        self._left = max_bytes
        self._too_large = InputTooLarge(path, max_bytes, what)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:   # type: ignore[override]
        # One byte more than is left, to tell "exactly at the limit" from "past it".
        data = self._f.read(min(len(buffer), self._left + 1, _CHUNK))
        if data is None:
            return 0
        if len(data) > self._left:
            raise self._too_large
        self._left -= len(data)
        buffer[:len(data)] = data
        return len(data)


@contextmanager
def open_input(path: str | os.PathLike, max_bytes: int, what: str) -> Iterator[BinaryIO]:
    """A buffered binary reader of `path` that gives at most max_bytes: InputTooLarge
    before any read for a regular file of more, from the read that passes them for
    anything else. `what` names the input in the error ("a signed profile")."""
    f = open(path, "rb", buffering=0)
    try:
        st = os.fstat(f.fileno())
        if stat.S_ISREG(st.st_mode) and st.st_size > max_bytes:
            raise InputTooLarge(path, max_bytes, what)
        with io.BufferedReader(_Bounded(f, path, max_bytes, what), _CHUNK) as reader:
            yield reader    # type: ignore[misc]
    finally:
        f.close()


def read_input(path: str | os.PathLike, max_bytes: int, what: str) -> bytes:
    """The bytes of `path`, at most max_bytes of them (see open_input)."""
    with open_input(path, max_bytes, what) as f:
        return f.read()


__all__ = ["InputTooLarge", "open_input", "read_input", "size_text"]
