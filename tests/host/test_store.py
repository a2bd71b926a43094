"""The session store on real SQLite files: schema migrations, refusal of newer
databases, exactly-once ingest, crash safety, derived sessions."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steamer import store as store_mod
from steamer.store import (END_REASONS, MIGRATIONS, SCHEMA_VERSION, JournalCursor, RecordError,
                           Store, StoreError, StoreTooNew)
from readonly_files import read_only
from store_strategies import deliveries, device_log

DEV = "c0ffee-01"


def rec(seq: int, kind: str, **payload) -> dict:
    return {"seq": seq, "kind": kind, "payload": payload}


def started(seq: int, t_ms: int = 0, **kw) -> dict:
    p = dict(podlet="0000c0ffee01", podlet_type=3, target_c=45.0, profile="vitamin-c",
             version=1, t=1_795_000_000 + t_ms / 1000, t_ms=t_ms)
    p.update(kw)
    return rec(seq, "session_started", **p)


def sample(seq: int, t_ms: int, ul: float) -> dict:
    return rec(seq, "sample", t_ms=t_ms, boiler_c=100.0, outlet_c=45.0, heater_pct=50.0,
               pump_ul_min=300.0, session_ul=ul)


def ended(seq: int, t_ms: int, ul: float, reason: str = "max_session") -> dict:
    return rec(seq, "session_ended", reason=reason, session_ul=ul,
               t=1_795_000_000 + t_ms / 1000, t_ms=t_ms)


def one_session(first_seq: int = 1) -> list[dict]:
    s = first_seq
    return [started(s, 1000), sample(s + 1, 1000, 0.0), sample(s + 2, 2000, 5.0),
            rec(s + 3, "fault_latched", code="x"), ended(s + 4, 2500, 7.5)]


def dump(path: Path) -> list[str]:
    """Everything the database holds, as SQL (read on a connection of its own)."""
    db = sqlite3.connect(path)
    try:
        return list(db.iterdump())
    finally:
        db.close()


def derived(store: Store) -> list[tuple[dict, list]]:
    """The sessions and their samples, without the ids (which depend on arrival order)."""
    out = []
    for s in store.sessions():
        d = vars(s).copy()
        del d["id"]
        out.append((d, store.samples(s.id)))
    return sorted(out, key=lambda x: (x[0]["device_id"], x[0]["start_seq"]))


# --- schema ------------------------------------------------------------------------

def test_new_database_gets_the_current_schema_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "s.db"
    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"devices", "log_records", "sessions", "samples"} <= tables
    cols = {r[1] for r in db.execute("PRAGMA table_info(devices)")}
    assert cols == {"id", "name", "address", "first_seen", "last_seq", "journal_id"}
    db.close()


def test_default_path_is_in_the_user_data_folder(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(store_mod.DB_ENV, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert store_mod.default_path() == tmp_path / "data" / "steamer" / store_mod.DB_FILE
    monkeypatch.setenv(store_mod.DB_ENV, str(tmp_path / "x.db"))
    assert store_mod.default_path() == tmp_path / "x.db"


def make_v1(path: Path) -> None:
    """A database as the v1 program left it: schema by MIGRATIONS[0] alone, a device
    whose log has a gap (seqs 1-5, 8), one closed and one open session."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    MIGRATIONS[0](db)
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO devices VALUES (?, 'bathroom', 'AA:BB', '2026-01-01T00:00:00Z')",
               (DEV,))
    records = one_session(1) + [started(8, 9000, podlet="0000c0ffee02")]
    for r in records:
        db.execute("INSERT INTO log_records VALUES (?, ?, '2026-01-01T00:00:00Z', ?, ?)",
                   (DEV, r["seq"], r["kind"], json.dumps(r["payload"])))
    db.execute("INSERT INTO sessions (id, device_id, start_seq, end_seq, podlet, podlet_type, "
               "profile, profile_version, target_c, start_epoch_s, end_epoch_s, duration_ms, "
               "end_reason, dose_ul, samples) VALUES (1, ?, 1, 5, '0000c0ffee01', 3, "
               "'vitamin-c', 1, 45.0, 1795000001.0, 1795000002.5, 1500, 'max_session', 7.5, 2)",
               (DEV,))
    db.execute("INSERT INTO samples VALUES (1, 2, 0, 100, 45, 50, 300, 0), "
               "(1, 3, 1000, 100, 45, 50, 300, 5)")
    db.execute("INSERT INTO sessions (id, device_id, start_seq, podlet, podlet_type, profile, "
               "profile_version, target_c, start_epoch_s, duration_ms, dose_ul, samples) "
               "VALUES (2, ?, 8, '0000c0ffee02', 3, 'vitamin-c', 1, 45.0, 1795000009.0, "
               "NULL, 0, 0)", (DEV,))
    db.execute("COMMIT")
    db.close()


def test_v1_database_is_migrated_and_keeps_working(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    make_v1(path)
    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        # v2 backfills the watermark: the run of seqs from the lowest, up to the gap.
        assert store.last_seq(DEV) == 5
        assert [d.name for d in store.devices()] == ["bathroom"]
        before = store.sessions()
        assert [(s.id, s.end_reason) for s in before] == [(1, "max_session"), (2, None)]
        result = store.ingest(DEV, [sample(6, 5000, 0.0), sample(7, 6000, 1.0),
                                    sample(9, 10000, 3.0), ended(10, 11000, 4.0, "stopped")])
        assert (result.new, result.duplicate, result.last_seq) == (4, 0, 10)
        after = {s.id: s for s in store.sessions()}
        assert after[1] == before[0]  # closed before the new records: untouched
        assert (after[2].end_reason, after[2].dose_ul, after[2].samples) == ("stopped", 4.0, 1)
        assert after[2].duration_ms == 2000


def test_failed_migration_leaves_the_database_as_it_was(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "v1.db"
    make_v1(path)
    before = dump(path)

    def broken(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half_done (x)")
        raise sqlite3.OperationalError("disk on fire")

    monkeypatch.setattr(store_mod, "MIGRATIONS", [*MIGRATIONS, broken])
    monkeypatch.setattr(store_mod, "SCHEMA_VERSION", len(MIGRATIONS) + 1)
    with pytest.raises(StoreError, match="disk on fire"):
        Store.open(path)
    assert dump(path) == before  # still v1: neither v2 nor the half of v3 applied


def test_newer_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE from_the_future (x)")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(StoreTooNew) as err:
        Store.open(path)
    msg = str(err.value)
    assert f"schema version {SCHEMA_VERSION + 1}" in msg and "upgrade steamer" in msg
    assert "\n" not in msg
    assert path.read_bytes() == before
    assert not (tmp_path / "future.db-wal").exists()


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not SQLite\n" * 100)
    with pytest.raises(StoreError, match="notes.txt.*not a database"):
        Store.open(path)
    with pytest.raises(StoreError, match="no database at"):
        Store.open(tmp_path / "missing.db", create=False)


# --- ingest ------------------------------------------------------------------------

def test_ingest_derives_a_session(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        result = store.ingest(DEV, one_session())
        assert result == store_mod.IngestResult(5, 0, 5, 0)
        (s,) = store.sessions()
        assert (s.podlet, s.profile, s.profile_version, s.end_reason, s.dose_ul) == \
            ("0000c0ffee01", "vitamin-c", 1, "max_session", 7.5)
        assert (s.start_epoch_s, s.end_epoch_s, s.duration_ms, s.samples) == \
            (1_795_000_001.0, 1_795_000_002.5, 1500, 2)
        assert store.session(s.id) == s and store.session(s.id + 1) is None
        assert [p.t_ms for p in store.samples(s.id)] == [0, 1000]
        # The unknown kind is kept raw.
        assert store.records(DEV)[3] == rec(4, "fault_latched", code="x")


def test_duplicates_are_counted_and_conflicts_detected(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        store.ingest(DEV, one_session())
        again = store.ingest(DEV, one_session() + [one_session()[0]])
        assert again == store_mod.IngestResult(0, 6, 5, 0)
        # A device whose seqs restarted (say, a wiped log) sends other records under
        # seqs already stored: they are not stored, and said so.
        clash = store.ingest(DEV, [sample(2, 1000, 999.0), sample(6, 7000, 1.0)])
        assert (clash.new, clash.duplicate, clash.conflicts) == (1, 1, 1)
        assert store.samples(store.sessions()[0].id)[0].dose_ul == 0.0


def test_watermark_stops_at_a_gap_until_the_device_says_it_is_gone(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        assert store.last_seq(DEV) is None
        assert store.ingest(DEV, [rec(s, "boot") for s in (10, 11, 12, 14)]).last_seq == 12
        assert store.ingest(DEV, [rec(13, "boot")]).last_seq == 14
        assert store.ingest(DEV, [rec(20, "boot")]).last_seq == 14
        # The device's oldest record is now 18: 15-17 will never come.
        assert store.ingest(DEV, [], log_first=18).last_seq == 17
        assert store.ingest(DEV, [rec(18, "boot"), rec(19, "boot")], log_first=18).last_seq == 20
        assert store.last_seq(DEV) == 20
        assert store.last_seq("other") is None


def test_devices_are_kept_apart(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        store.add_device("a", name="bathroom", address="AA:BB")
        store.ingest("a", one_session())
        store.ingest("b", one_session())
        store.add_device("a", address="CC:DD")
        assert [(d.id, d.name, d.address) for d in store.devices()] == \
            [("a", "bathroom", "CC:DD"), ("b", None, None)]
        assert [s.device_id for s in store.sessions()] == ["a", "b"]
        assert len(store.sessions("b")) == 1


J1, J2 = "11" * 8, "22" * 8


def test_a_journal_new_at_a_known_address_gets_a_cursor_of_its_own(tmp_path: Path) -> None:
    """A steamer's journal made anew (its flash reformatted; a simulated steamer started
    again at the same address) numbers from 1 again: its records go under a cursor of
    their own, and the old journal's stay as they were."""
    with Store.open(tmp_path / "s.db") as store:
        first = store.sync_cursor("AA:BB", J1, name="bathroom")
        assert first == JournalCursor("AA:BB", None)
        store.ingest(first.device_id, one_session(1))
        assert store.sync_cursor("AA:BB", J1, log_next=9) == first      # the same journal
        again = store.sync_cursor("AA:BB", J2, name="bathroom", log_next=4)
        assert again.device_id != "AA:BB" and again.previous == J1
        assert store.last_seq(again.device_id) is None                  # synced from its start
        assert store.ingest(again.device_id, one_session(1)).new == 5
        assert store.last_seq(again.device_id) == 5 and store.last_seq("AA:BB") == 5
        assert [(d.name, d.address, d.journal_id) for d in store.devices()] == \
            [("bathroom", "AA:BB", J1), ("bathroom", "AA:BB", J2)]
        assert [s.device_id for s in store.sessions()] == ["AA:BB", again.device_id]
        # Each journal keeps its cursor, should the steamer hold either again.
        assert store.sync_cursor("AA:BB", J2) == JournalCursor(again.device_id, None)
        assert store.sync_cursor("AA:BB", J1) == first


def test_a_cursor_from_before_journal_ids_is_kept_only_for_a_journal_it_fits(
        tmp_path: Path) -> None:
    """A database from before journal ids (v1/v2) has cursors by address alone: the first
    journal seen there takes one over, unless it cannot be the journal that cursor counted
    (the cursor is past its last record): then it gets its own."""
    for log_next, adopted in ((9, True), (5, False)):
        path = tmp_path / f"old-{log_next}.db"
        make_v1(path)
        with Store.open(path) as store:
            got = store.sync_cursor("AA:BB", J1, log_next=log_next)
            if adopted:
                assert got == JournalCursor(DEV, None)
            else:
                assert got.device_id != DEV and got.previous == ""
                assert store.last_seq(got.device_id) is None
            assert store.last_seq(DEV) == 5


@pytest.mark.parametrize("bad, match", [
    ({"seq": -1, "kind": "boot", "payload": {}}, "seq must be"),
    ({"seq": True, "kind": "boot", "payload": {}}, "seq must be"),
    ({"seq": 3, "kind": "", "payload": {}}, "kind must be"),
    ({"seq": 3, "kind": "boot", "payload": []}, "payload must be a dict"),
    ({"seq": 3, "kind": "boot", "payload": {"x": float("nan")}}, "not JSON"),
    ({"seq": 3, "kind": "boot", "payload": {}, "device_id": "other"}, "from device 'other'"),
    (rec(3, "sample", t_ms="soon", session_ul=1.0), "t_ms must be an integer"),
    (rec(3, "sample", t_ms=5), "session_ul is required"),
    (rec(3, "session_ended", session_ul=1.0), "reason is required"),
    (rec(3, "session_started", podlet="x", podlet_type=3), "target_c is required"),
])
def test_a_malformed_record_fails_the_whole_batch(tmp_path: Path, bad: dict, match: str) -> None:
    path = tmp_path / "s.db"
    with Store.open(path) as store:
        store.ingest(DEV, one_session())
        before = dump(path)
        with pytest.raises(RecordError, match=match):
            store.ingest(DEV, [sample(6, 3000, 1.0), started(7, 4000), bad, sample(8, 5000, 2.0)])
        assert dump(path) == before
        assert store.last_seq(DEV) == 5


def test_an_exception_from_the_records_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "s.db"

    def link_drops():
        yield from one_session(6)
        raise ConnectionError("link lost")

    with Store.open(path) as store:
        store.ingest(DEV, one_session())
        before = dump(path)
        with pytest.raises(ConnectionError):
            store.ingest(DEV, link_drops())
        assert dump(path) == before
        # The same store carries on.
        assert store.ingest(DEV, one_session(6)).last_seq == 10
        assert len(store.sessions()) == 2


_KILL_MIDWAY = """
import os, sys
from steamer.store import Store
def records():
    for seq in range(6, 5000):
        if seq == 3000:
            os._exit(9)  # the process dies mid-ingest: no rollback, no close
        yield {"seq": seq, "kind": "sample", "payload": {"t_ms": seq, "session_ul": 1.0}}
Store.open(sys.argv[1]).ingest("c0ffee-01", records())
"""


def test_a_process_killed_mid_ingest_loses_only_that_batch(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store.open(path) as store:
        store.ingest(DEV, one_session())
    before = dump(path)
    proc = subprocess.run([sys.executable, "-c", _KILL_MIDWAY, str(path)], timeout=60)
    assert proc.returncode == 9
    assert dump(path) == before
    with Store.open(path) as store:
        assert store.integrity() == "ok"
        assert store.last_seq(DEV) == 5


def test_sessions_from_a_messy_log(tmp_path: Path) -> None:
    log = [sample(1, 0, 1.0),                      # before any session: ignored
           started(2, 1000), sample(3, 1500, 2.0),
           started(4, 3000),                       # the first never ended
           ended(5, 4000, 3.0, "stopped"),
           ended(6, 4100, 9.0),                    # no session open: ignored
           sample(7, 5000, 9.0), started(8, 6000)]  # still running
    with Store.open(tmp_path / "s.db") as store:
        store.ingest(DEV, log)
        got = [(s.start_seq, s.end_seq, s.end_reason, s.dose_ul, s.samples)
               for s in store.sessions()]
        assert got == [(2, 3, "missing_end", 2.0, 1), (4, 5, "stopped", 3.0, 0),
                       (8, None, None, 0.0, 0)]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(), log=device_log())
def test_ingest_is_exactly_once_whatever_the_delivery(tmp_path_factory: pytest.TempPathFactory,
                                                       data: st.DataObject, log: list[dict]) -> None:
    """Invariant: whatever the batching, repetition and order, each record is stored once
    and the sessions are those a clean in-order ingest derives, after every batch."""
    batches = data.draw(deliveries(log))
    tmp = tmp_path_factory.mktemp("prop")
    with Store.open(tmp / "messy.db") as messy:
        seen: set[int] = set()
        for n, batch in enumerate(batches):
            result = messy.ingest(DEV, batch)
            fresh = {r["seq"] for r in batch} - seen
            assert (result.new, result.duplicate) == (len(fresh), len(batch) - len(fresh))
            assert result.conflicts == 0
            seen |= fresh
            with Store.open(tmp / f"clean{n}.db") as clean:
                clean.ingest(DEV, sorted((r for r in log if r["seq"] in seen),
                                         key=lambda r: r["seq"]))
                assert derived(messy) == derived(clean)
        assert messy.records(DEV) == log
        assert messy.last_seq(DEV) == len(log)


def test_a_boot_ends_the_session_it_finds_open(tmp_path: Path) -> None:
    """A steamer boots cold (power cut, reset): a session open at a boot has ended."""
    with Store.open(tmp_path / "s.db") as store:
        store.ingest(DEV, [started(1, 0), sample(2, 1000, 5.0)])
        assert store.sessions()[0].end_reason is None
        store.ingest(DEV, [rec(3, "boot", reason="power_on"), sample(4, 2000, 9.0)])
        (s,) = store.sessions()
        assert (s.end_seq, s.end_reason, s.dose_ul, s.samples) == (2, "restarted", 5.0, 1)
        assert END_REASONS[s.end_reason] == "the steamer restarted (power cut or reset)"


def test_an_end_after_a_boot_reaches_a_session_stored_as_restarted(tmp_path: Path) -> None:
    """The firmware ends a session a power cut cut short after its boot records (with
    the dose its ledger counted). Synced in two batches, the boot in the first and that
    end in the second, the session takes the end, as one batch gives it (found by
    test_ingest_is_exactly_once_whatever_the_delivery: the second batch's re-derivation
    began after the session, closed as "restarted" before the boot)."""
    log = [started(1, 0), sample(2, 1000, 5.0), rec(3, "boot", reason="power_on"),
           ended(4, 500, 6.0, reason="power_loss"), started(5, 2000)]
    with Store.open(tmp_path / "two.db") as store:
        store.ingest(DEV, log[:3])
        assert store.sessions()[0].end_reason == "restarted"
        store.ingest(DEV, log[3:])
        two = [(s.start_seq, s.end_seq, s.end_reason, s.dose_ul) for s in store.sessions()]
    with Store.open(tmp_path / "one.db") as store:
        store.ingest(DEV, log)
        one = [(s.start_seq, s.end_seq, s.end_reason, s.dose_ul) for s in store.sessions()]
    assert two == one == [(1, 4, "power_loss", 6.0), (5, None, None, 0.0)]


def test_a_read_only_open_upgrades_an_older_schema_or_says_it_cannot(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    make_v1(path)
    with read_only(path):
        with pytest.raises(StoreError, match="schema version 1, older than this program's "
                                             f"{SCHEMA_VERSION}, and cannot be upgraded"):
            Store.open(path, readonly=True)
    with Store.open(path, readonly=True) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert [s.id for s in store.sessions()] == [1, 2]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.add_device("x")


def test_a_read_only_open_writes_no_schema_into_another_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes (body TEXT)")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="other.db is not a session database"):
        Store.open(path, readonly=True)
    assert path.read_bytes() == before
