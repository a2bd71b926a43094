"""The simulated board: the board contract (device/BOARD.md) wired to the plant model.

Virtual time advances in wait_tick(): the plant moves one period under the outputs the
firmware last commanded, the scenario's events for that period are applied, and the
sensor readings for the next step are sampled. Everything the firmware's control step
calls here only moves small ints, so the step stays allocation-free on this board too.
Power cuts and watchdog resets leave wait_tick() as SimReset, the scenario's end as
SimEnd; boards/sim/simrun.py catches them, as the hardware would, and boots again.
"""
import json
import os
import time
import vfs
from array import array

from fw import config
from fw import codes
from flash import FileFlash
from plant import Plant

DATA_DIR = "/flash"

_HIST_US = 1000  # step-time histogram: 1 us bins up to this, then one overflow bin
# wait_tick(idle) calls idle only while more than this much wall time (at most a quarter
# of the period) is left before the next period.
IDLE_MARGIN_MS = 5


class SimReset(BaseException):
    def __init__(self, cause, off_s=0.0):
        self.cause = cause
        self.off_s = off_s


class SimEnd(BaseException):
    pass


class Adc:
    def __init__(self):
        self.raw = 0

    def read(self):
        return self.raw


class Switch:
    def __init__(self):
        self.v = 0

    def value(self):
        return self.v


class Heater:
    def __init__(self, board):
        self.board = board

    def set(self, permille):
        plant = self.board.plant
        plant.heater_pm = permille
        plant.heater_cmd_ms = self.board.now_ms


class Cutoff:
    def __init__(self, board):
        self.board = board

    def open(self):
        self.board.plant.cutoff_open = True

    def is_open(self):
        return 1 if self.board.plant.cutoff_open else 0


class Pump:
    NL_PER_PULSE = 100

    def __init__(self, board):
        self.board = board
        self.count = 0

    def set(self, nl_s):
        plant = self.board.plant
        plant.pump_nl_s = nl_s
        plant.pump_cmd_ms = self.board.now_ms

    def pulses(self):
        return self.count


class Watchdog:
    def __init__(self, board):
        self.board = board
        self.fed_ms = 0

    def feed(self):
        self.fed_ms = self.board.now_ms


class PodletReader:
    """The podlet slot: presence (the cheap check the control step makes), and the ID chip
    read by the firmware's own reader (fw.idchip) over an emulated DS2431 on an emulated
    1-Wire bus (ds2431.py). The chip holds the scenario PODLET's image (ROM ID and signed
    memory, as steamer_sim.signing made it); podlet_bus_error gives it a contact
    that breaks in the middle of every read."""

    # podlet_bus_error: the contact breaks this many bytes into each 1-Wire exchange
    # (after the ROM ID and the memory command, 20 bytes into the memory).
    BUS_ERROR_AFTER_BYTES = 32

    def __init__(self):
        from ds2431 import Ds2431Bus
        from fw.idchip import IdChip
        self.v = 0
        self.info = None
        self.bus_error = False
        self.bus = Ds2431Bus()
        self.chip = IdChip(self.bus)

    def present(self):
        return self.v

    def read(self):
        self._sync()
        return self.chip.read()

    def read_rom(self):
        self._sync()
        return self.chip.read_rom()

    def _sync(self):
        # The events set info and bus_error; the chip on the bus follows them here.
        bus = self.bus
        info = self.info
        bus.image = bytes.fromhex(info.get("image_hex", "")) if info is not None else None
        bus.break_after = self.BUS_ERROR_AFTER_BYTES if self.bus_error else 0


class SimBoard:
    name = "sim"
    PERIOD_MS = config.PERIOD_MS
    # Signature-check slices service() runs per period (device/BOARD.md): a PC's CPU
    # affords more than a board's one, yet a check still spans a few periods, as there.
    CHECK_SLICES_PER_PERIOD = 16
    # Notifications the simulated controller sends per connection event (the air's
    # LinkParams default): fw.ble paces the Event characteristic by it.
    BLE_PDUS_PER_EVENT = 6
    data_dir = DATA_DIR

    def __init__(self, scenario, trace_path=None, speed=0.0, progress=True, flash_path=None,
                 air=None, ble_name="steamer-sim"):
        self.scenario = scenario
        self.ble_name = ble_name
        self.radio = None
        self.radio_tick_ms = time.ticks_ms()
        self.flash_owned = flash_path is None
        if flash_path is None:
            flash_path = "/tmp/steamer-sim-%s.flash" % "".join(
                "%02x" % b for b in os.urandom(6))
        self.flash_path = flash_path
        self.flash = FileFlash(flash_path)
        if self.flash_owned:
            os.remove(flash_path)   # open, so it lives until closed, and never leaks
        self.flash_mounted = False
        self.mount_flash()
        self._provision(scenario.get("mfg_public_hex"))
        self.plant = Plant(scenario["plant"], scenario["seed"])
        self.now_ms = 0
        self.end_ms = int(scenario["duration_s"] * 1000)
        # An iterator: simrun streams a scenario's events from its file.
        self.events = iter(scenario["events"])
        self.next_event = next(self.events, None)
        self.speed = speed
        self.progress = progress
        self.trace = open(trace_path, "w") if trace_path else None
        self.boiler_ntc = Adc()
        self.outlet_ntc = Adc()
        self.heater = Heater(self)
        self.heater_cutoff = Cutoff(self)
        self.pump = Pump(self)
        self.water_low = Switch()
        self.tilt = Switch()
        self.button = Switch()
        self.button_until_ms = 0
        self.watchdog = Watchdog(self)
        self.podlet = PodletReader()
        self.clock_base_s = 0
        self.clock_set_ms = 0
        self.commands = []
        self.powered = True
        self.off_until_ms = 0
        self.stalled = False
        self.cause = codes.RESET_POWER
        self.app = None
        # Summary material.
        self.steps = 0
        self.alloc_errors = 0
        self.crashes = 0
        self.hist = array("I", bytes(4 * (_HIST_US + 2)))
        self.step_us_max = 0
        self.sessions = []
        self.faults = []
        self.latched = []
        self.resets = []
        self.last_state = -1
        self.session_start_ms = -1
        self.ready_ms = None
        self.target_c = None
        self.overshoot_c = None
        self.err_sum = 0.0
        self.err_n = 0
        self.err_max = 0.0
        self.dose_start_ms = -1
        self.wall_start_ms = time.ticks_ms()
        self.last_progress_s = -1
        for prof in scenario["profiles"]:
            self.commands.append(("install_profile", _signed(prof)))
        self._sync_inputs()
        if air:
            # The radio: MicroPython's bluetooth API over the simulated air.
            import bluetooth
            bluetooth.AIR = air
            bluetooth.NAME = ble_name
            self.radio = bluetooth.BLE()

    # ---- the board contract -------------------------------------------------------
    def mount_flash(self):
        """Mounts the flash at DATA_DIR as a board's boot does. Only a blank image is
        formatted: a filesystem that fails to mount after a power cut is a failure."""
        try:
            vfs.umount(DATA_DIR)    # ours from before a reset, or another board's
        except OSError:
            pass
        self.flash_mounted = False
        try:
            fs = vfs.VfsLfs2(self.flash)
        except OSError:
            if self.flash.writes or not self._blank():
                raise
            vfs.VfsLfs2.mkfs(self.flash)
            fs = vfs.VfsLfs2(self.flash)
        vfs.mount(fs, DATA_DIR)
        self.flash_mounted = True

    def _provision(self, key_hex):
        """The factory's step: the manufacturer public key into a new device's flash."""
        if not key_hex:
            return
        path = DATA_DIR + "/mfg.pub"
        try:
            os.stat(path)
        except OSError:
            with open(path, "wb") as f:
                f.write(bytes.fromhex(key_hex))

    def _blank(self):
        buf = bytearray(16)
        self.flash.readblocks(0, buf)
        return buf == b"\xff" * 16

    def close(self):
        if self.flash_mounted:
            vfs.umount(DATA_DIR)
            self.flash_mounted = False
        self.flash.close()

    def ticks_ms(self):
        return self.now_ms

    def reset_cause(self):
        return self.cause

    def clock_s(self):
        if not self.clock_base_s:
            return 0
        return self.clock_base_s + (self.now_ms - self.clock_set_ms) // 1000

    def set_clock_s(self, epoch_s):
        self.clock_base_s = epoch_s
        self.clock_set_ms = self.now_ms

    def poll_command(self):
        if self.commands:
            return self.commands.pop(0)
        return None

    def wait_tick(self, idle=None):
        while True:
            self._advance()
            if self.now_ms - self.watchdog.fed_ms > config.WATCHDOG_MS:
                raise SimReset(codes.RESET_WDT)
            if not self.stalled:
                break
            # The firmware's loop is blocked: the world goes on without it.
            if self.plant.heater_w == 0.0:
                for f in self.faults:
                    if f["code"] == "loop_stall" and f.get("heater_off_ms") is None:
                        f["heater_off_ms"] = self.now_ms
            self._write_trace(None)
        if self.radio is not None:
            self._radio_wait(int(config.PERIOD_MS / self.speed) if self.speed > 0 else 0, idle)
        elif self.speed > 0:
            time.sleep_ms(int(config.PERIOD_MS / self.speed))

    def _radio_wait(self, wait_ms, idle=None):
        # IRQs are delivered here, between steps, while the period's wall time passes.
        # Periods start on a fixed wall-clock grid, as a board's timer starts them, so
        # the time the firmware spends does not stretch them.
        radio = self.radio
        now = time.ticks_ms()
        deadline = time.ticks_add(self.radio_tick_ms, wait_ms)
        if time.ticks_diff(now, deadline) > 4 * wait_ms:
            deadline = now          # far behind (a long stall): a new grid from here
        self.radio_tick_ms = deadline
        if not radio.active():
            left = time.ticks_diff(deadline, now)
            if left > 0:
                time.sleep_ms(left)
            return
        # idle() (fw.ble.Link.pump) runs after what the air sent, only while a margin of
        # the period is left: its work is bounded, so the next period starts on time.
        margin = min(IDLE_MARGIN_MS, wait_ms // 4)
        while True:
            left = time.ticks_diff(deadline, time.ticks_ms())
            got = radio.poll(left if left > 0 else 0)
            if left <= 0:
                return
            if got and idle is not None and time.ticks_diff(deadline, time.ticks_ms()) > margin:
                idle()

    def emit(self, record):
        event = record["event"]
        now = self.now_ms
        if event == "session_started":
            self.session_start_ms = now
            self.target_c = record.get("target_c")
            self.sessions.append({"podlet": record.get("podlet"), "start_ms": now,
                                  "end_ms": None, "reason": None, "session_ul": None,
                                  "plant_pumped_ul": None,
                                  "_pumped0": self.plant.pumped_nl})
        elif event == "session_ended" and self.sessions and self.sessions[-1]["reason"] is None:
            # (A second end of one session, the first cut short on its way to flash and
            # made again at the next boot, is in the trace; the summary keeps the first.)
            s = self.sessions[-1]
            s["end_ms"] = now
            s["reason"] = record["reason"]
            s["session_ul"] = record["session_ul"]
            s["plant_pumped_ul"] = round((self.plant.pumped_nl - s.pop("_pumped0")) / 1000.0, 3)
        elif event == "fault_latched":
            self.latched.append({"code": record["code"], "latched_ms": now})
            for f in self.faults:
                if f["latched_ms"] is None:
                    f["latched_ms"] = now
                    f["latched_code"] = record["code"]
                    break
        if self.trace:
            self.trace.write('{"t_ms": %d, %s\n' % (now, json.dumps(record)[1:]))
        if self.progress and event != "boot":
            self._say("%s %s" % (event, " ".join("%s=%s" % kv for kv in record.items()
                                                 if kv[0] != "event")))

    def telemetry(self, app):
        self.app = app
        self.steps += 1
        us = app.step_us
        self.hist[us if us <= _HIST_US else _HIST_US + 1] += 1
        if us > self.step_us_max:
            self.step_us_max = us
        self._measure(app)
        self._write_trace(app)

    # ---- the world ------------------------------------------------------------------
    def _advance(self):
        self.now_ms += config.PERIOD_MS
        self.plant.advance(config.PERIOD_MS / 1000.0, self.now_ms)
        if self.now_ms >= self.button_until_ms:
            self.button.v = 0
        self._apply_events()
        if self.radio is not None and self.radio.sim_events:
            self._inject()
        self._sync_inputs()
        if self.now_ms >= self.end_ms:
            raise SimEnd()

    def _sync_inputs(self):
        p = self.plant
        self.boiler_ntc.raw = p.boiler_raw
        self.outlet_ntc.raw = p.outlet_raw
        self.water_low.v = p.water_low()
        self.tilt.v = p.tilted()
        self.pump.count = p.pump_pulses()

    def _apply_events(self):
        ev = self.next_event
        while ev is not None and ev["t_s"] * 1000 <= self.now_ms:
            self.next_event = next(self.events, None)
            self._apply(ev)
            ev = self.next_event

    def _inject(self):
        # `steamer sim press/...` through the air (validated there), at this period's
        # start as a scenario's event due now would be.
        events = self.radio.sim_events
        self.radio.sim_events = []
        for ev in events:
            if ev.get("do") in _INJECTABLE:
                self._say("injected " + ev["do"])
                self._apply(ev)

    def _apply(self, ev):
        do = ev["do"]
        plant = self.plant
        if do == "insert_podlet":
            self.podlet.info = ev["podlet"]
            self.podlet.v = 1
        elif do == "swap_podlet":
            self.podlet.info = ev["podlet"]     # presence never drops: no edge to see
            self.podlet.v = 1
        elif do == "remove_podlet":
            self.podlet.info = None
            self.podlet.v = 0
        elif do == "press_button":
            self.button.v = 1
            self.button_until_ms = self.now_ms + ev.get("ms", 100)
        elif do == "refill_water":
            plant.refill(ev["ml"])
        elif do == "power_cut":
            if self.powered:
                raise SimReset(codes.RESET_POWER, ev["off_s"])
            # Already off: it stays off until the later of the two cuts' ends.
            self.off_until_ms = max(self.off_until_ms, self.now_ms + int(ev["off_s"] * 1000))
        elif do == "fault":
            name = ev["fault"]
            self.faults.append({"code": name, "injected_ms": self.now_ms, "latched_ms": None,
                                "latched_code": None})
            if name == "loop_stall":
                self.stalled = True
            elif name == "podlet_bus_error":
                self.podlet.bus_error = True
            else:
                plant.inject(name)
        elif do == "clear_fault":
            name = ev["fault"]
            if name == "loop_stall":
                self.stalled = False
            elif name == "podlet_bus_error":
                self.podlet.bus_error = False
            else:
                plant.clear(name)
        elif not self.powered:
            pass    # a command to an unpowered steamer: nothing receives it
        elif do == "install_profile":
            self.commands.append(("install_profile", _signed(ev["profile"])))
        elif do == "set_clock":
            self.commands.append(("set_clock", ev["epoch_s"]))
        else:  # start_session, stop_session
            self.commands.append((do, None))

    # ---- resets, as the hardware does them ---------------------------------------------
    def reset(self, r):
        """The firmware is gone: RAM is lost, outputs drop, the world goes on."""
        if self.app is not None:
            self.alloc_errors += self.app.alloc_errors
        self.app = None
        self.resets.append({"cause": codes.RESET_NAMES[r.cause], "t_ms": self.now_ms})
        self.stalled = False
        self.commands = []
        if self.radio is not None:
            self.radio.active(False)   # the stack goes down with the firmware
        self.plant.heater_pm = 0
        self.plant.pump_nl_s = 0
        if r.cause == codes.RESET_WDT:
            for f in self.faults:
                if f["code"] == "loop_stall" and f.get("reset_ms") is None:
                    f["reset_ms"] = self.now_ms
                    f["latched_ms"] = f["latched_ms"] or self.now_ms
                    f["latched_code"] = f["latched_code"] or "watchdog_reset"
        if r.cause == codes.RESET_POWER:
            self.plant.power(False)
            self.off_until_ms = self.now_ms + int(r.off_s * 1000)
            self._say("power cut for %ss" % r.off_s)
            self.powered = False
            try:
                while self.now_ms < self.off_until_ms:
                    self._advance()
                    self._write_trace(None, "off")
            finally:
                self.plant.power(True)
                self.powered = True
            self.clock_base_s = 0  # the RTC has no battery
        self.cause = r.cause
        self.watchdog.fed_ms = self.now_ms
        self.last_state = -1
        self.mount_flash()

    def crashed(self, exc):
        """The firmware raised out of its loop: on a board it would hang until the
        watchdog bites, so that is what happens here."""
        self.crashes += 1
        self.stalled = True
        try:
            while True:
                self.wait_tick()
        except SimReset as r:
            return r

    # ---- trace and measurements ---------------------------------------------------------
    def _write_trace(self, app, state_name=None):
        if app is None:
            app = self.app
        if self.trace is None:
            return
        plant = self.plant
        if state_name is None:
            state_name = codes.STATE_NAMES[app.state] if app is not None else "off"
        if app is not None and state_name != "off":
            fault = codes.FAULT_NAMES[app.fault]
            fw = ('{"boiler_c": %.2f, "outlet_c": %.2f, "heater_pct": %.1f, "pump_ul_min": %.1f, '
                  '"session_ul": %.1f, "fault": %s}') % (
                app.boiler_mc / 1000, app.outlet_mc / 1000, app.heater_pm / 10,
                app.pump_nl_s * 60 / 1000, app.session_nl / 1000,
                "null" if fault is None else '"%s"' % fault)
        else:
            fw = "null"
        self.trace.write(
            '{"t_ms": %d, "state": "%s", "fw": %s, "plant": {"boiler_c": %.2f, "outlet_c": %.2f, '
            '"heater_w": %.1f, "water_ml": %.2f, "steam_mg_s": %.1f, "pumped_ul": %.3f}}\n' % (
                self.now_ms, state_name, fw, plant.boiler_c, plant.nozzle_c, plant.heater_w,
                plant.water_g, plant.steam_mg_s, plant.pumped_nl / 1000))

    def _measure(self, app):
        state = app.state
        now = self.now_ms
        if state != self.last_state:
            if self.progress:
                self._say("state %s  boiler %.1f °C  outlet %.1f °C" % (
                    codes.STATE_NAMES[state], app.boiler_mc / 1000, app.outlet_mc / 1000))
            if state == codes.ST_READY and self.ready_ms is None and self.session_start_ms >= 0:
                self.ready_ms = now - self.session_start_ms
            self.last_state = state
        if state == codes.ST_STEAMING and self.target_c is not None:
            over = self.plant.nozzle_c - self.target_c
            if self.overshoot_c is None or over > self.overshoot_c:
                self.overshoot_c = over
            if app.dosing:
                if self.dose_start_ms < 0:
                    self.dose_start_ms = now
                if now - self.dose_start_ms >= 60000:
                    err = abs(over)
                    self.err_sum += err
                    self.err_n += 1
                    if err > self.err_max:
                        self.err_max = err
        elif self.dose_start_ms >= 0 and state != codes.ST_STEAMING:
            self.dose_start_ms = -1
        if self.progress and now // 60000 != self.last_progress_s:
            self.last_progress_s = now // 60000
            self._say("t=%ds state %s boiler %.1f °C outlet %.1f °C dose %.0f µl" % (
                now // 1000, codes.STATE_NAMES[state], app.boiler_mc / 1000,
                app.outlet_mc / 1000, app.session_nl / 1000))

    def _say(self, text):
        import sys
        sys.stderr.write("[%7.1fs] %s\n" % (self.now_ms / 1000, text))

    def _percentile(self, q):
        total = self.steps
        if not total:
            return 0
        want = q * total
        seen = 0
        for us in range(_HIST_US + 2):
            seen += self.hist[us]
            if seen >= want:
                return us
        return _HIST_US + 1

    def physical_ready_s(self):
        """m * c * dT / P: the time an ideal lossless heater needs to bring the boiler
        from ambient to the ready temperature, with this plant's parameters."""
        from plant import PARAMS
        p = self.plant
        cfg = self.scenario["plant"]
        heat_cap = cfg["water_ml"] * PARAMS["water_j_per_gk"] + PARAMS["metal_j_per_k"]
        d_t = config.READY_MC / 1000 - cfg["ambient_c"]
        return heat_cap * d_t / p.heater_full_w

    def summary(self, wall_s):
        if self.app is not None:
            self.alloc_errors += self.app.alloc_errors
            self.app = None
        if self.trace:
            self.trace.close()
        duration_s = self.scenario["duration_s"]
        from plant import PARAMS
        plant_cfg = dict(self.scenario["plant"])
        plant_cfg.update(PARAMS)
        plant_cfg["pump_cal"] = self.plant.pump_cal
        for s in self.sessions:
            s.pop("_pumped0", None)
        limit_s = self.physical_ready_s()
        metrics = {
            "ready_ms": self.ready_ms,
            "ready_limit_ms": int(limit_s * 1000),
            "ready_ratio": None if self.ready_ms is None else round(self.ready_ms / 1000 / limit_s, 4),
            "overshoot_c": None if self.overshoot_c is None else round(self.overshoot_c, 3),
            "steady_err_c": None if not self.err_n else round(self.err_sum / self.err_n, 3),
            "steady_err_max_c": None if not self.err_n else round(self.err_max, 3),
        }
        return {
            "contract": 1,
            "duration_s": duration_s,
            "seed": self.scenario["seed"],
            "wall_s": round(wall_s, 3),
            "realtime_factor": round(duration_s / wall_s, 1) if wall_s > 0 else None,
            "plant": plant_cfg,
            "loop": {"steps": self.steps, "period_ms": config.PERIOD_MS,
                     "alloc_errors": self.alloc_errors,
                     "step_us_p50": self._percentile(0.5), "step_us_p99": self._percentile(0.99),
                     "step_us_max": self.step_us_max, "crashes": self.crashes},
            "sessions": self.sessions,
            "faults": self.faults,
            "latched": self.latched,
            "resets": self.resets,
            "metrics": metrics,
        }


# What `steamer sim press/insert/remove/refill/fault` may inject into a running steamer.
_INJECTABLE = ("press_button", "insert_podlet", "remove_podlet", "refill_water", "fault",
               "clear_fault")


def _signed(profile):
    """The bytes a host pushes for a scenario PROFILE (signed by the sim driver)."""
    return bytes.fromhex(profile.get("signed_hex", ""))


def make(scenario, trace_path=None, speed=0.0, progress=True, flash_path=None, air=None,
         ble_name="steamer-sim"):
    return SimBoard(scenario, trace_path, speed, progress, flash_path, air, ble_name)
