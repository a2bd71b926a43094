"""`steamer mfg sign-profile` and `mfg verify` on format-2 profiles (issue 17): each bad
course, pattern or warning value explained in one line, and verify printing the course,
the delivery pattern and the warnings."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from podproto import profile
from steamer_mfg import images as mfg

STEAMER = Path(sys.executable).with_name("steamer")
DAY_S = 86400
COURSE = {"podlet_type": 3, "version": 2, "name": "vitamin-c", "outlet_target_c": 45.0,
          "session_s": 600, "dose_rate_ul_min": 300, "max_session_ul": 2500,
          "max_day_ul": 5000, "min_interval_s": 14400, "course_sessions": 4,
          "min_spacing_s": 6 * DAY_S, "recommended_spacing_s": 7 * DAY_S,
          "maintenance_spacing_s": 180 * DAY_S, "pattern": "pulsed", "bolus_ul": 20,
          "period_s": 30, "acknowledge": True,
          "warnings": [{"code": "pregnancy", "text": "Not when pregnant or nursing."}]}


@pytest.mark.parametrize("change, message", [
    ({"course_sessions": 0}, "course_sessions: want an integer 1..24 (sessions in the initial series), got 0"),
    ({"recommended_spacing_s": DAY_S}, "recommended_spacing_s: want an integer from min_spacing_s (518400) to 31536000, got 86400"),
    ({"maintenance_spacing_s": 60}, "maintenance_spacing_s: want 0 (no maintenance) or an integer from min_spacing_s"),
    ({"pattern": "nappage"}, "pattern: want one of continuous, pulsed, ramped, got \"nappage\""),
    ({"bolus_ul": 3000}, "bolus_ul: want an integer 1..2000 (µl, at most max_session_ul), got 3000"),
    ({"period_s": 2}, "period_s: want an integer 4..600 (s: long enough to pump the bolus"),
    ({"ramp_s": 10}, "ramp_s: only a ramped pattern has one (this one is pulsed), got 10"),
    ({"pattern": "ramped", "bolus_ul": None, "period_s": None}, "ramp_s: missing"),
    ({"pattern": "ramped", "bolus_ul": None, "period_s": None, "ramp_s": 900},
     "ramp_s: want an integer 1..600 (s, at most session_s), got 900"),
    ({"warnings": [{"code": "gluten", "text": "x"}]}, "warnings: want at most 4 warnings, each {\"code\": one of pregnancy, kidney"),
    ({"warnings": [], "acknowledge": True}, "acknowledge: want true or false, and true only with a warning"),
    ({"format": 3}, "format: want 1 or 2"),
    ({"acknowlege": True}, "acknowlege: unknown field (did you mean 'acknowledge'?)"),
])
def test_each_bad_v2_value_is_explained(change: dict, message: str) -> None:
    p = {k: v for k, v in dict(COURSE, **change).items() if v is not None}
    got = mfg.profile_problem(p)
    assert got is not None and got.startswith(message), got


def test_good_v2_fits_and_a_v1_stays_v1() -> None:
    assert mfg.profile_problem(COURSE) is None
    v1 = {k: v for k, v in COURSE.items() if k not in profile.V2_FIELDS}
    assert mfg.profile_problem(v1) is None and profile.encode(v1)[0] == 1


def test_sign_and_verify_print_the_course(tmp_path: Path) -> None:
    def steamer(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(STEAMER), "mfg", *args], capture_output=True, text=True,
                              cwd=tmp_path, timeout=60)
    assert steamer("keygen", "--out", "k.pem").returncode == 0
    (tmp_path / "c.json").write_text(json.dumps(COURSE))
    proc = steamer("sign-profile", "c.json", "--key", "k.pem", "-o", "c.bin")
    assert proc.returncode == 0, proc.stderr
    assert "course: 4 sessions at least 6 days apart" in proc.stdout
    proc = steamer("verify", "c.bin", "--key", "k.pem")
    assert proc.returncode == 0, proc.stdout
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("OK c.bin: signed profile 'vitamin-c' (podlet_type 3, version 2)")
    assert lines[1:] == [
        "  course: 4 sessions at least 6 days apart (7 days recommended), then one every 180 days",
        "  delivery: pulsed: a bolus of 20 µl (at 300 µl/min) every 30 s",
        "  warnings (1, to be acknowledged before the first session):",
        "    - pregnancy and nursing: Not when pregnant or nursing."]
    out = json.loads(steamer("verify", "c.bin", "--key", "k.pem", "--json").stdout)
    assert out["ok"] and out["fields"]["pattern"] == "pulsed"
    assert out["fields"]["warnings"] == COURSE["warnings"]
