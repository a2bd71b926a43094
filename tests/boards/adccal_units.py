"""Drawn ESP32-C3 units on the port models (machine.draw_chip, unit.draw: the chip's
gain and eFuse residual, the rail, the dividers' resistors) read through
boards/esp32c3's NtcUv channels and the firmware's tables, before and after the
factory's calibration (boards/common/adccal.py: measure, fit, save, apply, as `steamer
mfg adc-cal` runs them), for tests/boards/test_adccal.py. One JSON line per unit.

    micropython adccal_units.py SEED_FROM SEED_TO      # MICROPYPATH as the test sets it
"""
import json
import os
import sys

import adccal
import board
import machine
import plant
import unit
from fw import ntc
from hookup import PLUG_OHM

# boards/esp32c3/README.md (and portrun.WIRING): the boiler NTC on the 3.3 V side over
# 560 ohm, its table the 1 k pull-up one; the outlet's under a 10 k pull-up.
HOW = {"boiler": ("high", 560), "outlet": "low"}
PULL = {"boiler": plant.PARAMS["boiler_pullup_ohm"], "outlet": plant.PARAMS["outlet_pullup_ohm"]}
TABLE = {"boiler": ntc.BOILER_MC, "outlet": ntc.OUTLET_MC}
PLUG = PLUG_OHM     # the factory plug, as hookup.calibrate puts it in
TEMPS_C = (25, 60, 95)
READS = 16


def adc(ch):
    return machine.ADCS[0 if ch == "boiler" else 1]


def put(raw, nominal=False):
    """The pins' volts for the plant's counts on this unit (or a nominal one)."""
    for ch in adccal.CHANNELS:
        if nominal:
            adc(ch).uv = unit.divider_uv(raw[ch], PULL[ch], HOW[ch])
        else:
            adc(ch).uv = unit.unit_divider_uv(raw[ch], PULL[ch], HOW[ch], ch)


def errors_mc(ntcs, nominal=False):
    """{temp: [boiler, outlet] reading less the truth, mC} with the NTCs at each temp."""
    out = {}
    for t in TEMPS_C:
        put({ch: plant.ntc_raw(t, PULL[ch]) for ch in adccal.CHANNELS}, nominal)
        out[t] = [ntc.to_mc(TABLE[ch], ntcs[ch].read()) - t * 1000 for ch in adccal.CHANNELS]
    return out


def main():
    data = os.getcwd() + "/data"
    for seed in range(int(sys.argv[1]), int(sys.argv[2])):
        machine.draw_chip(seed)
        unit.draw(seed)
        ntcs = board.ntc_channels()
        before = errors_mc(ntcs)
        # What the firmware's own pipeline reads on a nominal unit of this chip (whole mV,
        # the tables' knots): the floor no calibration goes below.
        residual = machine.C3_CAL_PPM
        machine.C3_CAL_PPM = 1000000
        floor = errors_mc(ntcs, nominal=True)
        machine.C3_CAL_PPM = residual
        # The factory: the plug's resistors in place of the NTCs.
        put({ch: 4095 * PLUG[ch] / (PLUG[ch] + PULL[ch]) for ch in adccal.CHANNELS})
        got = adccal.measure(ntcs, READS, say=lambda _line: None)
        gains = {ch: adccal.fit(ntcs[ch], got[ch][0], READS, PLUG[ch])[1]
                 for ch in adccal.CHANNELS}
        adccal.save(data, gains, PLUG)
        problem = adccal.apply(ntcs, data)
        after = errors_mc(ntcs)
        print(json.dumps({"seed": seed, "gains": gains, "problem": problem,
                          "before": before, "after": after, "floor": floor}))


main()
