"""Courses kept on the host (issue 17): the signed profiles met and the warnings
acknowledged, in the history's SQLite database (steamer.store, schema 4); what the app
shows of a held steamer's course (steamer.course_live.course_of, the pure part of the
app's /api/course) from them; and `steamer course` reading the acknowledgement."""
from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from podproto import signing
from steamer import course_live
from steamer.cli.consumer import register as register_app
from steamer.devices import DeviceError
from steamer.store import Store

DAY_S = 86400
T0 = 1_795_000_000.0
KEY = bytes(range(32))
COURSE = {"podlet_type": 3, "version": 2, "name": "vitamin-c", "outlet_target_c": 45.0,
          "session_s": 600, "dose_rate_ul_min": 300, "max_session_ul": 2500,
          "max_day_ul": 5000, "min_interval_s": 0, "course_sessions": 4,
          "min_spacing_s": 6 * DAY_S, "recommended_spacing_s": 7 * DAY_S,
          "maintenance_spacing_s": 180 * DAY_S, "acknowledge": True,
          "warnings": [{"code": "kidney", "text": "Not with impaired kidneys."}]}
V1 = {k: COURSE[k] for k in ("podlet_type", "version", "name", "outlet_target_c",
                             "session_s", "dose_rate_ul_min", "max_session_ul",
                             "max_day_ul", "min_interval_s")}
ADDR = "bathroom-steamer"


def _session(store: Store, seq: int, t: float, ptype: int = 3) -> None:
    store.ingest("sim", [
        {"seq": seq, "kind": "session_started", "payload": {
            "t": t, "t_ms": 1000, "podlet": "0000c0ffee01", "podlet_type": ptype,
            "profile": "vitamin-c", "version": 2, "target_c": 45.0}},
        {"seq": seq + 1, "kind": "session_ended", "payload": {
            "t": t + 600, "t_ms": 601000, "reason": "completed", "session_ul": 100.0}}])


def _listed(blob: bytes, p: dict) -> list[dict]:
    """A steamer's profile list (Hub.profiles) holding this signed profile."""
    return [{"podlet_type": p["podlet_type"], "version": p["version"], "name": p["name"],
             "sha256": hashlib.sha256(blob).hexdigest()}]


@pytest.fixture
def store(tmp_path: Path):
    with Store.open(tmp_path / "s.db") as s:
        yield s


def test_profiles_and_acknowledgements_kept(store: Store, tmp_path: Path):
    blob = signing.sign_profile(KEY, COURSE)
    k = store.add_profile(blob, 3, 2, "vitamin-c")
    assert k.sha256 == hashlib.sha256(blob).hexdigest() and k.data == blob
    assert store.add_profile(blob, 3, 2, "vitamin-c") == k        # kept once
    assert store.profile(k.sha256.upper()) == k and store.profiles() == [k]
    assert store.acknowledgement(3, 2) is None
    store.add_acknowledgement(3, 2, "vitamin-c", ADDR, epoch_s=T0)
    store.add_acknowledgement(3, 2, "vitamin-c", "other", epoch_s=T0 + 5)
    assert store.acknowledgement(3, 2).address == "other"          # the newest
    got = store.acknowledgement(3, 2, ADDR)
    assert (got.epoch_s, got.profile) == (T0, "vitamin-c")
    assert store.acknowledgement(3, 1) is None and store.acknowledgement(3, 2, "x") is None
    # Another process (the CLI beside the app) sees them in the same file.
    with Store.open(tmp_path / "s.db", readonly=True) as ro:
        assert [a.address for a in ro.acknowledgements()] == [ADDR, "other"]
        assert ro.profile(k.sha256) == k


def test_a_schema_3_history_is_upgraded_and_kept(tmp_path: Path):
    path = tmp_path / "old.db"
    with Store.open(path) as s:
        _session(s, 1, T0)
    db = sqlite3.connect(path)
    db.executescript("DROP TABLE profiles; DROP TABLE acknowledgements; "
                     "PRAGMA user_version = 3;")
    db.close()
    with Store.open(path) as s:
        assert s.schema_version == 4 and len(s.sessions()) == 1
        assert s.acknowledgements() == [] and s.profiles() == []


def test_held_course_unknown_then_known_then_acknowledged(store: Store):
    blob = signing.sign_profile(KEY, COURSE)
    listed = _listed(blob, COURSE)
    got = course_live.course_of(store, listed, 3, ADDR, T0)
    assert got["held"] and got["listed"]["name"] == "vitamin-c"
    assert not got["known"] and got["course"] is None and not got["needs_ack"]
    course_live.remember(store, blob, "vitamin-c.bin")
    got = course_live.course_of(store, listed, 3, ADDR, T0)
    assert got["known"] and got["format"] == 2 and got["needs_ack"]
    assert got["course"]["position"] == "session 1 of 4"
    assert got["course"]["warning_lines"] == ["kidney function: Not with impaired kidneys."]
    # Acknowledged to another steamer: this one still asks for it.
    store.add_acknowledgement(3, 2, "vitamin-c", "other", epoch_s=T0)
    assert course_live.course_of(store, listed, 3, ADDR, T0)["needs_ack"]
    store.add_acknowledgement(3, 2, "vitamin-c", ADDR, epoch_s=T0 + 1)
    got = course_live.course_of(store, listed, 3, ADDR, T0 + 2)
    assert not got["needs_ack"] and got["course"]["acknowledged_s"] == T0 + 1
    # A new version of the profile asks again.
    blob3 = signing.sign_profile(KEY, dict(COURSE, version=3))
    course_live.remember(store, blob3, "vitamin-c-3.bin")
    assert course_live.course_of(store, _listed(blob3, dict(COURSE, version=3)), 3, ADDR,
                                 T0)["needs_ack"]


def test_held_course_position_and_missed(store: Store):
    blob = signing.sign_profile(KEY, COURSE)
    course_live.remember(store, blob, "vitamin-c.bin")
    _session(store, 1, T0)
    _session(store, 3, T0 + 7 * DAY_S)
    got = course_live.course_of(store, _listed(blob, COURSE), 3, ADDR, T0 + 30 * DAY_S)
    c = got["course"]
    assert c["position"] == "session 3 of 4" and c["done"] == 2
    assert c["next_allowed_s"] is None                  # the spacing passed long ago
    assert c["next_recommended_s"] == T0 + 14 * DAY_S
    assert c["missed"] == ["the recommended time for session 3 of 4 passed 16 days ago"]
    assert [p["number"] for p in c["plan"]] == [3, 4, 5, 6]
    name, ics = course_live.plan_ics(store, 3, T0 + 30 * DAY_S)
    assert name == "vitamin-c" and ics.count("BEGIN:VEVENT") == 4


def test_single_session_profile_and_other_courses(store: Store):
    v1 = signing.sign_profile(KEY, dict(V1, podlet_type=5, name="calm"))
    course_live.remember(store, v1, "calm.bin")
    course_live.remember(store, signing.sign_profile(KEY, COURSE), "vitamin-c.bin")
    got = course_live.course_of(store, _listed(v1, dict(V1, podlet_type=5, name="calm")),
                                5, ADDR, T0)
    assert got["known"] and got["format"] == 1 and got["course"] is None
    assert [c["profile"] for c in got["courses"]] == ["vitamin-c"]
    # No steamer held: the kept courses only.
    got = course_live.course_of(store, None, None, None, T0)
    assert not got["held"] and got["listed"] is None
    assert [c["position"] for c in got["courses"]] == ["session 1 of 4"]
    with pytest.raises(DeviceError, match="no course profile of podlet type 5"):
        course_live.plan_ics(store, 5, T0)


def test_course_command_reads_the_acknowledgement(tmp_path: Path, capsys):
    db = tmp_path / "s.db"
    prof = tmp_path / "vitamin-c.bin"
    prof.write_bytes(signing.sign_profile(KEY, COURSE))

    def run(*argv: str) -> str:
        p = argparse.ArgumentParser(prog="steamer")
        register_app(p.add_subparsers(dest="group", required=True))
        args = p.parse_args(["course", str(prof), "--db", str(db), *argv])
        assert args.func(args) == 0
        return capsys.readouterr().out
    with Store.open(db) as s:
        _session(s, 1, T0)
    assert json.loads(run("--json"))["acknowledged_s"] is None
    with Store.open(db) as s:
        s.add_acknowledgement(3, 2, "vitamin-c", ADDR, epoch_s=T0)
    got = json.loads(run("--json"))
    assert (got["acknowledged_s"], got["acknowledged_address"]) == (T0, ADDR)
    assert f"(sent to {ADDR})" in run()
