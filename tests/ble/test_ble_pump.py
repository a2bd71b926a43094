"""Log sync does not wait for the control period: the steamer answers log reads between
periods (fw.ble.Link.pump, called from the board's wait_tick), so a sync fills most of
every connection event although the loop services the link once per period; any other
command still waits for the period's service(), in the order it was sent.

The steamer runs at half speed here: a 200 ms period is six connection intervals, so a
link serviced once per period could carry at most the stack's 24 buffered notifications
per period, 0.6 of the link's ceiling (the benchmark, steamer_bench.ble, measures
the figure at full speed).
"""
from __future__ import annotations

import pytest

from steamer.client import Steamer, SteamerError
from steamer_harness.ble import sync_throughput

from asyncio import run
from steamer_harness.ble import served_and_paired
from steamer_sim.backend import sim_radio

SPEED = 0.5


@pytest.fixture(scope="module")
def slow(air, tmp_path_factory):
    s, ring = served_and_paired(air, tmp_path_factory.mktemp("pump"), "pump-1", speed=SPEED)
    yield s, ring
    s.stop()
    assert s.crashes() == []


@pytest.mark.parametrize("mtu,records", [(23, 100), (247, 600)])
def test_log_sync_fills_the_link_between_control_periods(slow, mtu, records):
    s, ring = slow
    fig = run(sync_throughput(s, ring, mtu, records))
    assert fig["mtu"] == mtu and fig["records"] >= records
    # Link time (connection events the air ran during the sync), not wall time. Serviced
    # once per period it would be at most 0.6 (0.5 to 0.55 measured); the start and the
    # end of a sync this short cost about three of its ~25 events.
    assert fig["link_fraction"] >= 0.7, fig
    # Paced to the link, the stack does not refuse notifications for want of room (a
    # sync sent until ENOMEM was refused hundreds of times; a machine busy enough to
    # starve the air's connection events may still cause one or two).
    assert fig["enomem"] <= 2, fig


def test_a_command_pump_leaves_for_the_period_is_not_overtaken(slow):
    """session_start is not something pump() runs: it waits for service(), and the log
    read sent after it waits with it. Were the log read run first, the steamer would
    find session_start's counter one behind the log read's and refuse it as auth_failed."""
    s, ring = slow

    async def go():
        async with Steamer(s.addr, ring, **sim_radio(s.air.address).steamer_kw()) as st:
            await st.authenticate()
            for _ in range(3):
                start = await st.send({"type": "session_start", "podlet_type": 0}, ack=True)
                read = await st.send({"type": "log_read", "journal_id": st.info["journal_id"],
                                      "from_seq": st.info["log_first"],
                                      "max_records": 2})
                with pytest.raises(SteamerError) as e:
                    await st.receive(["ack"], start)
                assert e.value.code == "bad_state", e.value      # no podlet: refused as such
                assert len((await st.receive(["log_records"], read))["records"]) == 2
    run(go())


@pytest.fixture(scope="module")
def full_speed(air, tmp_path_factory):
    s, ring = served_and_paired(air, tmp_path_factory.mktemp("pace"), "pace-1", speed=1.0)
    yield s, ring
    s.stop()
    assert s.crashes() == []


@pytest.mark.parametrize("mtu,records", [(23, 400), (247, 1500)])
def test_at_full_speed_notifications_are_paced_to_the_link(full_speed, mtu, records):
    """At real time (a 100 ms period, as on a board) the steamer hands the stack as
    many notifications as the link carries (the board's PDUs per connection event over
    the interval the stack reported), not until it answers ENOMEM: the stack (next to)
    never refuses one, and the link is kept busy. The goal, 0.85 of the link's
    ceiling, is the benchmark's (`python -m steamer_bench.ble sync-table`): a timed
    figure on a shared machine measures the machine (this test read 0.70 on main with
    three other jobs beside it). The floor here, half the ceiling, only catches a sync
    that leaves the link idle for periods at a time."""
    s, ring = full_speed
    fig = run(sync_throughput(s, ring, mtu, records))
    assert fig["mtu"] == mtu and fig["records"] >= records
    assert fig["link_fraction"] >= 0.5 and fig["enomem"] <= 2, fig
