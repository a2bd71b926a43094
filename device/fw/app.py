"""The steamer's application: its state machine around the control step, and the
service between steps. Its parts live beside it as App's base classes: sessions and
dosing in fw.session, the intake of podlets and profiles (and their signature checks)
in fw.intake; App's public methods are theirs too.

`step()` is the hard-real-time part (sensors, controller, supervisor, actuators) and
allocates nothing: it only moves small ints between attributes made in __init__.
`service()` runs after it, outside the heap lock, and does everything that may
allocate: commands, podlet reading, profile checks and emitting decisions.
"""
import time
from array import array

from micropython import const

from fw import session
from fw import intake
from fw import config
from fw import control
from fw import audit
from fw import codes
from fw import journal
from fw import ledger as ledger_mod
from fw import ntc
from fw import safety
from fw import trust

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


class App(session.Sessions, intake.Intake):
    def __init__(self, board):
        self.board = board
        # The ledger first: its tables are the largest blocks App needs, found whole on
        # a heap the rest has not yet cut up.
        d = board.data_dir
        # A blank flash gets its files made here, before the loop's first step, with the
        # board's watchdog running: it is fed after each part's writes (one or two
        # sector erases each, 400 ms apiece datasheet-worst; issue 14 item 6).
        feed = board.watchdog.feed
        try:
            # Its commits feed the watchdog between their writes, at boot and after.
            self.ledger = ledger_mod.Ledger(d, feed)
            self.ledger_problem = None
        except ledger_mod.LedgerError as e:
            # Without a ledger nothing is known of past doses: no session may start.
            self.ledger = None
            self.ledger_problem = str(e)
        heater_w = getattr(board.heater, "rated_w", config.HEATER_W)
        self.boiler_pid = control.BoilerRush(heater_w)
        self.outlet_ctl = control.OutletMpc(heater_w)
        # The unit's measured heat model (fw.calib), loaded at the first session's start
        # (Sessions.calib_record): the controllers' feed-forward.
        self.calib = None
        self.sup = safety.Supervisor()
        # What the supervisor judges, filled in each step (the raw counts and the
        # encoder's only there).
        self.readings = self.sup.readings
        self.readings.pump_nl_per_pulse = board.pump.NL_PER_PULSE
        # A board whose encoder may miss edges (boards say; unsaid is the safe side):
        # the dose counted is never less than what was commanded (Sessions.counted_nl).
        self.readings.pump_may_miss = getattr(board.pump, "MAY_MISS_EDGES", 1)
        self.state = codes.ST_IDLE
        # Uptime as whole seconds and steps into the second: a count of steps would leave
        # the 32-bit boards' small ints (and allocate in the step) after 3.4 years.
        self.up_s = 0
        self.tick = 0
        self.alloc_errors = 0
        self.step_us = 0
        # Sensor readings and outputs of the current step.
        self.boiler_mc = 0
        self.outlet_mc = 0
        self.water_low = 0
        self.tilted = 0
        self.heating_state = 0
        self.heater_pm = 0
        self.pump_nl_s = 0
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
        # The delivery pattern's (fw.session pattern_rate), set at the start.
        self.pattern = 0
        self.bolus_nl = 0
        self.period_steps = 1
        self.ramp_s = 0
        self.pulse_left = 0
        self.dose_limit_nl = 0
        self.dose_limit_reason = 0      # set at the start (fw.session END_* codes)
        self.reserved_nl = 0        # committed to the ledger: the pump may not pass it
        self.session_nl = 0
        self.dose_rem = 0
        self.planned_nl = 0             # the profile's volume by now, nl
        self.dose_pulses0 = 0           # the encoder's count when dosing began
        self.dosing = 0
        self.warm_steps = 0
        self.hold_steps = 0
        self.end_reason = 0             # 0: no session end to finish
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
        feed()
        self.journal = journal.Journal(board.data_dir)
        feed()
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
        self.podlet_refusal = None  # the reason of the last podlet_rejected, until one is accepted
        self.session_podlet = None
        self.session_prof = None
        self.audit = audit.Audit(d)
        feed()
        # Flash work bounded per period (issue 14 item 6): on a board that says
        # FLASH_BUDGET_MS, a record's audit and journal appends (each a flash erase and
        # programs: 45 ms typical, 400 ms datasheet-worst, interrupts off) wait in
        # flash_q, [write, record] pairs in order, and service() runs them while it is
        # within that budget, the board's own log after them (board.flash_work), so no
        # period outlasts the heater's 300 ms keep-alive or starves the watchdog.
        # 0 (the sim board): written at once.
        self.flash_budget_ms = getattr(board, "FLASH_BUDGET_MS", 0)
        self.flash_q = []
        self.trust = trust.Trust(d)
        feed()
        # Courses' last starts and acknowledgements (fw.course), loaded when a v2
        # profile first needs it: a device with v1 profiles only never does.
        self.course = None
        self.profiles = self.trust.profiles     # podlet_type -> profile dict

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
        self.boiler_mc = ntc.to_mc(ntc.BOILER_MC, braw)
        self.outlet_mc = ntc.to_mc(ntc.OUTLET_MC, oraw)
        self.water_low = b.water_low.value()
        self.tilted = b.tilt.value()
        r = self.readings
        r.boiler_raw = braw
        r.outlet_raw = oraw
        r.pump_pulses = b.pump.pulses()
        r.pump_held = b.pump.held()
        self.podlet_in = b.podlet.present()
        self._button(b.button.value())

        if self.heating_state and not self.podlet_in:
            self._end(session.END_PODLET_REMOVED)
        state = self.state
        heater = 0
        pump = 0
        if state == codes.ST_PREHEAT or state == codes.ST_READY:
            # The boiler may boil before its lagging sensor says so: once the outlet
            # rises on steam its controller holds the heater back (not before: a target
            # close to the room may be below what the hot body alone warms it to).
            heater = self.boiler_pid.update(self.boiler_mc)
            steam = self.outlet_ctl.update(self.outlet_mc)
            if (steam < heater and self.boiler_mc >= config.STEAM_WATCH_MC
                    and self.outlet_ctl.steam_seen):
                heater = steam
            if state == codes.ST_PREHEAT and self.boiler_mc >= config.READY_MC:
                self.state = codes.ST_READY
                self.hold_steps = 0
            elif state == codes.ST_READY:
                self.hold_steps += 1
                if self.hold_steps >= config.READY_HOLD_STEPS:
                    self.state = codes.ST_STEAMING
                    self.warm_steps = 0
        elif state == codes.ST_STEAMING:
            pump = self.dose_step()
            self.outlet_ctl.pump_nl_s = pump
            heater = self.outlet_ctl.update(self.outlet_mc)
        elif state == codes.ST_COOLDOWN:
            if self.boiler_mc < config.COOLDOWN_END_MC:
                self.state = codes.ST_IDLE
        self.heating_state = 1 if (self.state == codes.ST_PREHEAT or self.state == codes.ST_READY
                                   or self.state == codes.ST_STEAMING) else 0

        r.boiler_mc = self.boiler_mc
        r.outlet_mc = self.outlet_mc
        r.water_low = self.water_low
        r.tilted = self.tilted
        r.heating_state = self.heating_state
        r.heater_pm = self.heater_pm        # still the step before's outputs
        r.pump_nl_s = self.pump_nl_s
        fault = self.sup.check()
        if self.calib is not None:
            self.calib.observe(r)
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

    def latch(self, fault):
        """Latches fault: ends a session that is heating and holds the steamer in FAULT
        until the user acknowledges it. Allocation-free: the control step calls it."""
        self.fault = fault
        self.fault_pending = 1
        if self.heating_state:
            self._end(session.END_FAULT)
        self.state = codes.ST_FAULT
        self.dosing = 0

    # ---- service: everything that may allocate ---------------------------------
    def service(self):
        if not self.flash_budget_ms:
            self._service()
            return
        t0_ms = self.board.ticks_ms()
        try:
            self._service()
        finally:
            self.flash_work(t0_ms)

    def _service(self):
        if self.fault_pending:
            self._record_fault()
        if self.end_reason:
            self._finish_session()
        cmd = self.board.poll_command()
        while cmd is not None:
            self.command(cmd[0], cmd[1])
            cmd = self.board.poll_command()
        self.check_podlet()
        self._run_checks()
        if self.button_press:
            self.button_press = 0
            self._on_button()
        if self.pair_request:
            # open_s 0: opened, for as long as the button is held.
            self.pair_request = 0
            self.pairing_from = self.steps()
            self.emit({"event": "pairing_window", "open_s": 0})
        if self.pair_release:
            # Closing: open_s is how long it was open, its grace included.
            self.pair_release = 0
            self.pairing_until = self.steps() + _PAIR_GRACE_STEPS
            self.emit({"event": "pairing_window", "open_s": (
                self.pairing_until - self.pairing_from) // config.STEPS_PER_S})
        if self.clock_request:
            self.clock_request = 0
            if self.state == codes.ST_IDLE:
                self.clock_until = self.steps() + CLOCK_WINDOW_S * config.STEPS_PER_S
                self.emit({"event": "clock_window", "open_s": CLOCK_WINDOW_S})
        if self.session_prof is not None and self.state == codes.ST_STEAMING:
            self.reserve_ahead()
        if self.calib is not None and self.calib.ready():
            self.calib.update()
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
        return self.button_steps >= _PAIR_HOLD_STEPS or self.steps() < self.pairing_until

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
        elif name == "ack_warnings":
            self.acknowledge_warnings(arg)
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
        """A decision: to the board (the sim's trace) and to the journal on flash. Keeps
        podlet_refusal, the reason the status shows for a podlet refused."""
        ev = record.get("event")
        if ev == "podlet_rejected":
            self.podlet_refusal = record.get("reason")
        elif ev == "podlet_accepted":
            self.podlet_refusal = None
        self.board.emit(record)
        if self.flash_budget_ms:
            # A copy: log() below adds the journal's fields to record.
            self.flash_q.append([self.audit.append, dict(record)])
        else:
            self.audit.append(record)
        self.log(record)
        if self._captured is not None:
            self._captured.append(record)

    def log(self, record):
        """A record for the host's history: wall time (None until the clock is set) and
        milliseconds since boot."""
        record["t"] = self.board.clock_s() or None
        record["t_ms"] = self.steps() * config.PERIOD_MS
        if self.flash_budget_ms:
            self.flash_q.append([self.journal.append, record])
        else:
            self.journal.append(record)

    def flash_backlog(self):
        """Records' flash writes waiting for service() (flash_q; 0 on a board that
        writes them at once): fw.ble stops taking the host's commands while it is high."""
        return len(self.flash_q)

    def flash_work(self, t0_ms):
        """The records' flash writes that wait (flash_q, then the board's log), one
        after another while under flash_budget_ms since t0_ms (the start of service()),
        the rest next period. Each is taken off the queue before it runs, so a write that
        raises (a failing flash) is not retried every period."""
        budget = self.flash_budget_ms
        q = self.flash_q
        ticks_ms = self.board.ticks_ms
        more = getattr(self.board, "flash_work", None)
        while time.ticks_diff(ticks_ms(), t0_ms) < budget:
            if q:
                write, record = q.pop(0)
                write(record)
            elif more is None or not more():
                return

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

    # Not a property: a class with one (or any descriptor) makes MicroPython look every
    # attribute store on its instances up through the class and its bases first
    # (py/objtype.c, mp_obj_instance_store_attr: MP_TYPE_FLAG_HAS_SPECIAL_ACCESSORS),
    # which costs the control step, all stores, about a third of its time.
    def steps(self):
        """Steps since boot (outside the step only: it may be a long int)."""
        return self.up_s * config.STEPS_PER_S + self.tick

    def set_steps(self, n):
        """Sets the steps since boot (tests and the limits driver move time on with it)."""
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
        if self.steps() < self.clock_until and self.state == codes.ST_IDLE:
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






















