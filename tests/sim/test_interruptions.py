"""What the simulated world does to a steamer around its sessions: power cuts and
watchdog resets in the middle of one (the session ends at the next boot, with the dose
the ledger counted), commands sent while it is unpowered (never received), a podlet
inserted in the period of a start, and scenarios as large as the validator accepts
(issue 11, items 7 and 15)."""
from __future__ import annotations

from pathlib import Path

import pytest

from steamer_sim.scenario import MAX_PROFILES
from simtrace import run_traced

CLOCK_S = 1795000000
PROFILE = {"podlet_type": 3, "version": 1, "name": "cut", "outlet_target_c": 45.0,
           "session_s": 300, "dose_rate_ul_min": 1200, "max_session_ul": 2500,
           "max_day_ul": 5000, "min_interval_s": 0}
PODLET = {"serial": "0000c0ffee01", "podlet_type": 3, "capacity_ul": 3000,
          "expiry": "2027-06-30", "lot": "L2611"}
CUT_S = 170                     # inside the session's dosing (from ~150 s), 20 ul/s


def scenario(duration_s: float, events: list[dict], profiles: list[dict] | None = None,
             podlet_at_s: float | None = 1) -> dict:
    head = [{"t_s": 0.5, "do": "set_clock", "epoch_s": CLOCK_S}]
    if podlet_at_s is not None:
        head.append({"t_s": podlet_at_s, "do": "insert_podlet", "podlet": PODLET})
    return {"contract": 1, "duration_s": duration_s, "seed": 4, "plant": {"water_ml": 60},
            "profiles": [PROFILE] if profiles is None else profiles, "events": head + events}


def run(tmp_path: Path, scen: dict) -> tuple[dict, list[dict], list[dict]]:
    return run_traced(tmp_path, scen)


# ---- a session cut short by a reset (item 7) -------------------------------------------

@pytest.mark.parametrize("cut, reason", [
    ({"t_s": CUT_S, "do": "power_cut", "off_s": 5}, "power_loss"),
    ({"t_s": CUT_S, "do": "fault", "fault": "loop_stall"}, "watchdog"),
], ids=["power_cut", "watchdog"])
def test_a_session_a_reset_cuts_short_ends_at_the_next_boot(tmp_path, cut, reason):
    summary, steps, events = run(tmp_path, scenario(CUT_S + 30, [
        {"t_s": 3, "do": "start_session"}, cut]))
    [s] = summary["sessions"]
    assert s["reason"] == reason
    boots = [e for e in events if e["event"] == "boot"]
    assert len(boots) == 2
    [end] = [e for e in events if e["event"] == "session_ended"]
    assert end["t_ms"] == boots[1]["t_ms"]          # recorded as the steamer came back
    # The dose the ledger counted: what was pumped, and at most a reservation ahead.
    pumped = s["plant_pumped_ul"]
    assert pumped > 300
    assert pumped <= s["session_ul"] <= pumped + 50 + 2, s
    assert [r for r in steps if r["t_ms"] > boots[1]["t_ms"]][0]["state"] == "idle"


def test_a_session_that_ended_is_not_ended_again_at_the_next_boot(tmp_path):
    summary, _, events = run(tmp_path, scenario(CUT_S + 30, [
        {"t_s": 3, "do": "start_session"}, {"t_s": CUT_S - 5, "do": "stop_session"},
        {"t_s": CUT_S, "do": "power_cut", "off_s": 5}]))
    assert [s["reason"] for s in summary["sessions"]] == ["stopped"]
    assert [e["reason"] for e in events if e["event"] == "session_ended"] == ["stopped"]


# ---- commands while unpowered, a start with an insertion (item 15) ----------------------

def test_commands_sent_while_unpowered_never_arrive(tmp_path):
    summary, _, events = run(tmp_path, scenario(40, [
        {"t_s": 5, "do": "power_cut", "off_s": 10},
        {"t_s": 8, "do": "start_session"},
        {"t_s": 9, "do": "set_clock", "epoch_s": CLOCK_S + 100},
        {"t_s": 10, "do": "install_profile", "profile": dict(PROFILE, version=2)}]))
    assert summary["sessions"] == []
    after = [e for e in events if e["t_ms"] >= 15000]
    names = {e["event"] for e in after}
    assert "session_started" not in names and "session_refused" not in names
    assert "profile_installed" not in names and "clock_clamped" not in names


def test_a_power_cut_while_unpowered_keeps_it_off_until_the_later_end(tmp_path):
    summary, steps, _ = run(tmp_path, scenario(30, [
        {"t_s": 5, "do": "power_cut", "off_s": 5},
        {"t_s": 7, "do": "power_cut", "off_s": 10}]))
    assert summary["resets"] == [{"cause": "power_on", "t_ms": 5000}]
    off = [r["t_ms"] for r in steps if r["state"] == "off"]
    assert off[0] > 5000 and off[-1] == 17000


def test_a_start_in_the_period_of_the_insertion_checks_the_podlet_once(tmp_path):
    summary, _, events = run(tmp_path, scenario(20, [
        {"t_s": 3, "do": "insert_podlet", "podlet": PODLET},
        {"t_s": 3, "do": "start_session"}], podlet_at_s=None))
    names = [e["event"] for e in events if e["event"] != "boot"]
    assert names.count("podlet_accepted") == 1
    assert names.index("podlet_accepted") < names.index("session_started")
    assert len(summary["sessions"]) == 1


# ---- scenario size (item 15) ----------------------------------------------------------

def test_the_largest_scenarios_the_validator_accepts_run(tmp_path):
    profiles = [dict(PROFILE, podlet_type=i % 256, version=1 + i // 256, name=f"p{i}")
                for i in range(MAX_PROFILES)]
    events = []
    for i in range(3000):
        t = 2 + i * 0.1
        if i % 3 == 0:
            events.append({"t_s": t, "do": "insert_podlet",
                           "podlet": dict(PODLET, serial="%012x" % (0xc0ffee00 + i))})
        elif i % 3 == 1:
            events.append({"t_s": t, "do": "remove_podlet"})
        else:
            events.append({"t_s": t, "do": "refill_water", "ml": 60})
    events.append({"t_s": 200, "do": "power_cut", "off_s": 2})     # boot with them all
    summary, _, events_out = run(tmp_path, scenario(320, events, profiles=profiles))
    assert summary["loop"]["steps"] > 3000
    assert len([e for e in events_out if e["event"] == "profile_installed"]) == MAX_PROFILES
