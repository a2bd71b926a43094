"""The simulated steamer end to end: the real firmware on the unix port, on the plant."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from steamer_dev.paths import ROOT
from steamer_sim.scenario import load_scenario
from steamer_sim.driver import run_scenario

DEMO = ROOT / "scenarios" / "demo.json"


def _records(path: Path) -> tuple[list[dict], list[dict]]:
    steps, events = [], []
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        (events if "event" in rec else steps).append(rec)
    return steps, events


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    trace = tmp_path_factory.mktemp("demo") / "trace.jsonl"
    return run_scenario(str(DEMO), str(trace)), trace


def test_nominal_session_meets_the_control_goals(demo):
    summary, _ = demo
    loop, m = summary["loop"], summary["metrics"]
    assert loop["alloc_errors"] == 0
    assert loop["steps"] >= summary["duration_s"] * 10 - 1
    assert m["ready_ratio"] <= 1.15
    assert m["overshoot_c"] <= 1.0
    assert m["steady_err_c"] <= 0.5
    [session] = summary["sessions"]
    # 300 ul/min for 600 s is 3000 ul; the profile's max_session_ul is 2500.
    assert session["reason"] == "max_session"
    assert session["session_ul"] == 2500.0
    assert abs(session["plant_pumped_ul"] - 2500.0) <= 25.0
    assert summary["latched"] == []


def test_trace_has_a_record_per_step_and_the_decisions(demo):
    summary, trace = demo
    steps, events = _records(trace)
    assert len(steps) >= summary["duration_s"] * 10 - 1
    first = steps[0]
    assert set(first) == {"t_ms", "state", "fw", "plant"}
    assert set(first["fw"]) >= {"boiler_c", "outlet_c", "heater_pct", "pump_ul_min",
                                "session_ul", "fault"}
    assert set(first["plant"]) >= {"boiler_c", "outlet_c", "heater_w", "water_ml",
                                   "steam_mg_s", "pumped_ul"}
    states = {r["state"] for r in steps}
    assert {"idle", "preheat", "ready", "steaming", "cooldown"} <= states
    names = [e["event"] for e in events]
    for needed in ("boot", "profile_installed", "podlet_accepted", "session_started",
                   "session_ended"):
        assert needed in names
    ended = next(e for e in events if e["event"] == "session_ended")
    assert ended["reason"] == "max_session" and ended["session_ul"] == 2500.0
    # The pump never runs outside steaming, and the heater never past its limits.
    for r in steps:
        if r["state"] != "steaming":
            assert r["fw"]["pump_ul_min"] == 0
        assert r["plant"]["outlet_c"] < 60.0 and r["plant"]["boiler_c"] < 130.0


def test_same_scenario_and_seed_give_the_same_trace(tmp_path):
    scenario = load_scenario(str(DEMO))
    scenario["duration_s"] = 200
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    run_scenario(scenario, str(a))
    run_scenario(scenario, str(b))
    scenario["seed"] += 1
    run_scenario(scenario, str(c))
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_power_cut_reboots_cold_and_keeps_the_heater_off(tmp_path):
    scenario = load_scenario(str(DEMO))
    scenario["duration_s"] = 260
    scenario["events"].append({"t_s": 200.0, "do": "power_cut", "off_s": 5.0})
    trace = tmp_path / "t.jsonl"
    summary = run_scenario(scenario, str(trace))
    steps, events = _records(trace)
    off = [r for r in steps if r["state"] == "off"]
    assert 45 <= len(off) <= 51
    assert all(r["plant"]["heater_w"] == 0.0 for r in off)
    boots = [e for e in events if e["event"] == "boot"]
    assert [b["reason"] for b in boots] == ["power_on", "power_on"]
    assert boots[1]["t_ms"] >= 205000
    after = [r for r in steps if r["t_ms"] > 205000]
    assert after and all(r["state"] == "idle" for r in after)
    assert summary["resets"] == [{"cause": "power_on", "t_ms": 200000}]


def test_loop_stall_ends_in_a_watchdog_reset_logged_after_boot(tmp_path):
    scenario = load_scenario(str(DEMO))
    scenario["duration_s"] = 240
    scenario["events"].append({"t_s": 220.0, "do": "fault", "fault": "loop_stall"})
    trace = tmp_path / "t.jsonl"
    summary = run_scenario(scenario, str(trace))
    _, events = _records(trace)
    wd = [e for e in events if e["event"] == "watchdog_reset"]
    assert len(wd) == 1 and 220000 < wd[0]["t_ms"] <= 221500
    boot = [e for e in events if e["event"] == "boot"][-1]
    assert boot["reason"] == "watchdog" and boot["t_ms"] == wd[0]["t_ms"]
    [stall] = summary["faults"]
    assert stall["heater_off_ms"] - stall["injected_ms"] <= 300
