"""The audit log on flash: every decision, hash-chained so none can be removed or changed
unnoticed.

Each line is `<seq> <json> <hash>` where hash = SHA-256(previous hash + "<seq> <json>")
in hex, starting from 64 zeros. Lines go to `<data_dir>/audit`; past FILE_MAX bytes the
file becomes `audit.1` (the one before is dropped) and the chain goes on in a new file.
An append is visible whole at close on littlefs, so a power cut loses at most the line
being written, and the chain stays intact.
"""
import hashlib
import json
import os

from micropython import const

FILE_MAX = const(32768)     # bytes of audit before it becomes audit.1
GENESIS = "0" * 64


def link(prev_hex, body):
    """The hash that chains body (the `<seq> <json>` text) after prev_hex."""
    h = hashlib.sha256(prev_hex.encode())
    h.update(body.encode())
    return "".join("%02x" % b for b in h.digest())


def verify(lines, prev_hex=GENESIS):
    """The last hash of a run of audit lines if every link holds, else ValueError naming
    the first bad line."""
    for n, line in enumerate(lines):
        body, _, got = line.rstrip("\n").rpartition(" ")
        if link(prev_hex, body) != got:
            raise ValueError("audit line %d: chain broken" % (n + 1))
        prev_hex = got
    return prev_hex


class Audit:
    def __init__(self, data_dir):
        self.path = data_dir + "/audit"
        self.old = self.path + ".1"
        self.seq = 0
        self.head = GENESIS
        self.size = 0
        self._recover()

    def _recover(self):
        for path in (self.old, self.path):
            try:
                f = open(path)
            except OSError:
                continue
            with f:
                for line in f:
                    if not line.endswith("\n"):
                        continue
                    body, _, h = line[:-1].rpartition(" ")
                    sp = body.find(" ")
                    if sp > 0 and len(h) == 64:
                        self.seq = int(body[:sp])
                        self.head = h
                    if path == self.path:
                        self.size += len(line)

    def append(self, record):
        """Writes record to the log and returns its sequence number."""
        if self.size >= FILE_MAX:
            try:
                os.remove(self.old)
            except OSError:
                pass
            os.rename(self.path, self.old)
            self.size = 0
        seq = self.seq + 1
        body = "%d %s" % (seq, json.dumps(record))
        h = link(self.head, body)
        line = "%s %s\n" % (body, h)
        with open(self.path, "a") as f:
            f.write(line)
        self.seq = seq
        self.head = h
        self.size += len(line)
        return seq
