"""Sessions and dosing, a part of fw.app.App (its base class Sessions): a session's
start and its refusals, the dose counted each step (dose_step, in the control step:
allocation-free), the ledger kept ahead of the pump, the session's end, and the mark on
flash by which the next boot ends a session a reset cut short. fw.app's state machine
calls it; nothing else imports it but fw.app and fw.intake (the END_* codes).
"""
import os

from micropython import const

from fw import config
from fw import codes
from fw import ledger as ledger_mod

# For the type checker only (its annotations below): nothing is imported on the device.
TYPE_CHECKING = const(0)
if TYPE_CHECKING:
    from typing import Any, Callable
    from fw.calib import Calib
    from fw.control import BoilerRush, OutletMpc
    from fw.course import Course
    from fw.journal import Journal
    from fw.ledger import Ledger
    from fw.trust import Trust

# Why a session ended (index into END_NAMES); 0 means it has not. The public ones are
# also fw.app's and fw.intake's.
_END_NONE = const(0)
_END_COMPLETED = const(1)
_END_MAX_SESSION = const(2)
_END_STOPPED = const(3)
END_PODLET_REMOVED = const(4)
END_FAULT = const(5)
_END_PODLET_EMPTY = const(6)
_END_MAX_DAY = const(7)
END_PODLET_CHANGED = const(8)
END_PODLET_UNREADABLE = const(9)
END_NAMES = (None, "completed", "max_session", "stopped", "podlet_removed", "fault",
             "podlet_empty", "max_day", "podlet_changed", "podlet_unreadable")
# Why a session a reset cut short ended, by the reset's cause (codes.RESET_*): its
# session_ended is recorded at the next boot.
RESET_END_NAMES = ("power_loss", "watchdog", "reset")
# On flash while a session runs: "<podlet serial> <its ledger ul at the start>".
_SESSION_FILE = "/session"
# What boots journal before they end an interrupted session, and how many records of
# the journal's tail are looked through for the record before them.
_BOOT_EVENTS = ("boot", "watchdog_reset")
_BOOT_RECORDS_MAX = const(16)
# Delivery patterns (podproto.profile_v2.PATTERNS' index).
_PATTERN_CONTINUOUS = const(0)
_PATTERN_PULSED = const(1)
_PATTERN_RAMPED = const(2)
_PATTERN_CODES = {"pulsed": _PATTERN_PULSED, "ramped": _PATTERN_RAMPED}
_PULSE_MASK = const(0xFFFFFF)   # pump.pulses() wraps modulo 2**24
# Sessions.early_heat: the boiler heats while a start waits for its podlet's check, or
# did until the user stopped it.
_EARLY_HEATING = const(1)
_EARLY_STOPPED = const(2)


class Sessions:
    """App's sessions and dosing (a base class of fw.app.App: its attributes are App's,
    made in App.__init__). What it uses of the rest of App, declared for the type
    checker (bare annotations: nothing at run time)."""
    board: "Any"
    trust: "Trust"
    ledger: "Ledger | None"
    course: "Course | None"
    journal: "Journal"
    profiles: "dict"
    outlet_ctl: "OutletMpc"
    boiler_pid: "BoilerRush"
    calib: "Calib | None"
    boiler_mc: int
    outlet_mc: int
    dose_rate_nl_s: int
    dose_steps: int
    pattern: int
    bolus_nl: int
    period_steps: int
    ramp_s: int
    pulse_left: int
    water_low: int
    tilted: int
    heating_state: int
    podlet_in: int
    podlet: "dict | None"
    podlet_genuine: "dict | None"
    readings: "Any"
    emit: "Callable[[dict], None]"
    uptime_s: "Callable[[], int]"
    _decision_wall_s: "Callable[[], int]"
    _decide_podlet: "Callable[[Any, Any], None]"
    _confirm_podlet: "Callable[[dict], str | None]"
    # heat_early's (fw.app makes none: the first heat_early, in service(), does).
    early_heat = 0

    def dose_step(self):
        """Pump rate for this step, and the session ended the step a limit is reached.
        The dose is what the encoder measured (session_nl; counted_nl says when it is
        never less than was commanded), not what was commanded alone: the
        command is the profile's volume by now less what was measured, so the pump's
        calibration error is trimmed out, and it is never more than the ledger already
        counts nor the limit allows, so the pump passes neither by more than one pulse
        (the encoder's resolution) and what one step of a miscalibrated pump adds."""
        r = self.readings
        if not self.dosing:
            self.warm_steps += 1
            # The steam path at the target: the controller's estimate of it (the
            # outlet's sensor lags it by ~1.5 s), confirmed by the reading.
            target = self.target_mc
            if ((self.outlet_ctl.nozzle_mc >= target - config.DOSE_START_BAND_MC
                 and self.outlet_mc >= target - config.DOSE_CONFIRM_BAND_MC)
                    or self.warm_steps >= config.DOSE_START_TIMEOUT_STEPS):
                self.dosing = 1
                self.dose_pulses0 = r.pump_pulses
            else:
                return 0
        counted = self.counted_nl()
        self.session_nl = counted
        if self.dose_steps >= self.session_limit_steps:
            self._end(_END_COMPLETED)
            return 0
        if counted >= self.dose_limit_nl:
            self._end(self.dose_limit_reason)
            return 0
        # Only what the ledger already counts may be delivered (service() reserves ahead).
        left_nl = min(self.dose_limit_nl, self.reserved_nl) - counted
        if left_nl <= 0:
            return 0
        # The pattern's volume by now (fw.session.pattern_rate): nl this step = (rate +
        # carried remainder) / steps per second, so odd rates are exact.
        acc = self.dose_rem + self.pattern_rate()
        step_nl = acc // config.STEPS_PER_S
        self.dose_rem = acc - step_nl * config.STEPS_PER_S
        # What the pump is behind the plan (counted up to the step before), a quarter
        # of it a step: the encoder counts whole pulses.
        behind = self.planned_nl - counted
        self.planned_nl += step_nl
        if step_nl <= 0:
            # The pattern asks for none (pulsed, between boluses): the pump is off, what
            # it is behind is trimmed in the next bolus (or stays under one pulse).
            self.dose_steps += 1
            return 0
        want = step_nl + (behind >> 2)
        # Trimmed by at most an eighth: a pump off by more is a fault, not calibration.
        most = step_nl + (step_nl >> 3) + 1
        if want > most:
            want = most
        least = step_nl - (step_nl >> 3)
        if want < least:
            want = least
        if want > left_nl:
            want = left_nl
        self.readings.dose_commanded_nl += want
        self.dose_steps += 1
        return want * config.STEPS_PER_S

    def counted_nl(self):
        """The session's dose as the ledger and the limits count it: nl the encoder
        counted since dosing began, but on a board whose encoder may miss edges
        (readings.pump_may_miss: realboard.Pump.MAY_MISS_EDGES) never less than what was
        commanded, so an encoder blind during a flash write reads as a pump no further
        behind, and nothing is trimmed up to make the missing edges good.
        Allocation-free."""
        r = self.readings
        m = ((r.pump_pulses - self.dose_pulses0) & _PULSE_MASK) * r.pump_nl_per_pulse
        if r.pump_may_miss and r.dose_commanded_nl > m:
            return r.dose_commanded_nl
        return m

    def pattern_rate(self):
        """The pump rate (nl/s, i.e. tenths of a nl a step) the session's delivery
        pattern asks for at this step of dosing: continuous, the profile's rate; pulsed,
        that rate until the period's bolus is asked for (its last step only what is left
        of it), then none until the next period; ramped, the rate times the whole seconds
        of dosing so far (the current one included) over ramp_s, until ramp_s.
        Allocation-free, small ints (rate x ramp_s < 2**27)."""
        rate = self.dose_rate_nl_s
        kind = self.pattern
        if kind == _PATTERN_PULSED:
            if self.dose_steps % self.period_steps == 0:
                self.pulse_left = self.bolus_nl * config.STEPS_PER_S
            left = self.pulse_left
            if left < rate:
                rate = left
            self.pulse_left = left - rate
        elif kind == _PATTERN_RAMPED:
            s = self.dose_steps // config.STEPS_PER_S
            if s < self.ramp_s:
                rate = rate * (s + 1) // self.ramp_s
        return rate

    def _end(self, reason):
        if self.early_heat:
            # No session yet (heat_early): nothing to end but the heat; a stop refuses
            # the start that waits (any other reason refuses it by itself).
            if reason == _END_STOPPED:
                self.early_heat = _EARLY_STOPPED
        elif self.end_reason == _END_NONE:
            self.end_reason = reason
        if self.state != codes.ST_FAULT:
            self.state = codes.ST_COOLDOWN
        self.dosing = 0

    def heat_early(self):
        """A start waits for its podlet's signature check (fw.intake start_session): the
        boiler heats meanwhile, up to config.EARLY_HEAT_MC, unless the start is refused
        whatever the check says. Nothing else starts: the ledger, the limits, the dose
        and the rest of the heat-up wait for _start_now, once the check has passed."""
        if (self.state != codes.ST_IDLE or self.ledger is None or not self.podlet_in
                or self.water_low or self.tilted):
            return
        self.early_heat = _EARLY_HEATING
        pid = self.boiler_pid
        pid.target_mc = config.EARLY_HEAT_MC
        pid.hold = 0
        pid.reset(self.boiler_mc)
        self.dosing = 0
        self.state = codes.ST_PREHEAT

    def _start_now(self, _arg):
        early = self.early_heat
        started = self._start_checked(early)
        if early:
            self.early_heat = 0
            self.boiler_pid.hold = 1
            if not started and self.state != codes.ST_FAULT and self.state != codes.ST_IDLE:
                self.state = codes.ST_COOLDOWN
        return started

    def _start_checked(self, early):
        """_start_now's decision; early: how the heat before it went (heat_early)."""
        if self.podlet is None and self.podlet_in and self.podlet_genuine is not None:
            # A genuine podlet refused earlier (say, before its profile arrived): again.
            self._decide_podlet(self.podlet_genuine, None)
        pod = self.podlet
        led = self.ledger
        prof = None
        if pod is not None:
            prof = self.profiles.get(pod["podlet_type"])
        reason = None
        if self.state == codes.ST_FAULT:
            reason = "fault"
        elif early == _EARLY_STOPPED:
            reason = "stopped"
        elif self.state != codes.ST_IDLE and early != _EARLY_HEATING:
            reason = "busy"
        elif led is None:
            reason = "ledger_error"
        elif pod is None:
            reason = "no_podlet"
        elif self.water_low:
            reason = "water_low"
        elif self.tilted:
            reason = "tilted"
        elif prof is None:
            reason = "no_profile"
        if reason is None and pod is not None:
            # The chip in the slot now, not only the one read at its insertion.
            reason = self._confirm_podlet(pod)
        if reason is None and pod is not None:
            # Accepted when it was inserted, and perhaps left in the slot past its expiry.
            reason = self.trust.podlet_date(pod, self._decision_wall_s())
            if reason is not None:
                self.podlet = None
                self.emit({"event": "podlet_rejected", "podlet": pod["serial"],
                           "reason": reason})
        if reason is not None or pod is None or prof is None or led is None:
            self.emit({"event": "session_refused", "reason": reason or "no_podlet"})
            return False
        # The limits, on the limit clock (see fw.ledger): the worst case after any boot.
        # It counts whole seconds, rounded down: n seconds on it may be n - 1 and a bit
        # in truth. So a wait of n seconds needs n + 1 on it, and a dose counts in the
        # day for a second more than 24 h.
        now = led.now_s(self.uptime_s())
        since = led.since_start_s(now)
        pod_left = pod["capacity_ul"] - led.podlet_ul(pod["serial"])
        day_left = prof["max_day_ul"] - led.day_ul(now - 1)
        if since is not None and prof["min_interval_s"] and since <= prof["min_interval_s"]:
            reason = "min_interval"
        elif "min_spacing_s" in prof:
            # A v2 profile's course (fw.course): its acknowledgement and its spacing.
            reason = self.course_record().refusal(prof, now)
        if reason is None and pod_left <= 0:
            reason = "podlet_empty"
        elif reason is None and day_left <= 0:
            reason = "max_day"
        if reason is not None:
            self.emit({"event": "session_refused", "reason": reason})
            return False
        limit_ul = prof["max_session_ul"]
        self.dose_limit_reason = _END_MAX_SESSION
        if pod_left < limit_ul:
            limit_ul = pod_left
            self.dose_limit_reason = _END_PODLET_EMPTY
        if day_left < limit_ul:
            limit_ul = day_left
            self.dose_limit_reason = _END_MAX_DAY
        if "min_spacing_s" in prof:
            # A course's start before the ledger's: a cut between only makes it wait.
            self.course_record().started(prof["podlet_type"], now)
        # Marked before the first commit of its doses: a reset from here on leaves the
        # mark for the next boot to end the session by (end_interrupted_session).
        self._mark_session(pod["serial"], led.podlet_ul(pod["serial"]))
        led.begin(pod["serial"], now)
        self.dose_limit_nl = limit_ul * 1000
        self.reserved_nl = 0
        self.session_nl = 0
        self.session_prof = prof
        self.session_podlet = pod
        self.reserve_ahead()
        self.dose_rate_nl_s = prof["dose_rate_ul_min"] * 1000 // 60
        # The delivery pattern (format 2; a v1 profile is continuous): see pattern_rate.
        self.pattern = _PATTERN_CODES.get(prof.get("pattern"), _PATTERN_CONTINUOUS)
        self.bolus_nl = prof.get("bolus_ul", 0) * 1000
        self.period_steps = max(1, prof.get("period_s", 0) * config.STEPS_PER_S)
        self.ramp_s = prof.get("ramp_s", 0)
        self.pulse_left = 0
        self.session_limit_steps = prof["session_s"] * config.STEPS_PER_S
        self.target_mc = prof["outlet_target_mc"]
        self.dose_rem = 0
        self.planned_nl = 0
        self.readings.dose_commanded_nl = 0
        self.dose_steps = 0
        self.dosing = 0
        self.end_reason = _END_NONE
        ctl = self.outlet_ctl
        ctl.target_mc = self.target_mc
        # Before heating, the outlet reads the room: the feed-forward's ambient.
        ctl.ambient_mc = max(5000, min(40000, self.outlet_mc))
        ctl.pump_nl_s = 0
        ctl.reset(self.outlet_mc)
        # The feed-forward from the unit's measured model (fw.calib: the defaults when
        # it has none), whose windows measure this session too.
        cal = self.calib_record()
        cal.start(self.outlet_mc, self.boiler_mc)
        ctl.loss_mw_per_k = self.boiler_pid.loss_mw_per_k = cal.loss_mw_per_k
        ctl.nozzle_half_w = cal.nozzle_half_w
        self.boiler_pid.target_mc = config.BOIL_HOLD_MC
        self.boiler_pid.reset(self.boiler_mc)
        self.state = codes.ST_PREHEAT
        self.emit({"event": "session_started", "podlet": pod["serial"],
                   "podlet_type": pod["podlet_type"], "profile": prof["name"],
                   "version": prof["version"], "target_c": prof["outlet_target_mc"] / 1000,
                   "limit_ul": limit_ul})
        return True

    def calib_record(self):
        """The measured heat model (fw.calib), loaded at its first use: a device that
        never starts a session needs none of its heap. One unreadable says so."""
        c = self.calib
        if c is None:
            from fw import calib
            c = self.calib = calib.Calib(self.board.data_dir, self.outlet_ctl.heater_w,
                                         self.readings)
            c.ctl = self.outlet_ctl
            if c.problem:
                self.emit({"event": "record_doubt", "reason": c.problem})
        return c

    def course_record(self):
        """The course record (fw.course), loaded at its first use: only v2 profiles'
        starts and acknowledgements need it. In doubt, it counts from the ledger's floor
        then (later than at boot: a longer wait) and says so."""
        c = self.course
        if c is None:
            from fw import course
            floor_s = self.ledger.floor_s if self.ledger is not None else 0
            c = self.course = course.Course(self.board.data_dir, floor_s)
            if c.problem:
                self.emit({"event": "record_doubt", "reason": c.problem})
        return c

    def reserve_ahead(self):
        """Keeps the ledger ahead of the pump, and never more than CHUNK_UL ahead of what
        was counted: when what is reserved would run out within two steps, the
        reservation is topped up to CHUNK_UL past the dose counted so far. service()
        runs between steps, so the pump never waits for flash, and a power cut
        over-counts by at most one commit's worth (plus the step being pumped)."""
        limit_ul = self.dose_limit_nl // 1000
        reserved_ul = self.reserved_nl // 1000
        if reserved_ul >= limit_ul:
            return
        # Three steps: the encoder counts a step late, and the command may be trimmed up.
        margin_nl = 3 * (self.dose_rate_nl_s // config.STEPS_PER_S + 1)
        if self.reserved_nl - self.session_nl > margin_nl:
            return
        led = self.ledger
        pod = self.session_podlet
        if led is None or pod is None:
            return
        ul = min(limit_ul, self.session_nl // 1000 + ledger_mod.CHUNK_UL) - reserved_ul
        if ul <= 0:
            return
        led.reserve(pod["serial"], ul, led.now_s(self.uptime_s()))
        self.reserved_nl += ul * 1000

    def _stamp(self):
        """The ledger counts a session in the day as of its day entry's time, which each
        reservation sets, but the pump runs on after it; and after a power cut the limit
        clock resumes from the ledger's floor. So in a session nothing moves the floor
        without this first: the entry's time set to now (a reservation of nothing)."""
        pod = self.session_podlet
        if self.session_prof is not None and pod is not None and self.ledger is not None:
            self.ledger.reserve(pod["serial"], 0, self.ledger.now_s(self.uptime_s()))

    def stop_session(self):
        if self.heating_state:
            self._end(_END_STOPPED)
        else:
            self.emit({"event": "command_rejected", "reason": "no_session"})

    def _finish_session(self):
        reason = END_NAMES[self.end_reason]
        self.end_reason = _END_NONE
        pod = self.session_podlet
        if pod is not None and self.ledger is not None:
            led = self.ledger
            now = led.now_s(self.uptime_s())
            self._stamp()
            # Measured now (the last step's command has been delivered since). The true
            # volume is at most the pulse the encoder has not counted more: the ledger is
            # charged that pulse too, rounded up, so what a podlet and a day count is
            # never less than what went out, however many sessions the lag adds up over.
            delivered_ul = 0
            if self.dose_steps:
                self.session_nl = self.counted_nl()
                delivered_ul = (self.session_nl + self.readings.pump_nl_per_pulse
                                + 999) // 1000
            unused_ul = self.reserved_nl // 1000 - delivered_ul
            if unused_ul < 0:
                # The last step's pulse past the reservation: counted too.
                led.reserve(pod["serial"], -unused_ul, now)
            else:
                led.settle(pod["serial"], unused_ul, now)
        self.session_prof = None
        self.emit({"event": "session_ended", "reason": reason,
                   "session_ul": self.session_nl / 1000, "dose_s": self.dose_steps // config.STEPS_PER_S})
        self._unmark_session()

    def _mark_session(self, serial, ul):
        path = self.board.data_dir + _SESSION_FILE
        with open(path + ".new", "w") as f:
            f.write("%s %d\n" % (serial, ul))
        os.rename(path + ".new", path)

    def _unmark_session(self):
        try:
            os.remove(self.board.data_dir + _SESSION_FILE)
        except OSError:
            pass

    def _journaled_end(self):
        """True if the journal's last record from before the boots since (a reset can
        come again before the mark is gone) is a session_ended."""
        j = self.journal
        tail = j.read(max(1, j.next_seq() - _BOOT_RECORDS_MAX), _BOOT_RECORDS_MAX)
        for i in range(len(tail) - 1, -1, -1):
            event = tail[i][1].get("event")
            if event not in _BOOT_EVENTS:
                return event == "session_ended"
        return False

    def end_interrupted_session(self, cause):
        """At boot: a session the reset (codes.RESET_* cause) cut short ends now, its
        reason the reset's and its dose what the ledger counted for it (reserved before
        it was pumped: at most a chunk more than the pump gave). A session whose
        session_ended reached the journal before the reset ends no second time."""
        try:
            with open(self.board.data_dir + _SESSION_FILE) as f:
                serial, ul = f.read().split()
            ul = int(ul)
        except (OSError, ValueError):
            return
        if not self._journaled_end():
            counted = 0
            if self.ledger is not None:
                counted = max(0, self.ledger.podlet_ul(serial) - ul)
            self.emit({"event": "session_ended", "reason": RESET_END_NAMES[cause],
                       "podlet": serial, "session_ul": counted})
        self._unmark_session()
