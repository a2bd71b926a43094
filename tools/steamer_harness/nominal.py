"""Randomized nominal sessions: the plants and users a steamer meets on a normal day.

Used by the false-trip test (200 sessions) and `steamer dev bench` (1,000): ambient
10-35 C, mains 90-110 %, 80-300 ml of water, sensor noise 50-150 %, outlet targets
35-55 C, dose rates and session lengths across the envelope, and sometimes a user who
stops early. Nothing here is a fault, so any latched fault is a false trip.
"""
from __future__ import annotations

import random

from steamer_sim.scenario import load_scenario


def nominal_scenario(seed: int) -> dict:
    rnd = random.Random(seed)
    session_s = rnd.randint(60, 300)
    start_s = round(rnd.uniform(1.0, 20.0), 1)
    profile = {
        "podlet_type": 3, "version": 1, "name": "nominal",
        "outlet_target_c": round(rnd.uniform(35.0, 55.0), 1),
        "session_s": session_s,
        "dose_rate_ul_min": rnd.randint(50, 800),
        "max_session_ul": 20000, "max_day_ul": 40000, "min_interval_s": 0,
    }
    podlet = {"serial": "%012x" % (0xC0FFEE000000 + seed % 0xFFFFFF), "podlet_type": 3,
              "capacity_ul": 20000, "expiry": "2030-01-01", "lot": "NOM1"}
    events = [
        {"t_s": 0.2, "do": "set_clock", "epoch_s": 1795000000 + seed * 86400},
        {"t_s": 0.5, "do": "insert_podlet", "podlet": podlet},
        {"t_s": start_s, "do": "start_session"},
    ]
    # Preheat takes up to ~6.5 min (300 ml from 10 C at 90 % mains), the outlet's warm-up
    # up to ~1.5 min; then the session, and room to cool down.
    duration_s = start_s + 400 + 90 + session_s + 120
    if rnd.random() < 0.2:
        events.append({"t_s": round(start_s + rnd.uniform(30, 300 + session_s), 1),
                       "do": "stop_session"})
    return load_scenario({
        "contract": 1, "duration_s": round(duration_s, 1), "seed": seed,
        "plant": {"ambient_c": round(rnd.uniform(10.0, 35.0), 1),
                  "water_ml": rnd.randint(80, 300),
                  "mains_pct": round(rnd.uniform(90.0, 110.0), 1),
                  "noise_pct": round(rnd.uniform(50.0, 100.0), 1)},
        "profiles": [profile], "events": events,
    })


def stopped_in_preheat_scenario(seed: int) -> dict:
    """A user who starts a session and stops it during the preheat, whatever the water
    left (down to just above the float switch): the heater stops while the boiler
    sensor's lag still hides the heat of the last seconds."""
    rnd = random.Random(seed)
    start_s = round(rnd.uniform(3.0, 6.0), 1)       # the podlet's check takes ~2 s
    stop_s = round(start_s + rnd.uniform(2.0, 40.0), 1)
    podlet = {"serial": "%012x" % (0xC0FFEE000000 + seed % 0xFFFFFF), "podlet_type": 3,
              "capacity_ul": 20000, "expiry": "2030-01-01", "lot": "NOM1"}
    return load_scenario({
        "contract": 1, "duration_s": stop_s + 60.0, "seed": seed,
        "plant": {"ambient_c": round(rnd.uniform(10.0, 35.0), 1),
                  "water_ml": rnd.randint(16, 300),
                  "mains_pct": round(rnd.uniform(90.0, 110.0), 1),
                  "noise_pct": round(rnd.uniform(50.0, 100.0), 1)},
        "profiles": [{"podlet_type": 3, "version": 1, "name": "nominal",
                      "outlet_target_c": 45.0, "session_s": 300, "dose_rate_ul_min": 300,
                      "max_session_ul": 20000, "max_day_ul": 40000, "min_interval_s": 0}],
        "events": [{"t_s": 0.2, "do": "set_clock", "epoch_s": 1795000000 + seed % 1000 * 86400},
                   {"t_s": 0.5, "do": "insert_podlet", "podlet": podlet},
                   {"t_s": start_s, "do": "start_session"},
                   {"t_s": stop_s, "do": "stop_session"}],
    })


def false_trips(summary: dict) -> list[str]:
    """What went wrong in a nominal session's summary (empty when nothing did)."""
    problems = [f"fault {f['code']} at {f['latched_ms']} ms" for f in summary["latched"]]
    if summary["loop"]["alloc_errors"]:
        problems.append(f"{summary['loop']['alloc_errors']} alloc errors")
    if summary["resets"]:
        problems.append(f"resets {summary['resets']}")
    for s in summary["sessions"]:
        if s["reason"] not in ("completed", "max_session", "stopped"):
            problems.append(f"session ended {s['reason']}")
    if not summary["sessions"]:
        problems.append("no session started")
    return problems
