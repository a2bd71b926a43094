"""scenarios/course.json (issue 17) on the simulated steamer: a format-2 profile whose
warnings must be acknowledged refuses the start until the acknowledgement, then runs a
session, and refuses the next before the course's minimum spacing."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STEAMER = Path(sys.executable).with_name("steamer")


def test_course_scenario(tmp_path: Path) -> None:
    trace = tmp_path / "course.jsonl"
    proc = subprocess.run([str(STEAMER), "sim", "run", str(ROOT / "scenarios" / "course.json"),
                           "--trace", str(trace), "--quiet"], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    decisions = [(r["event"], r.get("reason")) for r in map(json.loads, trace.open())
                 if r.get("event") in ("session_refused", "warnings_acknowledged",
                                       "session_started", "session_ended")]
    assert decisions == [("session_refused", "not_acknowledged"),
                         ("warnings_acknowledged", None), ("session_started", None),
                         ("session_ended", "completed"), ("session_refused", "course_spacing")]
    (session,) = json.loads(proc.stdout)["sessions"]
    # 120 s at 300 µl/min, as the encoder counted it (100 nl a pulse): the plan trims the
    # pump's calibration error (+-5 %) out to within a pulse or two.
    assert 599.8 <= session["session_ul"] <= 600.1
