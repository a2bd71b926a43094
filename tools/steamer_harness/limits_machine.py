"""The dosing limits against any sequence of events: a hypothesis state machine driving
the firmware's own ledger and limit code on the `micropython` interpreter
(steamer_tools/limits_mp.py, one long-lived process reset between sequences).

Invariants, with "delivered" what the pump delivered (its command times a calibration
drawn per sequence, 95-105 %, counted here, outside the firmware's ledger, which counts
the encoder) and time the true time (which runs on through power cuts); "over" is one
encoder pulse plus what one period of the pump 5 % fast adds (OVER_UNITS):
- podlet_capacity: for every podlet, delivered <= its capacity + over.
- session_max: for every session, delivered <= max_session_ul + over.
- day_max: in every 24-hour window, delivered <= max_day_ul + over.
- min_interval: sessions start no closer than min_interval_s.
- pattern_rate: every session delivers by its profile's pattern: no period's command
  above the rate the pattern asks for then (a ramp's by the whole seconds since the
  session's first dose) trimmed up by the firmware's most (an eighth, and a nl a
  period: fw.session dose_step), and a pulsed session no more in any window of its
  period than one bolus trimmed up the same way.
- genuine_only: no profile but a genuine one of a higher version is ever installed, and
  nothing is delivered from a podlet whose ID chip is not genuine.
- expiry: no session starts on a podlet whose expiry day is before the day of the clock
  the device must trust: the newest time the host set (a set more than 400 days past it
  is not taken), or the time the owner confirmed (the button held, idle), plus the time
  powered since that set (until a power cut, which the device cannot time).
- expired_stays_expired: no session starts on a podlet the device has refused as
  expired, whatever the clock is set to afterwards (and across power cuts), until the
  owner confirms a clock set.

Events: podlets inserted and removed, sessions started and stopped, time passing (idle
or dosing), power cuts (for a while, or at the Nth next flash write), the clock set
forward and back, the owner's confirmed set (the button held 20 s, then a set, far
back or far ahead), profiles installed (good, stale, unsigned, tampered, wrong key), a
fault and its acknowledgement.

    from steamer_harness import limits_machine
    limits_machine.run(1000)                  # raises on a violation, shrunk
    # tests/device/test_limits_stateful.py; `steamer dev bench --parts limits`
    limits_machine.run(100, limits_machine.Device("esp32c3"))   # a real board module
    # tests/boards/test_portsim_limits.py

Volumes here are in tenths of a nanolitre: a period's pump command of r nl/s is r of
them, so sums are exact.
"""
from __future__ import annotations

import datetime
import json
import os
import select
import subprocess
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, rule,
                                 run_state_machine_as_test)

from steamer_mfg.devkeys import DEV_PUBLIC
from steamer_dev.paths import BOARDS, SIM_HEAP, micropython_env, micropython_exe
from steamer_sim.portsim import PORT_OF, port_build, port_env
from steamer_sim.signing import podlet_image, signed_profile

DRIVER = Path(__file__).with_name("limits_mp.py")
EXAMPLES_ENV = "STEAMER_LIMITS_EXAMPLES"
PORT_EXAMPLES_ENV = "STEAMER_LIMITS_PORT_EXAMPLES"
STEPS = 20                     # rules per sequence, at most
CALL_TIMEOUT_S = 30.0
PERIOD_MS = 100
DAY_MS = 86_400_000
EPOCH0_S = 1_795_000_000       # the driver's clock at time 0: 2026-11-18 11:06:40 UTC
_DAY0 = datetime.date(2000, 1, 1)   # podlet expiry days count from here (podproto.podlet)
UNIT_PER_UL = 10_000           # tenths of a nl
# The pump's calibration, permille of what it is told (the sim's is within +-5 %); the
# firmware counts what its encoder measured, so a limit may be passed by one encoder pulse
# and what one period of a pump 5 % fast adds at the fastest rate (2000 ul/min).
PUMP_CAL_PM = (950, 1000, 1050)
OVER_UNITS = 100 * 10 + 33_334 * 50 // 1000

# A real board's driver process: the sim's heap and the port models' (steamer_sim.
# portsim.MODELS_HEAP_K), and room for the fragments a long run of sessions, power cuts
# and timed flash writes leaves in one long-lived process.
PORT_HEAP = "512k"

MAX_SESSION_UL = 300
MAX_DAY_UL = 800
MIN_INTERVAL_S = 120
_BASE = {"podlet_type": 3, "version": 1, "name": "limits", "outlet_target_c": 45.0,
         "session_s": 60, "dose_rate_ul_min": 1200, "max_session_ul": MAX_SESSION_UL,
         "max_day_ul": MAX_DAY_UL, "min_interval_s": MIN_INTERVAL_S}
_LOOSE = {"max_session_ul": 20000, "max_day_ul": 100000, "min_interval_s": 0}
# install(i) pushes PROFILES[i]: (what, version, signed bytes). Good ones share the limits.
_GOOD = [
    dict(_BASE, version=2),
    # 1000 ul/min is 16666.67 nl/s: the step carries a remainder.
    dict(_BASE, version=3, dose_rate_ul_min=1000, session_s=12),
    # Slow: a reserved chunk lasts 10 s, so the ledger's times run behind the pump.
    dict(_BASE, version=4, dose_rate_ul_min=300, session_s=90),
    dict(_BASE, version=5, dose_rate_ul_min=2000, session_s=30),
    # Format 2's delivery patterns (issue 17), under the same limits: a bolus of 7 ul every
    # 3 s, and a rate rising over the first 20 s.
    dict(_BASE, version=6, pattern="pulsed", bolus_ul=7, period_s=3),
    dict(_BASE, version=7, dose_rate_ul_min=1000, pattern="ramped", ramp_s=20),
]
PROFILES = [("good", p["version"], signed_profile(p, "ok")) for p in _GOOD] + [
    ("stale", 1, signed_profile(dict(_BASE, version=1), "ok")),
    ("unsigned", 9, signed_profile(dict(_BASE, version=9, **_LOOSE), "none")),
    ("tampered", 9, signed_profile(dict(_BASE, version=9, **_LOOSE), "tamper")),
    ("wrong_key", 9, signed_profile(dict(_BASE, version=9, **_LOOSE), "wrong_key")),
]
# What each version the device may run asks for (pattern_rate's bounds).
SPECS = {p["version"]: p for p in _GOOD} | {1: dict(_BASE, version=1)}
GOOD_VERSIONS = {v for what, v, _ in PROFILES if what in ("good", "stale")}


def _podlet(serial: str, capacity: int, sign: str, expiry: str = "2030-01-01") -> dict:
    pod = {"serial": serial, "podlet_type": 3, "capacity_ul": capacity, "expiry": expiry,
           "lot": "LIM"}
    return dict(pod, image=podlet_image(pod, sign), genuine=sign == "ok")


# insert(i) presents PODLETS[i].
PODLETS = [
    _podlet("00000000a001", 500, "ok"),
    _podlet("00000000a002", 500, "ok"),
    _podlet("00000000a003", 250, "ok"),
    _podlet("00000000a004", 500, "ok", expiry="2026-12-31"),   # expires as the clock moves
    _podlet("00000000b001", 500, "none"),
    _podlet("00000000b002", 500, "tamper"),
    _podlet("00000000a005", 500, "ok", expiry="2026-11-18"),   # the driver's first day
]
CAPACITY = {p["serial"]: p["capacity_ul"] for p in PODLETS}
EXPIRY_DAY = {p["serial"]: (datetime.date.fromisoformat(p["expiry"]) - _DAY0).days
              for p in PODLETS}
GENUINE = {p["serial"] for p in PODLETS if p["genuine"]}

# Time passing, in periods of 100 ms: short (dosing) and long (the limits' windows).
ADVANCES = [1, 2, 5, 10, 25, 50, 150, 300, 600, 1190, 1210, 3000, 6000, 36_000,
            863_990, 864_000, 864_010, 900_000]
# session_near: offsets from a session's start or last dose, around the limits' windows.
NEAR_LIMITS_MS = ([MIN_INTERVAL_S * 1000 + d for d in (-500, -100, 0, 100)]
                  + [DAY_MS + d for d in (-15_000, -5000, -2000, -500, -100, 0, 100, 1000,
                                          5000)])
DOSING = ADVANCES[:9]          # up to a minute
CUT_OFF_MS = [0, 1000, 120_000, 3_600_000, 86_400_000]
CLOCK_DELTAS = [-90_000, -3600, -1, 0, 60, 3600, 90_000, 10 ** 7, 10 * 365 * 86_400]
# The owner's confirmed sets: far back (the way back from a far-future set), none, and
# years ahead (more than one unconfirmed set may move: fw.ledger.WALL_AHEAD_MAX_S).
CONFIRM_DELTAS = [-400 * 86_400, -90_000, 0, 3600, 10 * 365 * 86_400]
WALL_AHEAD_MAX_S = 400 * 86_400

# The strategies, one per kind of argument.
podlet_choices = st.sampled_from([None, *range(len(PODLETS))])          # None: pulled
profile_choices = st.integers(0, len(PROFILES) - 1)
dosing_periods = st.sampled_from(DOSING)
any_periods = st.sampled_from(ADVANCES)
phases = st.integers(0, 9)                                          # periods before a start
anchors = st.sampled_from(["start", "last_dose"])
near_limits_ms = st.sampled_from(NEAR_LIMITS_MS)
cut_off_ms = st.sampled_from(CUT_OFF_MS)
clock_deltas_s = st.sampled_from(CLOCK_DELTAS)
confirm_deltas_s = st.sampled_from(CONFIRM_DELTAS)
cut_ops = st.sampled_from([("advance", 600), ("start", None), ("install", 0), ("install", 3),
                           ("stop", None), ("insert", 0), ("set_clock", 3600),
                           ("remove", None)])


class DriverError(RuntimeError):
    """The firmware driver failed, hung or died; the message holds the ops before."""


class Device:
    """One micropython process running limits_mp.py for every sequence.

    The driver keeps one interpreter for many sequences, and its power cuts keep its
    RAM (a real board's is gone): after enough of them the heap may hold no free block
    as large as a boot asks for (the ledger's 4 KB table), which a real boot, in fresh
    RAM, never meets. A call that fails with MemoryError in a process that has run an
    earlier sequence therefore restarts the interpreter and replays this sequence's
    ops from its reset (the driver is deterministic: `restart` says so, and
    tests/device/test_limits_device.py checks it); only a MemoryError in a fresh
    process, which a real boot would meet too, is the firmware's, a DriverError.

    board: "sim" (boards/sim's board) or a real board, "picow" or "esp32c3" (its
    board.py and boards/common/realboard.py on the port models: limits_mp.PortRig),
    built into mpy_cache (a temporary folder if None). On a real board the doses are
    what its step PWM moved, whole steps of 2 nl: `quantum` is what one step at the
    fastest calibration adds, which a period's dose and a limit may be passed by on
    top of the sim's margins (0 on the sim, whose dose is the command itself)."""

    def __init__(self, board: str = "sim", mpy_cache: Path | None = None) -> None:
        if board not in ("sim", *PORT_OF):
            raise ValueError(f"board: 'sim' or one of {', '.join(PORT_OF)}, not {board!r}")
        self.board = board
        self.quantum = 0 if board == "sim" else 2 * 10 * max(PUMP_CAL_PM) // 1000
        self._tmp = None
        if board != "sim" and mpy_cache is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="steamer-limits-mpy-")
            mpy_cache = Path(self._tmp.name)
        self.mpy_cache = mpy_cache
        self.flash = tempfile.NamedTemporaryFile(prefix="steamer-limits-", suffix=".flash",
                                                 delete=False)
        self.flash.close()
        # The interpreter's stderr goes to a file: nobody reads it unless something fails.
        self.errors = tempfile.TemporaryFile("w+b")
        self.history: list[list] = []    # ops of the current sequence
        self.calls = 0
        self.restarts = 0                # interpreters started again (see the docstring)
        self.noise: list[str] = []       # stdout lines that were not replies
        self._start()

    def _start(self) -> None:
        """A new interpreter, set up, with no sequence run in it yet."""
        heap = SIM_HEAP if self.board == "sim" else PORT_HEAP
        argv = [micropython_exe(), "-X", f"heapsize={heap}", str(DRIVER), self.flash.name]
        if self.board == "sim":
            env = micropython_env("sim")
        else:
            assert self.mpy_cache is not None
            env = port_env(self.board, port_build(self.board, self.mpy_cache))
            argv.append(str(BOARDS / self.board / "board.py"))
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors, env=env)
        assert self.proc.stdin and self.proc.stdout
        self.out_fd = self.proc.stdout.fileno()
        self.buf = b""
        self.resets_in_proc = 0
        reply = self._send("setup", {"profiles": [p[2].hex() for p in PROFILES],
                                     "podlets": [p["image"].hex() for p in PODLETS],
                                     "mfg_public_hex": DEV_PUBLIC.hex()})
        if "error" in reply:
            raise DriverError(self._report(f"raised {reply['error']} at setup"))

    def call(self, op: str, arg=None) -> dict:
        if op == "reset":
            self.history = []
        self.history.append([op, arg])
        self.calls += 1
        reply = self._send(op, arg)
        error = reply.get("error")
        if error is None:
            return reply
        if error.startswith("MemoryError") and self.resets_in_proc > 1:
            reply = self.restart()
            error = reply.get("error")
            if error is None:
                return reply
        raise DriverError(self._report(f"raised {error}"))

    def restart(self) -> dict:
        """Stops the interpreter, starts a new one and replays the current sequence's
        ops in it; returns the last op's reply (an error reply as it is)."""
        self._stop()
        self.restarts += 1
        self._start()
        reply: dict = {}
        for op, arg in self.history:
            reply = self._send(op, arg)
            if "error" in reply:
                break
        return reply

    def _send(self, op: str, arg=None) -> dict:
        if op == "reset":
            self.resets_in_proc += 1
        assert self.proc.stdin
        try:
            self.proc.stdin.write((json.dumps([op, arg]) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise DriverError(self._report("died"))
        deadline = time.monotonic() + CALL_TIMEOUT_S
        doses = []                       # the op's dose runs, a line each before its reply
        while True:
            line = self._line(deadline, op)
            if line.startswith(b"+"):
                doses.append(json.loads(line[1:]))
                continue
            if line.startswith(b"@"):
                reply = json.loads(line[1:])
                if "error" not in reply:
                    reply["doses"] = doses
                return reply
            self.noise.append(line.decode(errors="replace"))
            del self.noise[:-50]

    def _line(self, deadline: float, op: str) -> bytes:
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.out_fd], [], [], left)[0]:
                # Stopped, so that no late reply is read as the next op's.
                self.proc.kill()
                raise DriverError(self._report(f"gave no reply within {CALL_TIMEOUT_S:g} s"))
            chunk = os.read(self.out_fd, 65536)
            if not chunk:
                raise DriverError(self._report("died"))
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def _report(self, what: str) -> str:
        self.errors.seek(0)
        err = self.errors.read().decode(errors="replace")[-3000:]
        ops = "\n".join(f"  {json.dumps(o)}" for o in self.history[-60:])
        noise = "\n".join(self.noise[-10:])
        return (f"the firmware driver {what}; ops of this sequence:\n{ops}\n"
                f"stderr (tail):\n{err}\nstdout other than replies (tail):\n{noise}")

    def _stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()

    def close(self) -> None:
        self._stop()
        self.errors.close()
        try:
            os.remove(self.flash.name)
        except OSError:
            pass
        if self._tmp is not None:
            self._tmp.cleanup()


class Stats:
    """Counts across sequences (for the benchmark)."""

    def __init__(self) -> None:
        self.sequences = 0
        self.steps = 0
        self.sessions = 0
        self.doses_ul = 0.0
        self.cuts = 0
        self.events: dict[str, int] = {}


class Limits(RuleBasedStateMachine):
    dev: Device
    stats: Stats = Stats()

    # Mostly a device ready for a session: sequences spend their steps on the limits.
    @initialize(clock=st.sampled_from([True, True, True, False]),
                profile=st.sampled_from([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, None]),
                podlet=st.sampled_from([0, 1, 2, 3, 0, 1, 2, None]),
                cal_pm=st.sampled_from(PUMP_CAL_PM))
    def boot(self, clock, profile, podlet, cal_pm=1000):
        """A new device, and perhaps what a session needs (hypothesis may leave any out)."""
        reply = self.dev.call("reset", cal_pm)
        self.cal_pm = cal_pm
        self.stats.sequences += 1
        self.now_ms = reply["now_ms"]
        self.per_podlet: dict[str, int] = {}
        self.per_session: dict[int, int] = {}
        self.starts: list[int] = []
        self.last_dose: dict[int, int] = {}          # session -> time of its last dose
        self.min_gap_ms: int | None = None
        # The 24 h window: dose points (ms, amount) from `left` on are inside it.
        self.points: list[tuple[int, int]] = []
        self.left = 0
        self.window = 0
        self.day_peak = 0
        self.profile_v = 0
        self.bad_installs: list = []
        self.session_spec: dict[int, dict] = {}      # session -> its profile
        self.first_dose: dict[int, int] = {}         # session -> time of its first dose
        self.bolus_window: dict[int, list] = {}      # session -> [(ms, amount)] last period
        self.pattern_breaks: list = []
        # The clock the device must trust (None: never set): the newest time set, and
        # when (None after a power cut: the device cannot know how long it was off).
        self.trusted_s: int | None = None
        self.trusted_ms: int | None = None
        self.expired: set[str] = set()               # podlets the device refused as expired
        self.expired_starts: list = []
        self.refused_starts: list = []
        if clock:
            self._do("set_clock", 0)
        if profile is not None:
            self._do("install", profile)
        if podlet is not None:
            self._do("insert", podlet)

    def _do(self, op: str, arg=None) -> dict:
        before_ms = self.now_ms
        reply = self.dev.call(op, arg)
        self.stats.steps += 1
        self.stats.cuts += 1 if reply.get("cut") else 0
        for sid, serial, t_ms in reply["started"]:
            trusted = self._trusted_at(t_ms)
            if trusted is not None and _day(trusted) > EXPIRY_DAY[serial]:
                self.expired_starts.append((serial, t_ms, trusted))
            if serial in self.expired:
                self.refused_starts.append((serial, t_ms))
            if self.starts:
                gap = t_ms - self.starts[-1]
                self.min_gap_ms = gap if self.min_gap_ms is None else min(self.min_gap_ms, gap)
            self.starts.append(t_ms)
            self.stats.sessions += 1
            self.session_spec[sid] = SPECS[reply["profile_v"]]
        for sid, t_ms in reply["first_cmd"]:
            self.first_dose.setdefault(sid, t_ms)     # the pattern's clock (pattern_check)
        for sid, serial, t0, n, rate in reply["doses"]:
            self.pattern_check(sid, t0, n, rate)
            amount = n * rate
            self.per_podlet[serial] = self.per_podlet.get(serial, 0) + amount
            self.per_session[sid] = self.per_session.get(sid, 0) + amount
            self.last_dose[sid] = t0 + (n - 1) * PERIOD_MS
            self.stats.doses_ul += amount / UNIT_PER_UL
            for k in range(n):
                self._day_point(t0 + k * PERIOD_MS, rate)
        for ev, what in reply["events"]:
            key = f"{ev}:{what}" if ev.endswith(("refused", "rejected", "ended")) else ev
            self.stats.events[key] = self.stats.events.get(key, 0) + 1
            if ev == "profile_installed" and (what not in GOOD_VERSIONS or what <= self.profile_v):
                self.bad_installs.append((what, self.profile_v))
        if reply["profile_v"] < self.profile_v or reply["profile_v"] not in GOOD_VERSIONS | {0}:
            self.bad_installs.append((reply["profile_v"], self.profile_v))
        self.profile_v = reply["profile_v"]
        self.expired.update(reply["expired"])
        if op == "cut" and arg[1] == "set_clock":
            op, arg = arg[1], arg[2]
        if reply.get("cut") or op == "power_cut":
            self.trusted_ms = None
        elif op == "confirm_clock":
            t_ms = reply["now_ms"]
            asked = EPOCH0_S + t_ms // 1000 + arg
            now = self._trusted_at(t_ms)
            if any(ev == "clock_confirmed" for ev, _ in reply["events"]):
                self.trusted_s = asked
                self.expired.clear()          # refused on the clock the owner corrected
            elif now is None or asked <= now + WALL_AHEAD_MAX_S:
                self.trusted_s = asked if now is None else max(now, asked)
            else:
                self.trusted_s = now          # too far ahead: not taken
            self.trusted_ms = t_ms
        elif op == "set_clock":
            # The driver sets its true time plus arg; the device may clamp it only up.
            asked = EPOCH0_S + before_ms // 1000 + arg
            now = self._trusted_at(before_ms)
            if now is not None and asked > now + WALL_AHEAD_MAX_S:
                asked = now                   # too far ahead: not taken
            self.trusted_s = asked if now is None else max(now, asked)
            self.trusted_ms = before_ms
        self.now_ms = reply["now_ms"]
        return reply

    def _trusted_at(self, t_ms: int) -> int | None:
        if self.trusted_s is None or self.trusted_ms is None:
            return self.trusted_s
        return self.trusted_s + (t_ms - self.trusted_ms) // 1000

    def pattern_check(self, sid: int, t0: int, n: int, rate: int) -> None:
        """pattern_rate for a run of n periods from t0 (ms) in session sid delivering
        `rate` a period (what the pump delivered, as every invariant counts: on the sim
        the command times the pump's calibration, on a real board its steps')."""
        spec = self.session_spec.get(sid)
        if spec is None or rate <= 0:
            return
        first = self.first_dose.setdefault(sid, t0)
        full = spec["dose_rate_ul_min"] * 1000 // 60            # nl/s: tenths a period
        kind = spec.get("pattern", "continuous")
        if kind == "ramped":
            # The ramp's second at the run's last period, counted from the first dose:
            # no sooner than the firmware's own count (which pauses with the pump).
            s = (t0 + (n - 1) * PERIOD_MS - first) // 1000
            if s < spec["ramp_s"]:
                full = full * (s + 1) // spec["ramp_s"]
        # A real board's pump moves whole steps: a period may get one more than its share.
        most_rate = self._delivered(_trimmed(full)) + self.dev.quantum
        if rate > most_rate:
            self.pattern_breaks.append((sid, kind, t0, n, rate, most_rate))
        if kind != "pulsed":
            return
        window = self.bolus_window.setdefault(sid, [])
        span = spec["period_s"] * 1000
        most = (self._delivered(_trimmed(spec["bolus_ul"] * UNIT_PER_UL) + 10 * span // PERIOD_MS)
                + self.dev.quantum)
        for k in range(n):
            t = t0 + k * PERIOD_MS
            window.append((t, rate))
            while window[0][0] <= t - span:
                del window[0]
            got = sum(a for _, a in window)
            if got > most:
                self.pattern_breaks.append((sid, "pulsed window", t, got, most))
                return

    def _delivered(self, commanded: int) -> int:
        """What a pump of this sequence's calibration delivers of `commanded`, rounded up."""
        return -(-commanded * self.cal_pm // 1000)

    def _day_point(self, t_ms: int, amount: int) -> None:
        pts = self.points
        pts.append((t_ms, amount))
        self.window += amount
        while pts[self.left][0] <= t_ms - DAY_MS:
            self.window -= pts[self.left][1]
            self.left += 1
        self.day_peak = max(self.day_peak, self.window)

    # ---- events -------------------------------------------------------------------------
    @rule(i=podlet_choices)
    def podlet(self, i):
        """A podlet inserted (the one in is pulled first), or pulled (None)."""
        if i is None:
            self._do("remove")
        else:
            self._do("insert", i)

    @rule(phase=phases, periods=dosing_periods)
    def session(self, phase, periods):
        """phase periods pass, a start, then periods pass (dosing, if it started)."""
        if phase:
            self._do("advance", phase)
        self._do("start")
        self._do("advance", periods)

    @rule(anchor=anchors, back=st.integers(1, 3), offset_ms=near_limits_ms,
          periods=dosing_periods)
    def session_near(self, anchor, back, offset_ms, periods):
        """Time passes until offset_ms after the start (or the last dose) of the session
        back-th from the last (the limits' edges, to the period); a start; time passes."""
        times = self.starts if anchor == "start" else [
            self.last_dose[sid] for sid in sorted(self.last_dose)]
        if len(times) >= back:
            wait = -(-(times[-back] + offset_ms - self.now_ms) // PERIOD_MS)
            if wait > 0:
                self._do("advance", wait)
        self.session(0, periods)

    @rule()
    def stop(self):
        self._do("stop")

    @rule(periods=any_periods)
    def advance(self, periods):
        self._do("advance", periods)

    @rule(off_ms=cut_off_ms)
    def power_cut(self, off_ms):
        self._do("power_cut", off_ms)

    @rule(delta_s=clock_deltas_s)
    def set_clock(self, delta_s):
        self._do("set_clock", delta_s)

    @rule(delta_s=confirm_deltas_s)
    def confirm_clock(self, delta_s):
        """The owner holds the button 20 s (a window only if idle), then the clock set."""
        self._do("confirm_clock", delta_s)

    @rule(i=profile_choices)
    def install(self, i):
        self._do("install", i)

    @rule(ack=st.booleans())
    def fault(self, ack):
        """A fault latches (ending any session); perhaps acknowledged a period later."""
        self._do("fault")
        if ack:
            self._do("ack")

    @rule(n=st.integers(1, 12), then=cut_ops)
    def cut_at_write(self, n, then):
        """The power fails at the nth flash write from now (if the op makes that many)."""
        self._do("cut", [n, *then])

    # ---- invariants ---------------------------------------------------------------------
    def _over(self) -> int:
        """What the plant may get past a limit the firmware counts: OVER_UNITS, and on a
        real board the step PWM's one step more (Device.quantum)."""
        return OVER_UNITS + self.dev.quantum

    @invariant()
    def podlet_capacity(self):
        assert all(v <= CAPACITY[s] * UNIT_PER_UL + self._over()
                   for s, v in self.per_podlet.items()), self.per_podlet

    @invariant()
    def session_max(self):
        assert all(v <= MAX_SESSION_UL * UNIT_PER_UL + self._over()
                   for v in self.per_session.values()), self.per_session

    @invariant()
    def day_max(self):
        assert self.day_peak <= MAX_DAY_UL * UNIT_PER_UL + self._over(), self.day_peak

    @invariant()
    def min_interval(self):
        assert self.min_gap_ms is None or self.min_gap_ms >= MIN_INTERVAL_S * 1000, self.starts

    @invariant()
    def pattern_rate(self):
        assert not self.pattern_breaks, self.pattern_breaks[:5]

    @invariant()
    def genuine_only(self):
        assert not self.bad_installs and set(self.per_podlet) <= GENUINE, (self.bad_installs, self.per_podlet)

    @invariant()
    def expiry(self):
        assert not self.expired_starts, self.expired_starts

    @invariant()
    def expired_stays_expired(self):
        assert not self.refused_starts, (self.refused_starts, self.expired)


def _trimmed(units: int) -> int:
    """The most a command of `units` (tenths of a nl a period) is trimmed up to: an
    eighth and a nl a period more (fw.session dose_step), and one nl of the carried
    remainder."""
    return units + units // 8 + 25


def _day(epoch_s: int) -> int:
    """Days since 2000-01-01 of an epoch time, as the firmware counts a podlet's expiry."""
    return (epoch_s - 946_684_800) // 86_400


def examples_from_env(default: int = 1000, env: str = EXAMPLES_ENV) -> int:
    """The number of sequences $env asks for (EXAMPLES_ENV: the sim board's; PORT_
    EXAMPLES_ENV: the real boards'), or default."""
    raw = os.environ.get(env)
    if raw is None:
        return default
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"${env}: a number of sequences, 1 or more, not {raw!r}")
    return n


def run(examples: int, device: Device | None = None, database=None,
        derandomize: bool = False) -> Stats:
    """Runs `examples` sequences (hypothesis raises, with the shrunk sequence, on a
    violation). A device is started (and closed) unless one is given. `derandomize`:
    the same sequences every run (hypothesis's fixed seed), for a short run whose
    figures a test checks; otherwise new ones each run, as a soak wants."""
    own = device is None
    dev = device or Device()
    Limits.dev = dev
    Limits.stats = Stats()
    try:
        run_state_machine_as_test(Limits, settings=settings(
            max_examples=examples, stateful_step_count=STEPS, deadline=None,
            database=database, derandomize=derandomize,
            suppress_health_check=list(HealthCheck)))
    finally:
        if own:
            dev.close()
    return Limits.stats
