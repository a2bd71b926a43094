"""The benchmark's device-heap figure for the BLE layer (steamer_bench.ble
.heap_figures, measured by ble_heap_mp.py on micropython with a host on the air): idle
with no host, and the peaks while a host pairs and while it syncs with notifications
queued, the code counted as a board loads it (.mpy into RAM) and the receive buffers
named."""
from __future__ import annotations

from steamer_harness.ble import heap_figures


def test_heap_figures_cover_idle_pairing_and_a_sync_with_queued_notifications(air):
    fig = heap_figures(air, records=300)
    assert "error" not in fig, fig
    for phase in ("idle", "pairing", "sync"):
        assert fig[phase] and fig[phase]["calls"] > 0, (phase, fig)
    # Held at idle: at least the code and the Link's objects (the receive ring in them).
    assert fig["code_bytes"] > 10_000 and fig["rx_ring_bytes"] >= 16 * 244
    assert fig["link_bytes"] >= fig["rx_ring_bytes"]
    assert fig["idle"]["held"] >= fig["code_bytes"] + fig["link_bytes"] - 512
    # A sync holds its queued notifications on top; pairing allocates (X25519).
    assert fig["tx_queue_pdus"] > 1 and fig["tx_queue_bytes"] > 244
    assert fig["sync"]["held"] >= fig["idle"]["held"] + fig["tx_queue_bytes"] // 2
    assert fig["pairing"]["alloc"] > fig["idle"]["alloc"]
    # On a board the stack's receive buffer is on the same heap.
    assert fig["stack_rx_buffer_bytes"] == 16 * 244
    assert fig["board_idle_bytes"] == fig["idle"]["held"] + fig["stack_rx_buffer_bytes"]
    assert fig["board_peak_held_bytes"] >= fig["sync"]["held"] + fig["stack_rx_buffer_bytes"]
