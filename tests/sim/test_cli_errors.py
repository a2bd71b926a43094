"""`steamer sim run` on invalid scenarios: exit 2, one line on stderr naming the field,
nothing on stdout, and the firmware never started."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

STEAMER = Path(sys.executable).with_name("steamer")

PODLET = {"serial": "0000c0ffee01", "podlet_type": 3, "capacity_ul": 3000,
          "expiry": "2027-06-30", "lot": "L2611"}

# (file text, field the message must name, more text it must contain)
CASES = {
    "bad_json": ('{\n  "duration_s": 900,\n  "events": [\n    {"t_s": 1 "do": "start_session"}\n  ]\n}\n',
                 "scenario", "not valid JSON (line 4 column"),
    "unknown_event": (json.dumps({"duration_s": 900, "events": [
        {"t_s": 1, "do": "start_session"}, {"t_s": 2, "do": "explode"}]}),
        "events[1].do", "unknown event 'explode'"),
    "unknown_fault": (json.dumps({"duration_s": 900, "events": [
        {"t_s": 1, "do": "fault", "fault": "boiler_on_fire"}]}),
        "events[0].fault", "unknown fault 'boiler_on_fire'"),
    "out_of_range": (json.dumps({"duration_s": 900, "plant": {"mains_pct": 150}}),
                     "plant.mains_pct", "150 is out of range 80..115"),
    "podlet_out_of_range": (json.dumps({"duration_s": 900, "events": [
        {"t_s": 1, "do": "insert_podlet", "podlet": dict(PODLET, podlet_type=300)}]}),
        "events[0].podlet.podlet_type", "out of range"),
    "missing_duration": (json.dumps({"contract": 1, "seed": 3}), "duration_s", "required"),
    "wrong_contract": (json.dumps({"contract": 2, "duration_s": 900}), "contract", "not supported"),
    "unknown_event_key": (json.dumps({"duration_s": 900, "events": [
        {"t_s": 1, "do": "start_session", "podlet": PODLET}]}), "events[0].podlet", "unknown key"),
}


def run_cli(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, Path]:
    marker = tmp_path / "firmware-started"
    fake = tmp_path / "fake_simrun.py"
    fake.write_text(f"open({str(marker)!r}, 'w').close()\nprint('{{}}')\n")
    env = dict(os.environ, STEAMER_SIMRUN=str(fake))
    proc = subprocess.run([str(STEAMER), "sim", "run", *args], capture_output=True, text=True,
                          env=env, timeout=60, cwd=tmp_path)
    return proc, marker


@pytest.mark.parametrize("case", list(CASES))
def test_invalid_scenario_exits_2_naming_the_field(case: str, tmp_path: Path) -> None:
    text, field, fragment = CASES[case]
    path = tmp_path / f"{case}.json"
    path.write_text(text)
    proc, marker = run_cli(tmp_path, str(path))
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"steamer sim run: {field}: "), lines[0]
    assert fragment in lines[0]
    assert not marker.exists()


def test_missing_file(tmp_path: Path) -> None:
    proc, marker = run_cli(tmp_path, "no-such.json")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("steamer sim run: scenario: cannot read 'no-such.json'")
    assert not marker.exists()


def test_bad_seed_option(tmp_path: Path) -> None:
    path = tmp_path / "ok.json"
    path.write_text(json.dumps({"duration_s": 10}))
    proc, marker = run_cli(tmp_path, str(path), "--seed", "-1")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("steamer sim run: seed: -1 is out of range")
    assert not marker.exists()
