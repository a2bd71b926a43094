"""A safety record on flash in two copies, each with a commit counter and a SHA-256, so
that a corrupted copy, or one that littlefs took back to an older commit, is found and
never taken for the newest.

A littlefs directory keeps its files' entries in its own metadata block, a log of
commits: one corrupted commit there and littlefs drops every commit after it, so files
silently go back to older versions. The copies are in two directories (`safe.a`,
`safe.b`, shared by every record), written alternately (never over the newest valid
copy), each whole to a new file renamed over the old one: after a power cut the newest valid
copy is the last commit that landed, and the other copy holds the commit before it
(c - 1). The last commit's counter is also written to `<name>.n` in the data directory
(a third metadata block): a copy behind it, however it got there, is found, and a
record with no valid copy although it was written raises RecordError. When that
witness is itself behind, anything but counters one apart (a copy that fails its hash,
a missing one) puts the newest valid copy in doubt too. `doubt` says why and `lost` how
many commits may be missing; the caller counts conservatively. A copy is text:

    <name> <counter>
    <the record's own lines>
    end <SHA-256 hex of every byte before "end ">
"""
import binascii
import hashlib
import os

_NONE = 0
_BAD = 1
_OK = 2


class RecordError(Exception):
    """A record's copies exist but none is valid, or they were lost."""


class Copies:
    def __init__(self, data_dir, name):
        self.name = name
        self.dirs = (data_dir + "/safe.a", data_dir + "/safe.b")
        # The last commit's counter, in the data directory's own metadata (a third).
        self.witness = data_dir + "/" + name + ".n"
        self.counter = 0         # the newest commit found or written
        self.doubt = None        # why the newest valid copy may not be the last commit
        self.counters = [0, 0]   # of each valid copy (0: none)
        self.lost = 0            # commits the newest valid copy may be behind
        self.slot = -1           # the copy holding the newest valid commit

    def path(self, i):
        return self.dirs[i] + "/" + self.name

    def newest(self):
        """The index of the newest valid copy, or -1 when none was ever written. Raises
        RecordError when copies were written and none is valid."""
        got = [self._check(0), self._check(1)]
        ok = [i for i in (0, 1) if got[i][0] == _OK]
        self.counters = [got[0][1], got[1][1]]
        self.doubt = None
        self.lost = 0
        w = self._witness()
        self.counter = w
        if not ok:
            if w or got[0][0] == _BAD or got[1][0] == _BAD:
                raise RecordError("%s: no valid copy" % self.name)
            return -1
        i = ok[0] if len(ok) == 1 or got[ok[0]][1] > got[ok[1]][1] else ok[1]
        c = got[i][1]
        other = got[1 - i]
        if w > c:
            self.lost = w - c
            self.doubt = "%s: copies at commit %d, the last was %d" % (self.name, c, w)
        elif w < c - 1:
            # The witness was rolled back (one behind is a cut before it was written):
            # the other copy must hold the commit before.
            if other[0] == _BAD:
                self.doubt = "%s: copy %d fails its hash" % (self.name, 1 - i)
            elif other[0] == _NONE and c > 1:
                self.doubt = "%s: copy %d missing" % (self.name, 1 - i)
            elif other[0] == _OK and other[1] != c - 1:
                self.doubt = "%s: copies at commits %d and %d" % (self.name, c, other[1])
            self.lost = 1 if self.doubt else 0
        self.counter = max(c, w)
        self.slot = i
        return i

    def _witness(self):
        try:
            with open(self.witness) as f:
                return int(f.read())
        except (OSError, ValueError):
            return 0

    def lines(self, i):
        """The record's own lines (bytes) of copy i, which newest() found valid."""
        with open(self.path(i), "rb") as f:
            f.readline()
            for line in f:
                if line.startswith(b"end "):
                    return
                yield line

    def _check(self, i):
        """(_NONE, 0), (_BAD, 0) or (_OK, counter) of copy i."""
        try:
            f = open(self.path(i), "rb")
        except OSError:
            return _NONE, 0
        with f:
            h = hashlib.sha256()
            head = f.readline()
            h.update(head)
            words = head.split()
            try:
                if len(words) != 2 or words[0] != self.name.encode():
                    return _BAD, 0
                c = int(words[1])
            except ValueError:
                return _BAD, 0
            for line in f:
                if line.startswith(b"end "):
                    h.update(b"end ")
                    if line == b"end " + binascii.hexlify(h.digest()) + b"\n" and c > 0:
                        return _OK, c
                    return _BAD, 0
                h.update(line)
        return _BAD, 0

    def writer(self):
        """A writer of the next commit, as a context: `with c.writer() as w: w.write()`
        the record's lines; the copy is on flash when the `with` ends."""
        return _Writer(self)


class _Writer:
    def __init__(self, copies):
        self.copies = copies
        c = copies.counter + 1
        self.c = c
        self.i = 1 - copies.slot if copies.slot >= 0 else 0   # never over the newest
        d = copies.dirs[self.i]
        try:
            os.mkdir(d)
        except OSError:
            pass
        self.tmp = copies.path(self.i) + ".new"
        self.h = hashlib.sha256()
        self.f = open(self.tmp, "wb")
        self.write("%s %d\n" % (copies.name, c))

    def write(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.h.update(data)
        self.f.write(data)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is None:
            self._done()
        else:
            self.f.close()
        return False

    def _done(self):
        self.h.update(b"end ")
        self.f.write(b"end " + binascii.hexlify(self.h.digest()) + b"\n")
        self.f.close()
        c = self.copies
        os.rename(self.tmp, c.path(self.i))
        c.counter = self.c
        c.counters[self.i] = self.c
        c.slot = self.i
        with open(c.witness, "w") as f:
            f.write("%d" % self.c)

