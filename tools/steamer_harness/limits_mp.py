"""Runs on micropython (for steamer_harness.limits_machine): the firmware's own dosing,
ledger and limit code, driven one operation per stdin line.

    micropython -X heapsize=416k limits_mp.py FLASH_PATH

Each line is a JSON list [op, arg]; the reply is one line "@" + JSON object, so anything
else the interpreter prints on stdout (an exception in a finaliser) is told apart from
it. A reply says what the pump was commanded during the op (`doses`: runs of control
periods [session, serial, first period's time in ms, periods, nl/s]), the decisions the
firmware emitted (and `expired`: the podlets it refused as expired), its state, and the
board's time `now_ms`, which is the true time: it runs on through power cuts, which the
firmware cannot see.

The loop is fw.main.run's, with the plant left out: a period is the firmware's real
control step (fw.main.control_step: App.step under heap_lock) and then its own
service(). The plant is a World that heats at once: in a session the sensors read a
boiler just below boiling and the outlet at its target (preheat is ready the first
step, steaming after the ready hold), out of one they read the room (cooldown ends the
first step), with a count of noise so no sensor reads frozen, and the encoder counts
what the pump delivered: what it was commanded times its calibration (`reset`'s
argument, permille). That only lets sessions start sooner: the limits do not
depend on it. Idle stretches are passed in one jump of the step counter.

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

import board as simboard
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
    on the sim board's inputs before each step."""
    ROOM_MC = 22000
    BOILER_MC = 98000           # ready (READY_MC), not yet boiling (fw.safety)
    HEATING = (codes.ST_PREHEAT, codes.ST_READY, codes.ST_STEAMING)

    def __init__(self):
        self.boiler_hot = _raws(ntc.BOILER_MC, self.BOILER_MC)
        self.boiler_room = _raws(ntc.BOILER_MC, self.ROOM_MC)
        self.outlet_room = _raws(ntc.OUTLET_MC, self.ROOM_MC)
        self.outlet_at = {}     # target mC -> raws
        self.noise = 0
        self.pumped = 0         # tenths of a nl the pump delivered since boot
        self.cal_pm = 1000      # what the pump delivers, permille of what it is told

    def boot(self):
        self.pumped = 0

    def sense(self, b, app):
        """The inputs of the next step, after a period under app's last outputs."""
        self.noise ^= 1
        if app.state in self.HEATING:
            braw = self.boiler_hot
            oraw = self.outlet_at.get(app.target_mc)
            if oraw is None:
                oraw = self.outlet_at[app.target_mc] = _raws(ntc.OUTLET_MC, app.target_mc)
        else:
            braw = self.boiler_room
            oraw = self.outlet_room
        b.boiler_ntc.raw = braw[self.noise]
        b.outlet_ntc.raw = oraw[self.noise]
        b.water_low.v = 0
        b.tilt.v = 0
        self.pumped += app.pump_nl_s * self.cal_pm // 1000
        b.pump.count = (self.pumped // (config.STEPS_PER_S * b.pump.NL_PER_PULSE)) & 0xFFFFFF


def _scenario(mfg_public_hex):
    return {"contract": 1, "duration_s": 10 ** 9, "seed": 1,
            "plant": {"ambient_c": 22.0, "water_ml": 150.0, "heater_w": 400.0,
                      "mains_pct": 100.0, "noise_pct": 100.0},
            "profiles": [], "events": [], "mfg_public_hex": mfg_public_hex}


class Driver:
    def __init__(self, flash_path, setup):
        self.path = flash_path
        self.blobs = [bytes.fromhex(h) for h in setup["profiles"]]
        self.podlets = setup["podlets"]
        self.scenario = _scenario(setup["mfg_public_hex"])
        self.board = None
        self.app = None
        self.step = None          # app.step, bound once
        self.world = World()
        self.sid = 0              # sessions started in this sequence
        self.out = None

    # ---- the device -------------------------------------------------------------------
    def reset(self):
        """A new device: blank flash, provisioned, booted; no podlet, clock unset."""
        if self.board is not None:
            self.board.close()
        self.board = None
        self.app = None
        gc.collect()
        self._blank_superblocks()
        self.board = simboard.make(self.scenario, None, 0.0, False, flash_path=self.path)
        self.sid = 0
        self.boot()

    def _blank_superblocks(self):
        """Erases littlefs's superblock pair of the flash file, so the board formats it
        as a blank device (cheaper than a new file: the other blocks are free space)."""
        try:
            f = open(self.path, "r+b")
        except OSError:
            return                  # no file yet: the board makes a blank one
        with f:
            # 256 bytes at a time: a long run's heap may hold no free 8 KB block, and a
            # reset that cannot allocate would fail every sequence after it.
            for _ in range(2 * _BLOCK // len(_ERASED)):
                f.write(_ERASED)

    def boot(self):
        b = self.board
        b.commands = []
        b.emit = self.emitted
        app = main.boot(b)
        app.podlet_in = b.podlet.present()
        self.app = app
        self.step = app.step
        self.world.boot()

    def power_cut(self, off_ms):
        """Power off for off_ms, then a boot. The RAM is gone; so is every file object of
        the mount before: they stay wired to the flash object they were opened on, which
        stays off for good (the finaliser of a file a cut left open cannot reach the
        flash mounted next), and the new mount gets a new flash object."""
        b = self.board
        self.app = None
        b.now_ms += off_ms
        b.clock_base_s = 0            # no battery: the RTC is lost
        b.cause = codes.RESET_POWER
        old = b.flash
        old.off = True
        old.cut_at = 0
        old.close()
        b.flash = FileFlash(self.path)
        b.mount_flash()
        self.boot()

    def emitted(self, record):
        out = self.out
        if out is None:
            return
        ev = record["event"]
        if ev == "session_started":
            self.sid += 1
            out["started"].append([self.sid, record["podlet"], self.board.now_ms])
        else:
            why = record.get("reason")
            if ev == "podlet_rejected" and why == "expired":
                out["expired"].append(record["podlet"])
            if why is None:
                why = record.get("version", record.get("podlet"))
            out["events"].append([ev, why])

    def finish_checks(self):
        finish = getattr(self.app, "finish_checks", None)
        if finish is not None:
            finish()

    # ---- the loop -----------------------------------------------------------------------
    def tick(self):
        """One control period: the firmware's control step, then service()."""
        b = self.board
        app = self.app
        b.now_ms += _PERIOD_MS
        self.world.sense(b, app)
        if not main.control_step(b, app, self.step):
            raise RuntimeError("the control step allocated or failed")
        pump = app.pump_nl_s
        if pump:
            # What the pump delivers in the next period (the world's calibration).
            self.dosed(app.session_podlet["serial"], pump * self.world.cal_pm // 1000)
        app.service()

    def dosed(self, serial, rate):
        runs = self.out["doses"]
        now = self.board.now_ms
        if runs:
            r = runs[-1]
            if (r[0] == self.sid and r[4] == rate and r[1] == serial
                    and r[2] + r[3] * _PERIOD_MS == now):
                r[3] += 1
                return
        runs.append([self.sid, serial, now, 1, rate])

    def quiet(self):
        app = self.app
        return ((app.state == codes.ST_IDLE or app.state == codes.ST_FAULT)
                and not getattr(app, "checks", None)
                and not app.end_reason and not app.fault_pending)

    def advance(self, periods):
        """periods of the loop; an idle stretch passes in one jump and one service()."""
        b = self.board
        while periods > 0:
            if self.quiet():
                self.app.set_steps(self.app.steps() + periods)
                b.now_ms += periods * _PERIOD_MS
                self.app.service()
                return
            self.tick()
            periods -= 1

    # ---- operations ---------------------------------------------------------------------
    def op(self, name, arg):
        b = self.board
        app = self.app
        if name == "insert":
            if b.podlet.v:
                self.op("remove", None)   # the one in comes out first
            b.podlet.info = {"image_hex": self.podlets[arg]}
            b.podlet.v = 1
            self.tick()
            self.finish_checks()
        elif name == "remove":
            b.podlet.info = None
            b.podlet.v = 0
            self.tick()
        elif name == "start":
            app.command("start_session", None)
            self.finish_checks()
        elif name == "stop":
            app.command("stop_session", None)
            self.tick()
        elif name == "advance":
            self.advance(arg)
        elif name == "power_cut":
            self.power_cut(arg)
        elif name == "set_clock":
            app.set_clock(_EPOCH0 + b.now_ms // 1000 + arg)
        elif name == "confirm_clock":
            # The owner's hold (fw.app: CLOCK_HOLD_S, only idle opens the window), let
            # go, then a clock set: taken as it is if the window opened.
            b.button.v = 1
            for _ in range(app_mod.CLOCK_HOLD_S * config.STEPS_PER_S + 1):
                self.tick()
            b.button.v = 0
            self.tick()
            app.set_clock(_EPOCH0 + b.now_ms // 1000 + arg)
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
            b.flash.cut_at_write(arg[0])
            try:
                self.op(arg[1], arg[2])
            finally:
                self.board.flash.cut_at = 0
        else:
            raise ValueError("unknown op %r" % name)

    def run(self, name, arg):
        out = {"doses": [], "started": [], "events": [], "expired": []}
        self.out = out
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
        app = self.app
        prof = app.profiles.get(3)
        out["state"] = codes.STATE_NAMES[app.state]
        out["now_ms"] = self.board.now_ms
        out["profile_v"] = prof["version"] if prof is not None else 0
        out["ledger"] = app.ledger is not None
        return out


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
                driver = Driver(sys.argv[1], msg[1])
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
                driver.reset()
                driver.world.cal_pm = msg[1] or 1000
                reply = {"ok": True, "now_ms": driver.board.now_ms}
            else:
                reply = driver.run(msg[0], msg[1])
        except Exception as e:  # a firmware or driver bug: the caller reports it
            sys.print_exception(e, sys.stderr)
            reply = {"error": "%s: %s" % (type(e).__name__, e)}
        _reply(reply)
    if driver is not None and driver.board is not None:
        driver.board.close()
        try:
            os.remove(driver.path)
        except OSError:
            pass


_main()
