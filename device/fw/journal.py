"""The session log on flash: numbered records the host syncs and acknowledges.

Records are appended as JSON lines, `<seq> <json>`, to segment files named by their
first sequence number in `<data_dir>/journal/`. On littlefs an append becomes visible
whole at close, so a power cut loses at most the record being written and never leaves
half a line; a line that does not parse is skipped all the same. The host acknowledges
the last sequence it stored, and nothing unacknowledged is deleted while there is room:
segments wholly acknowledged are deleted, and when the journal is full the oldest
segment, if the host has acknowledged part of it, is rewritten with only its
unacknowledged tail (written whole to a `t<first>` file before the old one goes, so a
power cut leaves one copy of every record). Only a journal full of unacknowledged
records drops its oldest segment, after first appending a `journal_overflow` record
naming every sequence number lost since the host's acknowledgement (lost_from, lost_to).
Full means MAX_RECORDS records, or, checked as each segment starts, fewer than
RESERVE_BLOCKS free on the filesystem: the ledger, profiles and audit log must always
find room, and records are not all the same size.

The journal has an identity, ID_BYTES random bytes made with it (`<dir>/id`): a host
keys its sync cursor by it, so a journal made anew at an address it knows (a reformatted
flash, another simulated steamer) is synced from its start, not from the old one's end.
"""
import json
import os

from micropython import const

SEG_RECORDS = const(256)     # records per segment file
MAX_RECORDS = const(4096)    # flash budget: records held, acknowledged or not
RESERVE_BLOCKS = const(16)   # filesystem blocks the journal leaves free for the rest
_ACK_FILE = "ack"
ID_FILE = "id"
ID_BYTES = const(8)


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


class Journal:
    def __init__(self, data_dir, seg_records=SEG_RECORDS, max_records=MAX_RECORDS,
                 reserve_blocks=RESERVE_BLOCKS):
        self.dir = data_dir + "/journal"
        self.seg_records = seg_records
        self.max_records = max_records
        self.reserve_blocks = reserve_blocks
        if not _exists(self.dir):
            os.mkdir(self.dir)
        self.journal_id = self._read_id()
        self.acked = self._read_ack()
        self.segments = self._scan()          # first seqs, ascending
        self.next = self._recover_next()
        self.in_last = self.next - self.segments[-1] if self.segments else 0
        # Where the last read() stopped: (segment, byte offset, next seq). Log sync reads
        # on from there, so it seeks instead of scanning the segment from its start.
        self._read_at = None

    # ---- state from flash ------------------------------------------------------------
    def _scan(self):
        firsts = []
        tails = []
        for name in os.listdir(self.dir):
            if name[1:].isdigit():
                if name.startswith("s"):
                    firsts.append(int(name[1:]))
                elif name.startswith("t"):
                    tails.append(int(name[1:]))
        firsts.sort()
        for first in tails:
            # A tail rewrite that a power cut stopped: while the segment it came from
            # (older than it) is there, that one holds every record and the tail may be
            # partial; once that one is gone the tail was complete: the oldest segment.
            if firsts and firsts[0] < first:
                os.remove(self._tail_path(first))
            else:
                os.rename(self._tail_path(first), self._seg_path(first))
                firsts.insert(0, first)
        return firsts

    def _seg_path(self, first):
        return "%s/s%d" % (self.dir, first)

    def _tail_path(self, first):
        return "%s/t%d" % (self.dir, first)

    def _read_id(self):
        path = self.dir + "/" + ID_FILE
        try:
            with open(path, "rb") as f:
                ident = f.read()
            if len(ident) == ID_BYTES:
                return ident
        except OSError:
            pass
        # Made whole then renamed: a power cut leaves none (made again at the next boot,
        # before any record is written or synced) or this one.
        ident = os.urandom(ID_BYTES)
        with open(path + ".new", "wb") as f:
            f.write(ident)
        os.rename(path + ".new", path)
        return ident

    def _read_ack(self):
        try:
            with open(self.dir + "/" + _ACK_FILE) as f:
                return int(f.read())
        except (OSError, ValueError):
            return 0

    def _recover_next(self):
        if not self.segments:
            return self.acked + 1
        last = self.segments[-1]
        nxt = last
        for seq, _, _ in self._lines(last):
            nxt = seq + 1
        return max(nxt, self.acked + 1)

    def _lines(self, first, offset=0):
        """Yields (seq, text, file) of each readable line of a segment from byte offset
        on, one at a time (a segment is larger than a board can hold in RAM at once);
        file.tell() is where the line just yielded ends."""
        try:
            f = open(self._seg_path(first))
        except OSError:
            return
        with f:
            if offset:
                f.seek(offset)
            while True:
                line = f.readline()
                if not line:
                    break
                sp = line.find(" ")
                if sp <= 0 or not line.endswith("\n"):
                    continue
                try:
                    seq = int(line[:sp])
                except ValueError:
                    continue
                yield seq, line[sp + 1:-1], f

    # ---- the API -------------------------------------------------------------------
    def first_seq(self):
        """The oldest sequence number still held (next_seq() when empty)."""
        for first in self.segments:
            lines = self._lines(first)
            try:
                for seq, _, _ in lines:
                    if seq > self.acked:
                        return seq
            finally:
                lines.close()
        return self.next

    def next_seq(self):
        return self.next

    def append(self, record):
        """Stores record on flash and returns its sequence number."""
        while len(self.segments) > 1 and self._full():
            self._make_room()
        return self._write(record)

    def _full(self):
        if self.next - self.segments[0] >= self.max_records:
            return True
        # The filesystem's free space, only as a segment starts (statvfs walks it all).
        return self.in_last >= self.seg_records and self._flash_low()

    def _flash_low(self):
        try:
            st = os.statvfs(self.dir)
        except OSError:
            return False
        # littlefs counts blocks in use, and reports what is left unsigned: past full,
        # "free" wraps round to a count larger than the filesystem.
        return st[3] < self.reserve_blocks or st[3] > st[2]

    def _write(self, record):
        if not self.segments or self.in_last >= self.seg_records:
            self.segments.append(self.next)
            self.in_last = 0
        seq = self.next
        line = "%d %s\n" % (seq, json.dumps(record))
        with open(self._seg_path(self.segments[-1]), "a") as f:
            f.write(line)
        self.next = seq + 1
        self.in_last += 1
        return seq

    def _make_room(self):
        n = len(self.segments)
        self._compact()
        if len(self.segments) < n:
            return
        if self.segments[0] <= self.acked:
            self._rewrite_tail()
            return
        # Full of records the host has not acknowledged: the oldest segment goes. The
        # record saying so is written first, so no power cut loses records unannounced
        # (a cut before the delete announces records that are still there: the host
        # counts as lost only what it never received).
        lost_to = self.segments[1] - 1
        self._write({"event": "journal_overflow", "lost_from": self.acked + 1,
                     "lost_to": lost_to})
        os.remove(self._seg_path(self.segments.pop(0)))
        self._read_at = None

    def _rewrite_tail(self):
        """The oldest segment, partly acknowledged, becomes its unacknowledged tail: the
        tail is written whole to t<first>, then the old segment is deleted, then the tail
        renamed in its place (Journal() completes or undoes a rewrite a cut stopped)."""
        old = self.segments[0]
        first = self.acked + 1
        tail = self._tail_path(first)
        lines = self._lines(old)
        try:
            with open(tail, "w") as out:
                for seq, text, _ in lines:
                    if seq > self.acked:
                        out.write("%d %s\n" % (seq, text))
        finally:
            lines.close()
        os.remove(self._seg_path(old))
        os.rename(tail, self._seg_path(first))
        self.segments[0] = first
        self._read_at = None

    def read(self, from_seq, max_records):
        """Up to max_records (seq, record) with seq >= from_seq, oldest first."""
        out = []
        at = self._read_at
        for i, first in enumerate(self.segments):
            upper = self.segments[i + 1] if i + 1 < len(self.segments) else self.next
            if upper <= from_seq:
                continue
            # Lines are in seq order, so none at or after from_seq precedes the offset.
            offset = at[1] if at is not None and at[0] == first and at[2] <= from_seq else 0
            lines = self._lines(first, offset)
            try:
                for seq, text, f in lines:
                    if seq >= from_seq:
                        try:
                            out.append((seq, json.loads(text)))
                        except ValueError:
                            continue
                        if len(out) >= max_records:
                            self._read_at = (first, f.tell(), seq + 1)
                            return out
            finally:
                lines.close()         # closes the segment file now, not at the next GC
        return out

    def ack(self, seq):
        """The host has stored everything up to seq: it may be compacted away."""
        if seq <= self.acked:
            return
        seq = min(seq, self.next - 1)
        tmp = self.dir + "/" + _ACK_FILE + ".new"
        with open(tmp, "w") as f:
            f.write(str(seq))
        os.rename(tmp, self.dir + "/" + _ACK_FILE)
        self.acked = seq
        self._compact()

    def _compact(self):
        # A segment may go once the next one starts after the acknowledged sequence.
        while len(self.segments) > 1 and self.segments[1] - 1 <= self.acked:
            os.remove(self._seg_path(self.segments.pop(0)))
            self._read_at = None
