"""The unit around the chip, for the port models: what differs from one ESP32-C3 steamer
to the next outside the ADC (the 3.3 V rail's voltage, the NTC dividers' fixed
resistors), drawn per unit from $PORTSIM_CHIP_SEED as machine.C3_GAIN_PPM is, and the
divider's voltage on the ADC pin that follows from them (divider_uv; portrun.py wires it).

Why these, and why drawn: the C3's ADC measures volts against its internal reference
(ESP32-C3 datasheet, ADC characteristics: 0..2500 mV at 11 dB; the reference "ranges
from 1000 mV to 1200 mV among different chips", ESP-IDF's ADC calibration guide), and
MicroPython's read_uv is the eFuse curve fitting's estimate of the pin's volts
(ports/esp32/adc.c madcblock_read_uv_helper -> adc_cali_raw_to_voltage, the scheme made
by ensure_adc_calibration; ports/esp32/machine_adc.c mp_machine_adc_read_uv). Nothing in
that path knows the rail the divider hangs from, so the rail's tolerance enters the
reading in full, where the rp2's ratiometric ADC (its ADC_VREF is the rail) cancels it;
and neither port knows the fixed resistor's tolerance. The models' spreads: the rail
+-2 % (a 3.3 V LDO's output accuracy over load and temperature; the C3 runs from 3.0 V to
3.6 V, so a rail anywhere in it is a working unit), each fixed resistor +-1 % (E96 thick
film). The chip's own spread and the residual error of its eFuse calibration are
machine.py's (C3_GAIN_PPM, C3_CAL_PPM). The NTCs themselves are the plant's, exact.
"""
import os

NOMINAL_RAIL_UV = 3300000


def _mix(seed, salt):
    # Another 32-bit hash of the seed than machine.py's, so the draws are independent.
    return ((seed * 2246822519 + salt) * 3266489917) & 0xFFFFFFFF


def draw(seed):
    """This unit's rail and resistors for `seed` (module globals; portrun.py and the tests
    read them). Every seed is a working unit: within the parts' tolerances."""
    global SEED, RAIL_UV, R_PPM
    SEED = seed
    RAIL_UV = NOMINAL_RAIL_UV + (_mix(seed, 1) >> 8) % 132001 - 66000     # +-2 %
    # Per divider: the fixed resistor's error, ppm (+-1 %).
    R_PPM = {"boiler": (_mix(seed, 2) >> 8) % 20001 - 10000,
             "outlet": (_mix(seed, 3) >> 8) % 20001 - 10000}


SEED = RAIL_UV = 0
R_PPM = {}
draw(int(os.getenv("PORTSIM_CHIP_SEED") or "1"))


def divider_uv(raw, pullup_ohm, how, rail_uv=NOMINAL_RAIL_UV, r_ppm=0):
    """The ADC pin's voltage (uV) for the plant's counts (raw/4095 = r/(r+pullup): the NTC's
    resistance r as a pull-up divider would read it) on a divider wired as `how`: "low"
    (the NTC from the pin to ground, pullup_ohm to the rail) or ("high", R) (the NTC from
    the rail to the pin, R ohms to ground). rail_uv and r_ppm: this unit's rail and its
    fixed resistor's error (the defaults: a nominal unit)."""
    if raw >= 4095:
        # An open NTC: the low side's pin goes to the rail, the high side's to ground.
        return rail_uv if how == "low" else 0
    if raw <= 0:
        return 0 if how == "low" else rail_uv
    r = pullup_ohm * raw / (4095 - raw)
    if how == "low":
        fixed = pullup_ohm * (1 + r_ppm / 1e6)
        return int(rail_uv * r / (r + fixed))
    fixed = how[1] * (1 + r_ppm / 1e6)
    return int(rail_uv * fixed / (r + fixed))


def unit_divider_uv(raw, pullup_ohm, how, name):
    """divider_uv on this unit's rail and its `name` divider's resistor."""
    return divider_uv(raw, pullup_ohm, how, RAIL_UV, R_PPM[name])
