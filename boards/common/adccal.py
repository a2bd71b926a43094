"""This unit's calibration of its NTC channels' volts (realboard.NtcUv: the ESP32-C3's
read_uv), measured at the factory and kept on flash: the C3 board's load_records applies
it at every boot (apply); `steamer mfg adc-cal` runs the factory's side on the board
over mpremote (measure, fit, save, check).

What it corrects, per channel, is one gain on the millivolts: what read_uv's eFuse
calibration leaves (C3: up to +-35 mV at 11 dB by the datasheet), the rail's real
voltage (the dividers hang from it; an LDO's +-2 %), and, at the point it is measured,
the fixed resistor's tolerance (+-1 %). The factory plugs a precision resistor in place
of each NTC (the calibration plug: 680 ohm for the boiler, its NTC at ~101 C; 4.7 k for
the outlet, ~43 C: each channel is measured where the steamer works and its volts are
well inside the ADC's range), and the gain is what makes the channel read there what a
nominal unit reads.

One record of fw.copies ("adccal": two hashed, counted copies), lines
"boiler_gain_ppm <int>", "outlet_gain_ppm <int>", "boiler_ref_ohm <int>",
"outlet_ref_ohm <int>". Bounds: a gain within +-GAIN_PPM_MAX (4 %: the models' worst unit
needs 3.3 %, the rail's 2 % and the eFuse residual's 0.5 % with its resistor's 1 % seen
as volts at the plug's point, and a margin for the plug's own 0.1 %), so no record,
however written, moves a reading by more than 4 % of its volts. Missing, unreadable, in
doubt (fw.copies) or out of bounds: no correction at all (an uncalibrated unit; the
supervisor's limits protect it as before), and a problem that the firmware emits as
record_doubt at boot.
"""
import os

from micropython import const

import realboard
from fw import copies

NAME = "adccal"
GAIN_PPM_MAX = const(40000)
# A reference resistor the record may be made with, and the volts it must give a nominal
# unit's channel: well inside the ADC's 11 dB range (~0..2.5 V).
REF_OHM_MIN = const(100)
REF_OHM_MAX = const(100000)
REF_UV_MIN = const(100000)
REF_UV_MAX = const(2300000)
CHANNELS = ("boiler", "outlet")
_KEYS = ("boiler_gain_ppm", "outlet_gain_ppm", "boiler_ref_ohm", "outlet_ref_ohm")


def load(data_dir):
    """(gains, problem): gains {channel: gain_ppm} of the record on data_dir, or None and
    why not (missing, unreadable, in doubt, out of bounds)."""
    c = copies.Copies(data_dir, NAME)
    try:
        i = c.newest()
    except copies.RecordError as e:
        return None, "%s (uncalibrated)" % (e,)
    if i < 0:
        return None, "adccal: no record (uncalibrated: steamer mfg adc-cal)"
    if c.doubt:
        return None, "%s (uncalibrated)" % c.doubt
    got = {}
    try:
        for line in c.lines(i):
            key, value = line.split()
            got[key.decode()] = int(value)
        v = [got[k] for k in _KEYS]
    except (ValueError, KeyError):
        return None, "adccal: unreadable (uncalibrated)"
    if not (-GAIN_PPM_MAX <= v[0] <= GAIN_PPM_MAX and -GAIN_PPM_MAX <= v[1] <= GAIN_PPM_MAX
            and REF_OHM_MIN <= v[2] <= REF_OHM_MAX and REF_OHM_MIN <= v[3] <= REF_OHM_MAX):
        return None, "adccal: out of bounds (uncalibrated)"
    return {"boiler": v[0], "outlet": v[1]}, None


def apply(ntcs, data_dir):
    """Sets each channel's gain_ppm (ntcs: {channel: NtcUv}) from the record, 0 for all
    when there is none to take; returns load()'s problem."""
    gains, problem = load(data_dir)
    for ch in CHANNELS:
        ntcs[ch].gain_ppm = gains[ch] if gains is not None else 0
    return problem


def save(data_dir, gains, ref_ohm):
    """Writes the record (gains and ref_ohm: {channel: int}); ValueError, and nothing
    written, when a value is out of bounds. Returns the record's commit counter."""
    for ch in CHANNELS:
        if not -GAIN_PPM_MAX <= gains[ch] <= GAIN_PPM_MAX:
            raise ValueError("%s gain %d ppm is outside +-%d" % (ch, gains[ch], GAIN_PPM_MAX))
        if not REF_OHM_MIN <= ref_ohm[ch] <= REF_OHM_MAX:
            raise ValueError("%s reference %d ohm is outside %d..%d"
                             % (ch, ref_ohm[ch], REF_OHM_MIN, REF_OHM_MAX))
    try:
        os.mkdir(data_dir)      # a board whose firmware never ran has none yet
    except OSError:
        pass
    c = copies.Copies(data_dir, NAME)
    try:
        c.newest()
    except copies.RecordError:
        pass        # copies that are all bad: the new one goes past the witness
    with c.writer() as w:
        for k, v in zip(_KEYS, (gains["boiler"], gains["outlet"], ref_ohm["boiler"],
                                ref_ohm["outlet"])):
            w.write("%s %d\n" % (k, v))
    return c.counter


# ---- the factory's side (steamer mfg adc-cal runs these on the board) -------------------

def measure(ntcs, reads, say=print):
    """{channel: [sum of `reads` read_uv, lowest, highest]}, the channels read in turn;
    say gets a progress line every eighth of the way."""
    got = {ch: [0, 1 << 30, -1] for ch in CHANNELS}
    step = max(1, reads // 8)
    for n in range(1, reads + 1):
        for ch in CHANNELS:
            uv = ntcs[ch].read_uv()
            g = got[ch]
            g[0] += uv
            g[1] = min(g[1], uv)
            g[2] = max(g[2], uv)
        if n % step == 0 or n == reads:
            say("ADCCAL progress %d %d" % (n, reads))
    return got


def uv_for_ohm(ntc_ch, r_ohm):
    """The pin's voltage (uV) on a nominal unit (the rail 3.3 V, the resistors exact)
    with r_ohm in place of the NtcUv's NTC: what a reference resistor should read."""
    h = ntc_ch.high_ohm
    if h == 0:
        return realboard.RAIL_MV * 1000 * r_ohm // (r_ohm + ntc_ch.pullup_ohm)
    return realboard.RAIL_MV * 1000 * h // (r_ohm + h)


def counts_for_ohm(ntc_ch, r_ohm):
    """The counts read() gives on a nominal unit with r_ohm in place of the NTC: its
    table's pull-up divider's."""
    return 4095 * r_ohm // (r_ohm + ntc_ch.pullup_ohm)


def fit(ntc_ch, sum_uv, reads, ref_ohm):
    """(want_uv, gain_ppm): what a nominal unit's channel reads with ref_ohm in place of
    its NTC, and the gain that makes this one's mean (sum_uv / reads) read it; gain None
    when the channel read nothing."""
    want = uv_for_ohm(ntc_ch, ref_ohm)
    if sum_uv <= 0:
        return want, None
    return want, (want * reads * 1000000 + sum_uv // 2) // sum_uv - 1000000


def check(ntcs, reads):
    """{channel: mean counts x1000} of `reads` reads through read(), the correction
    applied, as the control step reads them."""
    out = {}
    for ch in CHANNELS:
        t = 0
        for _ in range(reads):
            t += ntcs[ch].read()
        out[ch] = t * 1000 // reads
    return out
