"""Runs on micropython (for steamer_bench.ble): the heap the firmware's BLE layer
takes on the sim board, with a host on the air doing the work. Prints one JSON line once
the file STOP exists (the host's work is done).

    micropython -X heapsize=416k ble_heap_mp.py SCENARIO.json AIR_ADDRESS STOP

Figures, in bytes of the MicroPython heap:
- code_bytes: what importing fw.ble takes (it and the modules only it imports), loaded
  the way the board loads them: from the .mpy files on MICROPYPATH when the caller puts
  them there (a board keeps its bytecode in RAM; nothing is frozen).
- link_bytes: fw.ble.Link's objects at idle, the receive ring (rx_ring_bytes) among them.
- stack_rx_buffer_bytes: not measured (the sim's stack keeps it off this heap): the
  Command attribute's buffer, which MicroPython's bluetooth module on a board allocates
  on this heap (gatts_set_buffer: extmod/modbluetooth.c, mp_bluetooth_gatts_db_resize).
- per phase (idle: no host; pairing: the connection has handled a pair_request; sync:
  it has handled a log_read; connected: anything else), over every Link.service() and
  Link.pump() call: `held`, the most live heap above the app alone at a call's start or
  end (after a collection: code, link objects, queued notifications, pending reads);
  `alloc`, the most one call allocated (micropython.mem_total(), garbage included: the
  collector runs meanwhile, so the heap never needs all of it at once); `bound`, held
  plus alloc of the same call, an upper bound of the heap the call needed.
- tx_queue_pdus / tx_queue_bytes: the most notifications waiting in Link.tx.
"""
import gc
import json
import os
import sys

import micropython

import board as simboard
from fw import main as fw_main


def _alloc():
    gc.collect()
    return gc.mem_alloc()


class _Probe:
    def __init__(self, link, base):
        self.link = link
        self.base = base              # live heap of the app alone
        self.peaks = {}
        self.phase_conn = -2
        self.seen = ()
        self.tx_pdus = 0
        self.tx_bytes = 0

    def phase(self):
        link = self.link
        if link.conn < 0:
            return "idle"
        if link.conn != self.phase_conn:
            return "connected"
        if "pair_request" in self.seen:
            return "pairing"
        if "log_read" in self.seen:
            return "sync"
        return "connected"

    def handled(self, msg):
        if self.link.conn != self.phase_conn:
            self.phase_conn = self.link.conn
            self.seen = ()
        t = msg.get("type")
        if t not in self.seen:
            self.seen = self.seen + (t,)

    def measure(self, fn):
        before = _alloc()
        t0 = micropython.mem_total()
        fn()
        alloc = micropython.mem_total() - t0
        after = _alloc()
        phase = self.phase()
        got = self.peaks.get(phase)
        if got is None:
            got = self.peaks[phase] = {"held": 0, "alloc": 0, "bound": 0, "calls": 0}
        got["held"] = max(got["held"], before - self.base, after - self.base)
        got["alloc"] = max(got["alloc"], alloc)
        got["bound"] = max(got["bound"], before - self.base + alloc)
        got["calls"] += 1
        tx = self.link.tx
        if len(tx) > self.tx_pdus:
            self.tx_pdus = len(tx)
        n = 0
        for pdu in tx:
            n += len(pdu)
        if n > self.tx_bytes:
            self.tx_bytes = n


def main():
    with open(sys.argv[1]) as f:
        scen = json.load(f)
    stop = sys.argv[3]
    b = simboard.make(scen, None, 2.0, False, air=sys.argv[2], ble_name="heap-probe")
    # The app as fw.main.boot builds it, without the link: its heap is the baseline.
    radio = b.radio
    b.radio = None
    app = fw_main.boot(b)
    b.radio = radio
    base = _alloc()
    from fw import ble
    with_code = _alloc()
    link = ble.Link(app, radio)
    app.attach_link(link)
    with_link = _alloc()
    ring = 0
    for buf in link.ring:
        ring += len(buf)
    ring += len(link.ring_len) * 2
    # The Command attribute's buffer a board's bluetooth module allocates on this heap.
    stack_rx = ble.RX_SLOTS * (ble.PREFERRED_MTU - 3)

    probe = _Probe(link, base)
    real_handle = ble.blecmd.handle

    def handle(lnk, msg):
        probe.handled(msg)
        real_handle(lnk, msg)
    ble.blecmd.handle = handle
    real_service = link.service
    real_pump = link.pump

    def service():
        probe.measure(real_service)

    def pump():
        # As Link.pump: nothing to do costs nothing, and is not measured.
        if link.conn < 0 or link.conn_event or not (link.ring_count or link.tx or link.log_reqs):
            return
        probe.measure(real_pump)
    link.service = service
    periods = 0
    while True:
        b.wait_tick(pump)
        app.step()
        app.service()
        periods += 1
        if periods % 10 == 0:
            try:
                os.stat(stop)
                break
            except OSError:
                pass
    b.close()
    out = {"code_bytes": with_code - base, "link_bytes": with_link - with_code,
           "rx_ring_bytes": ring, "stack_rx_buffer_bytes": stack_rx,
           "tx_queue_pdus": probe.tx_pdus, "tx_queue_bytes": probe.tx_bytes,
           "periods": periods, "heap_bytes": gc.mem_alloc() + gc.mem_free()}
    for phase in ("idle", "connected", "pairing", "sync"):
        out[phase] = probe.peaks.get(phase)
    print(json.dumps(out))

main()
