"""The audit log end to end: a scenario run by the simulator as `steamer sim run` runs
it, then the device's audit log read off its flash, its hash chain checked with the
firmware's own fw.audit on the host, and every decision the trace shows found in it,
in order: profile, podlet and session decisions, refusals, a clock clamp, a boot."""
from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

from steamer_dev.paths import BOARDS, DEVICE, SIM_HEAP, micropython_env, micropython_exe
from steamer_sim.scenario import load_scenario
from steamer_sim.signing import sign_for_sim

RUNNER = Path(__file__).with_name("audit_run_mp.py")
CLOCK_S = 1795000000
PROFILE = {"podlet_type": 3, "version": 1, "name": "audited", "outlet_target_c": 45.0,
           "session_s": 30, "dose_rate_ul_min": 1200, "max_session_ul": 2500,
           "max_day_ul": 5000, "min_interval_s": 300}
PODLET = {"serial": "0000c0ffee01", "podlet_type": 3, "capacity_ul": 3000,
          "expiry": "2027-06-30", "lot": "L2611"}


def _fw_audit():
    """fw/audit.py as the device runs it (it imports on CPython too)."""
    spec = importlib.util.spec_from_file_location("fw_audit", DEVICE / "fw" / "audit.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_keeping_flash(tmp_path: Path, scenario: dict) -> tuple[dict, list[dict], list[str]]:
    """(summary, the trace's decision records, the audit log's lines) of a run."""
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(sign_for_sim(load_scenario(scenario))))
    trace = tmp_path / "trace.jsonl"
    proc = subprocess.run(
        [micropython_exe(), "-X", f"heapsize={SIM_HEAP}", str(RUNNER),
         str(BOARDS / "sim" / "simrun.py"), str(path), str(trace), str(tmp_path / "flash")],
        capture_output=True, text=True, env=micropython_env("sim"), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    out = proc.stdout.splitlines()
    summary = json.loads(next(line for line in out if line.startswith("{")))
    lines = [line[len("@audit "):] + "\n" for line in out if line.startswith("@audit ")]
    decisions = [r for r in map(json.loads, trace.read_text().splitlines()) if "event" in r]
    return summary, decisions, lines


def test_every_decision_is_in_the_audit_log_and_its_chain_holds(tmp_path):
    scenario = {"contract": 1, "duration_s": 200, "seed": 4, "plant": {"water_ml": 60},
                "profiles": [PROFILE], "events": [
                    {"t_s": 0.5, "do": "set_clock", "epoch_s": CLOCK_S},
                    {"t_s": 1, "do": "install_profile", "profile": PROFILE},    # replay
                    {"t_s": 1.5, "do": "set_clock", "epoch_s": CLOCK_S - 3600},
                    {"t_s": 2, "do": "insert_podlet", "podlet": dict(PODLET, sign="tamper")},
                    {"t_s": 3, "do": "remove_podlet"},
                    {"t_s": 4, "do": "insert_podlet", "podlet": PODLET},
                    {"t_s": 5, "do": "start_session"},
                    {"t_s": 10, "do": "start_session"},                        # busy
                    {"t_s": 192, "do": "power_cut", "off_s": 1.0},
                    {"t_s": 196, "do": "start_session"},                       # too soon
                ]}
    summary, decisions, lines = run_keeping_flash(tmp_path, scenario)
    audit = _fw_audit()
    # The whole chain, from the first line (number 1) to the last, strictly.
    assert lines and lines[0].startswith("1 ")
    assert audit.verify(lines) == lines[-1].rstrip("\n").rpartition(" ")[2]
    records = []
    for n, line in enumerate(lines, 1):
        seq, body, _ = audit.parse(line)
        assert seq == n
        records.append(json.loads(body.partition(" ")[2]))
    # Every decision of the trace, in the same order, nothing else.
    def key(r: dict) -> tuple:
        return tuple(sorted((k, json.dumps(v)) for k, v in r.items() if k not in ("t", "t_ms")))
    assert [key(r) for r in records] == [key(d) for d in decisions]
    got = [(r["event"], r.get("reason")) for r in records]
    for want in [("boot", "power_on"), ("profile_installed", None),
                 ("profile_rejected", "stale_version"), ("clock_clamped", None),
                 ("podlet_rejected", "bad_signature"), ("podlet_accepted", None),
                 ("session_started", None), ("session_refused", "busy"),
                 ("session_ended", "completed"), ("session_refused", "min_interval")]:
        assert want in got, (want, got)
    assert got.count(("boot", "power_on")) == 2
    assert [s["reason"] for s in summary["sessions"]] == ["completed"]
    # A line changed on the flash would be found: the chain names it.
    bad = lines[:]
    bad[5] = bad[5].replace('"event"', '"evnt"')
    breaks: list[int] = []
    audit.verify(bad, audit.GENESIS, breaks)
    assert breaks == [6]
