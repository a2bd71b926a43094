"""Profiles reach the firmware through its install path and are judged there."""
from __future__ import annotations

import json

from steamer_sim.driver import run_scenario

GOOD = {"podlet_type": 3, "version": 1, "name": "vitamin-c", "outlet_target_c": 45.0,
        "session_s": 600, "dose_rate_ul_min": 300, "max_session_ul": 2500,
        "max_day_ul": 5000, "min_interval_s": 0}


def test_envelope_and_rollback_decided_by_the_firmware(tmp_path):
    hot = dict(GOOD, outlet_target_c=70.0)
    long = dict(GOOD, podlet_type=4, session_s=7200)
    v2 = dict(GOOD, version=2, outlet_target_c=40.0)
    scenario = {"contract": 1, "duration_s": 3, "profiles": [hot, GOOD, long],
                "events": [{"t_s": 1.0, "do": "install_profile", "profile": GOOD},
                           {"t_s": 2.0, "do": "install_profile", "profile": v2}]}
    trace = tmp_path / "t.jsonl"
    run_scenario(scenario, str(trace))
    decisions = [json.loads(l) for l in trace.read_text().splitlines() if '"profile_' in l]
    got = [(d["event"], d.get("reason"), d.get("version")) for d in decisions]
    assert got == [
        ("profile_rejected", "outlet_target_c", None),
        ("profile_installed", None, 1),
        ("profile_rejected", "session_s", None),
        ("profile_rejected", "stale_version", None),
        ("profile_installed", None, 2),
    ]
