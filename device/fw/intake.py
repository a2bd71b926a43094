"""Intake of podlets and profiles, a part of fw.app.App (its base class Intake): a
podlet inserted, checked (its signature and ID chip), accepted or refused, confirmed in
the slot during a session, forgotten when pulled; a profile pushed, checked and
installed or refused; the profiles installed before, checked again at boot; and the
queue of those signature checks, run in bounded slices across periods (a session start
waits in it for the checks before it). Nothing imports it but fw.app.
"""
import gc

from micropython import const

from fw import session
from podproto import podlet as podlet_fmt

# For the type checker only (its annotations below): nothing is imported on the device.
TYPE_CHECKING = const(0)
if TYPE_CHECKING:
    from typing import Any, Callable
    from fw.course import Course
    from fw.ledger import Ledger
    from fw.trust import Trust

# What waits in App.checks: a signature check of a podlet or a profile, or a session
# start waiting for the checks before it.
_CHK_PODLET = const(1)
_CHK_PROFILE = const(2)
_CHK_START = const(3)

# A session confirms every this many steps that its podlet's chip is still the one in
# the slot (fw.idchip read_rom): a swap within one period leaves no presence edge.
_CONFIRM_STEPS = const(5)


class Intake:
    """App's intake of podlets and profiles (a base class of fw.app.App: its attributes
    are App's, made in App.__init__). What it uses of the rest of App, declared for the
    type checker (bare annotations: nothing at run time)."""
    board: "Any"
    trust: "Trust"
    ledger: "Ledger | None"
    course_record: "Callable[[], Course]"
    profiles: "dict"
    checks: list
    check_slices: int
    podlet_in: int
    heating_state: int
    tick: int
    session_prof: "dict | None"
    session_podlet: "dict | None"
    emit: "Callable[[dict], None]"
    collect: "Callable[[Callable[[Any], Any], Any], list]"
    _decision_wall_s: "Callable[[], int]"
    _end: "Callable[[int], None]"
    _start_now: "Callable[[Any], bool]"
    heat_early: "Callable[[], None]"

    def load_profiles(self):
        """At boot: the profiles installed before, each checked again, at once. The board
        armed its watchdog before boot and a check takes about a second on a board, so
        it is fed between slices: nothing heats before the loop's first step, and each
        slice is bounded."""
        self.trust.on_slice = self.board.watchdog.feed
        try:
            bad = self.trust.load()
        finally:
            self.trust.on_slice = None
        for name, reason in bad:
            self.emit({"event": "profile_rejected", "reason": reason, "file": name})
        # Booting, and checking profiles above all (big ints), leaves garbage all over
        # the heap; what boots next (the link's modules, which the unix port compiles
        # from source) needs large free blocks.
        gc.collect()

    def _run_checks(self):
        """The board's CHECK_SLICES_PER_PERIOD slices of the pending checks, oldest first;
        each check's decision once it is done, then those of the starts waiting for it."""
        q = self.checks
        n = self.check_slices
        while q:
            item = q[0]
            if item[0] == _CHK_START:
                q.pop(0)
                self._decide(item[2], self._start_now, None)
                continue
            if n <= 0:
                return
            n -= 1
            if not item[1].step():
                continue
            q.pop(0)
            if item[0] == _CHK_PODLET:
                self._decide(item[2], self._podlet_checked, item[1])
            else:
                self._decide(item[2], self._profile_checked, item[1])

    def _decide(self, reply, fn, arg):
        """fn(arg); reply, if any, gets the decision records fn emitted."""
        if reply is None:
            fn(arg)
        else:
            reply(self.collect(fn, arg))

    def finish_checks(self):
        """Runs every pending check, and what waits for it, to its end now; returns the
        decision records made meanwhile. For tests and tools: the loop runs the board's
        slices a period."""
        return self.collect(self._drain_checks, None)

    def _drain_checks(self, _arg):
        while self.checks:
            self._run_checks()

    def check_podlet(self):
        """Follows the slot: a podlet inserted is queued for its check, one removed is
        forgotten, and in a session the chip in the slot is confirmed every
        _CONFIRM_STEPS steps. service() calls it every period; tests, to decide a podlet
        without a control step."""
        present = self.podlet_in
        if present and not self.podlet_seen:
            self.podlet_seen = 1
            self._queue_podlet()
        elif not present and self.podlet_seen:
            self.podlet_seen = 0
            self._forget_podlet()
        elif (present and self.heating_state and self.session_prof is not None
              and self.tick % _CONFIRM_STEPS == 0):
            self._confirm_podlet(self.session_podlet)

    def _forget_podlet(self):
        # A podlet pulled while it is being checked is forgotten: nothing was decided.
        self.checks = [c for c in self.checks if c[0] != _CHK_PODLET]
        if self.podlet is not None:
            self.emit({"event": "podlet_removed", "podlet": self.podlet["serial"]})
        self.podlet = None
        self.podlet_genuine = None

    def _confirm_podlet(self, pod):
        """None if the chip in the slot is still pod's (its ROM ID read now), else why
        not: podlet_changed or podlet_unreadable. Then a running session ends, pod is
        forgotten and the chip in the slot is read as a new insertion."""
        rom = self.board.podlet.read_rom()
        if rom is not None and rom == podlet_fmt.rom_id(int(pod["serial"], 16)):
            return None
        if self.heating_state:
            self._end(session.END_PODLET_UNREADABLE if rom is None
                      else session.END_PODLET_CHANGED)
        self._forget_podlet()
        self.podlet_seen = 1
        self._queue_podlet()
        return "podlet_unreadable" if rom is None else "podlet_changed"

    def _queue_podlet(self):
        self.podlet_genuine = None
        self.checks.append([_CHK_PODLET,
                            self.trust.podlet_read_check(self.board.podlet.read_steps()),
                            None])

    def _podlet_checked(self, check):
        pod, reason = check.result
        self.podlet_genuine = pod
        self._decide_podlet(pod, reason)

    def _decide_podlet(self, pod, reason):
        """Accepts a genuine podlet (pod) the device may use now, else refuses it."""
        serial = pod["serial"] if pod is not None else None
        if reason is None and pod is not None:
            reason = self.trust.podlet_date(pod, self._decision_wall_s())
        if reason is None and pod is not None:
            if pod["podlet_type"] not in self.profiles:
                reason = "no_profile"
            elif self.ledger is None:
                reason = "ledger_error"
            elif self.ledger.podlet_ul(serial) >= pod["capacity_ul"]:
                reason = "used_up"
        if reason is not None or pod is None:
            self.emit({"event": "podlet_rejected", "podlet": serial,
                       "reason": reason or "unreadable"})
            return
        self.podlet = pod
        used = self.ledger.podlet_ul(serial) if self.ledger is not None else 0
        self.emit({"event": "podlet_accepted", "podlet": serial,
                   "podlet_type": pod["podlet_type"], "left_ul": pod["capacity_ul"] - used,
                   "expiry": pod["expiry"]})

    def start_session(self, reply=None):
        """Starts a session, or refuses it with a reason. While the podlet is being
        checked the start waits for it (and the checks queued before it) and returns
        None: reply(records), if given, gets the decision then. Else True if it started."""
        # A podlet inserted in this same period is queued once, here, ahead of the start.
        self.check_podlet()
        pending = self.podlet_pending()
        if (not pending and self.podlet is None and self.podlet_in
                and self.podlet_genuine is None):
            # A podlet refused earlier as unreadable or not genuine: read it once more.
            self._queue_podlet()
            pending = True
        if pending:
            # Queued behind the checks before it: _run_checks decides it (_start_now);
            # the boiler heats meanwhile (fw.session heat_early).
            self.checks.append([_CHK_START, None, reply])
            self.heat_early()
            return None
        return self._start_now(None)

    def install_profile(self, blob, reply=None):
        """Queues the check of a signed profile: once it is done (a slice a period), the
        profile is installed or refused; reply(records), if given, gets the decision."""
        self.checks.append([_CHK_PROFILE, self.trust.profile_check(blob), reply])

    def profile_refused(self, reason):
        """A profile push refused before it reached install_profile (the host link found
        its bytes' SHA-256 wrong, or its size too large): a decision like any other."""
        self.emit({"event": "profile_rejected", "reason": reason})

    def _profile_checked(self, check):
        prof, reason = check.result
        if prof is not None:
            # Version, then the atomic write; the signature is not checked again.
            prof, reason = self.trust.install(check.arg)
        if prof is None:
            self.emit({"event": "profile_rejected", "reason": reason})
            return False
        self.emit({"event": "profile_installed", "podlet_type": prof["podlet_type"],
                   "version": prof["version"], "name": prof["name"]})
        return True

    def acknowledge_warnings(self, arg):
        """A paired host acknowledged the warnings of a profile: arg is (podlet_type,
        version, host id hex); fw.course decides and keeps it."""
        self.course_record().acknowledge(self.profiles.get(arg[0]), arg, self.emit)

    def podlet_pending(self):
        """True while the inserted podlet's check is queued or running (status says
        checking; a start waits for it)."""
        for c in self.checks:
            if c[0] == _CHK_PODLET:
                return True
        return False
