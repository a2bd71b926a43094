"""Log sync and profile push end to end, then both over a slow link that drops, across
lost links, and under randomized cuts: no record lost or duplicated, a push resumed
ends installed (even when the commit's answer was what the link took), and a push left
cut leaves the old or the new profile."""
from __future__ import annotations

import hashlib
import os

import pytest

from steamer_sim.air import Air, LinkParams
from steamer.client import MemoryLogSink, Steamer, SteamerError
from steamer_harness.ble import (TEST_PODLET_TYPE, After, CutSink, Cutter, chaos,
                                     check_records, installed, linked, make_records,
                                     signed_test_profile)

from asyncio import run
from steamer_harness.ble import served_and_paired
from steamer_sim.backend import sim_radio

ROUNDS = int(os.environ.get("STEAMER_BLE_ROUNDS", "45"))
# On each port model: a third as many (20 at least) unless STEAMER_BLE_PORT_ROUNDS says;
# `make soak` runs 1,450 there, which cut the link ~1,020 times (7 rounds in 10 are cut).
PORT_ROUNDS = int(os.environ.get("STEAMER_BLE_PORT_ROUNDS", max(20, ROUNDS // 3)))


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
        async with Steamer(s.addr, ring, **sim_radio(s.air.address).steamer_kw()) as st:
            await st.authenticate()
            await make_records(st, 40)
            assert (await st.sync_logs(sink)).records >= 40
            await make_records(st, 5)
            assert (await st.sync_logs(sink)).records >= 5
            # Nothing the host holds comes again; the only record new since is the one
            # the fixture's button hold writes on its own (clock_window at ~21 s on the
            # steamer's clock), which a loaded machine lets land before this sync.
            held = len(sink.records)
            res = await st.sync_logs(sink)
            assert res.records == len(sink.records) - held
            assert [r["kind"] for r in sink.records[held:]] in ([], ["clock_window"])
        check_records(sink)
        names = {r["kind"] for r in sink.records}
        assert {"boot", "pairing_window", "host_paired", "session_refused"} <= names
        # The acknowledgement reached the journal: Info's log_first moved past it.
        async with Steamer(s.addr, ring, **sim_radio(s.air.address).steamer_kw()) as st:
            assert st.info["log_first"] > 1
            # The fixture's button hold writes on (clock_window after 20 s): whatever
            # came since is new to the host, and nothing it had comes again.
            assert st.info["log_next"] >= sink.last_seq() + 1
            await st.authenticate()
            before = sink.last_seq()
            assert (await st.sync_logs(sink)).records >= st.info["log_next"] - 1 - before
        check_records(sink)
    run(go())


def test_the_journal_identity_is_in_info_and_log_reads_and_acks_name_it(paired):
    """Info carries the journal's identity, and every log read and acknowledgement the
    journal it is for: one naming another journal is refused, and compacts nothing."""
    s, ring = paired

    async def go():
        st = await linked(s, ring)
        ident = st.info["journal_id"]
        assert isinstance(ident, bytes) and len(ident) == 8
        await make_records(st, 3)
        other = bytes(b ^ 0xFF for b in ident)
        with pytest.raises(SteamerError) as e:
            await st.request({"type": "log_read", "from_seq": 1, "max_records": 2,
                              "journal_id": other}, ["log_records"])
        assert e.value.code == "not_found"
        got = await st.request({"type": "log_read", "from_seq": 1, "max_records": 2,
                                "journal_id": ident}, ["log_records"])
        assert len(got["records"]) == 2
        await st.reconnect()
        await st.authenticate()
        first, top = st.info["log_first"], st.info["log_next"] - 1
        assert st.info["journal_id"] == ident and top > first
        with pytest.raises(SteamerError) as e:
            await st.request({"type": "log_ack", "seq": top, "journal_id": other}, ["ack"],
                             True)
        assert e.value.code == "not_found"
        await st.reconnect()
        assert st.info["log_first"] == first
        await st.authenticate()
        await st.request({"type": "log_ack", "seq": top, "journal_id": ident}, ["ack"], True)
        await st.reconnect()
        assert st.info["log_first"] == top + 1
        await st.close()
    run(go())


def test_a_sync_whose_cursor_is_past_the_journal_acknowledges_nothing(paired):
    """A host cursor past the steamer's last record belongs to another journal (one the
    host synced at this address before): the sync refuses it rather than acknowledging
    records it never stored."""
    s, ring = paired

    async def go():
        st = await linked(s, ring)
        before = await st.sync_logs(After(MemoryLogSink(), st.info["log_first"] - 1))
        await make_records(st, 5)
        await st.reconnect()
        await st.authenticate()
        first, top = st.info["log_first"], st.info["log_next"] - 1
        assert first == before.last_seq + 1 and top >= first + 4
        ahead = After(MemoryLogSink(), top - 2 + 100)
        with pytest.raises(SteamerError) as e:
            await st.sync_logs(ahead)
        assert e.value.code == "journal_changed"
        await st.reconnect()
        assert st.info["log_first"] == first and ahead.inner.records == []
        await st.close()
    run(go())


def test_profile_push_installs_checks_and_resumes(paired):
    s, ring = paired

    async def go():
        async with Steamer(s.addr, ring, **sim_radio(s.air.address).steamer_kw()) as st:
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
        async with Steamer(s.addr, ring, **sim_radio(s.air.address).steamer_kw()) as st:
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
            # ... and the refusal is a decision on the record, like the firmware's own.
            sink = MemoryLogSink()
            await st.sync_logs(sink)
            assert [r["payload"]["reason"] for r in sink.records
                    if r["kind"] == "profile_rejected"][-1:] == ["bad_hash"]
            # A profile signed by someone else is refused.
            from steamer_sim.signing import signed_profile
            from steamer_harness.ble import test_profile
            with pytest.raises(SteamerError) as e:
                await st.push_profile(signed_profile(test_profile(4), "wrong_key"))
            assert not _has(await st.profiles(), 4)
    run(go())


def _installs(sink: MemoryLogSink, version: int) -> int:
    return sum(1 for r in sink.records if r["kind"] == "profile_installed"
               and r["payload"]["podlet_type"] == TEST_PODLET_TYPE
               and r["payload"]["version"] == version)


@pytest.mark.parametrize("how", ["drop", "lose"])
def test_a_push_whose_commit_answer_is_lost_completes_once(paired, how):
    """The link goes once the steamer has the commit (dropped, or lost: silent until the
    supervision timeout), so the steamer installs the profile but its answer is lost:
    push_profile reconnects and finds it listed (or pushes again and hears
    stale_version with it listed). Installed once; the push reports success."""
    s, ring = paired

    async def go():
        st = await linked(s, ring)
        version = (await installed(st))[0] + 1
        name = f"lost-commit-{how}"
        cutter = Cutter(s, st, ("profile_commit",))
        cutter.arm(1, how)
        await st.push_profile(signed_test_profile(version, name), reconnects=5)
        assert cutter.cuts == 1 and st.reconnects >= 1
        assert await installed(st) == (version, name)
        sink = MemoryLogSink()
        await st.sync_logs(After(sink, st.info["log_first"] - 1))
        await st.close()
        return version, sink
    version, sink = run(go())
    assert _installs(sink, version) == 1


def test_a_push_whose_commit_answer_is_lost_is_done_only_if_its_bytes_are_listed(paired):
    """A profile of the installed one's type, version and name but other bytes: the
    steamer refuses it (stale_version). The commit's answer lost, the push must not take
    the listing of the installed one for its own: it reports the refusal."""
    s, ring = paired

    async def go():
        st = await linked(s, ring)
        version, name = await installed(st)
        if version == 0:
            version, name = 1, "calm"
            await st.push_profile(signed_test_profile(version, name))
        from steamer_sim.signing import signed_profile
        from steamer_harness.ble import test_profile
        listed = [p for p in await st.profiles() if p["podlet_type"] == TEST_PODLET_TYPE]
        twin = signed_profile(dict(test_profile(version, name), max_day_ul=2999), "ok")
        assert [p["sha256"] for p in listed] != [hashlib.sha256(twin).digest()]
        cutter = Cutter(s, st, ("profile_commit",))
        cutter.arm(1, "drop")
        with pytest.raises(SteamerError) as e:
            await st.push_profile(twin, reconnects=5)
        assert e.value.code == "stale_version" and cutter.cuts == 1
        assert [p for p in await st.profiles() if p["podlet_type"] == TEST_PODLET_TYPE] \
            == listed
        await st.close()
    run(go())


def test_sync_resumes_across_a_lost_link(paired):
    """lose() inside a sync: both ends learn of it only after the supervision timeout;
    the sync reconnects, acknowledges what it stored and carries on."""
    s, ring = paired

    async def go():
        st = await linked(s, ring)
        # What is there before: acknowledged, so this sync reads only what follows.
        before = await st.sync_logs(After(MemoryLogSink(), st.info["log_first"] - 1))
        await make_records(st, 150)
        sink = CutSink([])
        sink.cutter = Cutter(s, st)
        sink.cutter.arm(40, "lose")
        res = await st.sync_logs(After(sink, before.last_seq), reconnects=5)
        assert sink.cutter.cuts == 1 and res.reconnects == 1
        await st.close()
        return sink, res, before.last_seq
    sink, res, last = run(go())
    seqs = [r["seq"] for r in sink.records]
    assert len(seqs) >= 150 and seqs == list(range(last + 1, last + 1 + len(seqs)))
    assert res.lost == [] and res.records == len(seqs)


@pytest.fixture(scope="module")
def rough(tmp_path_factory):
    """A steamer on an air of its own, whose link the test makes slow and unreliable."""
    air = Air(LinkParams(), seed=11)
    air.start_thread()
    s, ring = served_and_paired(air, tmp_path_factory.mktemp("rough"), "rough-1")
    yield s, ring
    s.stop()
    assert s.crashes() == []


def test_sync_and_push_over_a_slow_link_that_drops(rough):
    """60 ms more each way and a 3 % chance of a disconnect every connection event (one
    every second or so) at ATT MTU 23: a sync of 400 records and a push both complete,
    the records once each and in order, the profile installed."""
    s, ring = rough
    air = s.air

    async def go():
        st = await linked(s, ring)
        await make_records(st, 400)
        version = (await installed(st))[0] + 1
        await st.close()
        air.call(lambda: air.set_params(latency_ms=60.0, drop_per_event=0.03))
        closed = len(air.history)
        try:
            st = await linked(s, ring, mtu=23)
            sink = MemoryLogSink()
            res = await st.sync_logs(sink, reconnects=60)
            await st.push_profile(signed_test_profile(version, "rough"), chunk=16,
                                  reconnects=60)
            await st.close()
        finally:
            air.call(lambda: air.set_params(latency_ms=0.0, drop_per_event=0.0))
        # What the steamer holds, read over a link that stays up.
        st = await linked(s, ring)
        pushed = await installed(st)
        log_next = st.info["log_next"]
        await st.close()
        return sink, res, pushed, version, len(air.history) - closed, log_next
    sink, res, pushed, version, drops, log_next = run(go())
    check_records(sink)
    assert len(sink.records) >= 400 and res.lost == []
    assert res.reconnects >= 1 and drops >= 2, (res.reconnects, drops)
    assert pushed == (version, "rough")
    # Everything the steamer numbered before the sync ended is here (the push's own
    # records came after it).
    assert sink.last_seq() < log_next


@pytest.mark.parametrize("board", [None, "esp32c3", "picow"])
def test_randomized_cuts_during_syncs_and_pushes(air, tmp_path_factory, monkeypatch, board):
    """ROUNDS rounds (STEAMER_BLE_ROUNDS, 45 by default; `make soak` and the benchmark run 1,000):
    three in four cut inside the sync or push (dropped, or lost one time in four; a
    third of the cut pushes at the commit), the fourth uninterrupted. The host's records
    are exactly 1..N once each, a resumed push ends installed, and a push left cut
    leaves the old or the new profile by version and name (steamer_harness.ble.chaos
    checks these after every round, and that every planned cut landed). On the sim's
    own buffering, then PORT_ROUNDS (a third as many, 20 at least) on each port model: the
    ESP32-C3's NimBLE, whose IRQs run on the stack's thread between the firmware's
    bytecodes, and the Pico W's BTstack, whose IRQs run scheduled inside the locked
    step (boards/sim/bluetooth.py)."""
    rounds = ROUNDS if board is None else PORT_ROUNDS
    if board is not None:
        monkeypatch.setenv("STEAMER_SIM_BOARD", board)
    s, ring = served_and_paired(air, tmp_path_factory.mktemp("chaos"), f"chaos-{board}",
                                speed=20)
    try:
        stats = run(chaos(s, ring, rounds))
    finally:
        s.stop()
    assert s.crashes() == []
    assert "link_reset" not in s.log.read_text(), s.log.read_text()[-2000:]
    assert stats["lost"] == 0 and stats["duplicated"] == 0
    assert stats["planned_cuts"] >= rounds // 2, stats
    assert stats["interrupted_syncs"] + stats["interrupted_pushes"] == stats["planned_cuts"]
    assert stats["uninterrupted"] >= rounds // 4, stats
    assert stats["commit_cuts"] >= 1 and stats["abandoned_pushes"] >= 1, stats
    assert stats["cut_lost_link"] >= 1 and stats["interrupted_pushes"] >= rounds // 10, stats


def test_a_hung_chaos_round_stops_the_run_with_its_round_and_the_log(tmp_path, monkeypatch):
    """The chaos harness's watchdog: a round that never ends (here the link never comes
    up) is an AssertionError after round_timeout_s naming the round and the steamer's
    log, not a benchmark hung for good."""
    import asyncio
    import steamer_harness.ble as harness

    async def never(*_args):
        await asyncio.sleep(3600)
    monkeypatch.setattr(harness, "linked", never)
    log = tmp_path / "steamer.log"
    log.write_text("boot\nthe last line the steamer wrote\n")
    served = harness.Served(None, "5E:7A:00:00:00:99", "hung", None, log)  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match=r"(?s)the set-up \(the first link\) made no progress.*last line"):
        run(chaos(served, None, 3, round_timeout_s=1.5))  # type: ignore[arg-type]


class _CliSteamer:
    """A steamer served on an air of its own, paired with a key file, and `steamer` run
    against it as a person's shell would."""

    def __init__(self, tmp_path, name: str, params: LinkParams, speed: float) -> None:
        from steamer.client import KeyRing
        from steamer_harness.ble import pair, serve
        self.air = Air(params)
        self.air.start_thread()
        self.served = serve(self.air, tmp_path, name, speed=speed)
        self.keys = tmp_path / "keys.json"
        self.ring = KeyRing(self.keys)
        self.db = tmp_path / "sessions.sqlite3"
        try:
            run(pair(self.served.addr, self.air.address, self.ring))
        except BaseException:
            self.served.stop()
            raise

    def cli(self, *args: str):
        import subprocess
        import sys
        from steamer_sim.air import ENV
        env = dict(os.environ, **{ENV: self.air.address, "STEAMER_SIM": "1",
                                  "STEAMER_KEYS": str(self.keys), "STEAMER_DB": str(self.db)})
        env.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
        p = subprocess.run([sys.executable, "-m", "steamer.cli.main", *args], env=env, text=True,
                           capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
        assert "Traceback" not in p.stderr, p.stderr
        return p


def test_steamer_profile_push_resumes_after_the_link_goes_at_its_commit(tmp_path):
    """`steamer profile push` with the link dropped just after the commit reached the
    steamer (its answer lost): the command reconnects, finds the profile installed and
    says so, exit 0; before, it failed with "lost the link"."""
    # At real time the steamer's signature check takes about 5 periods (0.5 s): the cut,
    # 0.25 s after the commit reached the air, lands between its arrival and the answer.
    c = _CliSteamer(tmp_path, "push-1", LinkParams(), speed=1)
    air = c.air
    blob = signed_test_profile(1, "resumed")
    path = tmp_path / "resumed.bin"
    path.write_bytes(blob)
    writes = {"n": 0, "drops": 0}
    real = air.handle_central

    def hook(central, op, msg):
        # hello, auth_response, profile_begin, profile_chunk (one at ATT MTU 247), commit:
        # the fifth Command write.
        real(central, op, msg)
        if op == "write" and writes["n"] >= 0:
            writes["n"] += 1
            if writes["n"] == 5:
                writes["n"] = -1

                def cut():
                    writes["drops"] += air.drop(c.served.addr)
                air.loop.call_later(0.25, cut)
    air.call(air.tap_centrals, hook)
    try:
        p = c.cli("profile", "push", "push-1", str(path))
        air.call(air.tap_centrals, None)

        async def listed():
            st = await linked(c.served, c.ring)
            got = await installed(st)
            await st.close()
            return got
        got = run(listed())
    finally:
        c.served.stop()
    assert c.served.crashes() == []
    assert writes["drops"] == 1
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "installed resumed v1 (podlet type 7) on push-1"
    assert got == (1, "resumed")


def test_a_full_journal_s_loss_reaches_steamer_sync_as_a_warning(tmp_path):
    """4,200 records no host acknowledged overflow the journal (4,096 records, or less
    when the flash fills first, as the sim's 512 KB does): the steamer drops its oldest
    segments of 256 after journal_overflow records naming them, and `steamer sync`
    stores the rest once each and says, on one stderr line, how many were lost."""
    import json
    import sqlite3

    # A fast link: a quick fill.
    c = _CliSteamer(tmp_path, "full-1", LinkParams(interval_ms=7.5, pdus_per_event=12),
                    speed=40)
    try:
        async def fill():
            st = await linked(c.served, c.ring)
            await make_records(st, 4200)
            await st.close()
        run(fill())
        p = c.cli("sync", "full-1", "--json")
    finally:
        c.served.stop()
    assert c.served.crashes() == []
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    [[first, last]] = out["lost"]
    assert first == 1 and last % 256 == 0 and out["lost_records"] == last, out
    warning = [line for line in p.stderr.splitlines() if "warning" in line]
    assert warning == [f"steamer sync: warning: full-1 lost {last} log records (seq 1-{last}) "
                       "before any computer synced them: its log was full; sync more often "
                       "to keep them all"], p.stderr
    with sqlite3.connect(c.db) as db:
        seqs = [r[0] for r in db.execute("SELECT seq FROM log_records ORDER BY seq")]
    # Everything after the loss, once each, up to the newest record.
    assert seqs == list(range(last + 1, seqs[-1] + 1)) and seqs[-1] >= 4200
    assert out["new_records"] == len(seqs)
