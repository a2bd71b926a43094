"""Calibrates a real board's NTC channels at the factory, over its USB serial port with
mpremote: the per-unit record (data/safe.a|b/adccal) that the board's firmware applies
to every reading (boards/common/adccal.py, realboard.NtcUv.gain_ppm).

    steamer mfg adc-cal --port /dev/ttyACM0          # the calibration plug in place

    from steamer_mfg import adccal
    result = adccal.calibrate("/dev/ttyACM0", {"boiler": 680, "outlet": 4700})
    result.channels[0].gain_ppm, result.verified

The reference: the calibration plug, a precision resistor (0.1 %) in place of each NTC,
680 ohm on the boiler's connector (its NTC at ~101 C) and 4.7 k on the outlet's (~43 C),
so each channel is measured near where the steamer works. On the board (its maintenance
boot: the firmware's watchdog must not run) each channel's read_uv is read `reads`
times; the board's own code says what a nominal unit reads with that resistor and the
gain that brings this unit there (adccal.fit); a gain outside the firmware's bounds
(adccal.GAIN_PPM_MAX, +-4 %) is refused, naming the channel and its numbers, with
nothing written: a broken sensor path, a wrong part, or the wrong plug. Else the record
is written with the board's adccal.save (fw.copies: hashed, counted copies), read back
with the loader the firmware boots with, and checked: each channel, corrected, must read
the plug's counts within CHECK_COUNTS.

The arithmetic and the bounds are the board's (one place: boards/common/adccal.py);
this module runs them, judges their answers and says what happened. The mpremote
plumbing is steamer_mfg.usb's.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from steamer_mfg import usb

# The calibration plug's resistors, ohm (0.1 %): the defaults of `steamer mfg adc-cal`.
PLUG_OHM = {"boiler": 680, "outlet": 4700}
CHANNELS = ("boiler", "outlet")
DEFAULT_READS = 64
# A channel whose reads spread wider than this is not a steady resistor: a loose
# contact, a plug not seated, noise on the line.
SPREAD_MV_MAX = 20
# After the write, a channel must read the plug's counts within this (one count is
# 0.8 mV on the outlet's divider; the mV resolution of read_uv is the rest).
CHECK_COUNTS = 3

Progress = Callable[[str], None]


class CalibrationError(Exception):
    """A step on the board failed, or a channel's reading was refused; one line. A
    refusal names the channel and its numbers; nothing was written."""


@dataclasses.dataclass
class Channel:
    """One channel's measurement: its mean and spread (mV), what a nominal unit reads
    with the plug (mV), the gain written (ppm), and what it read after (counts)."""
    name: str
    ref_ohm: int
    mean_mv: float
    spread_mv: float
    want_mv: float
    gain_ppm: int
    read_counts: float = 0.0
    want_counts: int = 0


@dataclasses.dataclass
class CalResult:
    """What calibrate() did: the channels, the record's commit counter, the gains the
    board held before (None: no record it could take, `previous_problem` says why)."""
    port: str
    reads: int
    channels: list[Channel]
    counter: int = 0
    previous: dict[str, int] | None = None
    previous_problem: str | None = None
    verified: bool = False
    seconds: float = 0.0

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


# ---- the board's side ------------------------------------------------------------------

# A record as the board prints it: "<boiler gain> <outlet gain>", or "- - <problem>".
_RECORD = """g, p = adccal.load(%(dir)r)
if g:
    print('ADCCAL %(tag)s', g['boiler'], g['outlet'])
else:
    print('ADCCAL %(tag)s - -', p)
"""

_MEASURE = """import board, adccal
""" + _RECORD % {"dir": "%(dir)s", "tag": "previous"} + """
print('ADCCAL bounds', adccal.GAIN_PPM_MAX, adccal.REF_OHM_MIN, adccal.REF_OHM_MAX,
      adccal.REF_UV_MIN, adccal.REF_UV_MAX)
ntcs = board.ntc_channels()
got = adccal.measure(ntcs, %(reads)d)
ref = %(ref)r
for ch in adccal.CHANNELS:
    s, lo, hi = got[ch]
    want, gain = adccal.fit(ntcs[ch], s, %(reads)d, ref[ch])
    print('ADCCAL channel', ch, s, lo, hi, want, gain)
"""

_SAVE = """import adccal
print('ADCCAL saved', adccal.save(%(dir)r, %(gains)r, %(ref)r))
"""

_CHECK = """import board, adccal
ntcs = board.ntc_channels()
""" + _RECORD % {"dir": "%(dir)s", "tag": "loaded"} + """adccal.apply(ntcs, %(dir)r)
got = adccal.check(ntcs, %(reads)d)
for ch in adccal.CHANNELS:
    print('ADCCAL check', ch, got[ch], adccal.counts_for_ohm(ntcs[ch], %(ref)r[ch]))
"""


def _lines(out: str, tag: str) -> list[list[str]]:
    """The words after 'ADCCAL TAG' of each such line of the board's output."""
    head = "ADCCAL " + tag + " "
    return [line[len(head):].split() for line in out.splitlines() if line.startswith(head)]


def _record(words: list[str]) -> tuple[dict[str, int] | None, str | None]:
    """(gains, problem) of a record as _RECORD prints it."""
    if words[0] == "-":
        return None, " ".join(words[2:])
    return {"boiler": int(words[0]), "outlet": int(words[1])}, None


# ---- the steps ---------------------------------------------------------------------------

def _judge(name: str, words: list[str], reads: int, ref_ohm: int, bounds: list[int]) -> Channel:
    """The channel's measurement, or CalibrationError saying why it is refused."""
    gain_max, _, _, uv_min, uv_max = bounds
    total, lo, hi, want = (int(w) for w in words[:4])
    gain = None if words[4] == "None" else int(words[4])
    mean_mv = total / reads / 1000
    ch = Channel(name, ref_ohm, round(mean_mv, 2), round((hi - lo) / 1000, 1),
                 round(want / 1000, 2), gain or 0)
    plug = "%d ohm" % ref_ohm
    if not uv_min <= want <= uv_max:
        raise CalibrationError(
            "%s: a nominal unit reads %.0f mV with %s, outside the %d..%d mV this "
            "channel calibrates in: give the plug's resistor (--%s-ohm)"
            % (name, want / 1000, plug, uv_min // 1000, uv_max // 1000, name))
    if gain is None or lo <= 0:
        raise CalibrationError(
            "%s: reads 0 mV with the %s plug (a nominal unit reads %.1f mV): nothing on "
            "the channel, an open or shorted divider or the plug not in; nothing written"
            % (name, plug, want / 1000))
    if hi - lo > SPREAD_MV_MAX * 1000:
        raise CalibrationError(
            "%s: its %d reads spread over %.1f mV (%.1f..%.1f), more than %d mV: a loose "
            "contact or the plug not seated; nothing written"
            % (name, reads, (hi - lo) / 1000, lo / 1000, hi / 1000, SPREAD_MV_MAX))
    if abs(gain) > gain_max:
        raise CalibrationError(
            "%s: reads %.1f mV where a nominal unit with %s reads %.1f mV: a correction "
            "of %+.2f %%, outside the +-%.2f %% a working unit needs: a broken sensor "
            "path or a wrong part on the board, or not the %s plug; nothing written"
            % (name, mean_mv, plug, want / 1000, gain / 1e4, gain_max / 1e4, plug))
    return ch


def calibrate(port: str, ref_ohm: dict[str, int] | None = None, reads: int = DEFAULT_READS,
              progress: Progress | None = None, timeout_s: float = 60.0,
              wait_s: float = 60.0) -> CalResult:
    """Calibrates the board on `port` with the plug's resistors `ref_ohm` (default
    PLUG_OHM) in place of its NTCs (see the module's doc). Raises CalibrationError (one
    line) when a channel is refused, nothing written, or a step fails."""
    ref = dict(PLUG_OHM if ref_ohm is None else ref_ohm)
    t0 = time.monotonic()

    def say(msg: str) -> None:
        if progress:
            progress(msg)

    def on_line(line: str) -> None:
        if line.startswith("ADCCAL progress "):
            n, total = line.split()[2:4]
            say("reading both channels: %s of %s" % (n, total))

    def run(script: str, what: str, resume: bool = True) -> str:
        try:
            return usb.run_script(port, script, what, timeout_s, resume, on_line)
        except usb.UsbError as e:
            raise CalibrationError(str(e)) from None

    try:
        usb.check_port(port)
        usb.wait_for_maintenance(port, wait_s, say)
    except usb.UsbError as e:
        raise CalibrationError(str(e)) from None
    say("reading the boiler (%d ohm) and outlet (%d ohm) channels %d times on %s"
        % (ref["boiler"], ref["outlet"], reads, port))
    args = {"dir": usb.DATA_DIR, "reads": reads, "ref": ref}
    out = run(_MEASURE % args, "measuring", resume=False)
    prev = _lines(out, "previous")
    bounds = _lines(out, "bounds")
    got = {w[0]: w[1:] for w in _lines(out, "channel")}
    if not prev or not bounds or set(got) != set(CHANNELS):
        raise CalibrationError("measuring: no answer from the board (is its firmware, "
                               "with adccal, on it? steamer dev flash)")
    b = [int(w) for w in bounds[0]]
    for ch in CHANNELS:
        if not b[1] <= ref[ch] <= b[2]:
            raise CalibrationError("--%s-ohm %d: outside the %d..%d ohm a record may hold"
                                   % (ch, ref[ch], b[1], b[2]))
    channels = [_judge(ch, got[ch], reads, ref[ch], b) for ch in CHANNELS]
    previous, previous_problem = _record(prev[0])
    result = CalResult(port, reads, channels, previous=previous,
                       previous_problem=previous_problem)
    for c in channels:
        say("%s: %.2f mV (spread %.1f mV), a nominal unit %.2f mV: gain %+d ppm"
            % (c.name, c.mean_mv, c.spread_mv, c.want_mv, c.gain_ppm))
    gains = {c.name: c.gain_ppm for c in channels}
    say("writing the record to %s (two hashed copies, fw.copies)" % usb.DATA_DIR)
    saved = _lines(run(_SAVE % {"dir": usb.DATA_DIR, "gains": gains, "ref": ref}, "writing"),
                   "saved")
    if not saved:
        raise CalibrationError("writing: no answer from the board")
    result.counter = int(saved[0][0])
    say("reading it back as the firmware boots with it, and each channel through it")
    out = run(_CHECK % args, "verifying")
    loaded = _lines(out, "loaded")
    if not loaded or _record(loaded[0])[0] != gains:
        raise CalibrationError("verification failed: the board loads %s, not the gains "
                               "written %s" % (" ".join(loaded[0]) if loaded else "nothing",
                                               gains))
    for words in _lines(out, "check"):
        c = next(c for c in channels if c.name == words[0])
        c.read_counts = int(words[1]) / 1000
        c.want_counts = int(words[2])
        if abs(c.read_counts - c.want_counts) > CHECK_COUNTS:
            raise CalibrationError(
                "verification failed: %s reads %.1f counts through the record, the plug "
                "wants %d (within %d): the reading moved while it was measured"
                % (c.name, c.read_counts, c.want_counts, CHECK_COUNTS))
    result.verified = all(c.want_counts for c in channels)
    if not result.verified:
        raise CalibrationError("verification failed: the board did not read the channels back")
    result.seconds = round(time.monotonic() - t0, 3)
    return result
