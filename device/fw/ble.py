"""The firmware's end of the host link: a GATT server on MicroPython's `bluetooth`,
speaking podproto (protocol/README.md) to the companion app.

The IRQ handler only records (flags and small ints, allocating nothing: on the Pico W
it may run inside the heap-locked step): a Command write sets `rx_pending`, connection
changes set a flag; an exception in it is counted (`irq_errors`) and service() resets
the link, as the port would otherwise disable the handler for good. The Command buffer
is read (gatts_read allocates) in service() and pump(), into a preallocated ring of PDU
slots (one slot per credit announced in `info.rx_credits`; a read that holds several
writes the stack appended is split by the PDUs' lengths). Everything else happens in `service()`, which the app calls once per period
outside the control step, and in `pump()`, which the board calls between periods
(`board.wait_tick(idle)`) while enough of the period is left: pump only answers log
reads and hands queued notifications to the stack, so log sync keeps the link busy
although the loop services it once per 100 ms; any other command waits for service().
The device never waits for the host: a session, its limits and its safety run the
same with or without a link, and a dropped link only clears this object's
per-connection state.

Flow control both ways: the host spends one credit per PDU and gets it back only once
the PDU has been consumed, and service() consumes PDUs only while the notification
queue has room. Notifications are paced: they are handed to the stack at the rate the
link carries them (PDUs per connection event over the connection interval), with at
most two events' worth ahead, so the stack is not flooded (BTstack never refuses: it
copies onto the heap); what waits stays queued, whole frames only. A stack whose
buffers run out first (NimBLE's mbufs hold 8 notifications of 244 bytes: under two
events' worth at 6 PDUs per event) refuses with ENOMEM (counted in `enomem`), and the
next pump() after the air's next message tries again. No API reports PDUs per event:
the board's figure is where the pacing starts each connection, and ENOMEM (what the
stack took between two refusals some events apart) brings it down to what the link
carries.
The interval is the board's at each connect until the stack reports an update.
The MTU is 23 until an exchange completes: the steamer asks for one once connected
(gattc_exchange_mtu; not every central starts it), and frames after it go in PDUs of
the new size.
"""
import errno
import os
import time
from array import array
from binascii import hexlify

from micropython import const

import bluetooth
import podproto
from podproto import gatt
from podproto import link as plink
from podproto import messages
from podproto.errors import ProtocolError
from podproto.names import PODLET_REASONS
from podproto.flow import RxCredits

from fw import keystore
from fw import blecmd

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)
_IRQ_MTU_EXCHANGED = const(21)
_IRQ_CONNECTION_UPDATE = const(27)

FW_VERSION = "0.1.0"
PREFERRED_MTU = const(247)
_MAX_PDU = const(244)          # PREFERRED_MTU - 3: the largest PDU a slot holds
RX_SLOTS = const(16)           # host credits: PDUs the ring holds
# Notification pacing, when the board does not say: PDUs the stack sends per connection
# event, and the interval until the stack reports the central's (a connection update).
_PDUS_PER_EVENT = const(4)
_INTERVAL_MS = const(30)
_BURST_EVENTS = const(2)       # events' worth handed to the stack ahead of the link
_TOKEN = const(1000)           # one PDU, in the pacing's milli-PDUs
# The pacing learns from ENOMEM (NimBLE): the PDUs the stack took between two refusals
# over the time between them is what the link carried (PDUs per event), measured over
# _RATE_MIN_EVENTS events at least (refusals closer together are one full stack: a
# window of an event or two reads the part of an event's frees that had come in, 2 of
# 4, and held the pace at half the link); after _PROBE_EVENTS events' worth taken
# without a refusal the estimate goes one PDU per event back up to the board's figure,
# and past it (pdus_cap) only where the stack refuses what it cannot hold. 4, not 8: on a link whose PDUs per event change every 0.7 s (the
# benchmark's changing link) a pace climbing from 3 to 5 took most of a phase, and sync
# on the NimBLE model at MTU 247 kept 0.84-0.88 of the link; at 4, 0.91-0.92 (an ENOMEM
# now and then costs NimBLE nothing: the notification is refused whole).
_PROBE_EVENTS = const(4)
_RATE_MIN_EVENTS = const(8)
_PACE_CAP_X = const(4)
_RATE_WINDOW_MS = const(3000)  # refusals further apart say nothing of the rate
_STATE_PERIODS = const(10)     # State written (and notified) every second
# pump(): log replies made per call, and only while fewer PDUs than this wait for the
# stack, so a call costs at most a couple of journal reads.
_PUMP_REPLIES = const(2)
_PUMP_TX_LOW = const(8)
_SERVE_ALL = const(16)         # service() without pump: every pending read, as room allows
# Commands pump() runs itself; anything else is held for service(), in order.
_PUMP_TYPES = ("log_read",)
# A connection holds the steamer (which stops advertising): one that has not
# authenticated is dropped AUTH_TIMEOUT_S after it connected or its pairing ended (a
# pairing under way, ~10 s of slices on a board, is not cut), an authenticated one
# after IDLE_TIMEOUT_S without a frame either way. On time.ticks_ms, the clock the
# link's pacing runs on: a board's uptime, and in the sim the air's (real) time, so a
# steamer simulated faster than real time gives a host as long as a real one does (a
# real board's code served on the port models keeps its own clock, paced: shorter).
AUTH_TIMEOUT_S = const(10)
IDLE_TIMEOUT_S = const(120)
# A real board writes records a few a period (App.flash_work, FLASH_BUDGET_MS), so a host
# whose commands each make one (a refused start: the audit's and the journal's appends)
# could queue them faster than they drain, until the heap ran out (a Pico W's and a C3's
# code on the port models: MemoryError and the link reset after ~150 quick commands).
# While this many writes wait, the host's frames stay in the ring and its credits with
# them: it waits, nothing is refused or lost, and the queue's RAM is bounded.
FLASH_BACKLOG_HIGH = const(8)
# While its connection has not authenticated the steamer goes on advertising (the
# stacks advertise as a connected peripheral while they have a free connection), and a
# central that connects then takes the link: the one that had not authenticated is
# dropped, so a paired host gets in at once past a silent central. One that connects
# while a host is authenticated (or pairing) is dropped at once. Connections to drop,
# queued by the IRQ handler for service():
_KICK_SLOTS = const(4)
# The podlet's state in status (podproto.names.PODLET_STATES).
_POD_NONE = const(0)
_POD_CHECKING = const(1)
_POD_ACCEPTED = const(2)
_POD_REFUSED = const(3)
_ADV_INTERVAL_US = const(200000)
_MFR_ID = const(0xFFFF)        # the SIG's test company ID until we have our own

_CAPS = gatt.CAP_PROFILES | gatt.CAP_LOG | gatt.CAP_FAULTS | gatt.CAP_AUTH

def _services():
    chars = []
    for _name, uuid, flags in gatt.CHARACTERISTICS:
        chars.append((bluetooth.UUID(uuid), flags))
    dis = []
    for _name, uuid in gatt.DIS_FIELDS:
        dis.append((bluetooth.UUID(uuid), gatt.FLAG_READ))
    return ((bluetooth.UUID(gatt.SERVICE_UUID), tuple(chars)),
            (bluetooth.UUID(gatt.DIS_UUID), tuple(dis)))


def _uuid_le(uuid):
    hexs = uuid.replace("-", "")
    out = bytearray(16)
    for i in range(16):
        out[15 - i] = int(hexs[2 * i:2 * i + 2], 16)
    return bytes(out)


class Link:
    def __init__(self, app, radio):
        self.app = app
        self.board = app.board
        self.radio = radio
        self.name = getattr(self.board, "ble_name", "steamer")
        self.keys = keystore.KeyStore(self.board.data_dir)
        self.prof_dir = self.board.data_dir + "/upload"
        try:
            os.mkdir(self.prof_dir)
        except OSError:
            pass
        # The receive ring, filled by the IRQ handler: one buffer per slot, so no large
        # block has to be found in a fragmented heap.
        self.ring = [bytearray(_MAX_PDU) for _ in range(RX_SLOTS)]
        self.ring_len = array("H", [0] * RX_SLOTS)
        self.ring_head = 0
        self.ring_count = 0
        self.overruns = 0          # PDUs refused in the IRQ: no credit or too long
        self.pdus_lost = 0         # host PDUs that never arrived (seq gaps), credited back
        self.reasm = plink.Reassembler(plink.MAX_FRAME, _MAX_PDU)
        self.rx = RxCredits(RX_SLOTS)
        # Per connection.
        self.conn = -1
        # The connection service() last started, which every notification goes to. The
        # IRQ handler sets self.conn, and on NimBLE it runs on the stack's own task,
        # anywhere in service(): a central that connected while the last one's commands
        # were being answered got those answers (a stranger reading what an
        # authenticated host asked for). _notify sends nothing while a connection event
        # waits for service() (NimBLE hands a freed handle out again).
        self.serving = -1
        self.conn_event = 0        # set by the IRQ: 1 connected, 2 disconnected, 3 MTU
        self.rx_pending = 0        # set by the IRQ: the Command buffer holds writes
        self.rx_foreign = 0        # ... some of them from a connection not ours
        self.rx_mixed = 0          # ... and ours after them
        self.irq_errors = 0        # exceptions the IRQ handler caught
        self.kick = array("h", [-1] * _KICK_SLOTS)   # connections service() drops
        self.kicked = 0            # connections dropped for another (either way)
        self.mtu = 23
        self.frag = plink.Fragmenter(20)
        self.tx = []               # PDUs waiting for the stack
        self.tx_id = 0
        self.interval_default_ms = getattr(self.board, "BLE_INTERVAL_MS", _INTERVAL_MS)
        self.interval_ms = self.interval_default_ms
        self.pdus_default = getattr(self.board, "BLE_PDUS_PER_EVENT", _PDUS_PER_EVENT)
        self.pdus_per_event = self.pdus_default   # the estimate the pacing runs on
        # How far the estimate may climb: the board's figure where the stack takes all it
        # is given (BTstack copies what waits onto the heap, so the pace is all that
        # bounds it); where it refuses what it cannot hold (NimBLE: ENOMEM, harmless) up
        # to _PACE_CAP_X times that, so a link faster than the figure over the assumed
        # interval (one no connection update reported: 15 ms kept the pace, and a sync,
        # at 0.72-0.76 of the link) is found by the probe.
        self.pdus_cap = self.pdus_default * (
            _PACE_CAP_X if getattr(self.board, "BLE_REFUSES_WHEN_FULL", False) else 1)
        self.tx_taken = 0          # PDUs the stack took since the last refusal
        self.tx_starved = 0        # 1: since then, the pace held a notification back
        self.tx_clean = 0          # ... cleanly since the probe or a fed window set the pace
        self.tx_unrefused = 0      # ... since the stack last refused one
        self.enomem_t_ms = time.ticks_ms()
        self.tx_tokens = 0         # milli-PDUs the stack may take now
        self.tx_t_ms = time.ticks_ms()
        self.authed = None         # host_id of the authenticated host
        self.session = None        # its session key (podproto.pairing.session_pads)
        self.cmd_ctr = 0           # the counter its next command must carry
        self.auth_rejects = 0      # commands refused for their tag or counter
        self.pairing = None        # the pairing under way (fw.blecmd.pair_slices)
        self.pending_key = None    # (host_id, key) it made, stored once the host proves it
        self.drop_at_ms = time.ticks_ms()   # when the connection is dropped (ticks_ms)
        self.timeouts = 0          # connections dropped for it
        self.dev_nonce = None
        self.log_reqs = []         # pending (from_seq, max_records)
        self.held = None           # a command pump() left for service()
        # Counters the tests and the benchmark read.
        self.errors = 0
        self.enomem = 0            # notifications the stack refused for want of buffers
        self.failures = 0          # service() calls that failed (the link was reset)
        self.last_failure = None
        self.frames_in = 0
        self.periods = 0
        self.pumps = 0             # pump() calls that had something to do
        self.pumped = False        # pump() had something to do since the last service()
        self.adv_key = -1
        self.h_info = self.h_cmd = self.h_event = self.h_state = -1
        self.up = False
        try:
            self._start()
        except Exception as e:  # noqa: BLE001 - a dead radio must not stop the steamer
            self.last_failure = repr(e)[:60]
            self.app.emit({"event": "link_reset", "reason": self.last_failure})

    def _start(self):
        radio = self.radio
        radio.active(True)
        radio.config(gap_name=self.name, mtu=PREFERRED_MTU)
        handles = radio.gatts_register_services(_services())
        self.h_info, self.h_cmd, self.h_event, self.h_state = handles[0]
        # Append mode, room for every credit: the stack never has to drop a write.
        radio.gatts_set_buffer(self.h_cmd, RX_SLOTS * _MAX_PDU, True)
        dis = handles[1]
        for i in range(len(dis)):
            radio.gatts_write(dis[i], (b"Podlet", b"steamer-1", self._serial(),
                                       self.board.name.encode(), FW_VERSION.encode())[i])
        radio.irq(self._irq)
        self.up = True
        self._write_info()
        self._write_state()
        self._advertise()

    # ---- IRQ: record only -------------------------------------------------------------
    def _irq(self, event, data):
        try:
            self._on_irq(event, data)
        except Exception:  # noqa: BLE001 - the port would disable the handler for good
            self.irq_errors += 1

    def _on_irq(self, event, data):
        if event == _IRQ_GATTS_WRITE:
            if data[1] != self.h_cmd:
                return
            if data[0] != self.conn:
                self.rx_foreign = 1
            elif self.rx_foreign:
                self.rx_mixed = 1              # ours after another's, unread: no boundary
            self.rx_pending = 1
        elif event == _IRQ_CENTRAL_CONNECT:
            old = self.conn
            if old >= 0 and data[0] != old:
                if self.authed is not None or self.pairing is not None:
                    self._kick(data[0])            # the steamer is taken
                    return
                self._kick(old)                    # it had not authenticated: the newcomer's
            if self.rx_pending:
                self.rx_foreign = 1            # the old connection's, unread
            self.conn = data[0]
            self.mtu = 23
            self.interval_ms = self.interval_default_ms   # reported only when it changes
            self.conn_event = 1
            # The ring and the credits are service()'s alone (the handler may run on the
            # stack's thread, between a test of them and its update): _on_connection
            # starts them again; nothing is read from the stack until it has.
        elif event == _IRQ_CENTRAL_DISCONNECT:
            if data[0] == self.conn:
                if self.rx_pending:
                    self.rx_foreign = 1
                self.conn = -1
                self.conn_event = 2
        elif event == _IRQ_MTU_EXCHANGED:
            if data[0] == self.conn:
                self.mtu = data[1]
                self.conn_event = self.conn_event or 3
        elif event == _IRQ_CONNECTION_UPDATE:
            if data[0] == self.conn and data[1] > 0:
                self.interval_ms = data[1] * 5 // 4 or 1      # in units of 1.25 ms

    def _kick(self, conn):
        kick = self.kick
        for i in range(_KICK_SLOTS):
            if kick[i] < 0:
                kick[i] = conn
                return
        # No slot (more centrals than the stack has connections): its timeout will do.

    def _read_cmd(self):
        """Moves what the stack appended to the Command buffer into the ring. Append
        mode: the writes since the last read, one or several. A write is one PDU, and each
        PDU takes a credit: a host that packs two PDUs into one write is charged two. What
        a connection not ours wrote with it cannot be told apart: the read is dropped."""
        if not self.rx_pending or (self.conn_event and not self.rx_foreign):
            return                     # a new connection's: once service() has started it
        self.rx_pending = 0
        buf = self.radio.gatts_read(self.h_cmd)
        if self.rx_foreign:
            self.rx_foreign = 0
            if self.rx_mixed:
                # Our PDUs behind another connection's: which bytes are whose is lost,
                # and with them the credit count. Start the connection again.
                self.rx_mixed = 0
                raise RuntimeError("Command writes of two connections mixed")
            return
        n = len(buf)
        at = 0
        while at < n:
            end = plink.pdu_end(buf, at, n)
            if end < 0:
                end = n            # no PDU boundary to trust: the rest, whole, is refused
            self._queue(buf, at, end, n)
            at = end

    def _queue(self, buf, start, end, n):
        size = end - start
        if size > _MAX_PDU or size > self.mtu - 3 or self.ring_count >= RX_SLOTS:
            self.overruns += 1
            return
        try:
            self.rx.received()
        except ProtocolError:
            self.overruns += 1
            return
        slot = (self.ring_head + self.ring_count) % RX_SLOTS
        if size == n:
            self.ring[slot][0:size] = buf
        else:
            self.ring[slot][0:size] = memoryview(buf)[start:end]
        self.ring_len[slot] = size
        self.ring_count += 1

    # ---- service: everything else ----------------------------------------------------
    def service(self):
        self.periods += 1
        if not self.up:
            return
        try:
            self._service()
        except Exception as e:  # noqa: BLE001 - the link must never take the device down
            self._fail(e)

    def pump(self):
        """Between periods: moves log sync along (answers log reads, refills the stack's
        notification buffers). Bounded work, no flash writes, no crypto beyond a
        command's tag (two SHA-256 runs): anything but a log read is held for service()."""
        if not self.up or self.conn < 0 or self.conn_event or self.irq_errors:
            return
        if not (self.rx_pending or self.ring_count or self.tx or self.log_reqs):
            return
        self.pumps += 1
        self.pumped = True
        try:
            self._drain(True)
            self._flush()
            n = 0
            while n < _PUMP_REPLIES and self.log_reqs and len(self.tx) < _PUMP_TX_LOW:
                blecmd.serve_logs(self, 1)
                self._flush()
                n += 1
            if self.rx.owed and not self.tx:
                self.send({"type": "credit"})
                self._flush()
        except Exception as e:  # noqa: BLE001 - as in service()
            self._fail(e)

    def _fail(self, e):
        # Out of heap, a flash error, a bug: drop the connection and its state; the
        # session, its limits and its safety go on without the host.
        self.failures += 1
        self.last_failure = repr(e)[:60]
        conn = self.conn
        self.conn = self.serving = -1
        self.tx = []
        self.log_reqs = []
        self.held = None
        if conn >= 0:
            try:
                self.radio.gap_disconnect(conn)
            except Exception:  # noqa: BLE001
                pass
        self.adv_key = -1
        try:
            self.app.emit({"event": "link_reset", "reason": self.last_failure})
        except Exception:  # noqa: BLE001
            pass

    def _service(self):
        if self.irq_errors:
            e = self.irq_errors
            self.irq_errors = 0
            raise RuntimeError("%d exceptions in the IRQ handler" % e)
        kick = self.kick
        for i in range(_KICK_SLOTS):
            if kick[i] >= 0:
                conn = kick[i]
                kick[i] = -1
                self.kicked += 1
                try:
                    self.radio.gap_disconnect(conn)
                except OSError:
                    pass
        ev = self.conn_event
        if ev:
            self.conn_event = 0
            self._on_connection(ev)
        if self.conn >= 0:
            self._drain()
            if self.pairing is not None:
                self._touch()
                blecmd.pair_slices(self, self.app.check_slices)
            if self.tx or self.log_reqs or self.held is not None:
                self._touch()          # answers still going out: not idle
            if time.ticks_diff(time.ticks_ms(), self.drop_at_ms) >= 0:
                self._drop()
                return
            # When the board pumps between periods, the period's share of log replies is
            # pump's: service() stays short however far behind the host asked.
            blecmd.serve_logs(self, _PUMP_REPLIES if self.pumped else _SERVE_ALL)
            self.pumped = False
            if self.rx.owed and not self.tx:
                self.send({"type": "credit"})
            self._flush()
        if self.periods % _STATE_PERIODS == 0:
            self._write_state()
        if self.conn < 0 or self.authed is None:
            self._advertise()
        elif self.adv_key != -2:
            self.adv_key = -2              # authenticated: the steamer is taken
            self.radio.gap_advertise(None)

    def _touch(self):
        """Moves the connection's deadline on after a frame it sent or a pairing slice."""
        now = time.ticks_ms()
        if self.authed is not None:
            self.drop_at_ms = time.ticks_add(now, IDLE_TIMEOUT_S * 1000)
        elif self.pairing is not None:
            self.drop_at_ms = time.ticks_add(now, AUTH_TIMEOUT_S * 1000)
        elif time.ticks_diff(self.drop_at_ms, now) > AUTH_TIMEOUT_S * 1000:
            self.drop_at_ms = time.ticks_add(now, AUTH_TIMEOUT_S * 1000)

    def _drop(self):
        """Ends a connection past its deadline and advertises again."""
        conn = self.conn
        self.conn = self.serving = -1
        self.timeouts += 1
        try:
            self.radio.gap_disconnect(conn)
        except OSError:
            pass
        self._on_connection(2)

    def _on_connection(self, ev):
        if ev == 3:
            # An MTU exchange after the connect (the central's late one, or ours): the
            # frames from now on go in PDUs of the new size, the PDU counter runs on, and
            # what is queued keeps the size it was cut to (the host reassembles any PDU
            # size up to its own limit: podproto.link).
            size = max(plink.MIN_PDU, min(_MAX_PDU, self.mtu - 3))
            if size != self.frag.max_pdu:
                seq = self.frag.seq
                self.frag = plink.Fragmenter(size)
                self.frag.seq = seq
                self._write_info()
            return
        self.serving = self.conn
        if self.rx_foreign:
            self._read_cmd()           # what the last connection left (dropped)
        self.reasm.reset()
        self.ring_count = 0
        self.rx.held = 0
        self.rx.owed = 0
        self.tx = []
        self.tx_id = 0
        self.pdus_per_event = self.pdus_default
        self.tx_taken = self.tx_clean = self.tx_starved = self.tx_unrefused = 0
        self.tx_tokens = _BURST_EVENTS * self.pdus_per_event * _TOKEN
        self.tx_t_ms = time.ticks_ms()
        self.enomem_t_ms = time.ticks_add(self.tx_t_ms, -_RATE_WINDOW_MS - 1)
        self.authed = None
        self.session = None
        self.cmd_ctr = 0
        self.auth_rejects = 0
        self.pairing = None
        self.pending_key = None
        self.dev_nonce = None
        self.log_reqs = []
        self.held = None
        self.drop_at_ms = time.ticks_add(time.ticks_ms(), AUTH_TIMEOUT_S * 1000)
        self.adv_key = -1              # the stack stopped advertising when it connected
        if self.conn >= 0:
            self.frag = plink.Fragmenter(max(plink.MIN_PDU, min(_MAX_PDU, self.mtu - 3)))
            self._write_info()
            self._ask_mtu()
        self._advertise()

    def _ask_mtu(self):
        # Not every central starts the MTU exchange, and until one runs the link
        # carries 20 bytes a PDU: the steamer asks too, as the GATT client of its own
        # exchange (both ports have gattc_exchange_mtu). Either side's gives the same
        # MTU, the lower of the two preferred; its IRQ comes as for the central's.
        try:
            self.radio.gattc_exchange_mtu(self.conn)
        except OSError:
            pass        # EALREADY (NimBLE: asked on this connection), ENOTCONN (gone)
        except AttributeError:
            pass        # a port built without the GATT client: the central's, if any

    def _drain(self, pumping=False):
        self._read_cmd()
        held = self.held
        if held is not None:
            if pumping:
                return
            self.held = None
            self._handle(held)
            self._touch()
        backlog = self.app.flash_backlog
        while (self.ring_count and len(self.tx) < blecmd.TX_HIGH
               and backlog() < FLASH_BACKLOG_HIGH):
            slot = self.ring_head
            n = self.ring_len[slot]
            self.ring_head = (slot + 1) % RX_SLOTS
            self.ring_count -= 1
            self.rx.consumed()
            try:
                size = self.reasm.feed(memoryview(self.ring[slot])[0:n])
                if not size:
                    continue
                msg = self.reasm.message(size)
            except ProtocolError as e:
                self.refuse("too_large" if e.code == "too_large" else "malformed", 0, 0, str(e))
                continue
            self.frames_in += 1
            # Checked in arrival order, before any later frame is decoded, so a frame
            # held for service() is judged as if it ran now.
            if not blecmd.admit(self, msg, self.reasm.frame(size)):
                continue
            if pumping and msg["type"] not in _PUMP_TYPES:
                self.held = msg
                break
            self._handle(msg)
            self._touch()
        lost = self.reasm.lost
        if lost:
            # Writes the host's stack dropped (a gap in the PDUs' seq): their credits
            # go back, or the host would run out of them one dropped write at a time.
            self.reasm.lost = 0
            self.rx.lost(lost)
            self.pdus_lost += lost
        if self.overruns:
            n = self.overruns
            self.overruns = 0
            self.refuse("no_credits", 0, 0, "%d PDUs refused" % n)

    def _handle(self, msg):
        try:
            blecmd.handle(self, msg)
        except ProtocolError as e:
            self.refuse("malformed", blecmd.type_code(msg), msg.get("id", 0), str(e))
        except OSError as e:
            self.refuse("internal", 0, msg.get("id", 0), "os error %d" % e.args[0])

    def _refill(self):
        """The pacing's budget: the link's rate since the last call, two events' worth
        at most (what the stack holds beyond that would only wait there)."""
        now = time.ticks_ms()
        dt = time.ticks_diff(now, self.tx_t_ms)
        self.tx_t_ms = now
        burst = self._burst()
        if dt > 0:
            self.tx_tokens = min(burst, self.tx_tokens
                                 + min(dt, 1000) * self.pdus_per_event * _TOKEN // self.interval_ms)

    def _burst(self):
        return _BURST_EVENTS * self.pdus_per_event * _TOKEN

    def _refused(self):
        """ENOMEM: the stack is full. The PDUs it took since the last refusal at least
        _RATE_MIN_EVENTS events back, over the time between them, are what the link
        carried (the stack was full at both) if the pace kept it fed: the PDUs per event
        the pacing runs on; if the pace held some back, only a floor of it."""
        self.tx_unrefused = 0
        now = time.ticks_ms()
        dt = time.ticks_diff(now, self.enomem_t_ms)
        if dt < _RATE_MIN_EVENTS * self.interval_ms:
            pass                # the same full stack: the window goes on
        else:
            if dt < _RATE_WINDOW_MS and self.tx_taken:
                ppe = (self.tx_taken * self.interval_ms + dt // 2) // dt
                if self.tx_starved:
                    # The pace held notifications back in the window: the stack ran
                    # short of them, not the link of room, so what it took is only a
                    # floor of what the link carries (taken as the rate, it read 3 PDUs
                    # per event on a 4-PDU link and held the pace there). Nor does it
                    # stop the probe up: reset at every refusal, a pace of 5 on a 6-PDU
                    # link whose stack a two-event burst overfills seldom climbed back.
                    ppe = max(ppe, self.pdus_per_event)
                else:
                    self.tx_clean = 0
                self.pdus_per_event = max(1, min(self.pdus_cap, ppe))
            self.enomem_t_ms = now
            self.tx_taken = self.tx_starved = 0
        # The budget is kept: what frees the stack's buffers is the link carrying them,
        # and the next pump() comes with the air's next message, so a retry then finds
        # room. Zeroed here, it waited for the pace to refill and the stack ran dry
        # between events (a sync at MTU 247 kept 0.73 of the link instead of 0.84).

    def _notify(self, handle, data):
        """Hands one notification to the stack if the budget allows: True if it took it.
        ENOMEM (the stack's buffers are full) is counted and may set the pace
        (_refused); ENOTCONN ends the connection's queue (its IRQ follows); any other error
        propagates, and service() drops the connection."""
        if self.conn_event:
            # The connection changed since service() started it (the IRQ may run on
            # NimBLE's task anywhere in service()): what is queued is the last one's,
            # and a new central may have the same handle. service() starts again.
            return False
        if self.tx_tokens < _TOKEN:
            self.tx_starved = 1
            return False
        try:
            self.radio.gatts_notify(self.serving, handle, data)
        except OSError as e:
            if e.args[0] == errno.ENOMEM:
                self.enomem += 1
                self._refused()
                return False
            if e.args[0] == errno.ENOTCONN:
                self.tx = []
                return False
            raise e
        self.tx_tokens -= _TOKEN
        self.tx_taken += 1
        self.tx_clean += 1
        self.tx_unrefused += 1
        ppe = self.pdus_per_event
        # Past the board's figure the pace climbs only while the stack refuses nothing at
        # all: a link at the figure fills NimBLE's few buffers now and then (bursts), and
        # a climb there met a refusal at each step (6 PDUs per event at MTU 247: 0.93
        # capped at the figure, 0.88-0.91 climbing past it on clean windows alone); a link
        # faster than the pace never fills them. There it climbs by a quarter more.
        below = ppe < self.pdus_default
        if (self.tx_clean if below else self.tx_unrefused) >= _PROBE_EVENTS * ppe:
            self.tx_clean = self.tx_unrefused = 0
            if ppe < self.pdus_cap:
                self.pdus_per_event = min(self.pdus_cap, ppe + (1 if below else 1 + ppe // 4))
        return True

    def _flush(self):
        tx = self.tx
        if not tx:
            return
        self._refill()
        sent = 0
        # A PDU goes whole or waits; an error that would cut a frame short ends the
        # connection instead (the host's reassembler would lose the next frame too).
        while sent < len(tx) and self._notify(self.h_event, tx[sent]):
            sent += 1
        if sent and self.tx is tx:
            self.tx = tx[sent:]

    # ---- frames out ------------------------------------------------------------------
    def send(self, msg):
        msg["flags"] = messages.FLAG_FROM_DEVICE
        msg["id"] = self.tx_id
        self.tx_id = (self.tx_id + 1) & 0xFF
        msg["credits"] = self.rx.take_grant()
        for pdu in self.frag.split(podproto.encode(msg)):
            self.tx.append(pdu)

    def refuse(self, code, ref_type, ref_id, detail):
        self.errors += 1
        if len(detail) > 120:
            detail = detail[:120]
        self.send({"type": "error", "code": messages.ERR_NAMES.index(code), "ref_type": ref_type,
                    "ref_id": ref_id, "detail": _printable(detail)})

    def ack(self, msg):
        self.send({"type": "ack", "ref_type": blecmd.type_code(msg), "ref_id": msg["id"]})

    # ---- characteristics ---------------------------------------------------------------
    def status(self):
        app = self.app
        pod = app.podlet
        clock = self.board.clock_s()
        insession = app.session_prof is not None
        state, reason = self._podlet_state()
        return {"type": "status", "state": app.state, "fault": app.fault,
                "boiler_mc": app.boiler_mc, "outlet_mc": app.outlet_mc,
                "heater_pct": app.heater_pm // 10,
                "pump_ul_min": min(0xFFFF, app.pump_nl_s * 60 // 1000),
                "session_ul": app.session_nl // 1000,
                "session_s": min(0xFFFF, app.dose_steps // 10),
                "podlet_type": pod["podlet_type"] if pod else 0,
                "clock_s": clock if 0 <= clock <= 0xFFFFFFFF else 0,
                # The running session's limits (0 outside one): dose and dosing time.
                "limit_ul": app.dose_limit_nl // 1000 if insession else 0,
                "limit_s": min(0xFFFF, app.session_limit_steps // 10) if insession else 0,
                "podlet_state": state, "podlet_reason": reason}

    def _podlet_state(self):
        """(podproto.names.PODLET_STATES index, PODLET_REASONS index) of the podlet in."""
        app = self.app
        if not app.podlet_in:
            return _POD_NONE, 0
        if app.podlet is not None:
            return _POD_ACCEPTED, 0
        why = app.podlet_refusal
        if not app.podlet_seen or why is None or app.podlet_pending():
            return _POD_CHECKING, 0
        for i in range(2, len(PODLET_REASONS)):
            if PODLET_REASONS[i] == why:
                return _POD_REFUSED, i
        return _POD_REFUSED, 1             # "other"

    def _write_state(self):
        msg = self.status()
        msg["flags"] = messages.FLAG_FROM_DEVICE
        frame = podproto.encode(msg)
        self.radio.gatts_write(self.h_state, frame)
        if self.serving >= 0 and self.mtu - 3 >= len(frame) and len(self.tx) < blecmd.TX_HIGH:
            self._refill()
            try:
                self._notify(self.h_state, frame)
            except OSError:
                pass                   # the next second's will do

    def _write_info(self):
        j = self.app.journal
        frame = podproto.encode({
            "type": "info", "flags": messages.FLAG_FROM_DEVICE, "proto": podproto.VERSION,
            "caps": _CAPS, "max_frame": plink.MAX_FRAME,
            "max_pdu": max(plink.MIN_PDU, min(_MAX_PDU, self.mtu - 3)),
            "rx_credits": RX_SLOTS, "log_first": j.first_seq(), "log_next": j.next_seq(),
            "fw_version": FW_VERSION, "journal_id": j.journal_id})
        self.radio.gatts_write(self.h_info, frame)

    def _advertise(self):
        app = self.app
        pairing = 1 if app.pairing_open() else 0
        key = app.state | (app.fault << 4) | (pairing << 9)
        if key == self.adv_key:
            return
        self.adv_key = key
        mfr = bytes((_MFR_ID & 0xFF, _MFR_ID >> 8, app.state, app.fault, pairing))
        adv = (b"\x02\x01\x06" + bytes((17, 0x07)) + _uuid_le(gatt.SERVICE_UUID)
               + bytes((len(mfr) + 1, 0xFF)) + mfr)
        name = self.name.encode()[:29]
        resp = bytes((len(name) + 1, 0x09)) + name
        if self.conn < 0:
            self.radio.gap_advertise(_ADV_INTERVAL_US, adv, resp_data=resp)
            return
        try:
            self.radio.gap_advertise(_ADV_INTERVAL_US, adv, resp_data=resp)
        except OSError:
            self.adv_key = -1              # no free connection yet: the next service()

    def _serial(self):
        return hexlify(self.radio.config("mac")[1])


def _printable(s):
    out = []
    for c in s:
        out.append(c if " " <= c <= "~" else "?")
    return "".join(out)
