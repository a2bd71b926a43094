"""A genuine podlet swapped for a fake in one instant (no presence edge), in the
simulator through `swap_podlet` and through a removal and insertion at the same time:
the firmware refuses the start or ends the session within a second (issue 11, item 1)."""
from __future__ import annotations

from pathlib import Path

import pytest

from simtrace import run_traced

CLOCK_S = 1795000000
PROFILE = {"podlet_type": 3, "version": 1, "name": "swap", "outlet_target_c": 45.0,
           "session_s": 300, "dose_rate_ul_min": 1200, "max_session_ul": 2500,
           "max_day_ul": 5000, "min_interval_s": 0}
GENUINE = {"serial": "0000c0ffee01", "podlet_type": 3, "capacity_ul": 3000,
           "expiry": "2027-06-30", "lot": "L2611"}
# The fake: unsigned, expired, a type without a profile, 100 ul.
FAKE = {"serial": "0000bad0fa4e", "podlet_type": 9, "capacity_ul": 100,
        "expiry": "2020-01-01", "lot": "FAKE", "sign": "none"}
DOSING_S = 170                  # inside the session's dosing (from ~150 s)


def scenario(duration_s: float, events: list[dict]) -> dict:
    return {"contract": 1, "duration_s": duration_s, "seed": 4, "plant": {"water_ml": 60},
            "profiles": [PROFILE],
            "events": [{"t_s": 0.5, "do": "set_clock", "epoch_s": CLOCK_S},
                       {"t_s": 1, "do": "insert_podlet", "podlet": GENUINE}] + events}


def run(tmp_path: Path, scen: dict) -> tuple[dict, list[dict], list[dict]]:
    return run_traced(tmp_path, scen)


def swap(t_s: float, how: str) -> list[dict]:
    if how == "swap_podlet":
        return [{"t_s": t_s, "do": "swap_podlet", "podlet": FAKE}]
    return [{"t_s": t_s, "do": "remove_podlet"},
            {"t_s": t_s, "do": "insert_podlet", "podlet": FAKE}]


@pytest.mark.parametrize("how", ["swap_podlet", "remove_insert"])
def test_a_swap_before_the_start_refuses_it(tmp_path, how):
    summary, _, events = run(tmp_path, scenario(20, swap(3, how) + [
        {"t_s": 3, "do": "start_session"}, {"t_s": 6, "do": "start_session"}]))
    assert summary["sessions"] == []
    refused = [e["reason"] for e in events if e["event"] == "session_refused"]
    assert refused == ["podlet_changed", "no_podlet"]
    assert [e["reason"] for e in events if e["event"] == "podlet_rejected"][0] == "bad_signature"


@pytest.mark.parametrize("how", ["swap_podlet", "remove_insert"])
def test_a_swap_mid_session_ends_it_within_a_second(tmp_path, how):
    summary, steps, events = run(tmp_path, scenario(DOSING_S + 10, [
        {"t_s": 3, "do": "start_session"}] + swap(DOSING_S, how)))
    [s] = summary["sessions"]
    assert s["reason"] == "podlet_changed"
    assert DOSING_S * 1000 <= s["end_ms"] <= DOSING_S * 1000 + 1000
    # The pump is off within a second of the swap, and stays off.
    at_swap = next(r for r in steps if r["t_ms"] >= DOSING_S * 1000)
    assert at_swap["fw"]["pump_ul_min"] > 0
    later = [r for r in steps if r["t_ms"] >= DOSING_S * 1000 + 1000]
    assert later and all(r["plant"]["pumped_ul"] == later[0]["plant"]["pumped_ul"]
                         for r in later)
    # 20 ul/s: a second at most of it after the swap.
    assert later[0]["plant"]["pumped_ul"] - at_swap["plant"]["pumped_ul"] <= 20
    assert abs(s["plant_pumped_ul"] - s["session_ul"]) <= 0.01 * s["session_ul"]
    assert not [e for e in events if e["event"] == "podlet_accepted"
                and e["podlet"] == FAKE["serial"]]
