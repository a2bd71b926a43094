"""Deleting a session from the history (the app's History screen): the session, its
samples and its records go; other sessions, the sync watermark and later syncs are
untouched; an open session or an unknown one is refused in words."""
from __future__ import annotations

import pytest

from steamer.store import Store, StoreError

DEV = "c0ffee-02"


def session(s: int, end: bool = True) -> list[dict]:
    recs = [{"seq": s, "kind": "session_started",
             "payload": {"podlet": "0000c0ffee01", "podlet_type": 3, "profile": "vitamin-c",
                         "version": 1, "target_c": 45.0, "t": 1_795_000_000 + s, "t_ms": 0}},
            {"seq": s + 1, "kind": "sample",
             "payload": {"t_ms": 1000, "boiler_c": 99.0, "outlet_c": 45.0, "heater_pct": 40.0,
                         "pump_ul_min": 300.0, "session_ul": 5.0}}]
    if end:
        recs.append({"seq": s + 2, "kind": "session_ended",
                     "payload": {"reason": "stopped", "session_ul": 5.0, "t_ms": 2000,
                                 "t": 1_795_000_002 + s}})
    return recs


def test_a_closed_session_goes_with_its_samples_and_records(tmp_path):
    with Store.open(tmp_path / "h.sqlite3") as store:
        store.add_device(DEV, "bench")
        store.ingest(DEV, session(1) + session(4))
        first, second = store.sessions(DEV)
        store.delete_session(first.id)
        assert [s.id for s in store.sessions(DEV)] == [second.id]
        assert store.samples(first.id) == [] and len(store.samples(second.id)) == 1
        assert [r["seq"] for r in store.records(DEV)] == [4, 5, 6]
        assert store.last_seq(DEV) == 6
        # A later sync goes on from the watermark and derives only its own session.
        store.ingest(DEV, session(7, end=False))
        assert len(store.sessions(DEV)) == 2 and store.last_seq(DEV) == 8
        assert store.integrity() == "ok"


def test_an_open_or_unknown_session_is_refused(tmp_path):
    with Store.open(tmp_path / "h.sqlite3") as store:
        store.add_device(DEV)
        store.ingest(DEV, session(1, end=False))
        (open_one,) = store.sessions(DEV)
        with pytest.raises(StoreError, match="still open"):
            store.delete_session(open_one.id)
        with pytest.raises(StoreError, match="no session 99"):
            store.delete_session(99)
        assert len(store.sessions(DEV)) == 1
