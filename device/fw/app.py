"""The steamer's application: states, sessions and dosing around the control step.

`step()` is the hard-real-time part (sensors, controller, supervisor, actuators) and
allocates nothing: it only moves small ints between attributes made in __init__.
`service()` runs after it, outside the heap lock, and does everything that may
allocate: commands, podlet reading, profile checks and emitting decisions.
"""
import gc
import os
from array import array

from micropython import const

from fw import config
from fw import control
from fw import audit
from fw import codes
from fw import journal
from fw import ledger as ledger_mod
from fw import ntc
from fw import safety
from fw import trust
from podproto import podlet as podlet_fmt

# Why a session ended (index into END_NAMES); 0 means it has not.
_END_NONE = const(0)
_END_COMPLETED = const(1)
_END_MAX_SESSION = const(2)
_END_STOPPED = const(3)
_END_PODLET_REMOVED = const(4)
_END_FAULT = const(5)
_END_PODLET_EMPTY = const(6)
_END_MAX_DAY = const(7)
_END_PODLET_CHANGED = const(8)
_END_PODLET_UNREADABLE = const(9)
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

# Button: a press shorter than this starts / stops / acknowledges; longer is a hold.
_PRESS_MAX_STEPS = const(20)
# Holding it this long opens the pairing window, which stays open while it is held
# and _PAIR_GRACE_STEPS after: a pair request the host wrote while the button was held
# may wait a few connection intervals in the stack and up to a period in the link's
# ring before service() reads it, and is still answered. Once accepted, the pairing's
# X25519 work finishes whether or not the button is still held.
_PAIR_HOLD_STEPS = const(30)
_PAIR_GRACE_STEPS = const(10)
# Holding it this long while idle is the owner's say-so for the clock: the next clock
# set within CLOCK_WINDOW_S is taken as it is, back or far ahead (the way back from a
# wrong far-future set). Well past a pairing hold (3 s, and a pairing takes up to ~10 s).
CLOCK_HOLD_S = const(20)
CLOCK_WINDOW_S = const(120)
_CLOCK_HOLD_STEPS = const(200)

FAULT_LOG_LEN = const(32)
_FAULT_FIELDS = const(6)   # code, sensor, raw, value, limit, uptime_s

# What waits in App.checks: a signature check of a podlet or a profile, or a session
# start waiting for the checks before it.
_CHK_PODLET = const(1)
_CHK_PROFILE = const(2)
_CHK_START = const(3)

# A session confirms every this many steps that its podlet's chip is still the one in
# the slot (fw.idchip read_rom): a swap within one period leaves no presence edge.
_CONFIRM_STEPS = const(5)



class App:
    def __init__(self, board):
        self.board = board
        self.boiler_pid = control.BoilerPid()
        self.outlet_ctl = control.OutletController()
        self.sup = safety.Supervisor()
        self.state = codes.ST_IDLE
        # Uptime as whole seconds and steps into the second: a count of steps would leave
        # the 32-bit boards' small ints (and allocate in the step) after 3.4 years.
        self.up_s = 0
        self.tick = 0
        self.alloc_errors = 0
        self.step_us = 0
        # Sensor readings and outputs of the current step.
        self.boiler_raw = 0
        self.outlet_raw = 0
        self.boiler_mc = 0
        self.outlet_mc = 0
        self.water_low = 0
        self.tilted = 0
        self.heating_state = 0
        self.heater_pm = 0
        self.pump_nl_s = 0
        self.pump_pulses = 0
        self.pump_nl_per_pulse = board.pump.NL_PER_PULSE
        self.podlet_in = 0
        # Fault latched in step(), recorded and emitted by service().
        self.fault = codes.F_NONE
        self.fault_pending = 0
        self.fault_log = array("i", [0] * (FAULT_LOG_LEN * _FAULT_FIELDS))
        self.fault_count = 0
        # Session: parameters set by service() at start, counters run by step().
        self.target_mc = 0
        self.session_limit_steps = 0
        self.dose_steps = 0
        self.dose_rate_nl_s = 0
        self.dose_limit_nl = 0
        self.dose_limit_reason = _END_MAX_SESSION
        self.reserved_nl = 0        # committed to the ledger: the pump may not pass it
        self.session_nl = 0
        self.dose_rem = 0
        self.dosing = 0
        self.warm_steps = 0
        self.hold_steps = 0
        self.end_reason = _END_NONE
        # Button edges, counted in step(), acted on in service().
        self.button_steps = 0
        self.button_press = 0
        self.pair_request = 0       # the hold reached _PAIR_HOLD_STEPS
        self.pair_release = 0       # and the button was let go since
        self.pairing_until = 0      # the grace after the release ends at this step
        self.pairing_from = 0       # step the window opened
        self.clock_request = 0      # the hold reached _CLOCK_HOLD_STEPS
        self.clock_until = 0        # a clock set before this step is the owner's
        # The host link (fw.ble), when the board has a radio; serviced outside the step.
        self.link = None
        # The session log the host syncs: decisions, and samples once a second in session.
        self.journal = journal.Journal(board.data_dir)
        # Not in the step: Python objects for service().
        self.podlet = None          # the accepted podlet's dict
        self.podlet_seen = 0        # a podlet is in and has been read
        self.podlet_genuine = None  # the podlet in, if its signature verified
        # Signature checks take a second and more on a board: they run in bounded slices
        # (trust.Check), as many per service() as the board affords, oldest first.
        # Items: [kind, check, reply].
        self.checks = []
        self.check_slices = getattr(board, "CHECK_SLICES_PER_PERIOD", 1)
        self._captured = None       # decision records being collected (_decide)
        self.session_podlet = None
        self.session_prof = None
        d = board.data_dir
        self.audit = audit.Audit(d)
        self.trust = trust.Trust(d)
        self.profiles = self.trust.profiles     # podlet_type -> profile dict
        try:
            self.ledger = ledger_mod.Ledger(d)
            self.ledger_problem = None
        except ledger_mod.LedgerError as e:
            # Without a ledger nothing is known of past doses: no session may start.
            self.ledger = None
            self.ledger_problem = str(e)

    # ---- the control step: allocation-free -------------------------------------
    def step(self):
        b = self.board
        tick = self.tick + 1
        if tick == config.STEPS_PER_S:
            tick = 0
            self.up_s += 1
        self.tick = tick
        braw = b.boiler_ntc.read()
        oraw = b.outlet_ntc.read()
        self.boiler_raw = braw
        self.outlet_raw = oraw
        self.boiler_mc = ntc.to_mc(ntc.BOILER_MC, braw)
        self.outlet_mc = ntc.to_mc(ntc.OUTLET_MC, oraw)
        self.water_low = b.water_low.value()
        self.tilted = b.tilt.value()
        self.pump_pulses = b.pump.pulses()
        self.podlet_in = b.podlet.present()
        self._button(b.button.value())

        if self.heating_state and not self.podlet_in:
            self._end(_END_PODLET_REMOVED)
        state = self.state
        heater = 0
        pump = 0
        if state == codes.ST_PREHEAT or state == codes.ST_READY:
            heater = self.boiler_pid.update(self.boiler_mc)
            if state == codes.ST_PREHEAT and self.boiler_mc >= config.READY_MC:
                self.state = codes.ST_READY
                self.hold_steps = 0
            elif state == codes.ST_READY:
                self.hold_steps += 1
                if self.hold_steps >= config.READY_HOLD_STEPS:
                    self.state = codes.ST_STEAMING
                    self.outlet_ctl.reset(self.outlet_mc)
                    self.warm_steps = 0
        elif state == codes.ST_STEAMING:
            pump = self._dose()
            self.outlet_ctl.pump_nl_s = pump
            heater = self.outlet_ctl.update(self.outlet_mc)
        elif state == codes.ST_COOLDOWN:
            if self.boiler_mc < config.COOLDOWN_END_MC:
                self.state = codes.ST_IDLE
        self.heating_state = 1 if (self.state == codes.ST_PREHEAT or self.state == codes.ST_READY
                                   or self.state == codes.ST_STEAMING) else 0

        fault = self.sup.check(self)
        if fault != codes.F_NONE and self.state != codes.ST_FAULT:
            self.latch(fault)
        if self.sup.inhibit:
            heater = 0
            pump = 0
        if self.state == codes.ST_FAULT:
            heater = 0
            pump = 0
            if fault == codes.F_HEATER_STUCK_ON or fault == codes.F_OVERTEMP_BOILER:
                b.heater_cutoff.open()
        b.heater.set(heater)
        b.pump.set(pump)
        self.heater_pm = heater
        self.pump_nl_s = pump
        b.watchdog.feed()

    def _button(self, pressed):
        if pressed:
            self.button_steps += 1
            if self.button_steps == _PAIR_HOLD_STEPS:
                self.pair_request = 1
            elif self.button_steps == _CLOCK_HOLD_STEPS:
                self.clock_request = 1
        elif self.button_steps:
            if self.button_steps <= _PRESS_MAX_STEPS:
                self.button_press = 1
            elif self.button_steps >= _PAIR_HOLD_STEPS:
                self.pair_release = 1
            self.button_steps = 0

    def _dose(self):
        """Pump rate for this step, with the dose counted before it is delivered, and
        the session ended the step a limit is reached."""
        if not self.dosing:
            self.warm_steps += 1
            if (self.outlet_mc >= self.target_mc - config.DOSE_START_BAND_MC
                    or self.warm_steps >= config.DOSE_START_TIMEOUT_STEPS):
                self.dosing = 1
            else:
                return 0
        if self.dose_steps >= self.session_limit_steps:
            self._end(_END_COMPLETED)
            return 0
        if self.session_nl >= self.dose_limit_nl:
            self._end(self.dose_limit_reason)
            return 0
        # Only what the ledger already counts may be delivered (service() reserves ahead).
        left_nl = min(self.dose_limit_nl, self.reserved_nl) - self.session_nl
        if left_nl <= 0:
            return 0
        rate = self.dose_rate_nl_s
        # nl this step = (rate + carried remainder) / steps per second.
        acc = self.dose_rem + rate
        step_nl = acc // config.STEPS_PER_S
        if step_nl >= left_nl:
            # The last of what may be pumped: the pump was already commanded dose_rem
            # tenths of a nl more than counted, so it gets exactly what is left.
            step_nl = left_nl
            acc = left_nl * config.STEPS_PER_S
            rate = acc - self.dose_rem
        self.dose_rem = acc - step_nl * config.STEPS_PER_S
        self.session_nl += step_nl
        self.dose_steps += 1
        return rate

    def _end(self, reason):
        if self.end_reason == _END_NONE:
            self.end_reason = reason
        if self.state != codes.ST_FAULT:
            self.state = codes.ST_COOLDOWN
        self.dosing = 0

    def latch(self, fault):
        """Latches fault: ends a session that is heating and holds the steamer in FAULT
        until the user acknowledges it. Allocation-free: the control step calls it."""
        self.fault = fault
        self.fault_pending = 1
        if self.heating_state:
            self._end(_END_FAULT)
        self.state = codes.ST_FAULT
        self.dosing = 0

    # ---- service: everything that may allocate ---------------------------------
    def service(self):
        if self.fault_pending:
            self._record_fault()
        if self.end_reason != _END_NONE:
            self._finish_session()
        cmd = self.board.poll_command()
        while cmd is not None:
            self.command(cmd[0], cmd[1])
            cmd = self.board.poll_command()
        self._check_podlet()
        self._run_checks()
        if self.button_press:
            self.button_press = 0
            self._on_button()
        if self.pair_request:
            # open_s 0: opened, for as long as the button is held.
            self.pair_request = 0
            self.pairing_from = self.steps
            self.emit({"event": "pairing_window", "open_s": 0})
        if self.pair_release:
            # Closing: open_s is how long it was open, its grace included.
            self.pair_release = 0
            self.pairing_until = self.steps + _PAIR_GRACE_STEPS
            self.emit({"event": "pairing_window", "open_s": (
                self.pairing_until - self.pairing_from) // config.STEPS_PER_S})
        if self.clock_request:
            self.clock_request = 0
            if self.state == codes.ST_IDLE:
                self.clock_until = self.steps + CLOCK_WINDOW_S * config.STEPS_PER_S
                self.emit({"event": "clock_window", "open_s": CLOCK_WINDOW_S})
        if self.session_prof is not None and self.state == codes.ST_STEAMING:
            self._reserve_ahead()
        if self.ledger is not None and self.session_prof is None:
            # Not in a session: there only its own commits move the floor (_stamp).
            self.ledger.keep_floor(self.uptime_s())
        if self.heating_state and self.tick == 0:
            self._sample()
        if self.link is not None:
            self.link.service()

    def attach_link(self, link):
        """The host link (fw.ble.Link), serviced from service()."""
        self.link = link

    def pairing_open(self):
        """True while the button is held past _PAIR_HOLD_STEPS, and for
        _PAIR_GRACE_STEPS after it is let go."""
        return self.button_steps >= _PAIR_HOLD_STEPS or self.steps < self.pairing_until

    def command(self, name, arg, reply=None):
        """Commands from the host link or the device's own UI. Returns True when the
        decision waits for a signature check; reply(records), if given, gets the
        decision records then."""
        if name == "start_session":
            return self.start_session(reply) is None
        elif name == "stop_session":
            self.stop_session()
        elif name == "install_profile":
            self.install_profile(arg, reply)
            return True
        elif name == "set_clock":
            self.set_clock(arg)
        elif name == "ack_faults":
            self.ack_faults()
        else:
            self.emit({"event": "command_rejected", "reason": "unknown_command"})

    def _on_button(self):
        if self.state == codes.ST_FAULT:
            self.ack_faults()
        elif self.state == codes.ST_IDLE:
            self.start_session()
        elif self.heating_state:
            self.stop_session()

    def emit(self, record):
        """A decision: to the board (the sim's trace) and to the journal on flash."""
        self.board.emit(record)
        self.audit.append(record)
        self.log(record)
        if self._captured is not None:
            self._captured.append(record)

    def log(self, record):
        """A record for the host's history: wall time (None until the clock is set) and
        milliseconds since boot."""
        record["t"] = self.board.clock_s() or None
        record["t_ms"] = self.steps * config.PERIOD_MS
        self.journal.append(record)

    def _sample(self):
        self.log({"event": "sample", "state": codes.STATE_NAMES[self.state],
                  "boiler_c": self.boiler_mc / 1000, "outlet_c": self.outlet_mc / 1000,
                  "heater_pct": self.heater_pm / 10, "pump_ul_min": self.pump_nl_s * 60 / 1000,
                  "session_ul": self.session_nl / 1000})

    def _record_fault(self):
        self.fault_pending = 0
        sup = self.sup
        i = (self.fault_count % FAULT_LOG_LEN) * _FAULT_FIELDS
        log = self.fault_log
        log[i] = self.fault
        log[i + 1] = sup.sensor
        log[i + 2] = sup.raw
        log[i + 3] = sup.value
        log[i + 4] = sup.limit
        log[i + 5] = self.up_s
        self.fault_count += 1
        self.emit({"event": "fault_latched", "code": codes.FAULT_NAMES[self.fault],
                   "sensor": codes.SENSOR_NAMES[sup.sensor], "raw": sup.raw,
                   "value": sup.value, "limit": sup.limit})

    def faults(self):
        """The latched-fault log, oldest first (at most FAULT_LOG_LEN)."""
        out = []
        n = min(self.fault_count, FAULT_LOG_LEN)
        for k in range(self.fault_count - n, self.fault_count):
            i = (k % FAULT_LOG_LEN) * _FAULT_FIELDS
            log = self.fault_log
            out.append({"code": codes.FAULT_NAMES[log[i]], "sensor": codes.SENSOR_NAMES[log[i + 1]],
                        "raw": log[i + 2], "value": log[i + 3], "limit": log[i + 4],
                        "uptime_s": log[i + 5]})
        return out

    def ack_faults(self):
        if self.state != codes.ST_FAULT:
            return
        if self.boiler_mc >= config.SAFE_ACK_MC:
            self.emit({"event": "fault_ack_refused", "reason": "boiler_hot",
                       "boiler_c": self.boiler_mc // 1000})
            return
        code = codes.FAULT_NAMES[self.fault]
        self.fault = codes.F_NONE
        self.sup.reset()
        self.state = codes.ST_IDLE
        self.emit({"event": "fault_cleared", "code": code})

    def uptime_s(self):
        return self.up_s

    @property
    def steps(self):
        """Steps since boot (outside the step only: it may be a long int)."""
        return self.up_s * config.STEPS_PER_S + self.tick

    @steps.setter
    def steps(self, n):
        self.up_s = n // config.STEPS_PER_S
        self.tick = n % config.STEPS_PER_S

    def wall_s(self):
        """The newest wall-clock time the device can vouch for: its clock if the host
        set it since boot, or the ledger's lower bound (the newest time recorded, plus
        the time powered since) if that is later; 0 if neither knows one."""
        now = self.board.clock_s()
        led = self.ledger
        if led is not None:
            now = max(now, led.wall_s(led.now_s(self.uptime_s())))
        return now

    def _decision_wall_s(self):
        """wall_s() for a decision that depends on it (a podlet's expiry), recorded in
        the ledger first if it is newer than the newest time recorded: the clock is never
        set below a recorded time, so no power cut and clock set can undo the decision."""
        wall = self.wall_s()
        led = self.ledger
        if wall and led is not None and wall > led.wall_floor_s:
            self._stamp()
            led.see_wall(wall, self.uptime_s())
        return wall

    def set_clock(self, epoch_s):
        """The host's time, never earlier than the newest time already recorded nor
        more than ledger.WALL_AHEAD_MAX_S past the newest it can vouch for; within the
        owner's window (the button held CLOCK_HOLD_S while idle) and still idle, taken
        as it is, once."""
        if self.ledger is None:
            self.board.set_clock_s(epoch_s)
            return
        if self.steps < self.clock_until and self.state == codes.ST_IDLE:
            self.clock_until = 0
            was = self.wall_s()
            self.board.set_clock_s(self.ledger.confirm_wall(epoch_s, self.uptime_s()))
            self.emit({"event": "clock_confirmed", "asked_s": epoch_s, "floor_s": was})
            return
        self._stamp()
        t = self.ledger.see_wall(epoch_s, self.uptime_s(), self.board.clock_s())
        if t != epoch_s:
            self.emit({"event": "clock_clamped", "asked_s": epoch_s, "floor_s": t})
        self.board.set_clock_s(t)

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

    # ---- signature checks, in slices across periods ----------------------------
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

    def collect(self, fn, arg):
        """fn(arg), and the decision records it emitted (also to an outer collect). The
        one way to learn what a call decided: the BLE link answers host commands with it."""
        outer = self._captured
        self._captured = []
        try:
            fn(arg)
        finally:
            got = self._captured
            self._captured = outer
            if outer is not None:
                outer.extend(got)
        return got

    def finish_checks(self):
        """Runs every pending check, and what waits for it, to its end now; returns the
        decision records made meanwhile. For tests and tools: the loop runs the board's
        slices a period."""
        return self.collect(self._drain_checks, None)

    def _drain_checks(self, _arg):
        while self.checks:
            self._run_checks()

    def _check_podlet(self):
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
            self._end(_END_PODLET_UNREADABLE if rom is None else _END_PODLET_CHANGED)
        self._forget_podlet()
        self.podlet_seen = 1
        self._queue_podlet()
        return "podlet_unreadable" if rom is None else "podlet_changed"

    def _queue_podlet(self):
        self.podlet_genuine = None
        self.checks.append([_CHK_PODLET, self.trust.podlet_check(self.board.podlet.read()),
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
                   "podlet_type": pod["podlet_type"], "left_ul": pod["capacity_ul"] - used})

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

    def start_session(self, reply=None):
        """Starts a session, or refuses it with a reason. While the podlet is being
        checked the start waits for it (and the checks queued before it) and returns
        None: reply(records), if given, gets the decision then. Else True if it started."""
        # A podlet inserted in this same period is queued once, here, ahead of the start.
        self._check_podlet()
        pending = self.podlet_pending()
        if (not pending and self.podlet is None and self.podlet_in
                and self.podlet_genuine is None):
            # A podlet refused earlier as unreadable or not genuine: read it once more.
            self._queue_podlet()
            pending = True
        if pending:
            self.checks.append([_CHK_START, None, reply])
            return None
        return self._start_now(None)

    def podlet_pending(self):
        """True while the inserted podlet's check is queued or running (status says
        checking; a start waits for it)."""
        for c in self.checks:
            if c[0] == _CHK_PODLET:
                return True
        return False

    def _start_now(self, _arg):
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
        elif self.state != codes.ST_IDLE:
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
        elif pod_left <= 0:
            reason = "podlet_empty"
        elif day_left <= 0:
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
        # Marked before the first commit of its doses: a reset from here on leaves the
        # mark for the next boot to end the session by (end_interrupted_session).
        self._mark_session(pod["serial"], led.podlet_ul(pod["serial"]))
        led.begin(pod["serial"], now)
        self.dose_limit_nl = limit_ul * 1000
        self.reserved_nl = 0
        self.session_nl = 0
        self.session_prof = prof
        self.session_podlet = pod
        self._reserve_ahead()
        self.dose_rate_nl_s = prof["dose_rate_ul_min"] * 1000 // 60
        self.session_limit_steps = prof["session_s"] * config.STEPS_PER_S
        self.target_mc = prof["outlet_target_mc"]
        self.dose_rem = 0
        self.dose_steps = 0
        self.dosing = 0
        self.end_reason = _END_NONE
        ctl = self.outlet_ctl
        ctl.target_mc = self.target_mc
        # Before heating, the outlet reads the room: the feed-forward's ambient.
        ctl.ambient_mc = max(5000, min(40000, self.outlet_mc))
        self.boiler_pid.target_mc = config.BOIL_HOLD_MC
        self.boiler_pid.reset(self.boiler_mc)
        self.state = codes.ST_PREHEAT
        self.emit({"event": "session_started", "podlet": pod["serial"],
                   "podlet_type": pod["podlet_type"], "profile": prof["name"],
                   "version": prof["version"], "target_c": prof["outlet_target_mc"] / 1000,
                   "limit_ul": limit_ul})
        return True

    def _reserve_ahead(self):
        """Keeps the ledger ahead of the pump, and never more than CHUNK_UL ahead of what
        was counted: when what is reserved would run out within two steps, the
        reservation is topped up to CHUNK_UL past the dose counted so far. service()
        runs between steps, so the pump never waits for flash, and a power cut
        over-counts by at most one commit's worth (plus the step being pumped)."""
        limit_ul = self.dose_limit_nl // 1000
        reserved_ul = self.reserved_nl // 1000
        if reserved_ul >= limit_ul:
            return
        margin_nl = 2 * (self.dose_rate_nl_s // config.STEPS_PER_S + 1)
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
            # Commanded: the nl counted, and the part of one carried in dose_rem.
            delivered_ul = (self.session_nl + (1 if self.dose_rem else 0) + 999) // 1000
            led.settle(pod["serial"], self.reserved_nl // 1000 - delivered_ul, now)
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
