"""The world around the sim board: virtual time, the plant, the scenario's events and resets.

board.wait_tick() calls period(): the plant moves one period under the outputs the
firmware last commanded, the scenario's events for that period are applied, and the
board's inputs follow the plant. Power cuts and watchdog resets leave it as SimReset, the
scenario's end as SimEnd; boards/sim/simrun.py catches them, as the hardware would, and
calls reset(), which boots the board again. What the firmware reports (board.emit,
board.telemetry) goes to the trace (tracefile.py), the summary (metrics.py) and stderr
(progress.py).
"""
from fw import codes
from fw import config
from metrics import Metrics
from progress import Progress
from tracefile import Trace

# What `steamer sim press/insert/remove/refill/fault` may inject into a running steamer.
_INJECTABLE = ("press_button", "insert_podlet", "remove_podlet", "refill_water", "fault",
               "clear_fault")


class SimReset(BaseException):
    def __init__(self, cause, off_s=0.0):
        self.cause = cause
        self.off_s = off_s


class SimEnd(BaseException):
    pass


def signed(profile):
    """The bytes a host pushes for a scenario PROFILE (signed by the sim driver)."""
    return bytes.fromhex(profile.get("signed_hex", ""))


class World:
    def __init__(self, board, scenario, trace_path=None, progress=True):
        self.board = board
        self.plant = board.plant
        self.scenario = scenario
        self.end_ms = int(scenario["duration_s"] * 1000)
        # An iterator: simrun streams a scenario's events from its file.
        self.events = iter(scenario["events"])
        self.next_event = next(self.events, None)
        self.trace = Trace(trace_path)
        self.metrics = Metrics(scenario, board.plant)
        self.progress = Progress(progress)
        self.powered = True
        self.off_until_ms = 0
        self.stalled = False
        for prof in scenario["profiles"]:
            board.commands.append(("install_profile", signed(prof)))

    # ---- time -------------------------------------------------------------------------
    def period(self):
        """The next period the firmware runs in (board.wait_tick); a stalled loop's
        periods pass without it."""
        board = self.board
        while True:
            self.advance()
            if board.now_ms - board.watchdog.fed_ms > config.WATCHDOG_MS:
                raise SimReset(codes.RESET_WDT)
            if not self.stalled:
                return
            # The firmware's loop is blocked: the world goes on without it.
            if self.plant.heater_w == 0.0:
                self.metrics.stalled_heater_off(board.now_ms)
            self.trace.period(board.now_ms, board.app, self.plant)

    def advance(self):
        board = self.board
        board.now_ms += config.PERIOD_MS
        self.plant.advance(config.PERIOD_MS / 1000.0, board.now_ms)
        board.release_button()
        self.apply_events()
        radio = board.radio
        if radio is not None and radio.sim_events:
            self.inject()
        board.sync_inputs()
        if board.now_ms >= self.end_ms:
            raise SimEnd()

    # ---- events -----------------------------------------------------------------------
    def apply_events(self):
        """The scenario's events due by now."""
        ev = self.next_event
        now = self.board.now_ms
        while ev is not None and ev["t_s"] * 1000 <= now:
            self.next_event = next(self.events, None)
            self.apply(ev)
            ev = self.next_event

    def inject(self):
        # `steamer sim press/...` through the air (validated there), at this period's
        # start as a scenario's event due now would be.
        radio = self.board.radio
        events = radio.sim_events
        radio.sim_events = []
        for ev in events:
            if ev.get("do") in _INJECTABLE:
                self.progress.say(self.board.now_ms, "injected " + ev["do"])
                self.apply(ev)

    def apply(self, ev):
        do = ev["do"]
        board = self.board
        plant = self.plant
        podlet = board.podlet
        if do == "insert_podlet":
            podlet.info = ev["podlet"]
            podlet.v = 1
        elif do == "swap_podlet":
            podlet.info = ev["podlet"]     # presence never drops: no edge to see
            podlet.v = 1
        elif do == "remove_podlet":
            podlet.info = None
            podlet.v = 0
        elif do == "press_button":
            board.press_button(ev.get("ms", 100))
        elif do == "refill_water":
            plant.refill(ev["ml"])
        elif do == "power_cut":
            if self.powered:
                raise SimReset(codes.RESET_POWER, ev["off_s"])
            # Already off: it stays off until the later of the two cuts' ends.
            self.off_until_ms = max(self.off_until_ms, board.now_ms + int(ev["off_s"] * 1000))
        elif do == "fault":
            name = ev["fault"]
            self.metrics.fault_injected(board.now_ms, name)
            if name == "loop_stall":
                self.stalled = True
            elif name == "podlet_bus_error":
                podlet.bus_error = True
            else:
                plant.inject(name)
        elif do == "clear_fault":
            name = ev["fault"]
            if name == "loop_stall":
                self.stalled = False
            elif name == "podlet_bus_error":
                podlet.bus_error = False
            else:
                plant.clear(name)
        elif not self.powered:
            pass    # a command to an unpowered steamer: nothing receives it
        elif do == "install_profile":
            board.commands.append(("install_profile", signed(ev["profile"])))
        elif do == "set_clock":
            board.commands.append(("set_clock", ev["epoch_s"]))
        elif do == "acknowledge_warnings":
            # As from a paired host; the scenario's host has no id (all zero).
            board.commands.append(("ack_warnings", (ev["podlet_type"], ev["version"],
                                                    "0000000000000000")))
        else:  # start_session, stop_session
            if do == "start_session":
                self.metrics.start_pressed(board.now_ms)
            board.commands.append((do, None))

    # ---- what the firmware reports ----------------------------------------------------
    def emit(self, record):
        now = self.board.now_ms
        self.metrics.event(now, record)
        self.trace.event(now, record)
        self.progress.event(now, record)

    def telemetry(self, app):
        now = self.board.now_ms
        self.metrics.step(now, app)
        self.progress.step(now, app)
        self.trace.period(now, app, self.plant)

    # ---- resets, as the hardware does them ----------------------------------------------
    def reset(self, r):
        """The firmware is gone: RAM is lost, outputs drop, the world goes on; then the
        board boots again."""
        board = self.board
        self.metrics.firmware_gone(board.now_ms, r.cause, board.app)
        self.stalled = False
        board.firmware_gone()
        if r.cause == codes.RESET_POWER:
            self.power_off(r.off_s)
            board.clock_base_s = 0  # the RTC has no battery
        self.metrics.booted()
        self.progress.firmware_gone()
        board.boot(r.cause)

    def power_off(self, off_s):
        """off_s (or longer, when another cut comes meanwhile) of periods with no power."""
        board = self.board
        plant = self.plant
        plant.power(False)
        self.off_until_ms = board.now_ms + int(off_s * 1000)
        self.progress.say(board.now_ms, "power cut for %ss" % off_s)
        self.powered = False
        try:
            while board.now_ms < self.off_until_ms:
                self.advance()
                self.trace.period(board.now_ms, None, plant, "off")
        finally:
            plant.power(True)
            self.powered = True

    def crashed(self):
        """The firmware raised out of its loop: on a board it would hang until the
        watchdog bites, so that is what happens here. Returns that SimReset."""
        self.metrics.crashed()
        self.stalled = True
        try:
            while True:
                self.board.wait_tick()
        except SimReset as r:
            return r

    def summary(self, wall_s):
        """The run's summary (metrics.py); the trace is closed."""
        self.trace.close()
        return self.metrics.summary(wall_s, self.board.app)
