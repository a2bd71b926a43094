"""Courses on the host (issue 17): where the user is in a course, when the next session
is allowed and recommended, what was missed, the .ics plan, the history grouped by course
(steamer.course), and `steamer course` / `steamer sessions --by-course` over a real
SQLite history."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from podproto import signing
from steamer import course
from steamer.cli.consumer import register as register_app
from steamer.cli.history import register_sessions
from steamer.store import Store

DAY_S = 86400
T0 = 1_795_000_000.0
KEY = bytes(range(32))
COURSE = {"podlet_type": 3, "version": 2, "name": "vitamin-c", "outlet_target_c": 45.0,
          "session_s": 600, "dose_rate_ul_min": 300, "max_session_ul": 2500,
          "max_day_ul": 5000, "min_interval_s": 14400, "course_sessions": 4,
          "min_spacing_s": 6 * DAY_S, "recommended_spacing_s": 7 * DAY_S,
          "maintenance_spacing_s": 180 * DAY_S, "pattern": "pulsed", "bolus_ul": 20,
          "period_s": 30, "acknowledge": True,
          "warnings": [{"code": "pregnancy", "text": "Not when pregnant or nursing."},
                       {"code": "sun_sensitivity", "text": "Avoid the sun for 2 days."}]}


def test_position_in_the_initial_series():
    pos = course.position(COURSE, [T0], T0 + 2 * DAY_S)
    assert pos.label == "session 2 of 4" and pos.done == 1 and not pos.maintenance
    assert pos.next_allowed_s == T0 + 6 * DAY_S
    assert pos.next_recommended_s == T0 + 7 * DAY_S
    assert pos.missed() == []
    # Past the spacing the steamer allows it at once.
    assert course.position(COURSE, [T0], T0 + 6 * DAY_S + 1).next_allowed_s is None


def test_missed_and_late_sessions():
    starts = [T0, T0 + 7 * DAY_S, T0 + 20 * DAY_S]       # the third came 6 days late
    pos = course.position(COURSE, starts, T0 + 40 * DAY_S)
    assert pos.label == "session 4 of 4"
    assert pos.late == [(3, 6 * DAY_S)]
    missed = pos.missed()
    assert missed[0] == "the recommended time for session 4 of 4 passed 13 days ago"
    assert missed[1] == "session 3 came 6 days after its recommended time"


def test_maintenance_after_the_series():
    starts = [T0 + i * 7 * DAY_S for i in range(4)]
    pos = course.position(COURSE, starts, starts[-1] + DAY_S)
    assert pos.maintenance and pos.label.startswith("maintenance session 1")
    assert pos.next_recommended_s == starts[-1] + 180 * DAY_S
    no_upkeep = dict(COURSE, maintenance_spacing_s=0)
    assert course.position(no_upkeep, starts, starts[-1] + DAY_S).next_recommended_s is None


def test_ics_plan():
    pos = course.position(COURSE, [T0], T0 + DAY_S)
    text = course.ics(COURSE, pos, T0 + DAY_S)
    lines = text.split("\r\n")
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-2] == "END:VCALENDAR" and lines[-1] == ""
    assert all(len(line.encode()) <= 75 for line in lines)
    unfolded = text.replace("\r\n ", "")
    assert unfolded.count("BEGIN:VEVENT") == 3 + 2      # sessions 2-4, 2 maintenance
    dates = [line.split(":")[1] for line in unfolded.split("\r\n")
             if line.startswith("DTSTART")]
    # Session 2 a week after the first, then a week apart; maintenance 180 days on.
    assert dates == ["20261125", "20261202", "20261209", "20270607", "20271204"]
    assert "SUMMARY:vitamin-c: session 2 of 4" in unfolded
    assert "pulsed: a bolus of 20 µl" in unfolded


def test_words_for_warnings_and_patterns():
    assert course.warning_lines(COURSE) == [
        "pregnancy and nursing: Not when pregnant or nursing.",
        "sensitivity to the sun: Avoid the sun for 2 days."]
    assert course.pattern_text(dict(COURSE, pattern="ramped", ramp_s=60)) == (
        "ramped: the rate rises to 300 µl/min over the first 60 s")
    assert course.pattern_text({"dose_rate_ul_min": 300}) == "continuous at 300 µl/min"


def _history(path: Path) -> None:
    """Two sessions of the course (type 3) and one of another profile (type 5)."""
    recs = []
    seq = 1
    for t, ptype, name in ((T0, 3, "vitamin-c"), (T0 + DAY_S, 5, "calm"),
                           (T0 + 7 * DAY_S, 3, "vitamin-c")):
        recs.append({"seq": seq, "kind": "session_started", "payload": {
            "t": t, "t_ms": 1000, "podlet": "0000c0ffee01", "podlet_type": ptype,
            "profile": name, "version": 2, "target_c": 45.0, "limit_ul": 2500}})
        recs.append({"seq": seq + 1, "kind": "session_ended", "payload": {
            "t": t + 600, "t_ms": 601000, "reason": "completed", "session_ul": 100.0,
            "dose_s": 600}})
        seq += 2
    with Store.open(path) as store:
        store.ingest("sim", recs)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    p = argparse.ArgumentParser(prog="steamer")
    sub = p.add_subparsers(dest="group", required=True)
    register_app(sub)
    register_sessions(sub)
    args = p.parse_args(argv)
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    db = tmp_path / "s.db"
    _history(db)
    prof = tmp_path / "vitamin-c.bin"
    prof.write_bytes(signing.sign_profile(KEY, COURSE))
    return str(db), str(prof)


def test_course_command(capsys: pytest.CaptureFixture[str], files: tuple[str, str],
                        tmp_path: Path) -> None:
    db, prof = files
    ics = tmp_path / "plan.ics"
    code, out, err = _run(capsys, "course", prof, "--db", db, "--ics", str(ics),
                          "--now", "2026-11-26T12:00")
    assert code == 0 and err == ""
    assert "next         session 3 of 4" in out
    assert "pregnancy and nursing: Not when pregnant or nursing." in out
    assert "to be acknowledged before the first session" in out
    assert ics.read_text().count("BEGIN:VEVENT") == 4
    code, out, _ = _run(capsys, "course", prof, "--db", db, "--json", "--now",
                        "2026-11-26T12:00")
    got = json.loads(out)
    assert got["position"] == "session 3 of 4" and got["done"] == 2
    assert got["next_allowed_s"] == T0 + 13 * DAY_S
    assert got["next_recommended_s"] == T0 + 14 * DAY_S


def test_acknowledge_needs_an_explicit_yes(capsys: pytest.CaptureFixture[str],
                                           files: tuple[str, str]) -> None:
    db, prof = files
    # No terminal and no --yes: nothing is sent, and the user is told how.
    code, _, err = _run(capsys, "course", prof, "--db", db, "--acknowledge", "nobody")
    assert code == 2 and "--yes" in err


def test_format_1_profile_has_no_course(capsys: pytest.CaptureFixture[str],
                                        files: tuple[str, str], tmp_path: Path) -> None:
    db, _ = files
    v1 = {k: v for k, v in COURSE.items() if k in (
        "podlet_type", "version", "name", "outlet_target_c", "session_s", "dose_rate_ul_min",
        "max_session_ul", "max_day_ul", "min_interval_s")}
    path = tmp_path / "v1.bin"
    path.write_bytes(signing.sign_profile(KEY, v1))
    code, _, err = _run(capsys, "course", str(path), "--db", db)
    assert code == 2 and "format-1 profile" in err


def test_history_grouped_by_course(capsys: pytest.CaptureFixture[str],
                                   files: tuple[str, str]) -> None:
    db, _ = files
    code, out, _ = _run(capsys, "sessions", "--db", db, "--by-course")
    assert code == 0
    blocks = out.strip().split("\n\n")
    assert blocks[0].splitlines()[0] == "course vitamin-c (podlet type 3): 2 sessions, 200 µl"
    assert blocks[1].splitlines()[0] == "course calm (podlet type 5): 1 session, 100 µl"
    assert [line.split()[0] for line in blocks[0].splitlines()[2:]] == ["1", "2"]
