"""Log sync and profile push end to end, then both under randomized disconnects:
no record lost or duplicated, every interrupted push leaves the old or the new profile."""
from __future__ import annotations

import hashlib
import os

import pytest

from steamer.ble.client import MemoryLogSink, Steamer, SteamerError
from steamer_tools.bench_ble import (TEST_PODLET_TYPE, chaos, check_records, make_records,
                                     serve, signed_test_profile)

from conftest import run, served_and_paired

ROUNDS = int(os.environ.get("STEAMER_BLE_ROUNDS", "100"))


@pytest.fixture(scope="module")
def paired(air, tmp_path_factory):
    s, ring = served_and_paired(air, tmp_path_factory.mktemp("sync"), "sync-1")
    yield s, ring
    s.stop()
    assert s.crashes() == []


def _has(profiles: list[dict], version: int) -> bool:
    return any(p["podlet_type"] == TEST_PODLET_TYPE and p["version"] == version
               for p in profiles)


def test_log_sync_delivers_every_record_once_and_lets_the_device_compact(paired):
    s, ring = paired

    async def go():
        sink = MemoryLogSink()
        async with Steamer(s.addr, ring, sim=s.air.address) as st:
            await st.authenticate()
            await make_records(st, 40)
            assert (await st.sync_logs(sink)).records >= 40
            await make_records(st, 5)
            assert (await st.sync_logs(sink)).records >= 5
            assert (await st.sync_logs(sink)).records == 0
        check_records(sink)
        names = {r["kind"] for r in sink.records}
        assert {"boot", "pairing_window", "host_paired", "session_refused"} <= names
        # The acknowledgement reached the journal: Info's log_first moved past it.
        async with Steamer(s.addr, ring, sim=s.air.address) as st:
            assert st.info["log_first"] > 1
            assert st.info["log_next"] == sink.last_seq() + 1
    run(go())


def test_profile_push_installs_checks_and_resumes(paired):
    s, ring = paired

    async def go():
        async with Steamer(s.addr, ring, sim=s.air.address) as st:
            await st.authenticate()
            blob = signed_test_profile(1)
            await st.push_profile(blob, chunk=16)
            assert _has(await st.profiles(), 1)
            # The same version again: the firmware refuses a rollback.
            with pytest.raises(SteamerError) as e:
                await st.push_profile(blob)
            assert e.value.code == "stale_version"
            # Half an upload, then a new connection: it resumes from the device's offset.
            new = signed_test_profile(2)
            await st.request({"type": "profile_begin", "size": len(new),
                              "sha256": hashlib.sha256(new).digest()}, ["profile_offset"])
            await st.request({"type": "profile_chunk", "offset": 0, "data": new[:30]},
                             ["profile_offset"], ack=True)
        async with Steamer(s.addr, ring, sim=s.air.address) as st:
            await st.authenticate()
            off = await st.request({"type": "profile_resume"}, ["profile_offset"])
            assert off["offset"] == 30 and off["size"] == len(new)
            # A wrong offset is refused and changes nothing.
            with pytest.raises(SteamerError) as e:
                await st.request({"type": "profile_chunk", "offset": 7, "data": b"x"},
                                 ["profile_offset"], ack=True)
            assert e.value.code == "bad_offset"
            await st.push_profile(new)
            assert _has(await st.profiles(), 2)
            # Bytes that do not match their SHA-256 are never installed.
            bad = signed_test_profile(3)
            await st.request({"type": "profile_begin", "size": len(bad),
                              "sha256": hashlib.sha256(b"other").digest()}, ["profile_offset"])
            await st.request({"type": "profile_chunk", "offset": 0, "data": bad},
                             ["profile_offset"], ack=True)
            with pytest.raises(SteamerError) as e:
                await st.request({"type": "profile_commit"}, ["ack"], True)
            assert e.value.code == "bad_hash"
            profiles = await st.profiles()
            assert _has(profiles, 2) and not _has(profiles, 3)
            # A profile signed by someone else is refused.
            from steamer_tools.signing_sim import signed_profile
            from steamer_tools.bench_ble import test_profile
            with pytest.raises(SteamerError) as e:
                await st.push_profile(signed_profile(test_profile(4), "wrong_key"))
            assert not _has(await st.profiles(), 4)
    run(go())


def test_randomized_disconnects_during_syncs_and_pushes(air, tmp_path_factory):
    """ROUNDS rounds (STEAMER_BLE_ROUNDS, 100 by default; the benchmark runs 1,000), each
    interrupted at a random moment: the host's records are exactly 1..N once each, and
    the installed profile is always the last committed version or the one being pushed
    (steamer_tools.bench_ble.chaos checks both after every round)."""
    s, ring = served_and_paired(air, tmp_path_factory.mktemp("chaos"), "chaos-1", speed=20)
    try:
        stats = run(chaos(s, ring, ROUNDS))
    finally:
        s.stop()
    assert s.crashes() == []
    assert stats["lost"] == 0 and stats["duplicated"] == 0
    assert stats["interrupted_syncs"] + stats["interrupted_pushes"] >= ROUNDS // 10, stats
