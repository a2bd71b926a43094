"""Generates device/fw/ntc.py's lookup tables from the NTC divider model.

Both NTCs are 10 kOhm at 25 C, beta 3950, to ground, with a pull-up to the ADC
reference: 1 kOhm on the boiler (resolution near 100 C), 10 kOhm on the outlet (near
45 C). The sim board's plant uses the same model (boards/sim/plant.py), so the table's
error against the model is the firmware's conversion error.

    python -m steamer_dev.ntc_table   # prints the tables to paste into device/fw/ntc.py
"""
from __future__ import annotations

import math

R25_OHM = 10_000.0
BETA = 3950.0
T25_K = 298.15
ADC_MAX = 4095
STEP = 64  # table knot spacing in ADC counts: 65 knots cover 0..4096
PULLUP_OHM = {"boiler": 1_000.0, "outlet": 10_000.0}


def resistance_ohm(temp_c: float) -> float:
    return R25_OHM * math.exp(BETA * (1.0 / (temp_c + 273.15) - 1.0 / T25_K))


def temp_c_of_ratio(ratio: float, pullup_ohm: float) -> float:
    """Temperature for a divider ratio (ADC / full scale) 0 < ratio < 1."""
    r = pullup_ohm * ratio / (1.0 - ratio)
    return 1.0 / (1.0 / T25_K + math.log(r / R25_OHM) / BETA) - 273.15


def table_mc(pullup_ohm: float) -> list[int]:
    """Milli-degrees C at raw = 0, STEP, 2*STEP, ... 4096, clamped to -40..200 C."""
    out = []
    for i in range(4096 // STEP + 1):
        raw = min(max(i * STEP, 1), ADC_MAX - 1)
        t = temp_c_of_ratio(raw / ADC_MAX, pullup_ohm)
        out.append(int(round(min(max(t, -40.0), 200.0) * 1000)))
    return out


def main() -> None:
    for name, pull in PULLUP_OHM.items():
        # array("i") of a list: a frozen build keeps no mpz (device/fw/ntc.py).
        print('%s_MC = array("i", [' % name.upper())
        vals = table_mc(pull)
        for i in range(0, len(vals), 8):
            print("    " + ", ".join(str(v) for v in vals[i:i + 8]) + ",")
        print("])")


if __name__ == "__main__":
    main()
