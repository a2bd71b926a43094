"""The audit log on flash: every decision, hash-chained so none can be removed or changed
unnoticed.

Each line is `<seq> <json> <hash>` where hash = SHA-256(previous hash + "<seq> <json>")
in hex, starting from 64 zeros. Lines go to `<data_dir>/audit`; past FILE_MAX bytes the
file becomes `audit.1` (the one before is dropped) and the chain goes on in a new file.
An append is visible whole at close on littlefs, so a power cut loses at most the line
being written, and the chain stays intact.

At boot the last line is checked against the one before it. One that fails (written
over, or cut short) is a break: the chain goes on from the hash that line states (from
the last sound line when it states none), and the next line is an `audit_break` record
saying so. verify() checks a run of lines, here or on a host (this module runs on
CPython too), strictly or listing the breaks by the same rule.
"""
import binascii
import hashlib
import json
import os

from podproto.mpconst import const  # CPython too: a host checking a log read off a device

FILE_MAX = const(32768)     # bytes of audit before it becomes audit.1
GENESIS = "0" * 64


def link(prev_hex, body):
    """The hash that chains body (the `<seq> <json>` text, str or bytes) after prev_hex."""
    h = hashlib.sha256(prev_hex.encode())
    h.update(body if isinstance(body, bytes) else body.encode())
    return binascii.hexlify(h.digest()).decode()


def parse(line):
    """(seq, body, hash) of a complete audit line (str or bytes), or None if it is not
    one: no newline, no sequence number, or no 64-digit hash."""
    text = isinstance(line, str)
    nl, sp = ("\n", " ") if text else (b"\n", b" ")
    if not line.endswith(nl):
        return None
    body, _, got = line[:-1].rpartition(sp)
    at = body.find(sp)
    try:
        if not text:
            got = got.decode()
        if len(got) != 64 or at < 1:
            return None
        binascii.unhexlify(got)
        seq = int(body[:at])
    except (ValueError, UnicodeError):
        return None
    if seq < 1:
        return None
    return seq, body, got


def verify(lines, prev_hex=GENESIS, breaks=None):
    """The last hash of a run of audit lines if every link holds. A line that fails is
    a ValueError naming it; or, given a list as breaks, its number (from 1) goes there
    and the chain goes on from the hash it states (a line that states none: from the
    line before), as the device's own recovery does."""
    for n, line in enumerate(lines):
        if isinstance(line, str) and not line.endswith("\n"):
            line += "\n"
        p = parse(line)
        if p is not None and link(prev_hex, p[1]) == p[2]:
            prev_hex = p[2]
            continue
        if breaks is None:
            raise ValueError("audit line %d: chain broken" % (n + 1))
        breaks.append(n + 1)
        if p is not None:
            prev_hex = p[2]
    return prev_hex


class Audit:
    def __init__(self, data_dir):
        self.path = data_dir + "/audit"
        self.old = self.path + ".1"
        self.seq = 0
        self.head = GENESIS
        self.size = 0
        self.torn = False           # the file ends in a line cut short: close it first
        self._recover()

    def _recover(self):
        """seq and head from the last line, which is checked against the one before it
        (only it: a boot must not hash the whole log); a break is said at once."""
        before = None               # hash of the line before the last sound one
        body = None                 # body of the last sound line
        bad = False                 # the last complete line is not a sound one
        for path in (self.old, self.path):
            try:
                f = open(path, "rb")
            except OSError:
                continue
            with f:
                for line in f:
                    if path == self.path:
                        self.size += len(line)
                    self.torn = path == self.path and not line.endswith(b"\n")
                    if self.torn:
                        continue
                    p = parse(line)
                    if p is None:
                        bad = True
                        continue
                    before = self.head if body is not None else None
                    self.seq, body, self.head = p
                    bad = False
        if body is not None and not bad:
            if before is None and self.seq == 1:
                before = GENESIS
            # A first line that is not number 1 follows lines rotation dropped: unchecked.
            bad = before is not None and link(before, body) != self.head
        if bad or self.torn:
            self.append({"event": "audit_break", "seq": self.seq, "torn": self.torn})

    def append(self, record):
        """Writes record to the log and returns its sequence number."""
        if self.size >= FILE_MAX:
            try:
                os.remove(self.old)
            except OSError:
                pass
            os.rename(self.path, self.old)
            self.size = 0
            self.torn = False
        seq = self.seq + 1
        body = "%d %s" % (seq, json.dumps(record))
        h = link(self.head, body)
        line = "%s %s\n" % (body, h)
        if self.torn:
            line = "\n" + line
        with open(self.path, "a") as f:
            f.write(line)
        self.torn = False
        self.seq = seq
        self.head = h
        self.size += len(line)
        return seq
