"""Log sync with the Pico W's stack (the sim's BTstack model, which never refuses a
notification and copies each one the link has not carried onto the firmware's heap) on
a link slower than the firmware's pacing assumes: the sync completes, every record once,
and the steamer never runs out of heap (no link_reset)."""
from __future__ import annotations

import asyncio
import os

from steamer_sim.air import Air, LinkParams
from steamer_harness.ble import served_and_paired, sync_throughput


def test_a_btstack_sync_on_a_slow_link_keeps_the_heap(tmp_path, monkeypatch):
    monkeypatch.setenv("STEAMER_SIM_BOARD", "picow")
    air = Air(LinkParams())
    air.start_thread()
    s, ring = served_and_paired(air, tmp_path, "bt-sync", speed=10)
    try:
        air.call(lambda: air.set_params(pdus_per_event=2))
        fig = asyncio.run(sync_throughput(s, ring, 23, 150))
        assert fig["lost"] == 0 and fig["duplicated"] == 0, fig
        assert "link_reset" not in s.log.read_text(), s.log.read_text()[-2000:]
    finally:
        s.stop()
    assert s.crashes() == []
