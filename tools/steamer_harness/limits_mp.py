"""Runs on micropython (for steamer_harness.limits_machine): the firmware's own dosing,
ledger and limit code, driven one operation per stdin line.

    micropython -X heapsize=384k limits_mp.py FLASH_PATH

Each line is a JSON list [op, arg]; the reply is one line "@" + JSON object, so anything
else the interpreter prints on stdout (an exception in a finaliser) is told apart from
it. A reply says what the pump was commanded during the op (`doses`: runs of control
periods [session, serial, first period's time in ms, periods, nl/s]), the decisions the
firmware emitted (and `expired`: the podlets it refused as expired), its state, and the
board's time `now_ms`, which is the true time: it runs on through power cuts, which the
firmware cannot see.

The loop is fw.main.run's, with the plant left out: a period is the control step's
dosing part as step() runs it (podlet pulled, app._dose(), the state's end) and then
the firmware's own service(). Heating is skipped (preheat goes straight to steaming at
the target, cooldown straight to idle), which only lets sessions start sooner: the
limits do not depend on it. Idle stretches are passed in one jump of the step counter.

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
from podproto import ed25519

_END_REMOVED = app_mod.END_NAMES.index("podlet_removed")
_EPOCH0 = 1795000000
_PERIOD_MS = 100
_OFF_AFTER_CUT_MS = 1000
_BLOCK = 4096                   # the sim flash's block size


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
            f.write(b"\xff" * (2 * _BLOCK))

    def boot(self):
        b = self.board
        b.commands = []
        b.emit = self.emitted
        app = main.boot(b)
        app.podlet_in = b.podlet.present()
        self.app = app

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
        """One control period: the step's dosing part, then service()."""
        b = self.board
        app = self.app
        b.now_ms += _PERIOD_MS
        app.steps += 1
        app.podlet_in = b.podlet.present()
        if app.heating_state and not app.podlet_in:
            app._end(_END_REMOVED)
        state = app.state
        pump = 0
        if state == codes.ST_PREHEAT or state == codes.ST_READY:
            app.state = codes.ST_STEAMING   # heated at once, the outlet at its target
            app.outlet_mc = app.target_mc
            app.warm_steps = 0
        elif state == codes.ST_STEAMING:
            pump = app._dose()
        elif state == codes.ST_COOLDOWN:
            app.state = codes.ST_IDLE
        state = app.state
        app.heating_state = 1 if (state == codes.ST_PREHEAT or state == codes.ST_READY
                                  or state == codes.ST_STEAMING) else 0
        app.pump_nl_s = pump
        if pump:
            self.dosed(app.session_podlet["serial"], pump)
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
                self.app.steps += periods
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
            for _ in range(app_mod.CLOCK_HOLD_S * config.STEPS_PER_S + 1):
                app._button(1)
                self.tick()
            app._button(0)
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
    sys.stdout.write("@" + json.dumps(obj) + "\n")


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
            elif msg[0] == "reset":
                driver.reset()
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
