"""Delivery patterns (issue 17, profile format 2) on the simulated steamer: a pulsed and
a ramped session whose ground-truth dose (the plant's pumped volume) matches the
pattern within 1 %, and whose counted dose (the encoder's) is the pattern's within a
pulse; the control step runs under the heap lock (fw.main.control_step), so it
allocates nothing on either."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

STEAMER = Path(sys.executable).with_name("steamer")
RATE_UL_MIN = 300
SESSION_S = 60
BASE = {"podlet_type": 3, "version": 2, "name": "pattern", "outlet_target_c": 40.0,
        "session_s": SESSION_S, "dose_rate_ul_min": RATE_UL_MIN, "max_session_ul": 2500,
        "max_day_ul": 5000, "min_interval_s": 0, "sign": "ok"}


def _expected_ul(prof: dict) -> float:
    """The pattern's dose over session_s of dosing, as the pattern says it."""
    full_nl_s = RATE_UL_MIN * 1000 // 60
    if prof["pattern"] == "pulsed":
        periods, rest_s = divmod(SESSION_S, prof["period_s"])
        bolus_s = prof["bolus_ul"] * 1000 / full_nl_s
        return periods * prof["bolus_ul"] + min(rest_s, bolus_s) * full_nl_s / 1000
    ramp = prof["ramp_s"]
    nl = sum(full_nl_s * (s + 1) // ramp for s in range(ramp)) + (SESSION_S - ramp) * full_nl_s
    return nl / 1000


@pytest.mark.parametrize("pattern", [{"pattern": "pulsed", "bolus_ul": 10, "period_s": 15},
                                     {"pattern": "ramped", "ramp_s": 30}])
def test_pattern_dose_matches(tmp_path: Path, pattern: dict) -> None:
    prof = dict(BASE, **pattern)
    scen = {"contract": 1, "duration_s": 400, "profiles": [prof],
            "events": [{"t_s": 0.5, "do": "set_clock", "epoch_s": 1795000000},
                       {"t_s": 1, "do": "insert_podlet",
                        "podlet": {"serial": "0000c0ffee01", "podlet_type": 3,
                                   "capacity_ul": 3000, "expiry": "2030-06-30", "lot": "P1"}},
                       {"t_s": 5, "do": "start_session"}]}
    path = tmp_path / "scen.json"
    path.write_text(json.dumps(scen))
    trace = tmp_path / "trace.jsonl"
    proc = subprocess.run([str(STEAMER), "sim", "run", str(path), "--trace", str(trace),
                           "--quiet"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    (session,) = summary["sessions"]
    assert summary["loop"]["alloc_errors"] == 0      # the step stays allocation-free
    want = _expected_ul(prof)
    assert session["reason"] == "completed"
    # The counted dose is the encoder's: whole pulses (boards/sim NL_PER_PULSE, 0.1 ul).
    assert session["session_ul"] == pytest.approx(want, abs=0.1 + 0.002)
    assert session["plant_pumped_ul"] == pytest.approx(want, rel=0.01)
    # The pump follows the pattern: pulsed goes off between boluses, ramped rises.
    rates = [r["fw"]["pump_ul_min"] for r in map(json.loads, trace.open())
             if r.get("state") == "steaming" and "fw" in r]
    dosing = rates[next(i for i, r in enumerate(rates) if r > 0):]
    # The command is the pattern's rate trimmed for the pump's calibration (the sim's is
    # within +-5 %; fw.session.dose_step trims by at most 1/8 and one nl a step).
    assert max(dosing) == pytest.approx(RATE_UL_MIN, abs=RATE_UL_MIN / 8 + 0.6)
    if pattern["pattern"] == "pulsed":
        assert dosing.count(0) > len(dosing) // 2       # off between boluses
    else:
        assert dosing[0] < RATE_UL_MIN / 10 and dosing[100] < RATE_UL_MIN / 2
