"""The calibration record (boards/common/adccal.py) as the C3 board boots with it, each
case on a fresh data folder: missing, a copy corrupted, rolled back, out of bounds
(a hostile record with a valid hash, written past adccal.save's checks), and at its
bounds; for each, the board's problem (its record_doubt), the gains it applied, and how
far its readings moved from the uncalibrated ones (the volts they imply), for
tests/boards/test_adccal.py. One JSON line.
"""
import json
import os

import adccal
import board
import machine
import plant
import unit
from fw import copies
from fw import ntc

HOW = {"boiler": ("high", 560), "outlet": "low"}
PULL = {"boiler": plant.PARAMS["boiler_pullup_ohm"], "outlet": plant.PARAMS["outlet_pullup_ohm"]}
TABLE = {"boiler": ntc.BOILER_MC, "outlet": ntc.OUTLET_MC}
PLUG = {"boiler": 680, "outlet": 4700}
TEMPS_C = (25, 60, 95, 130)
_n = [0]


def fresh():
    _n[0] += 1
    d = os.getcwd() + "/data%d" % _n[0]
    os.mkdir(d)
    return d


def hostile(d, boiler, outlet):
    """A record with any values, hashed and counted as fw.copies makes them."""
    c = copies.Copies(d, adccal.NAME)
    c.newest()
    with c.writer() as w:
        w.write("boiler_gain_ppm %d\noutlet_gain_ppm %d\n" % (boiler, outlet))
        w.write("boiler_ref_ohm 680\noutlet_ref_ohm 4700\n")


def implied_mv(ch, counts):
    """The pin's millivolts a reading's counts stand for (the divider read back)."""
    if ch == "outlet":
        return counts * 3300 / 4095
    r = 1000 * counts / max(1, 4095 - counts)      # the 1 k table's divider
    return 3300 * 560 / (r + 560)


def readings(ntcs):
    out = {}
    for t in TEMPS_C:
        for ch in adccal.CHANNELS:
            machine.ADCS[0 if ch == "boiler" else 1].uv = unit.unit_divider_uv(
                plant.ntc_raw(t, PULL[ch]), PULL[ch], HOW[ch], ch)
        out[t] = {ch: ntcs[ch].read() for ch in adccal.CHANNELS}
    return out


def case(d):
    ntcs = board.ntc_channels()
    plain = readings(ntcs)
    problem = adccal.apply(ntcs, d)
    moved = readings(ntcs)
    worst_pct = 0.0
    worst_c = 0.0
    for t in TEMPS_C:
        for ch in adccal.CHANNELS:
            a = implied_mv(ch, plain[t][ch])
            b = implied_mv(ch, moved[t][ch])
            worst_pct = max(worst_pct, abs(b / a - 1) * 100)
            worst_c = max(worst_c, abs(ntc.to_mc(TABLE[ch], moved[t][ch])
                                       - ntc.to_mc(TABLE[ch], plain[t][ch])) / 1000)
    return {"problem": problem, "gains": [ntcs[ch].gain_ppm for ch in adccal.CHANNELS],
            "moved_pct": round(worst_pct, 3), "moved_c": round(worst_c, 2)}


out = {}
d = fresh()
out["missing"] = case(d)

d = fresh()
adccal.save(d, {"boiler": 12000, "outlet": -9000}, PLUG)
out["good"] = case(d)
path = d + "/safe.a/adccal"
with open(path, "rb") as f:
    data = bytearray(f.read())
data[len("adccal 1\nboiler_gain_ppm ")] ^= 0x01      # one bit of a digit flipped
with open(path, "wb") as f:
    f.write(data)
out["corrupt"] = case(d)

d = fresh()
adccal.save(d, {"boiler": 12000, "outlet": -9000}, PLUG)
adccal.save(d, {"boiler": 15000, "outlet": -6000}, PLUG)
os.remove(d + "/safe.b/adccal")     # the newest copy lost: the older one is behind
out["rolled_back"] = case(d)

for name, b, o in (("over", 40001, 0), ("under", 0, -40001), ("far", 900000, -900000)):
    d = fresh()
    hostile(d, b, o)
    out[name] = case(d)

for name, b, o in (("at_plus", 40000, 40000), ("at_minus", -40000, -40000)):
    d = fresh()
    hostile(d, b, o)
    out[name] = case(d)

try:
    adccal.save(fresh(), {"boiler": 40001, "outlet": 0}, PLUG)
    out["save_refuses"] = False
except ValueError:
    out["save_refuses"] = True
print(json.dumps(out))
