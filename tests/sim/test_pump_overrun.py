"""A pump that runs away (the sim's `pump_runaway`: its fastest, 40 ul/s, whatever it is
told) latches `pump_overrun` one period after it starts, steaming or idle, and the
firmware commands the pump off from that step on."""
from __future__ import annotations

import json

import pytest

from steamer_harness import faultcases
from steamer_sim.scenario import load_scenario
from steamer_sim.driver import run_scenario

PERIOD_MS = 100
RUNAWAY_UL_S = 40.0         # boards/sim/plant.py PARAMS["pump_max_nl_s"]
CASES = [c for c in faultcases.CASES if c.fault == "pump_runaway"]


def test_runaway_is_a_scenario_fault_and_a_bench_case() -> None:
    load_scenario({"duration_s": 1, "events": [{"t_s": 0, "do": "fault",
                                                 "fault": "pump_runaway"}]})
    assert {c.name for c in CASES} == {"pump_runaway_steaming", "pump_runaway_idle"}
    assert all(c.expect == ("pump_overrun",) and c.limit_ms == 300 for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_runaway_latches_overrun_in_one_period(case, tmp_path) -> None:
    trace = tmp_path / "t.jsonl"
    summary = run_scenario(faultcases.scenario(case), str(trace))
    assert faultcases.latency_ms(case, summary) == PERIOD_MS
    assert [f["code"] for f in summary["latched"]] == ["pump_overrun"]
    assert summary["loop"]["alloc_errors"] == 0 and summary["resets"] == []
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    latched = [r for r in records if r.get("event") == "fault_latched"]
    assert latched[0]["sensor"] == "pump" and latched[0]["value"] > latched[0]["limit"]
    detected_ms = case.inject_s * 1000 + PERIOD_MS
    steps = [r for r in records if "event" not in r and r["t_ms"] >= detected_ms]
    assert steps and all(r["state"] == "fault" and r["fw"]["pump_ul_min"] == 0
                         for r in steps)
    if case.session:
        (session,) = summary["sessions"]
        assert session["reason"] == "fault" and session["end_ms"] == detected_ms
        # What the plant pumped past the count: one period of the runaway at most.
        assert session["plant_pumped_ul"] - session["session_ul"] <= RUNAWAY_UL_S * 0.1 + 0.5
