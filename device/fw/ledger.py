"""The dosing ledger on flash: what was delivered, written before it is delivered.

It holds, for at least the last 256 podlets, how much each has given; the doses of the
last 24 hours; when the last session started; and the two clocks' floors. Every change
is committed whole (a new file renamed over the old one, which littlefs does
atomically), so a power cut leaves the previous or the next ledger, never a mix.

Doses are reserved here, a chunk at a time, before the pump delivers them: after a power
cut the device can only think it delivered more than it did, by at most what it had
reserved ahead of the pump (fw.app: at most one chunk, CHUNK_UL).

Time for the limits is the *limit clock*: the floor committed with the ledger plus the
seconds since boot. It never goes backwards and never jumps forwards, whatever the host
says, and while the power is off it stands still, so after a boot every past dose counts
as at least as recent as it really was (the worst case the limits must assume).

The wall-clock floor (the newest wall time recorded) moves on with the limit clock at
every commit: the limit clock never runs ahead of the wall's, so the floor stays a time
that has certainly passed, and a power cut takes back no more than the time since the
last commit. Whole seconds of both clocks could add up to a second too many, so a wall
time counts as known one second after the limit-clock time it was seen at.

Its tables are allocated once, full size, when it is made, serials included (in one
buffer, not as 256 strings scattered through the heap by the load): a ledger holding 256
podlets needs no more of the heap than a new one, and no commit or load needs a large
free block (a dict of 256 podlets, grown and rewritten at every commit, soon failed to
find one in the simulator's heap). On flash it is a record of fw.copies (two copies,
each with its commit counter and SHA-256, and the last counter beside them: a corrupted
or rolled-back copy is found; a commit the newest valid copy may lack is counted as a
chunk more; no valid copy is a LedgerError), its lines text, a line per entry:

    3 <floor_s> <wall_floor_s> <last_start_s> <uses> <day entries> <podlets>
    <t_s> <ul>                  one per day entry, oldest first
    <serial> <ul> <use>         one per podlet (a serial is one word of at most 16 bytes:
                                podproto's are 12 hex digits)

A ledger of format 2 (one file, `ledger <the same fields>` ... `end`, no hash) is read
once and taken over by the next commit.
"""
import os
from array import array

from micropython import const

from fw import copies

PODLETS_MAX = const(256)
DAY_S = const(86400)
_DAY_ENTRIES_MAX = const(64)
CHUNK_UL = const(50)          # dose reserved per commit
_FLOOR_EVERY_S = const(600)   # commit the clock floor at least this often
_FORMAT = const(3)
_LEGACY_FORMAT = const(2)
_SERIAL_MAX = const(16)       # bytes of a serial
_LOST_MAX = const(64)         # lost commits counted, at most
# One clock set moves the wall clock at most this far past the newest time the device
# can vouch for: more than a year, so a device a year on the shelf (its wall floor
# stands still while the power is off) takes the right time unconfirmed; far less than
# a podlet's shelf life, so no one set expires them all. A larger jump needs the owner
# (fw.app: the button).
WALL_AHEAD_MAX_S = 400 * DAY_S


class LedgerError(Exception):
    """The ledger on flash cannot be read: no dose may be given until it is fixed."""


def _ints(n):
    return array("i", bytes(4 * n))


class Ledger:
    def __init__(self, data_dir, pace=None):
        # pace: fw.copies.Copies's (the watchdog's feed between a commit's writes).
        self.copies = copies.Copies(data_dir, "ledger", pace)
        self.legacy_path = data_dir + "/ledger"   # format 2, before the copies
        self.legacy = False
        self.doubt = None         # why the newest copy may have been behind (fw.copies)
        self.floor_s = 0          # limit clock at the last commit
        self.wall_floor_s = 0     # newest wall-clock time ever recorded (epoch s)
        self.wall_at_s = 0        # limit-clock time from which wall_floor_s surely holds
        self.last_start_s = -1    # limit clock at the last session start; -1: none yet
        # Per session in the last 24 h, oldest first: limit-clock s of its last commit, ul.
        self.day_t = _ints(_DAY_ENTRIES_MAX)
        self.day_v = _ints(_DAY_ENTRIES_MAX)
        self.n_day = 0
        # Per podlet, in slots 0..n_pods-1: serial (NUL-padded), ul delivered (or
        # reserved), and when it was last used (a count of uses: the least recently used
        # one goes when the ledger is full).
        self.serials = bytearray(PODLETS_MAX * _SERIAL_MAX)
        self.serial_len = bytearray(PODLETS_MAX)
        self.pod_ul = _ints(PODLETS_MAX)
        self.pod_use = _ints(PODLETS_MAX)
        self.n_pods = 0
        self.uses = 0
        self.commits = 0
        self._load()
        self.boot_s = self.floor_s
        self.wall_at_s = self.floor_s + 1
        if self.doubt:
            self.commit(self.floor_s)

    # ---- flash ---------------------------------------------------------------------------
    def _load(self):
        c = self.copies
        try:
            i = c.newest()
        except copies.RecordError as e:
            raise LedgerError(str(e))
        if i >= 0:
            self._parse(c.lines(i), _FORMAT)
            self.legacy = False
            self.doubt = c.doubt
            if c.doubt:
                self._assume_lost_commit()
            try:
                os.remove(self.legacy_path)     # taken over by a commit a cut ended
            except OSError:
                pass
            return
        try:
            f = open(self.legacy_path, "rb")
        except OSError:
            return                # a new device: nothing delivered yet
        with f:
            self._parse(f, _LEGACY_FORMAT)
        self.legacy = True

    def _parse(self, lines, fmt):
        head = next(lines, b"").split()
        if fmt == _LEGACY_FORMAT:
            if len(head) != 8 or head[0] != b"ledger":
                raise LedgerError("ledger unreadable")
            head = head[1:]
        if len(head) != 7:
            raise LedgerError("ledger unreadable")
        if head[0] != str(fmt).encode():
            raise LedgerError("ledger format %s" % head[0].decode())
        try:
            self.floor_s, self.wall_floor_s, self.last_start_s, self.uses, n_day, n_pods = [
                int(x) for x in head[1:]]
            if not (0 <= n_day <= _DAY_ENTRIES_MAX and 0 <= n_pods <= PODLETS_MAX):
                raise ValueError
            for i in range(n_day):
                t, ul = next(lines).split()
                self.day_t[i] = int(t)
                self.day_v[i] = int(ul)
            for i in range(n_pods):
                serial, ul, use = next(lines).split()
                self._name(i, serial.decode())
                self.pod_ul[i] = int(ul)
                self.pod_use[i] = int(use)
            if fmt == _LEGACY_FORMAT and next(lines) != b"end\n":
                raise ValueError
        except (ValueError, StopIteration, UnicodeError):
            raise LedgerError("ledger unreadable")
        self.n_day = n_day
        self.n_pods = n_pods

    def _assume_lost_commit(self):
        """The newest valid copy may be one commit behind the last one (the other copy
        is corrupt, missing or was rolled back): counted as if that commit had reserved
        a chunk more on the podlet in use, in the day, and started a session, all at the
        floor (where the limit clock resumes, so no later than the lost commit's time).
        The boot commits it so before anything is decided. Each commit the witness says
        may be missing counts as a chunk (fw.copies: more than one only when both copies
        were taken back)."""
        ul = CHUNK_UL * max(1, min(self.copies.lost, _LOST_MAX))
        if self.n_pods:
            use = self.pod_use
            i = 0
            for j in range(1, self.n_pods):
                if use[j] > use[i]:
                    i = j
            self.pod_ul[i] += ul
        if not self.n_day:
            self.n_day = 1
            self.day_v[0] = 0
        last = self.n_day - 1
        if self.day_t[last] < self.floor_s:
            self.day_t[last] = self.floor_s
        self.day_v[last] += ul
        if self.last_start_s < self.floor_s:
            self.last_start_s = self.floor_s

    def commit(self, now_s):
        """Writes the whole ledger; it is on flash when this returns."""
        if now_s > self.floor_s:
            self.floor_s = now_s
        self.wall_floor_s = self.wall_s(self.floor_s)
        if self.floor_s > self.wall_at_s:
            self.wall_at_s = self.floor_s
        with self.copies.writer() as f:
            f.write("%d %d %d %d %d %d %d\n" % (
                _FORMAT, self.floor_s, self.wall_floor_s, self.last_start_s, self.uses,
                self.n_day, self.n_pods))
            for i in range(self.n_day):
                f.write("%d %d\n" % (self.day_t[i], self.day_v[i]))
            names = memoryview(self.serials)
            for i in range(self.n_pods):
                o = i * _SERIAL_MAX
                f.write(names[o:o + self.serial_len[i]])
                f.write(" %d %d\n" % (self.pod_ul[i], self.pod_use[i]))
        self.commits += 1
        if self.legacy:
            # Taken over: the copies hold it now.
            os.remove(self.legacy_path)
            self.legacy = False

    # ---- clocks ---------------------------------------------------------------------------
    def now_s(self, uptime_s):
        """The limit clock: never backwards, never forwards faster than the device's own."""
        return self.boot_s + uptime_s

    def keep_floor(self, uptime_s):
        """Called now and then: commits the clock floor so a long-powered device does not
        lose much time at its next power cut."""
        now = self.now_s(uptime_s)
        if now - self.floor_s >= _FLOOR_EVERY_S:
            self.commit(now)

    def wall_s(self, now_s):
        """The newest wall-clock time known at now_s on the limit clock: the one recorded
        plus the limit clock's seconds since (0 if none ever was)."""
        wall = self.wall_floor_s
        if wall and now_s > self.wall_at_s:
            wall += now_s - self.wall_at_s
        return wall

    def see_wall(self, epoch_s, uptime_s, clock_s=0):
        """The host's wall clock, never earlier than the newest time recorded nor than
        the device's own clock (clock_s) now reads, nor more than WALL_AHEAD_MAX_S past
        the newest time the device can vouch for (a set beyond is not taken: the clock
        stays). Returns the time to set and commits the new floor. Also how the device
        records a wall time it decides on (clock_s 0), so that no clock set after a
        power cut can undo the decision."""
        newest = max(self.wall_floor_s, clock_s)
        if epoch_s < newest:
            epoch_s = newest
        vouched = max(self.wall_s(self.now_s(uptime_s)), clock_s)
        if vouched and epoch_s > vouched + WALL_AHEAD_MAX_S:
            epoch_s = vouched
        if epoch_s > self.wall_floor_s:
            now = self.now_s(uptime_s)
            self.wall_floor_s = epoch_s
            self.wall_at_s = now + 1
            self.commit(now)
        return epoch_s

    def confirm_wall(self, epoch_s, uptime_s):
        """The host's wall clock as the owner confirmed it (fw.app: the button): taken
        whatever the floor, back or far ahead, and committed. Only the wall clock moves:
        the limit clock, the day's doses and the last start stay as they were."""
        now = self.now_s(uptime_s)
        self.wall_floor_s = epoch_s
        self.wall_at_s = now + 1
        self.commit(now)
        return epoch_s

    # ---- limits ---------------------------------------------------------------------------
    def podlet_ul(self, serial):
        i = self._slot(serial)
        return self.pod_ul[i] if i >= 0 else 0

    def podlet_items(self):
        """(serial, ul) of every podlet held, least recently used first."""
        slots = sorted(range(self.n_pods), key=lambda i: self.pod_use[i])
        return [(self._serial(i), self.pod_ul[i]) for i in slots]

    def day_entries(self):
        """[limit-clock s of the session's last commit, ul] per session, oldest first."""
        return [[self.day_t[i], self.day_v[i]] for i in range(self.n_day)]

    def day_ul(self, now_s):
        """Delivered in the 24 hours before now_s on the limit clock. A session counts
        whole at its last commit: never less recent than any of its dose."""
        total = 0
        for i in range(self.n_day):
            if self.day_t[i] > now_s - DAY_S:
                total += self.day_v[i]
        return total

    def since_start_s(self, now_s):
        """Seconds since the last session started, or None if none ever did."""
        if self.last_start_s < 0:
            return None
        return now_s - self.last_start_s

    # ---- sessions -------------------------------------------------------------------------
    def begin(self, serial, now_s):
        """A session starts: its start time is recorded before any dose."""
        self.last_start_s = now_s
        t = self.day_t
        v = self.day_v
        n = 0
        for i in range(self.n_day):
            if t[i] > now_s - DAY_S:
                t[n] = t[i]
                v[n] = v[i]
                n += 1
        if n >= _DAY_ENTRIES_MAX:
            # Too many sessions to track in the window: merge the oldest two, keeping the
            # later time, so nothing is forgotten and nothing counted as older.
            v[1] += v[0]
            for i in range(1, n):
                t[i - 1] = t[i]
                v[i - 1] = v[i]
            n -= 1
        t[n] = now_s
        v[n] = 0
        self.n_day = n + 1
        self._touch(serial)
        self.commit(now_s)

    def reserve(self, serial, ul, now_s):
        """Counts ul as delivered, on flash, before the pump is allowed to deliver it."""
        i = self._slot(serial)
        if i < 0:
            i = self._touch(serial)     # begin() touched it: this is never a new use
        self.pod_ul[i] += ul
        if not self.n_day:
            self.n_day = 1
            self.day_v[0] = 0
        last = self.n_day - 1
        self.day_t[last] = now_s
        self.day_v[last] += ul
        self.commit(now_s)

    def settle(self, serial, unused_ul, now_s):
        """The session ended with unused_ul of its last reservation not delivered."""
        if unused_ul <= 0:
            return
        i = self._slot(serial)
        if i >= 0:
            self.pod_ul[i] = max(0, self.pod_ul[i] - unused_ul)
        if self.n_day:
            last = self.n_day - 1
            self.day_v[last] = max(0, self.day_v[last] - unused_ul)
        self.commit(now_s)

    def _key(self, serial):
        """serial as a slot holds it: its bytes, NUL-padded."""
        raw = serial.encode()
        if not 0 < len(raw) <= _SERIAL_MAX or b"\0" in raw or serial.split() != [serial]:
            raise ValueError("podlet serial %r" % serial)
        return raw + bytes(_SERIAL_MAX - len(raw))

    def _slot(self, serial):
        """The slot holding serial, or -1."""
        key = self._key(serial)
        end = self.n_pods * _SERIAL_MAX
        at = self.serials.find(key)
        while 0 <= at < end:
            if at % _SERIAL_MAX == 0:
                return at // _SERIAL_MAX
            at = self.serials.find(key, at + 1)
        return -1

    def _name(self, i, serial):
        key = self._key(serial)
        o = i * _SERIAL_MAX
        self.serials[o:o + _SERIAL_MAX] = key
        self.serial_len[i] = _SERIAL_MAX - key.count(b"\0")

    def _serial(self, i):
        o = i * _SERIAL_MAX
        return self.serials[o:o + self.serial_len[i]].decode()

    def _touch(self, serial):
        """The slot of serial, made the most recently used; a new podlet takes a free
        slot or, when all are taken, the least recently used one's."""
        i = self._slot(serial)
        if i < 0:
            if self.n_pods < PODLETS_MAX:
                i = self.n_pods
                self.n_pods += 1
            else:
                use = self.pod_use
                i = 0
                for j in range(1, PODLETS_MAX):
                    if use[j] < use[i]:
                        i = j
            self._name(i, serial)
            self.pod_ul[i] = 0
        self.uses += 1
        self.pod_use[i] = self.uses
        return i
