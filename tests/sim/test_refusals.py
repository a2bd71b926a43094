"""Every refusal of the dosing issue, decided by the real firmware in the simulator: the
decision records of the trace and the summary's sessions say what it refused and why.

Each scenario is short in virtual time: 60 ml of water (preheat ~70 s), 30 s sessions at
1200 ul/min (20 ul/s, 600 ul a session), dosing from ~150 s after the start.
"""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from simtrace import run_traced

CLOCK_S = 1795000000            # 2026-11-18 11:06:40 UTC
CLOCK_DAY = "2026-11-18"
LATE_S = 1795046340             # 2026-11-18 23:59:00 UTC: CLOCK_DAY's last minute
PROFILE = {"podlet_type": 3, "version": 1, "name": "refusals", "outlet_target_c": 45.0,
           "session_s": 30, "dose_rate_ul_min": 1200, "max_session_ul": 2500,
           "max_day_ul": 5000, "min_interval_s": 0}
PODLET = {"serial": "0000c0ffee01", "podlet_type": 3, "capacity_ul": 3000,
          "expiry": "2027-06-30", "lot": "L2611"}
SESSION_UL = 600                # session_s * dose_rate_ul_min / 60
# The dose is what the encoder measured (100 nl a pulse, the rate trimmed to it).
PULSE_UL = 0.1


def doses(pairs):
    """(reason, ul) pairs with ul to the nearest pulse-and-a-bit: [(reason, ul), ...]."""
    return [(reason, round(ul)) for reason, ul in pairs]
DOSING_S = 95                   # a time inside the first session's dosing (~81..111 s)
# A podlet's signature check spans a few periods (fw.trust.Check, 16 slices a period on
# the sim board): its decision comes at most this long after the insertion.
CHECK_MS = 1000


@dataclass
class Run:
    summary: dict
    steps: list[dict]
    events: list[dict]

    def decisions(self, *names: str) -> list[dict]:
        return [e for e in self.events if e["event"] in names]

    def reasons(self, name: str) -> list[str]:
        return [e["reason"] for e in self.decisions(name)]

    def step_at(self, t_s: float) -> dict:
        """The first control step at or after t_s: the one that saw an event at t_s."""
        return next(r for r in self.steps if r["t_ms"] >= t_s * 1000)


def scenario(duration_s: float, events: list[dict], *, profiles: list[dict] | None = None,
             clock: bool = True) -> dict:
    clock_events = [{"t_s": 0.5, "do": "set_clock", "epoch_s": CLOCK_S}] if clock else []
    return {"contract": 1, "duration_s": duration_s, "seed": 4, "plant": {"water_ml": 60},
            "profiles": [PROFILE] if profiles is None else profiles,
            "events": clock_events + events}


def insert(t_s: float, **changes) -> dict:
    return {"t_s": t_s, "do": "insert_podlet", "podlet": dict(PODLET, **changes)}


def do(t_s: float, what: str, **fields) -> dict:
    return dict({"t_s": t_s, "do": what}, **fields)


def run(tmp_path: Path, scen: dict) -> Run:
    result = Run(*run_traced(tmp_path, scen))
    _check_doses(result, scen)
    return result


def _check_doses(r: Run, scen: dict) -> None:
    """Every session's dose is what the plant pumped (within 1 %), within the limit it
    started with and its profile's max_session_ul; the day's doses within max_day_ul."""
    profiles = scen["profiles"] + [e["profile"] for e in scen["events"]
                                   if e["do"] == "install_profile"]
    by_version = {p["version"]: p for p in profiles}
    started = r.decisions("session_started")
    sessions = r.summary["sessions"]
    assert len(sessions) == len(started)
    for s, st in zip(sessions, started):
        prof = by_version[st["version"]]
        assert st["limit_ul"] <= prof["max_session_ul"]
        if s["reason"] is None:
            continue                    # still running when the scenario ended
        assert s["session_ul"] <= st["limit_ul"] + PULSE_UL, s
        assert abs(s["plant_pumped_ul"] - s["session_ul"]) <= 0.01 * s["session_ul"], s
    # Every scenario here is shorter than a day.
    day_ul = sum(s["session_ul"] or 0 for s in sessions)
    assert all(day_ul <= by_version[st["version"]]["max_day_ul"] for st in started)


# ---- podlet_rejected ---------------------------------------------------------------------------

@pytest.mark.parametrize("changes, reason", [
    ({"rom_crc": "bad"}, "crc"),
    ({"sign": "wrong_key"}, "bad_signature"),
    ({"sign": "tamper"}, "bad_signature"),
    # A podlet's signature field is always there: unsigned is blank (0xFF) memory, which
    # simply fails to verify.
    ({"sign": "none"}, "bad_signature"),
    ({"expiry": "2026-11-17"}, "expired"),          # the day before the clock's
    ({"podlet_type": 9}, "no_profile"),
], ids=["crc", "wrong_key", "tamper", "unsigned", "expired", "no_profile"])
def test_podlet_rejected(tmp_path, changes, reason):
    r = run(tmp_path, scenario(4, [insert(1, **changes), do(2, "start_session")]))
    rejected = r.decisions("podlet_rejected", "podlet_accepted")[0]
    assert rejected["event"] == "podlet_rejected"
    assert 1000 <= rejected["t_ms"] <= 1000 + CHECK_MS
    assert rejected["reason"] == reason
    # A podlet that did not verify is named by no serial: nothing it says is trusted.
    verified = reason not in ("crc", "bad_signature")
    assert rejected["podlet"] == (PODLET["serial"] if verified else None)
    # Start tries the podlet once more, and refuses it the same way.
    assert r.reasons("podlet_rejected") == [reason, reason]
    assert r.reasons("session_refused") == ["no_podlet"]
    assert r.summary["sessions"] == []


def test_podlet_good_on_its_expiry_day_then_clock_unset_without_a_clock(tmp_path):
    # The expiry is the last good day; without any clock the expiry cannot be checked.
    r = run(tmp_path, scenario(4, [insert(1, expiry=CLOCK_DAY)]))
    assert [e["event"] for e in r.decisions("podlet_rejected", "podlet_accepted")] == [
        "podlet_accepted"]
    r = run(tmp_path, scenario(4, [insert(1), do(2, "start_session")], clock=False))
    assert r.reasons("podlet_rejected") == ["clock_unset", "clock_unset"]
    assert r.decisions("podlet_rejected")[0]["podlet"] == PODLET["serial"]
    assert r.reasons("session_refused") == ["no_podlet"]


def test_partly_used_podlet_gives_what_is_left_then_is_used_up(tmp_path):
    r = run(tmp_path, scenario(520, [
        insert(1, capacity_ul=1000), do(2, "start_session"),      # 600 ul: completed
        do(260, "remove_podlet"), insert(261, capacity_ul=1000),  # 400 ul left
        do(262, "start_session"),                                 # ends podlet_empty
        do(500, "remove_podlet"), insert(501, capacity_ul=1000),  # nothing left
        do(502, "start_session"),
    ]))
    accepted = r.decisions("podlet_accepted")
    assert [a["left_ul"] for a in accepted] == [1000, 400]
    # The record says when the podlet expires (the app shows it).
    assert [a["expiry"] for a in accepted] == [PODLET["expiry"]] * 2
    assert [s["limit_ul"] for s in r.decisions("session_started")] == [1000, 400]
    assert doses((s["reason"], s["session_ul"]) for s in r.summary["sessions"]) == [
        ("completed", SESSION_UL), ("podlet_empty", 400)]
    # Rejected when inserted, and again when start reads it once more.
    used_up = r.decisions("podlet_rejected")
    assert [(e["reason"], e["podlet"]) for e in used_up] == [("used_up", PODLET["serial"])] * 2
    assert 501000 <= used_up[0]["t_ms"] <= 501000 + CHECK_MS
    assert used_up[1]["t_ms"] == 502000
    assert r.reasons("session_refused") == ["no_podlet"]


# ---- session_refused ---------------------------------------------------------------------------

def test_min_interval_counts_from_the_first_start(tmp_path):
    prof = dict(PROFILE, min_interval_s=400)
    r = run(tmp_path, scenario(410, [
        insert(1), do(2, "start_session"),
        do(300, "start_session"),          # 298 s after the first start: too soon
        do(403, "start_session"),          # 401 s after it
    ], profiles=[prof]))
    assert r.reasons("session_refused") == ["min_interval"]
    assert r.decisions("session_refused")[0]["t_ms"] == 300000
    assert [s["t_ms"] for s in r.decisions("session_started")] == [2000, 403000]
    assert r.summary["sessions"][0]["reason"] == "completed"


def test_max_day_clamps_a_session_then_refuses_the_next(tmp_path):
    prof = dict(PROFILE, max_session_ul=500, max_day_ul=800)
    r = run(tmp_path, scenario(620, [
        insert(1), do(2, "start_session"),    # 500 ul: max_session
        do(300, "start_session"),             # 300 ul left today: max_day mid-way
        do(600, "start_session"),             # nothing left today
    ], profiles=[prof]))
    # The first session is charged 501 ul: its 500 and the pulse its encoder may not
    # have counted, rounded up (fw.session _end), so 299 are left of the day.
    assert [s["limit_ul"] for s in r.decisions("session_started")] == [500, 299]
    assert doses((s["reason"], s["session_ul"]) for s in r.summary["sessions"]) == [
        ("max_session", 500), ("max_day", 299)]
    assert sum(s["session_ul"] for s in r.summary["sessions"]) <= prof["max_day_ul"] + 2 * PULSE_UL
    assert r.reasons("session_refused") == ["max_day"]
    assert r.decisions("session_refused")[0]["t_ms"] == 600000


def test_no_podlet(tmp_path):
    r = run(tmp_path, scenario(3, [do(2, "start_session")]))
    assert r.reasons("session_refused") == ["no_podlet"]
    assert r.summary["sessions"] == []


def test_latched_fault_refuses_until_acknowledged(tmp_path):
    r = run(tmp_path, scenario(10, [
        insert(1), do(2, "fault", fault="tip_over"), do(3, "clear_fault", fault="tip_over"),
        do(5, "start_session"),            # the fault is still latched
        do(6, "press_button"),             # acknowledged (the boiler is cold)
        do(8, "start_session"),
    ]))
    assert [e["code"] for e in r.decisions("fault_latched")] == ["tip_over"]
    assert r.reasons("session_refused") == ["fault"]
    assert [e["code"] for e in r.decisions("fault_cleared")] == ["tip_over"]
    assert [s["t_ms"] for s in r.decisions("session_started")] == [8000]


def test_busy_while_a_session_runs(tmp_path):
    r = run(tmp_path, scenario(200, [
        insert(1), do(2, "start_session"), do(10, "start_session"), do(DOSING_S, "start_session")]))
    assert [r.step_at(t)["state"] for t in (10, DOSING_S)] == ["preheat", "steaming"]
    assert r.reasons("session_refused") == ["busy", "busy"]
    assert doses((s["reason"], s["session_ul"]) for s in r.summary["sessions"]) == [
        ("completed", SESSION_UL)]


# ---- session_ended -----------------------------------------------------------------------------

def test_ended_completed_and_max_session(tmp_path):
    r = run(tmp_path, scenario(200, [insert(1), do(2, "start_session")]))
    [ended] = r.decisions("session_ended")
    assert (ended["reason"], round(ended["session_ul"]), ended["dose_s"]) == ("completed", SESSION_UL, 30)
    assert abs(ended["session_ul"] - SESSION_UL) <= 2 * PULSE_UL
    r = run(tmp_path, scenario(200, [insert(1), do(2, "start_session")],
                               profiles=[dict(PROFILE, max_session_ul=250)]))
    assert doses((s["reason"], s["session_ul"]) for s in r.summary["sessions"]) == [
        ("max_session", 250)]


def test_ended_stopped(tmp_path):
    r = run(tmp_path, scenario(200, [insert(1), do(2, "start_session"),
                                     do(DOSING_S, "stop_session")]))
    assert r.step_at(DOSING_S - 0.1)["fw"]["pump_ul_min"] > 0
    [s] = r.summary["sessions"]
    assert s["reason"] == "stopped" and 0 < s["session_ul"] < SESSION_UL
    # A command is served after the step it arrived in: the pump stops the next step.
    assert s["end_ms"] == DOSING_S * 1000 + 100
    assert r.step_at(DOSING_S + 0.1)["fw"]["pump_ul_min"] == 0


def test_ended_podlet_removed_with_the_pump_off_in_that_step(tmp_path):
    r = run(tmp_path, scenario(200, [insert(1), do(2, "start_session"),
                                     do(DOSING_S, "remove_podlet")]))
    before = r.step_at(DOSING_S - 0.1)
    assert before["state"] == "steaming" and before["fw"]["pump_ul_min"] > 0
    removed = r.step_at(DOSING_S)
    assert removed["t_ms"] == DOSING_S * 1000
    assert removed["fw"]["pump_ul_min"] == 0
    after = [s for s in r.steps if s["t_ms"] >= DOSING_S * 1000]
    assert {s["plant"]["pumped_ul"] for s in after} == {removed["plant"]["pumped_ul"]}
    [s] = r.summary["sessions"]
    assert s["reason"] == "podlet_removed" and 0 < s["session_ul"] < SESSION_UL


# ---- profile_rejected --------------------------------------------------------------------------

@pytest.mark.parametrize("changes, reason", [
    ({"version": 2, "sign": "none"}, "unsigned"),
    ({"version": 2, "sign": "wrong_key"}, "bad_signature"),
    ({"version": 2, "sign": "tamper"}, "bad_signature"),
    ({"version": 2, "outlet_target_c": 70.0}, "outlet_target_c"),
    ({}, "stale_version"),                              # a replay of the installed profile
    ({"outlet_target_c": 40.0}, "stale_version"),       # same version, other content
    ({"version": 0, "outlet_target_c": 40.0}, "stale_version"),
    ({"version": 2, "outlet_target_c": 40.0}, None),
], ids=["unsigned", "wrong_key", "tamper", "envelope", "replay", "same_version",
        "lower_version", "newer"])
def test_profile_rejected_and_the_installed_one_kept(tmp_path, changes, reason):
    r = run(tmp_path, scenario(4, [do(1, "install_profile", profile=dict(PROFILE, **changes)),
                                   insert(2), do(3, "start_session")]))
    got = [(e["event"], e.get("reason")) for e in r.decisions("profile_installed",
                                                               "profile_rejected")]
    second = ("profile_installed", None) if reason is None else ("profile_rejected", reason)
    assert got == [("profile_installed", None), second]
    [started] = r.decisions("session_started")
    if reason is None:
        assert (started["version"], started["target_c"]) == (2, 40.0)
    else:
        assert (started["version"], started["target_c"]) == (1, 45.0)


# ---- the clocks --------------------------------------------------------------------------------

def test_clock_set_back_is_clamped_even_after_a_power_cut(tmp_path):
    r = run(tmp_path, scenario(20, [
        do(2, "set_clock", epoch_s=CLOCK_S - 3600),
        do(3, "set_clock", epoch_s=CLOCK_S + 60),         # forwards: taken as is
        do(5, "power_cut", off_s=2.0),
        do(10, "set_clock", epoch_s=CLOCK_S),
    ]))
    clamped = r.decisions("clock_clamped")
    assert [(c["t_ms"], c["asked_s"]) for c in clamped] == [(2000, CLOCK_S - 3600),
                                                            (10000, CLOCK_S)]
    # Clamped to the device clock's own reading (set to CLOCK_S at 1 s, read at 2 s), and
    # after the power cut to the newest time recorded.
    assert [c["floor_s"] for c in clamped] == [CLOCK_S + 1, CLOCK_S + 60]


def test_min_interval_holds_across_a_power_cut_longer_than_it(tmp_path):
    # The limit clock stands still while the power is off: the device cannot know how
    # long it was off, so it assumes no time passed. Once it has been powered for
    # min_interval_s since boot, the interval has passed whatever happened before.
    prof = dict(PROFILE, min_interval_s=300)
    r = run(tmp_path, scenario(960, [
        insert(1), do(2, "start_session"),            # ends ~185 s, idle by ~240 s
        do(250, "power_cut", off_s=400.0),            # back at 650 s: 648 s after the start
        do(655, "start_session"),
        do(955, "start_session"),                     # powered 305 s since the boot
    ], profiles=[prof]))
    assert r.summary["resets"] == [{"cause": "power_on", "t_ms": 250000}]
    assert r.summary["sessions"][0]["reason"] == "completed"
    assert r.decisions("podlet_accepted")[-1]["t_ms"] > 650000    # re-read after the boot
    [refused] = r.decisions("session_refused")
    assert (refused["t_ms"], refused["reason"]) == (655000, "min_interval")
    assert [s["t_ms"] for s in r.decisions("session_started")] == [2000, 955000]


def test_the_device_clock_runs_into_the_next_day(tmp_path):
    # Set at 23:59 and left alone, the device knows the expiry day is over 2 min later.
    r = run(tmp_path, scenario(125, [do(1, "set_clock", epoch_s=LATE_S),
                                     insert(121, expiry=CLOCK_DAY)], clock=False))
    assert r.reasons("podlet_rejected") == ["expired"]


def test_setting_the_clock_back_to_the_last_set_time_does_not_unexpire(tmp_path):
    r = run(tmp_path, scenario(125, [do(1, "set_clock", epoch_s=LATE_S),
                                     do(120, "set_clock", epoch_s=LATE_S),   # 119 s back
                                     insert(121, expiry=CLOCK_DAY)], clock=False))
    assert r.reasons("podlet_rejected") == ["expired"]


def test_an_expiry_decided_on_the_devices_own_clock_survives_a_power_cut(tmp_path):
    # Set at 23:59, the device's clock reads the next day at 00:01 and refuses the
    # podlet; that decision's time is recorded, so after a power cut the host cannot set
    # the clock back to 23:59 and have the podlet taken.
    r = run(tmp_path, scenario(150, [
        do(1, "set_clock", epoch_s=LATE_S),
        insert(121, expiry=CLOCK_DAY),                   # 00:01: expired
        do(125, "power_cut", off_s=2.0),
        do(130, "set_clock", epoch_s=LATE_S),
        do(140, "start_session"),
    ], clock=False))
    rejected = r.decisions("podlet_rejected", "podlet_accepted")
    assert [(e["event"], e["reason"]) for e in rejected] == [("podlet_rejected", "expired")] * 3
    [clamped] = r.decisions("clock_clamped")
    assert clamped["asked_s"] == LATE_S
    assert clamped["floor_s"] >= LATE_S + 60 + 1         # at least 00:00:01 next day
    assert r.reasons("session_refused") == ["no_podlet"]
    assert r.summary["sessions"] == []


def test_a_podlet_left_in_past_its_expiry_starts_no_session(tmp_path):
    # Accepted at 23:59:01, still in at 00:01:05: the start checks the expiry again.
    r = run(tmp_path, scenario(200, [
        do(1, "set_clock", epoch_s=LATE_S),
        insert(2, expiry=CLOCK_DAY),
        do(125, "start_session"),
        do(130, "start_session"),
    ], clock=False))
    assert [(e["event"], e["t_ms"] // 1000) for e in r.decisions(
        "podlet_rejected", "podlet_accepted")] == [
        ("podlet_accepted", 2), ("podlet_rejected", 125), ("podlet_rejected", 130)]
    assert r.reasons("podlet_rejected") == ["expired", "expired"]
    # The first start finds the podlet expired; the second re-reads it, as for any
    # podlet refused before.
    assert r.reasons("session_refused") == ["expired", "no_podlet"]
    assert r.summary["sessions"] == []


# ---- through the command, and the refusals not shown above ----------------------------------

STEAMER = Path(sys.executable).with_name("steamer")


def test_refusals_through_steamer_sim_run(tmp_path):
    """`steamer sim run` as people run it: profiles outside the envelope in fields other
    than the target, a podlet image the chip cannot hold (podproto cannot encode it: the
    reader sees blank memory, a wrong family), a podlet used up by a session and started
    again, and a start while the steamer is tipped over."""
    scen = scenario(266, [
        insert(1, expiry="2180-01-01"),              # past podproto's dates: no image
        do(2, "remove_podlet"),
        insert(3, capacity_ul=500),
        do(4, "start_session"),                      # ends podlet_empty at 500 ul
        do(262, "start_session"),                    # cooled down; nothing left in it
        do(264, "fault", fault="tip_over"),
        do(264, "start_session"),                    # tilted, before the fault latches
    ], profiles=[PROFILE, dict(PROFILE, podlet_type=4, max_session_ul=20001),
                 dict(PROFILE, podlet_type=5, dose_rate_ul_min=2001),
                 dict(PROFILE, podlet_type=6, max_day_ul=400, max_session_ul=500)])
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(scen))
    proc = subprocess.run([str(STEAMER), "sim", "run", str(path), "--trace", "trace.jsonl"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [line] = proc.stdout.splitlines()
    summary = json.loads(line)
    events = [rec for rec in map(json.loads, (tmp_path / "trace.jsonl").read_text().splitlines())
              if "event" in rec]
    r = Run(summary, [], events)
    assert r.reasons("profile_rejected") == ["max_session_ul", "dose_rate_ul_min", "max_day_ul"]
    assert [(e["reason"], e["podlet"]) for e in r.decisions("podlet_rejected")] == [
        ("malformed", None)]
    assert [a["left_ul"] for a in r.decisions("podlet_accepted")] == [500]
    assert [(s["reason"], s["session_ul"]) for s in summary["sessions"]] == [
        ("podlet_empty", 500)]
    assert abs(summary["sessions"][0]["plant_pumped_ul"] - 500) <= 5
    refused = r.decisions("session_refused")
    assert [(e["t_ms"], e["reason"]) for e in refused] == [
        (262000, "podlet_empty"), (264000, "tilted")]
    assert [e["code"] for e in r.decisions("fault_latched")] == ["tip_over"]
    assert summary["loop"]["alloc_errors"] == 0 and summary["loop"]["crashes"] == 0


def test_water_low(tmp_path):
    r = run(tmp_path, scenario(4, [insert(1), do(3, "start_session")]) | {"plant": {"water_ml": 10}})
    assert r.reasons("session_refused") == ["water_low"]
    assert r.summary["sessions"] == []
