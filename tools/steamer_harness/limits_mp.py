"""Runs on micropython (for steamer_harness.limits_machine): the firmware's own dosing,
ledger and limit code, driven one operation per stdin line.

    micropython -X heapsize=416k limits_mp.py FLASH_PATH [BOARD_PY]

Without BOARD_PY (or with "sim") the device is the sim board (boards/sim/board.py;
MICROPYPATH device, protocol, boards/sim: SimRig). With BOARD_PY, a real board's
board.py (boards/picow, boards/esp32c3), it is that board with boards/common/
realboard.py on the port models of boards/portsim, from the .mpy folder and with the
environment of steamer_sim.portsim.port_env (PortRig).

Each line is a JSON list [op, arg]; the reply is one line "@" + JSON object, so anything
else the interpreter prints on stdout (an exception in a finaliser) is told apart from
it. Before it come the op's doses, a line "+" + JSON each: runs of control periods
[session, serial, first period's time in ms, periods, tenths of a nl a period] of what
the pump delivered (on the sim the command times the calibration, on a real board what
its step PWM moved), written as each run closes so that a long session's runs are not
held for the reply (Device gathers them into the reply's `doses`). A reply says
`first_cmd`: [session, time] of each session's first pump command), the decisions the
firmware emitted (and `expired`: the podlets it refused as expired), its state, and the
board's time `now_ms`, which is the true time: it runs on through power cuts, which the
firmware cannot see.

The loop is fw.main.run's, with the plant left out: a period is the firmware's real
control step (fw.main.control_step: App.step under heap_lock) and then its own
service(). The plant is a World that heats at once: in a session the sensors read a
boiler just below boiling and the outlet at its target (preheat is ready the first
step, steaming after the ready hold), out of one they read the room (cooldown ends the
first step), with a count of noise so no sensor reads frozen, and the encoder counts
what the pump delivered: what it was commanded (the sim) or stepped (a real board)
times its calibration (`reset`'s argument, permille). That only lets sessions start
sooner: the limits do not depend on it. Idle stretches are passed in one jump of the
step counter.

Signature checks run the firmware's trust path (podproto's verify_steps, app.checks);
only the Ed25519 arithmetic is memoized per (key, message, signature), each verified
once for real, so that a sequence costs milliseconds.
"""
import gc
import json
import os
import sys

# This file's folder (steamer_tools) holds a host tool named flash.py: the sim board's
# flash module must be the one on MICROPYPATH.
_HERE = sys.argv[0].rpartition("/")[0] or "."
while _HERE in sys.path:
    sys.path.remove(_HERE)

import board as board_mod
from flash import FileFlash, PowerCut
from fw import app as app_mod
from fw import config
from fw import codes
from fw import main
from fw import ntc
from podproto import ed25519

_EPOCH0 = 1795000000
_PERIOD_MS = 100
_OFF_AFTER_CUT_MS = 1000
_BLOCK = 4096                   # the sim flash's block size
_ERASED = b"\xff" * 256        # one erased piece of a block (see _blank_superblocks)


def _memo_ed25519():
    real = ed25519.verify_steps
    cache = {}

    def verify_steps(public_key, message, signature, *args, **kw):
        k = bytes(public_key) + bytes(message) + bytes(signature)
        ok = cache.get(k)
        if ok is None:
            ok = ed25519.run(real(public_key, message, signature))
            cache[k] = ok
        yield 1
        return ok

    ed25519.verify_steps = verify_steps


def _raws(table, mc):
    """Two neighbouring raw counts that read about mc (within 0.4 K) on table."""
    for raw in range(config.RAW_SHORT + 1, config.RAW_OPEN - 2):
        a = ntc.to_mc(table, raw)
        b = ntc.to_mc(table, raw + 1)
        if abs(a - mc) <= 400 and abs(b - mc) <= 400 and a != b:
            return (raw, raw + 1)
    raise ValueError("no raw reads %d mC" % mc)


class World:
    """The plant left out: what the sensors of an appliance that heats at once read, set
    on the board's inputs (the rig's) before each step."""
    ROOM_MC = 22000
    BOILER_MC = 98000           # ready (READY_MC), not yet boiling (fw.safety)
    HEATING = (codes.ST_PREHEAT, codes.ST_READY, codes.ST_STEAMING)

    def __init__(self):
        self.boiler_hot = _raws(ntc.BOILER_MC, self.BOILER_MC)
        self.boiler_room = _raws(ntc.BOILER_MC, self.ROOM_MC)
        self.outlet_room = _raws(ntc.OUTLET_MC, self.ROOM_MC)
        self.outlet_at = {}     # target mC -> raws
        self.noise = 0

    def raws(self, app):
        """The NTCs' raw counts (boiler, outlet) of the next step, after a period under
        app's last outputs."""
        self.noise ^= 1
        if app.state in self.HEATING:
            braw = self.boiler_hot
            oraw = self.outlet_at.get(app.target_mc)
            if oraw is None:
                oraw = self.outlet_at[app.target_mc] = _raws(ntc.OUTLET_MC, app.target_mc)
        else:
            braw = self.boiler_room
            oraw = self.outlet_room
        return braw[self.noise], oraw[self.noise]


def _blank_superblocks(path):
    """Erases littlefs's superblock pair of the flash file at path, so the board formats
    it as a blank device (cheaper than a new file: the other blocks are free space)."""
    try:
        f = open(path, "r+b")
    except OSError:
        return                  # no file yet: the board makes a blank one
    with f:
        # 256 bytes at a time: a long run's heap may hold no free 8 KB block, and a
        # reset that cannot allocate would fail every sequence after it.
        for _ in range(2 * _BLOCK // len(_ERASED)):
            f.write(_ERASED)


class SimRig:
    """The sim board (boards/sim/board.py) as the driver's device: time is its now_ms,
    moved on by the driver; its inputs are attributes; its encoder counts what the pump
    was commanded times the calibration."""

    def __init__(self, flash_path, scenario):
        self.path = flash_path
        self.scenario = scenario
        self.board = None
        self.cal_pm = 1000
        self.pumped = 0         # tenths of a nl the pump delivered since boot

    def new_device(self, cal_pm):
        """A new device on a blank flash (the board made, not booted)."""
        self.close()
        _blank_superblocks(self.path)
        self.board = board_mod.make(self.scenario, None, 0.0, False, flash_path=self.path)
        self.cal_pm = cal_pm
        self.pumped = 0
        return self.board

    def hook(self, board, emitted):
        board.commands = []
        board.emit = emitted

    def now_ms(self):
        return self.board.now_ms

    def inputs(self, braw, oraw, pump_nl_s):
        """The next step's inputs, after a period with the pump commanded pump_nl_s."""
        b = self.board
        b.boiler_ntc.raw = braw
        b.outlet_ntc.raw = oraw
        b.water_low.v = 0
        b.tilt.v = 0
        self.pumped += pump_nl_s * self.cal_pm // 1000
        b.pump.count = (self.pumped // (config.STEPS_PER_S * b.pump.NL_PER_PULSE)) & 0xFFFFFF

    def period(self):
        self.board.now_ms += _PERIOD_MS

    def jump(self, ms):
        self.board.now_ms += ms

    def hang(self, ms):
        self.board.now_ms += ms     # the sim rig keeps no watchdog: time passes

    def moved(self):
        """None: the sim's dose is the command times the calibration (the driver's)."""
        return None

    def podlet(self, image_hex):
        b = self.board
        b.podlet.info = {"image_hex": image_hex} if image_hex else None
        b.podlet.v = 1 if image_hex else 0

    def podlet_in(self):
        return self.board.podlet.v

    def button(self, held):
        self.board.button.v = held

    def power_cut(self, off_ms):
        """Power off for off_ms; returns the board to boot. The RAM is gone; so is every
        file object of the mount before: they stay wired to the flash object they were
        opened on, which stays off for good (the finaliser of a file a cut left open
        cannot reach the flash mounted next), and the new mount gets a new flash
        object."""
        b = self.board
        b.now_ms += off_ms
        b.clock_base_s = 0            # no battery: the RTC is lost
        b.cause = codes.RESET_POWER
        old = b.flash
        old.off = True
        old.cut_at = 0
        old.close()
        b.flash = FileFlash(self.path)
        b.mount_flash()
        self.pumped = 0
        return b

    def cut_at_write(self, n):
        self.board.flash.cut_at_write(n)

    def uncut(self):
        self.board.flash.cut_at = 0

    def close(self):
        if self.board is not None:
            self.board.close()
        self.board = None
        gc.collect()


class _PumpHead:
    """What the port's Encoder follows (hookup.Encoder): a pump of this calibration,
    powered, without faults."""
    powered = True
    faults = ()

    def __init__(self, cal_pm):
        self.pump_cal = cal_pm / 1000


class WatchdogBite(Exception):
    """A real board's watchdog went unfed past its timeout in the limits rig."""


class PortRig:
    """A real board (BOARD's board.py, boards/common/realboard.py) on the port models as
    the driver's device. Time is the port clock's: each period the rig sleeps to the
    period's edge (timers, pin IRQs and the soft-IRQ scheduler run, as in the board's
    wait_tick, which is left out: the driver runs the loop) and the flash's erases and
    programs and the 1-Wire's slots spend it. The inputs are the ADC pins' volts
    (hookup.ntc_uv: the board's dividers), the switches' levels and the podlet's chip
    on the board's 1-Wire bus; the encoder's edges come from what the step PWM really
    put out (hookup.Encoder), and moved() is that, so the driver's doses are what the
    pump moved, not what it was told. A power cut is the port's power-on (machine.
    power_on: the RTC lost as the port loses it) and its boot's mount of littlefs
    (hookup.mount) on the same flash file. The watchdog is the board's (machine.WDT):
    a period that begins with it unfed past its timeout fails the sequence
    (WatchdogBite: the board would have reset there, which no limit may rest on); the
    periods a jump passes over count as fed. Left out: the radio (the limits rig drives
    the firmware's commands itself).

    The C3's unit is drawn from $PORTSIM_CHIP_SEED as in a port run, and each new
    device is calibrated at the factory before its first boot (hookup.calibrate: the
    adccal record `steamer mfg adc-cal` writes), as a shipped unit is."""

    def __init__(self, board_py, flash_path, scenario):
        import hookup
        import machine
        import onewire
        import portclock
        import realboard
        import time
        import timedflash
        import vfs
        from pintable import pin_table
        name = board_mod.Board.name
        self.hookup = hookup
        self.vfs = vfs
        self.machine = machine
        self.onewire = onewire
        self.portclock = portclock
        self.timedflash = timedflash
        self.name = name
        if hookup.WIRING[name]["port"] != machine.PORT:
            raise SystemExit("limits_mp: board %s runs on the %s port, not PORTSIM_PORT=%s"
                             % (name, hookup.WIRING[name]["port"], machine.PORT))
        time.set_port_epoch(2000 if machine.ESP32 else 1970)
        self.pins = pin_table(board_py)
        self.path = flash_path
        self.key_hex = scenario["mfg_public_hex"]
        self.data_dir = realboard.Board.data_dir
        self.board = None
        self.flash = None
        self.encoder = None
        self.cal_pm = 1000
        self.t_us = 0           # the schedule's time: the edge of the period under way
        self.image = None       # the podlet's chip image in the slot, or None
        self.held = 0
        self.pwm = None         # the step PWM of this boot, and its steps counted
        self.seen = 0
        self.late_periods = 0   # periods that began after their edge (service() ran long)
        self.factory_cal = False    # the next boot is a new unit's: calibrated first
        self.last_in = None         # the NTC inputs' last raw counts (boiler, outlet)

    def new_device(self, cal_pm):
        self.close()
        _blank_superblocks(self.path)
        self.portclock.NOW[0] = 0
        self.t_us = 0
        self.cal_pm = cal_pm
        self.machine.power_on()
        self.image = None
        self.held = 0
        self.encoder = self.hookup.Encoder(self.pins, _PumpHead(cal_pm))
        self.factory_cal = True
        return self._boot()

    def _boot(self):
        """The port's boot on the flash file, then the board made (not yet booted)."""
        h = self.hookup
        self.onewire.BUSES.clear()
        for name in ("WATER_FLOAT", "TILT"):
            h.set_level(self.pins[name], 0)       # closed: water present, upright
        h.set_level(self.pins["BUTTON"], 0 if self.held else 1)
        self.flash = self.timedflash.TimedFlash(self.path)
        self.timedflash.DEVICE[0] = self.flash
        h.mount(self.flash, self.data_dir, self.key_hex)
        if self.factory_cal:
            self.factory_cal = False
            h.calibrate(self.name, board_mod, self.pins, self.data_dir)
            if self.last_in is not None:
                self.inputs(self.last_in[0], self.last_in[1], 0)   # the plug out
        self.portclock.EDGE_PINS.append(self.encoder)
        self.pwm = None
        self.seen = 0
        b = board_mod.make()
        self.board = b
        self._bus()
        return b

    def _bus(self):
        buses = self.onewire.BUSES
        if buses:
            buses[-1].image = self.image

    def hook(self, board, emitted):
        real = board.emit

        def emit(record):
            emitted(record)
            real(record)

        board.emit = emit

    def now_ms(self):
        return self.t_us // 1000

    def inputs(self, braw, oraw, _pump_nl_s):
        self.last_in = (braw, oraw)
        h = self.hookup
        h.set_uv(self.pins["BOILER_NTC"], h.ntc_uv(self.name, "boiler", braw))
        h.set_uv(self.pins["OUTLET_NTC"], h.ntc_uv(self.name, "outlet", oraw))

    def _sleep_to(self, t_us):
        now = self.portclock.NOW[0]
        if now < t_us:
            self.portclock.sleep_us(t_us - now)
        else:
            self.late_periods += 1

    def period(self):
        self.t_us += _PERIOD_MS * 1000
        self._sleep_to(self.t_us)
        self._watchdog()

    def jump(self, ms):
        # The periods a jump passes over run no step here (the world heats at once); on
        # a board each would have fed the watchdog. What the step before the jump left
        # must still be within its timeout.
        self._watchdog()
        self.t_us += ms * 1000
        self._sleep_to(self.t_us)
        now = self.portclock.NOW[0]
        for w in self.machine.WDTS:
            w.fed_us = now

    def hang(self, ms):
        """ms pass with the firmware stopped: nothing feeds the watchdog."""
        self.t_us += ms * 1000
        self._sleep_to(self.t_us)

    def _watchdog(self):
        """The watchdog's bite (machine.WDT: started by the board, never stopped): a
        step and service() that did not feed it within its timeout fail the sequence,
        as the board would reset there."""
        now = self.portclock.NOW[0]
        for w in self.machine.WDTS:
            if w.overdue_us(now) > 0:
                raise WatchdogBite("the watchdog bit: unfed for %d ms (timeout %d ms)"
                                   % ((now - w.fed_us) // 1000, w.timeout))

    def moved(self):
        """Tenths of a nl the pump moved since the last call: the step PWM's steps (2 nl
        each, times the calibration)."""
        pwm = self.machine.PWMS.get(self.pins["PUMP_STEP"])
        if pwm is None:
            return 0
        if pwm is not self.pwm:
            self.pwm = pwm
            self.seen = 0
        pwm.settle()
        steps = pwm.steps - self.seen
        self.seen = pwm.steps
        return steps * 20 * self.cal_pm // 1000

    def podlet(self, image_hex):
        self.image = bytes.fromhex(image_hex) if image_hex else None
        self._bus()

    def podlet_in(self):
        return self.image is not None

    def button(self, held):
        self.held = held
        self.hookup.set_level(self.pins["BUTTON"], 0 if held else 1)

    def power_cut(self, off_ms):
        """Power off for off_ms (the old mount's flash object stays off for good, as
        SimRig's), then the port's power-on and boot; returns the board to boot."""
        old = self.flash
        old.off = True
        old.cut_at = 0
        old.close()
        self.board = None
        self.machine.power_on()
        self.t_us += off_ms * 1000
        if self.portclock.NOW[0] < self.t_us:
            self.portclock.NOW[0] = self.t_us
        return self._boot()

    def cut_at_write(self, n):
        self.flash.cut_at_write(n)

    def uncut(self):
        self.flash.cut_at = 0

    def close(self):
        self.board = None
        if self.flash is not None:
            try:
                self.vfs.umount(self.data_dir)
            except OSError:
                pass
            self.flash.close()
            self.flash = None
        gc.collect()


def _scenario(mfg_public_hex):
    return {"contract": 1, "duration_s": 10 ** 9, "seed": 1,
            "plant": {"ambient_c": 22.0, "water_ml": 150.0, "heater_w": 400.0,
                      "mains_pct": 100.0, "noise_pct": 100.0},
            "profiles": [], "events": [], "mfg_public_hex": mfg_public_hex}


class Driver:
    def __init__(self, flash_path, setup, board_py=None):
        self.blobs = [bytes.fromhex(h) for h in setup["profiles"]]
        self.podlets = setup["podlets"]
        scenario = _scenario(setup["mfg_public_hex"])
        if board_py is None:
            self.rig = SimRig(flash_path, scenario)
        else:
            self.rig = PortRig(board_py, flash_path, scenario)
        self.board = None
        self.app = None
        self.step = None          # app.step, bound once
        self.world = World()
        self.cal_pm = 1000
        self.sid = 0              # sessions started in this sequence
        self.pumping = None       # (session, serial) the last step commanded the pump for
        self.out = None
        self.run_open = None      # the doses' run under way: [sid, serial, t0, n, amount]

    # ---- the device -------------------------------------------------------------------
    def reset(self, cal_pm):
        """A new device: blank flash, provisioned, booted; no podlet, clock unset; its
        pump delivers cal_pm permille of what it is told."""
        self.board = None
        self.app = None
        self.cal_pm = cal_pm
        self.board = self.rig.new_device(cal_pm)
        self.sid = 0
        self.pumping = None
        self.boot()

    def boot(self):
        b = self.board
        self.rig.hook(b, self.emitted)
        app = main.boot(b)
        app.podlet_in = b.podlet.present()
        self.app = app
        self.step = app.step

    def power_cut(self, off_ms):
        """Power off for off_ms, then a boot (the rig's power_cut)."""
        # The old boot's RAM is gone: nothing of it may take the new boot's heap (self.
        # step holds the old app), as a real board's boot starts in empty RAM.
        self.app = None
        self.board = None
        self.step = None
        gc.collect()
        self.board = self.rig.power_cut(off_ms)
        self.pumping = None
        self.boot()

    def emitted(self, record):
        out = self.out
        if out is None:
            return
        ev = record["event"]
        if ev == "session_started":
            self.sid += 1
            out["started"].append([self.sid, record["podlet"], self.rig.now_ms()])
        else:
            why = record.get("reason")
            if ev == "podlet_rejected" and why == "expired":
                out["expired"].append(record["podlet"])
            if why is None:
                why = record.get("version", record.get("podlet", record.get("code")))
            out["events"].append([ev, why])

    def finish_checks(self):
        finish = getattr(self.app, "finish_checks", None)
        if finish is not None:
            finish()

    # ---- the loop -----------------------------------------------------------------------
    def tick(self):
        """One control period: its inputs, the period's time, the firmware's control
        step, then service()."""
        rig = self.rig
        app = self.app
        rig.inputs(*self.world.raws(app), app.pump_nl_s)
        rig.period()
        moved = rig.moved()
        if moved:
            # What the pump moved in the period just ended: the last command's, dated at
            # the step that gave it (as the sim's below). Moved with no command this
            # boot would be the port's own: charged to no genuine podlet, it fails
            # genuine_only.
            sid, serial = self.pumping or (self.sid, "unattributed")
            self.dosed(sid, serial, rig.now_ms() - _PERIOD_MS, moved)
        if not main.control_step(self.board, app, self.step):
            raise RuntimeError("the control step allocated or failed")
        pump = app.pump_nl_s
        if pump:
            if self.pumping is None or self.pumping[0] != self.sid:
                # The session's first command: where its pattern's clock starts, which on
                # a real board may be before its pump first moves (held for a flash write).
                self.out["first_cmd"].append([self.sid, rig.now_ms()])
            self.pumping = (self.sid, app.session_podlet["serial"])
            if moved is None:
                # The sim: what the pump delivers in the next period (the calibration).
                self.dosed(self.sid, self.pumping[1], rig.now_ms(), pump * self.cal_pm // 1000)
        app.service()

    def dosed(self, sid, serial, now, amount):
        """A period's dose: the open run's next period if it is the same, or a new run
        (the open one written out: _dose_line)."""
        r = self.run_open
        if r is not None:
            if (r[0] == sid and r[4] == amount and r[1] == serial
                    and r[2] + r[3] * _PERIOD_MS == now):
                r[3] += 1
                return
            _dose_line(r)
        self.run_open = [sid, serial, now, 1, amount]

    def quiet(self):
        app = self.app
        return ((app.state == codes.ST_IDLE or app.state == codes.ST_FAULT)
                and not getattr(app, "checks", None)
                and not app.end_reason and not app.fault_pending)

    def advance(self, periods):
        """periods of the loop; an idle stretch passes in one jump and one service()."""
        while periods > 0:
            if self.quiet() and not self.app.pump_nl_s:
                self.app.set_steps(self.app.steps() + periods)
                self.rig.jump(periods * _PERIOD_MS)
                moved = self.rig.moved()
                if moved:
                    sid, serial = self.pumping or (self.sid, "unattributed")
                    self.dosed(sid, serial, self.rig.now_ms() - periods * _PERIOD_MS, moved)
                self.app.service()
                return
            self.tick()
            periods -= 1

    # ---- operations ---------------------------------------------------------------------
    def op(self, name, arg):
        rig = self.rig
        app = self.app
        if name == "insert":
            if rig.podlet_in():
                self.op("remove", None)   # the one in comes out first
            rig.podlet(self.podlets[arg])
            self.tick()
            self.finish_checks()
        elif name == "remove":
            rig.podlet(None)
            self.tick()
        elif name == "start":
            app.command("start_session", None)
            self.finish_checks()
        elif name == "stop":
            app.command("stop_session", None)
            self.tick()
        elif name == "advance":
            self.advance(arg)
        elif name == "hang":
            # The firmware stops for arg ms (a bug's loop: no step, no service, no feed),
            # then runs a period: on a real board its watchdog bites there (WatchdogBite).
            rig.hang(arg)
            self.tick()
        elif name == "power_cut":
            self.power_cut(arg)
        elif name == "set_clock":
            app.set_clock(_EPOCH0 + rig.now_ms() // 1000 + arg)
        elif name == "confirm_clock":
            # The owner's hold (fw.app: CLOCK_HOLD_S, only idle opens the window), let
            # go, then a clock set: taken as it is if the window opened.
            rig.button(1)
            for _ in range(app_mod.CLOCK_HOLD_S * config.STEPS_PER_S + 1):
                self.tick()
            rig.button(0)
            self.tick()
            app.set_clock(_EPOCH0 + rig.now_ms() // 1000 + arg)
        elif name == "install":
            app.command("install_profile", self.blobs[arg])
            self.finish_checks()
        elif name == "fault":
            if app.state != codes.ST_FAULT:   # as step() latches one (tipped over)
                app.latch(codes.F_TIP_OVER)
            self.tick()
        elif name == "ack":
            app.ack_faults()
            self.tick()
        elif name == "cut":
            # [n, op, arg]: op with the power cut at its nth flash write (if it makes n).
            rig.cut_at_write(arg[0])
            try:
                self.op(arg[1], arg[2])
            finally:
                self.rig.uncut()
        else:
            raise ValueError("unknown op %r" % name)

    def run(self, name, arg):
        out = {"started": [], "events": [], "expired": [], "first_cmd": []}
        self.out = out
        self.run_open = None
        try:
            self.op(name, arg)
        except PowerCut:
            out["cut"] = True
            while True:                 # the power is back after a moment
                try:
                    self.power_cut(_OFF_AFTER_CUT_MS)
                    break
                except PowerCut:
                    pass
        self.out = None
        if self.run_open is not None:
            _dose_line(self.run_open)
            self.run_open = None
        app = self.app
        prof = app.profiles.get(3)
        out["state"] = codes.STATE_NAMES[app.state]
        out["now_ms"] = self.rig.now_ms()
        out["profile_v"] = prof["version"] if prof is not None else 0
        out["ledger"] = app.ledger is not None
        return out


def _dose_line(run):
    # A run of doses goes out as it closes, a line before the op's reply (Device._send
    # gathers them into its "doses"): on a real board the pump's steps vary period to
    # period, a run a period, and a long session's runs kept for one reply would take
    # the heap the firmware needs.
    sys.stdout.write("+" + json.dumps(run) + "\n")


def _reply(obj):
    # Written a piece at a time: a session whose pump is trimmed every step has runs of
    # one period, and one string of them all does not fit the heap (MemoryError).
    w = sys.stdout.write
    w("@{")
    sep = ""
    for k, v in obj.items():
        w(sep + json.dumps(k) + ":")
        sep = ","
        if isinstance(v, list):
            w("[")
            s2 = ""
            for x in v:
                w(s2 + json.dumps(x))
                s2 = ","
            w("]")
        else:
            w(json.dumps(v))
    w("}\n")


_HELD = [None]


def _main():
    _memo_ed25519()
    driver = None
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        msg = json.loads(line)
        try:
            if msg[0] == "setup":
                board_py = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] != "sim" else None
                driver = Driver(sys.argv[1], msg[1], board_py)
                reply = {"ok": True}
            elif msg[0] == "hold_heap":
                # For the Device's own test (tests/device/test_limits_device.py): the
                # heap a long run's fragments hold, kept until the process ends:
                # blocks, smaller as the larger no longer fit, until about msg[1]
                # bytes are free.
                gc.collect()
                for size in (4096, 1024, 256, 64):
                    try:
                        while gc.mem_free() > msg[1] + size:
                            _HELD[0] = (bytearray(size), _HELD[0])   # a chain: no big list
                    except MemoryError:
                        pass
                reply = {"ok": True, "free": gc.mem_free()}
            elif msg[0] == "reset":
                # What the new device's boot emitted comes back too (its record_doubts).
                out = {"started": [], "events": [], "expired": [], "first_cmd": []}
                driver.out = out
                try:
                    driver.reset(msg[1] or 1000)
                finally:
                    driver.out = None
                reply = {"ok": True, "now_ms": driver.rig.now_ms(), "events": out["events"]}
                out = None
            else:
                reply = driver.run(msg[0], msg[1])
        except Exception as e:  # a firmware or driver bug: the caller reports it
            sys.print_exception(e, sys.stderr)
            reply = {"error": "%s: %s" % (type(e).__name__, e)}
        _reply(reply)
        # Let go of it before the next op: a long run's doses (a run a period while
        # the pump's trim moves) would hold the heap the next op's boot needs.
        reply = None
    if driver is not None:
        driver.rig.close()
        try:
            os.remove(sys.argv[1])
        except OSError:
            pass


_main()
