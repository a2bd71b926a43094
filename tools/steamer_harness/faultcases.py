"""Fault-injection cases: one scenario per injectable fault, what must latch, how fast.

Each case runs a nominal session on the nominal plant and injects its fault at a moment
where it matters (steaming, preheat or idle). The limits are the supervisor's
requirements; `steamer dev bench` reports the measured latencies and the fault tests
assert them.
"""
from __future__ import annotations

from dataclasses import dataclass

from steamer_sim.scenario import load_scenario

# Nominal session: preheat from t=3 s, ready at ~145 s, dosing from ~157 s.
STEAMING_S = 260.0
PREHEAT_S = 60.0
IDLE_S = 20.0


@dataclass(frozen=True)
class FaultCase:
    name: str           # case name (fault plus where it is injected)
    fault: str          # the scenario's fault name
    inject_s: float
    expect: tuple       # fault codes (or "watchdog_reset") any of which satisfies it
    limit_ms: int       # detection latency requirement
    session: bool = True
    stop_s: float | None = None     # the user stops the session then


CASES = [
    FaultCase("boiler_ntc_open", "boiler_ntc_open", STEAMING_S, ("boiler_ntc_open",), 300),
    FaultCase("boiler_ntc_short", "boiler_ntc_short", STEAMING_S, ("boiler_ntc_short",), 300),
    FaultCase("outlet_ntc_open", "outlet_ntc_open", STEAMING_S, ("outlet_ntc_open",), 300),
    FaultCase("outlet_ntc_short", "outlet_ntc_short", STEAMING_S, ("outlet_ntc_short",), 300),
    FaultCase("boiler_ntc_frozen", "boiler_ntc_frozen", PREHEAT_S, ("boiler_ntc_frozen",), 5000),
    FaultCase("outlet_ntc_frozen", "outlet_ntc_frozen", STEAMING_S, ("outlet_ntc_frozen",), 5000),
    FaultCase("heater_stuck_on_idle", "heater_stuck_on", IDLE_S, ("heater_stuck_on",), 5000,
              session=False),
    FaultCase("heater_stuck_on_steaming", "heater_stuck_on", STEAMING_S,
              ("heater_stuck_on", "overtemp_outlet"), 5000),
    # A heater that sticks just as the user stops the preheat: the sensor's lag still
    # shows the heat of the seconds before, which must neither pass for a stuck heater
    # (tests/sim/test_false_trips.py) nor hide one.
    FaultCase("heater_stuck_on_at_stop", "heater_stuck_on", PREHEAT_S, ("heater_stuck_on",),
              6000, stop_s=PREHEAT_S),
    FaultCase("heater_open_preheat", "heater_open", PREHEAT_S, ("heater_not_heating",), 10000),
    FaultCase("heater_open_steaming", "heater_open", STEAMING_S, ("heater_not_heating",), 10000),
    FaultCase("water_empty", "water_empty", STEAMING_S, ("water_empty", "dry_boil"), 30000),
    FaultCase("tip_over", "tip_over", STEAMING_S, ("tip_over",), 500),
    FaultCase("pump_stall", "pump_stall", STEAMING_S, ("pump_stall",), 2000),
    FaultCase("pump_runaway_steaming", "pump_runaway", STEAMING_S, ("pump_overrun",), 300),
    FaultCase("pump_runaway_idle", "pump_runaway", IDLE_S, ("pump_overrun",), 300,
              session=False),
    FaultCase("loop_stall", "loop_stall", STEAMING_S, ("watchdog_reset",), 1500),
]


def scenario(case: FaultCase, seed: int = 1) -> dict:
    events = [{"t_s": 0.5, "do": "set_clock", "epoch_s": 1795000000},
              {"t_s": 1.0, "do": "insert_podlet", "podlet": {
        "serial": "0000c0ffee01", "podlet_type": 3, "capacity_ul": 20000,
        "expiry": "2030-01-01", "lot": "F1"}}]
    if case.session:
        events.append({"t_s": 3.0, "do": "start_session"})
    events.append({"t_s": case.inject_s, "do": "fault", "fault": case.fault})
    if case.stop_s is not None:
        events.append({"t_s": case.stop_s, "do": "stop_session"})
    return load_scenario({
        "contract": 1, "duration_s": case.inject_s + 40.0, "seed": seed,
        "profiles": [{"podlet_type": 3, "version": 1, "name": "fault-case",
                      "outlet_target_c": 45.0, "session_s": 900, "dose_rate_ul_min": 300,
                      "max_session_ul": 20000, "max_day_ul": 40000, "min_interval_s": 0}],
        "events": events,
    })


def latency_ms(case: FaultCase, summary: dict) -> int | None:
    """Injection to the first matching decision, or None if it never came."""
    injected = case.inject_s * 1000
    for f in summary["latched"]:
        if f["code"] in case.expect and f["latched_ms"] >= injected:
            return int(f["latched_ms"] - injected)
    if "watchdog_reset" in case.expect:
        for r in summary["resets"]:
            if r["cause"] == "watchdog" and r["t_ms"] >= injected:
                return int(r["t_ms"] - injected)
    return None
