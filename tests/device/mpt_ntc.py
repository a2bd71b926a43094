"""NTC conversion against the divider model it was generated from."""
import math

from fw import ntc


def _raw(temp_c, pullup_ohm):
    r = 10000.0 * math.exp(3950.0 * (1.0 / (temp_c + 273.15) - 1.0 / 298.15))
    return int(4095.0 * r / (r + pullup_ohm) + 0.5)


def _worst_error_c(table, pullup, lo_c, hi_c):
    worst = 0.0
    t = lo_c
    while t <= hi_c:
        err = abs(ntc.to_mc(table, _raw(t, pullup)) / 1000 - t)
        worst = max(worst, err)
        t += 0.25
    return worst


def test_boiler_table_within_0_3_c_from_10_to_135_c():
    assert _worst_error_c(ntc.BOILER_MC, 1000.0, 10.0, 135.0) < 0.3


def test_outlet_table_within_0_2_c_from_5_to_75_c():
    assert _worst_error_c(ntc.OUTLET_MC, 10000.0, 5.0, 75.0) < 0.2


def test_monotonic_hotter_reads_lower():
    for table in (ntc.BOILER_MC, ntc.OUTLET_MC):
        prev = ntc.to_mc(table, 0)
        for raw in range(1, 4096):
            now = ntc.to_mc(table, raw)
            assert now <= prev, raw
            prev = now


def test_open_and_short_map_to_the_table_ends():
    assert ntc.to_mc(ntc.OUTLET_MC, 4095) == -40000
    assert ntc.to_mc(ntc.BOILER_MC, 0) == 200000
