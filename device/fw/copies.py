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


class RecordError(Exception):
    """A record's copies exist but none is valid, or they were lost."""


class Copies:
    """pace: called before each of a commit's file operations (the new copy, its
    rename, the witness), each one or two sector erases at most: the App passes the
    watchdog's feed, so a commit at datasheet-worst erase times (400 ms apiece, issue
    14 item 6) does not starve it, while a single operation that hangs still does."""

    def __init__(self, data_dir, name, pace=None):
        self.name = name
        self.pace = pace
        self.dirs = (data_dir + "/safe.a", data_dir + "/safe.b")
        # The last commit's counter, in the data directory's own metadata (a third).
        self.witness = data_dir + "/" + name + ".n"
        self.counter = 0         # the newest commit found or written
        self.doubt = None        # why the newest valid copy may not be the last commit
        self.counters = [0, 0]   # of each copy: its counter, 0 none, -1 fails its hash
        self.lost = 0            # commits the newest valid copy may be behind
        self.slot = -1           # the copy holding the newest valid commit

    def path(self, i):
        return self.dirs[i] + "/" + self.name

    def newest(self):
        """The index of the newest valid copy, or -1 when none was ever written. Raises
        RecordError when copies were written and none is valid."""
        got = self.counters = [self._check(0), self._check(1)]
        try:
            with open(self.witness) as f:
                w = int(f.read())
        except (OSError, ValueError):
            w = 0
        i = 0 if got[0] >= got[1] else 1
        c = got[i]
        o = got[1 - i]
        self.counter = max(c, w)
        self.lost = 0
        self.doubt = None
        if c <= 0:
            if w or o < 0 or c < 0:
                raise RecordError(self.name + ": no valid copy")
            return -1
        if w > c:
            self.lost = w - c
        elif w < c - 1 and o != c - 1:
            # The witness was rolled back (one behind is a cut before it was written):
            # the other copy must hold the commit before (-1: fails its hash, 0: none).
            self.lost = 1
        if self.lost:
            self.doubt = "%s: copies at %d and %d, last %d" % (self.name, c, o, w)
        self.slot = i
        return i

    def lines(self, i):
        """The record's own lines (bytes) of copy i, which newest() found valid."""
        with open(self.path(i), "rb") as f:
            f.readline()
            for line in f:
                if line.startswith(b"end "):
                    return
                yield line

    def _check(self, i):
        """Copy i's counter if it is valid, 0 if there is none, -1 if it is not valid."""
        try:
            f = open(self.path(i), "rb")
        except OSError:
            return 0
        with f:
            head = f.readline()
            words = head.split()
            if len(words) != 2 or words[0] != self.name.encode() or not words[1].isdigit():
                return -1
            h = hashlib.sha256(head)
            for line in f:
                if line.startswith(b"end "):
                    h.update(b"end ")
                    if line == b"end " + binascii.hexlify(h.digest()) + b"\n":
                        return max(-1, int(words[1]))
                    return -1
                h.update(line)
        return -1

    def writer(self):
        """The next commit, as a context: `with c.writer() as w: w.write(...)` the
        record's lines; the copy is on flash when the `with` ends."""
        i = 1 - self.slot if self.slot >= 0 else 0   # never over the newest valid copy
        try:
            os.mkdir(self.dirs[i])
        except OSError:
            pass
        self._i = i
        self._h = hashlib.sha256()
        self._pace()
        self._f = [open(self.path(i) + ".new", "wb")]    # the one being written
        self.write("%s %d\n" % (self.name, self.counter + 1))
        return self

    def _pace(self):
        if self.pace is not None:
            self.pace()

    def write(self, data):
        if isinstance(data, str):
            data = data.encode()
        self._h.update(data)
        self._f[0].write(data)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        # Let go of the file at once: one a power cut left half closed must be collected
        # while the power is off (boards/sim/flash.py), not close itself later.
        f = self._f.pop()
        if kind is not None:
            f.close()
            return False
        self._h.update(b"end ")
        f.write(b"end " + binascii.hexlify(self._h.digest()) + b"\n")
        f.close()
        i = self._i
        self._pace()
        os.rename(self.path(i) + ".new", self.path(i))
        c = self.counter + 1
        self.counter = c
        self.counters[i] = c
        self.slot = i
        self._pace()
        with open(self.witness, "w") as f:
            f.write("%d" % c)
        return False
