"""The dosing ledger on flash: what was delivered, written before it is delivered.

It holds, for at least the last 256 podlets, how much each has given; the doses of the
last 24 hours; when the last session started; and the two clocks' floors. Every change
is committed whole (a new file renamed over the old one, which littlefs does
atomically), so a power cut leaves the previous or the next ledger, never a mix.

Doses are reserved here, a chunk at a time, before the pump delivers them: after a power
cut the device can only think it delivered more than it did, by at most one chunk.

Time for the limits is the *limit clock*: the floor committed with the ledger plus the
seconds since boot. It never goes backwards and never jumps forwards, whatever the host
says, and while the power is off it stands still, so after a boot every past dose counts
as at least as recent as it really was (the worst case the limits must assume).
"""
import json
import os

from micropython import const

PODLETS_MAX = const(256)
DAY_S = const(86400)
_DAY_ENTRIES_MAX = const(64)
CHUNK_UL = const(50)          # dose reserved per commit
_FLOOR_EVERY_S = const(600)   # commit the clock floor at least this often
_FORMAT = const(1)


class LedgerError(Exception):
    """The ledger on flash cannot be read: no dose may be given until it is fixed."""


class Ledger:
    def __init__(self, data_dir):
        self.path = data_dir + "/ledger"
        self.tmp = self.path + ".new"
        self.floor_s = 0          # limit clock at the last commit
        self.wall_floor_s = 0     # newest wall-clock time ever recorded (epoch s)
        self.last_start_s = -1    # limit clock at the last session start; -1: none yet
        self.day = []             # [limit-clock s of the last commit, ul] per session
        self.podlets = {}         # serial -> ul delivered (or reserved)
        self.order = []           # serials, least recently used first
        self.commits = 0
        self._load()
        self.boot_s = self.floor_s

    # ---- flash ---------------------------------------------------------------------------
    def _load(self):
        try:
            f = open(self.path)
        except OSError:
            return                # a new device: nothing delivered yet
        with f:
            try:
                d = json.load(f)
            except ValueError:
                raise LedgerError("ledger unreadable")
        if d.get("format") != _FORMAT:
            raise LedgerError("ledger format %s" % d.get("format"))
        self.floor_s = d["floor_s"]
        self.wall_floor_s = d["wall_floor_s"]
        self.last_start_s = d["last_start_s"]
        self.day = d["day"]
        for serial, ul in d["podlets"]:
            self.podlets[serial] = ul
            self.order.append(serial)

    def commit(self, now_s):
        """Writes the whole ledger; it is on flash when this returns."""
        if now_s > self.floor_s:
            self.floor_s = now_s
        d = {"format": _FORMAT, "floor_s": self.floor_s, "wall_floor_s": self.wall_floor_s,
             "last_start_s": self.last_start_s, "day": self.day,
             "podlets": [[s, self.podlets[s]] for s in self.order]}
        with open(self.tmp, "w") as f:
            json.dump(d, f)
        os.rename(self.tmp, self.path)
        self.commits += 1

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

    def see_wall(self, epoch_s, uptime_s, clock_s=0):
        """The host's wall clock, never earlier than the newest time recorded nor than
        the device's own clock (clock_s) now reads. Returns the time to set (clamped up)
        and commits the new floor."""
        newest = max(self.wall_floor_s, clock_s)
        if epoch_s < newest:
            epoch_s = newest
        if epoch_s > self.wall_floor_s:
            self.wall_floor_s = epoch_s
            self.commit(self.now_s(uptime_s))
        return epoch_s

    # ---- limits ---------------------------------------------------------------------------
    def podlet_ul(self, serial):
        return self.podlets.get(serial, 0)

    def day_ul(self, now_s):
        """Delivered in the 24 hours before now_s on the limit clock. A session counts
        whole at its last commit: never less recent than any of its dose."""
        total = 0
        for t, ul in self.day:
            if t > now_s - DAY_S:
                total += ul
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
        self.day = [e for e in self.day if e[0] > now_s - DAY_S]
        if len(self.day) >= _DAY_ENTRIES_MAX:
            # Too many sessions to track in the window: merge the oldest two, keeping the
            # later time, so nothing is forgotten and nothing counted as older.
            a = self.day.pop(0)
            self.day[0][1] += a[1]
        self.day.append([now_s, 0])
        self._touch(serial)
        self.commit(now_s)

    def reserve(self, serial, ul, now_s):
        """Counts ul as delivered, on flash, before the pump is allowed to deliver it."""
        self.podlets[serial] = self.podlets.get(serial, 0) + ul
        last = self.day[-1]
        last[0] = now_s
        last[1] += ul
        self.commit(now_s)

    def settle(self, serial, unused_ul, now_s):
        """The session ended with unused_ul of its last reservation not delivered."""
        if unused_ul <= 0:
            return
        self.podlets[serial] = max(0, self.podlets.get(serial, 0) - unused_ul)
        last = self.day[-1]
        last[1] = max(0, last[1] - unused_ul)
        self.commit(now_s)

    def _touch(self, serial):
        if serial in self.podlets:
            self.order.remove(serial)
        else:
            self.podlets[serial] = 0
            if len(self.order) >= PODLETS_MAX:
                del self.podlets[self.order.pop(0)]
        self.order.append(serial)
