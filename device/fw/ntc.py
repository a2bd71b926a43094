"""NTC thermistor conversion: 12-bit ADC counts to milli-degrees C by table lookup.

The tables come from `python -m steamer_dev.ntc_table` (beta model, 10 k at 25 C,
beta 3950; boiler pull-up 1 k, outlet pull-up 10 k): knots every 64 counts, linear
interpolation between them. Integer only, no allocation.

The tables are array("i") built from list literals: a frozen build (mpy-tool) keeps a
constant tuple's ints outside +-8191 as mpz objects, and every sum with one allocates
(issue 14 item 3); a list literal's ints are loaded inline and the array holds machine
words. tests/boards/test_frozen_constants.py checks that no hot-path module has such a
constant.
"""
from array import array

from micropython import const

_SHIFT = const(6)
_MASK = const(63)

BOILER_MC = array("i", [
    200000, 200000, 200000, 200000, 200000, 192765, 182057, 173233,
    165732, 159208, 153431, 148243, 143528, 139201, 135198, 131467,
    127967, 124667, 121540, 118563, 115718, 112989, 110363, 107827,
    105371, 102987, 100666, 98401, 96185, 94013, 91878, 89777,
    87704, 85654, 83623, 81607, 79603, 77604, 75609, 73612,
    71610, 69597, 67569, 65522, 63449, 61346, 59204, 57017,
    54777, 52473, 50094, 47627, 45054, 42355, 39505, 36469,
    33202, 29644, 25706, 21252, 16063, 9735, 1392, -11641,
    -40000,
])

OUTLET_MC = array("i", [
    200000, 160655, 129310, 112729, 101592, 93251, 86597, 81063,
    76323, 72174, 68479, 65143, 62098, 59291, 56684, 54246,
    51951, 49780, 47716, 45746, 43858, 42042, 40290, 38594,
    36947, 35345, 33782, 32254, 30755, 29283, 27833, 26403,
    24989, 23588, 22198, 20815, 19437, 18061, 16685, 15304,
    13917, 12520, 11111, 9684, 8237, 6765, 5264, 3728,
    2151, 525, -1157, -2906, -4735, -6658, -8694, -10869,
    -13217, -15783, -18634, -21871, -25661, -30310, -36484, -40000,
    -40000,
])


def to_mc(table, raw):
    """Milli-degrees C for raw counts 0..4095 on a divider described by table."""
    i = raw >> _SHIFT
    lo = table[i]
    return lo + (((table[i + 1] - lo) * (raw & _MASK)) >> _SHIFT)
