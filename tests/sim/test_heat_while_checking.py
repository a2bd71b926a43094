"""Issue 15: a start pressed as the podlet goes in heats the boiler while the podlet's
signature check runs; the session (and so any dose) starts only once it has passed."""
from __future__ import annotations

from simtrace import run_traced
from steamer_sim.scenario import load_scenario


def test_the_boiler_heats_during_the_check_and_the_dose_waits_for_it(tmp_path):
    scen = load_scenario({
        "contract": 1, "seed": 5, "duration_s": 200,
        "profiles": [{"podlet_type": 3, "version": 1, "name": "check", "outlet_target_c": 45.0,
                      "session_s": 30, "dose_rate_ul_min": 300, "max_session_ul": 20000,
                      "max_day_ul": 40000, "min_interval_s": 0}],
        "events": [{"t_s": 0.5, "do": "set_clock", "epoch_s": 1795000000},
                   {"t_s": 2.0, "do": "insert_podlet", "podlet": {
                       "serial": "0000c0ffee17", "podlet_type": 3, "capacity_ul": 20000,
                       "expiry": "2030-01-01", "lot": "CHK"}},
                   {"t_s": 2.0, "do": "start_session"}]})
    summary, steps, events = run_traced(tmp_path, scen)
    started = next(e["t_ms"] for e in events if e["event"] == "session_started")
    accepted = next(e["t_ms"] for e in events if e["event"] == "podlet_accepted")
    assert accepted <= started
    heated = next(s["t_ms"] for s in steps if s["fw"]["heater_pct"] > 0)
    pumped = next(s["t_ms"] for s in steps if s["fw"]["pump_ul_min"] > 0)
    assert 2000 <= heated < accepted, (heated, accepted)
    assert pumped > started
    before = [s for s in steps if s["t_ms"] < started]
    assert all(s["plant"]["pumped_ul"] == 0 and s["state"] in ("idle", "preheat") for s in before)
    assert summary["sessions"][0]["reason"] == "completed" and summary["latched"] == []
