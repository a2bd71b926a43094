"""The ATT MTU as the real stacks settle it (issue 13 item 7): the exchange happens only
if and when a side starts it, so the link carries 20 bytes a PDU until then. A central
that never starts one gets the steamer's own (fw.ble asks once connected, with
gattc_exchange_mtu); an exchange that completes after PDUs went out moves both sides to
the bigger PDUs between frames, and the sync across it loses and repeats nothing."""
from __future__ import annotations

import asyncio
import time

import pytest

from steamer.client import MemoryLogSink, Steamer
from steamer_harness.ble import (After, check_records, make_records, record_counts,
                                 on_own_air)
from steamer_sim.air import Air
from steamer_sim.backend import sim_radio


@pytest.fixture(scope="module")
def slow_mtu(tmp_path_factory):
    air, s, ring = on_own_air(tmp_path_factory.mktemp("mtu"), "mtu-1")
    yield air, s, ring
    s.stop()
    assert s.crashes() == []


def _down(air: Air) -> tuple[int, int]:
    """(notifications, their bytes) the open connection carried so far."""
    (conn,) = air.call(air.stats)["open"]
    return conn["down"], conn["down_bytes"]


def test_a_central_that_never_exchanges_gets_the_steamers_own_exchange(slow_mtu):
    air, s, ring = slow_mtu
    air.call(lambda: air.set_params(central_mtu_after_s=None, mtu_answer_events=2))

    async def go():
        sink = MemoryLogSink()
        async with Steamer(s.addr, ring, **sim_radio(air.address).steamer_kw()) as st:
            await st.authenticate()
            assert st.client is not None and st.client.mtu_size == 247
            assert st.fragmenter is not None and st.fragmenter.max_pdu == 244
            await make_records(st, 30)
            n0, b0 = _down(air)
            await st.sync_logs(sink)
            n1, b1 = _down(air)
        check_records(sink)
        # The sync's notifications were cut to the exchanged MTU, not to 20 bytes.
        assert (b1 - b0) / (n1 - n0) > 60, (n0, b0, n1, b1)
    asyncio.run(go())


def test_an_exchange_after_the_first_pdus_moves_both_sides_to_bigger_pdus(slow_mtu):
    air, s, ring = slow_mtu
    # Nobody's exchange completes until the test runs one.
    air.call(lambda: air.set_params(central_mtu_after_s=None, mtu_answer_events=1_000_000))

    async def go():
        sink = MemoryLogSink()
        async with Steamer(s.addr, ring, **sim_radio(air.address).steamer_kw()) as st:
            await st.authenticate()
            assert st.client is not None and st.client.mtu_size == 23
            start = st.info["log_first"]
            first = await st.sync_logs(After(sink, start - 1))
            await make_records(st, 30)
            n0, b0 = _down(air)
            res = await st.sync_logs(After(sink, first.last_seq))
            n1, b1 = _down(air)
            assert res.records >= 30 and (b1 - b0) <= 20 * (n1 - n0)
            assert air.call(air.exchange_mtu, s.addr) == 1
            deadline = time.monotonic() + 5
            while st.client.mtu_size == 23 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert st.client.mtu_size == 247
            await asyncio.sleep(0.3)            # a few of the steamer's periods
            await make_records(st, 30)          # the host's commands in bigger PDUs
            assert st.fragmenter is not None and st.fragmenter.max_pdu == 244
            n1, b1 = _down(air)
            res = await st.sync_logs(After(sink, res.last_seq))
            n2, b2 = _down(air)
            assert res.records >= 30
        counts = record_counts([r["seq"] for r in sink.records], start)
        assert counts["lost"] == 0 and counts["duplicated"] == 0, counts
        # The steamer's frames after the exchange went in PDUs up to 244 bytes.
        assert (b2 - b1) / (n2 - n1) > 60, (n1, b1, n2, b2)
    asyncio.run(go())
