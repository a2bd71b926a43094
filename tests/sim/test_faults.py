"""Every injectable fault is caught within its limit, and the heat stays off after."""
from __future__ import annotations

import json

import pytest

from steamer_harness import faultcases
from steamer_sim.driver import run_scenario


@pytest.mark.parametrize("case", faultcases.CASES, ids=lambda c: c.name)
def test_fault_detected_within_limit_and_heat_stays_off(case, tmp_path):
    trace = tmp_path / "t.jsonl"
    summary = run_scenario(faultcases.scenario(case), str(trace))
    latency = faultcases.latency_ms(case, summary)
    assert latency is not None, f"{case.expect} never came: {summary['latched']}"
    assert latency <= case.limit_ms
    assert summary["loop"]["alloc_errors"] == 0
    if case.fault == "loop_stall":
        return
    detected_ms = case.inject_s * 1000 + latency
    steps = [json.loads(line) for line in trace.read_text().splitlines()]
    after = [r for r in steps if "event" not in r and r["t_ms"] > detected_ms]
    assert after, "nothing ran after the fault"
    assert all(r["state"] == "fault" for r in after)
    assert all(r["plant"]["heater_w"] == 0.0 for r in after)
    assert all(r["fw"]["pump_ul_min"] == 0 for r in after)
    latched = [r for r in steps if r.get("event") == "fault_latched"]
    assert {"code", "sensor", "raw", "limit"} <= set(latched[0])


def test_podlet_bus_error_is_refused_not_trusted(tmp_path):
    case = faultcases.FaultCase("podlet_bus_error", "podlet_bus_error", 0.5, (), 0)
    scenario = faultcases.scenario(case)
    trace = tmp_path / "t.jsonl"
    run_scenario(scenario, str(trace))
    events = [json.loads(l) for l in trace.read_text().splitlines() if '"event"' in l]
    rejected = [e for e in events if e["event"] == "podlet_rejected"]
    assert rejected and rejected[0]["reason"] == "unreadable"
    refused = [e for e in events if e["event"] == "session_refused"]
    assert refused and refused[0]["reason"] == "no_podlet"


def test_a_stalled_loop_pumps_at_most_one_period_more(tmp_path):
    """The pump's keep-alive: with the firmware's loop blocked, the pump stops one period
    after its last command, long before the watchdog's reset (1 s)."""
    case = next(c for c in faultcases.CASES if c.fault == "loop_stall")
    trace = tmp_path / "t.jsonl"
    run_scenario(faultcases.scenario(case), str(trace))
    steps = [json.loads(line) for line in trace.read_text().splitlines()]
    steps = [r for r in steps if "event" not in r]
    injected_ms = case.inject_s * 1000
    before = [r for r in steps if r["t_ms"] <= injected_ms][-1]
    assert before["state"] == "steaming" and before["fw"]["pump_ul_min"] == 300
    pumped_after = steps[-1]["plant"]["pumped_ul"] - before["plant"]["pumped_ul"]
    assert pumped_after <= 300 / 60 * 0.1 * 1.01 + 0.001     # one period at 300 ul/min
