"""Writes without response the host's own stack drops (issue 13 item 8: CoreBluetooth
drops them silently when its queue is full; the air models it with drop_writes and
LinkParams.central_write_queue). A dropped command costs its own answer (a timeout the
caller sees), never the connection: the steamer takes the next command although its
counter skipped one (fw.blecmd CTR_SKIP_MAX), and gives back the credit of every PDU it
never got, seen as a gap in the PDUs' seq (podproto.link, RxCredits.lost), so that the
host does not run out of credits one dropped write at a time."""
from __future__ import annotations

import asyncio

import pytest

from steamer.client import MemoryLogSink, Steamer, SteamerError
from steamer_harness.ble import After, make_records, record_counts, on_own_air
from steamer_sim.air import Air
from steamer_sim.backend import sim_radio


@pytest.fixture(scope="module")
def dropping(tmp_path_factory):
    air, s, ring = on_own_air(tmp_path_factory.mktemp("drops"), "drops-1")
    yield air, s, ring
    s.stop()
    assert s.crashes() == []


def test_dropped_commands_cost_their_answer_not_the_connection(dropping):
    air, s, ring = dropping

    async def go():
        async with Steamer(s.addr, ring, timeout_s=1.5,
                           **sim_radio(air.address).steamer_kw()) as st:
            await st.authenticate()
            full = st.credits
            assert full == st.info["rx_credits"]
            # A dropped command: its answer never comes (the caller's timeout)...
            assert air.call(air.drop_writes, s.addr, 1) == 1
            with pytest.raises(SteamerError) as lost:
                await make_records(st, 1)
            assert lost.value.code == "timeout", lost.value
            await make_records(st, 1)            # ... and the next command is taken
            # More dropped commands than the steamer has credits: each one lost would
            # leak its credit for good, and each skips a command counter.
            for i in range(full + 3):
                assert air.call(air.drop_writes, s.addr, 1) == 1
                await st.send({"type": "session_start", "podlet_type": 0}, ack=True)
                await make_records(st, 1)
            await asyncio.sleep(0.3)
            assert st.credits == full
            status = await st.request({"type": "status_get"}, ["status"])
            assert status["type"] == "status"
            sink = MemoryLogSink()
            res = await st.sync_logs(After(sink, st.info["log_first"] - 1))
            assert res.records >= full + 4
            counts = record_counts([r["seq"] for r in sink.records], st.info["log_first"])
            assert counts["lost"] == 0 and counts["duplicated"] == 0, counts
        (conn,) = [c for c in air.call(air.stats)["closed"] if c["writes_dropped"]][-1:]
        assert conn["writes_dropped"] == full + 4
    asyncio.run(go())


def test_a_replayed_or_far_ahead_counter_is_still_refused(dropping):
    """The window is forward and bounded: a counter already used (a replay) or more
    frames ahead than the host can have out is refused."""
    air, s, ring = dropping

    async def write(st: Steamer, frame: bytes) -> None:
        assert st.fragmenter is not None
        for pdu in st.fragmenter.split(frame):
            await st.write_pdu(pdu)

    async def refusal(st: Steamer) -> str:
        with pytest.raises(SteamerError) as e:
            await st.receive(["ack"])
        return e.value.code

    async def go():
        async with Steamer(s.addr, ring, timeout_s=3,
                           **sim_radio(air.address).steamer_kw()) as st:
            await st.authenticate()
            frame = st.frame({"type": "session_start", "podlet_type": 0}, ack=True)
            await write(st, frame)
            assert await refusal(st) == "bad_state"      # taken: no podlet is in
            await write(st, frame)                       # the same counter again
            assert await refusal(st) == "auth_failed"
            await make_records(st, 1)                    # the host goes on
            for _ in range(17):
                st.frame({"type": "session_stop"})       # counters spent, never sent
            await write(st, st.frame({"type": "session_start", "podlet_type": 0}, True))
            assert await refusal(st) == "auth_failed"
    asyncio.run(go())


def test_writes_past_the_centrals_queue_are_dropped_and_cost_nothing_more(dropping):
    """Under load: a central whose stack queues one write without response for a link
    that carries one PDU an event drops what the host writes faster (CoreBluetooth's
    behaviour). The steamer takes the next command, and every credit comes back."""
    air, s, ring = dropping
    air.call(lambda: air.set_params(central_write_queue=1, pdus_per_event=1))

    async def go():
        async with Steamer(s.addr, ring, timeout_s=3,
                           **sim_radio(air.address).steamer_kw()) as st:
            await st.authenticate()
            full = st.credits
            for _ in range(6):              # faster than one an event: some are dropped
                await st.send({"type": "session_start", "podlet_type": 0}, ack=True)
            await asyncio.sleep(0.5)
            await make_records(st, 1)
            await asyncio.sleep(0.3)
            assert st.credits == full
        (conn,) = air.call(air.stats)["closed"][-1:]
        assert conn["writes_dropped"] >= 1, conn
    try:
        asyncio.run(go())
    finally:
        air.call(lambda: air.set_params(central_write_queue=0, pdus_per_event=6))
