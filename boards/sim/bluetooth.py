"""MicroPython's `bluetooth` module for the unix port, carried over a loopback socket to
the simulated air (tools/steamer_sim/air.py), so the firmware's GATT server runs unchanged.
What it says there is airwire.py's wire protocol (airwire.encode writes each line).

Same API as the real module for what a peripheral uses: BLE().active, config, irq (same
event codes and data tuples), gap_advertise, gap_disconnect, gatts_register_services,
gatts_read / write / notify / indicate, gatts_set_buffer, gattc_exchange_mtu; UUID and the
FLAG_* constants. The central role (gap_scan, gap_connect, gattc_discover_*, gattc_read,
gattc_write) is blecentral.py's, loaded on its first use. IRQs arrive as the port model
delivers them (below), or, with no real port's model, when the board calls
`poll(timeout_ms)` from its wait_tick: a program of its own that never polls (aioble's
examples) names a board in $STEAMER_SIM_BOARD.

The port model (PORT, else $STEAMER_SIM_BOARD through BOARD_PORTS: "nimble" for the
ESP32-C3, "btstack" for the Pico W) decides what the real ports decide differently; all
follow extmod/modbluetooth.c where it is shared. When neither names one the model is
"sim", no real port: the notification buffering the sim had before the port models
(TX_SLOTS notifications in flight whatever their size, then ENOMEM), kept as the default
so today's tests and traces stay as they were; it has the shared semantics below.
- NimBLE: past the controller's NIMBLE_ACL_SLOTS a notification takes mbufs from a pool
  of MSYS_BLOCKS blocks of MSYS_BLOCK_SIZE bytes until the controller takes it; none
  left: OSError(ENOMEM), so fewer large ones fit.
- BTstack: never ENOMEM; past the controller's ACL_SLOTS a notification is copied onto
  the MicroPython heap (m_tracked_calloc) until it is sent, without bound.
- Both: a notification over MTU-3 is cut to MTU-3; an append-mode write that overflows the
  buffer keeps what fits and still fires the IRQ; gatts_read of an unknown handle is b"";
  gatts_read returns a new bytes object (it allocates); gatts_write returns the length;
  config("gap_name") is bytes; config("mac") is this radio's own address, known once
  active (OSError(ENODEV) before); advertising data over 31 bytes is refused (EINVAL);
  a characteristic that notifies or indicates has a CCCD handle after its value handle;
  an exception in the IRQ handler is printed and the handler disabled; the connection
  interval is reported (_IRQ_CONNECTION_UPDATE) only when the central changes it; the
  MTU is 23 until an exchange completes (_IRQ_MTU_EXCHANGED), the central's or this
  side's own (gattc_exchange_mtu, once a connection: NimBLE says EALREADY after).
The air may ask for scheduled IRQs (LinkParams.coalesce_writes = n): the write IRQs
then wait until n writes have been appended (or the next poll), so the first handler
reads them all at once and the others read nothing, as when MicroPython runs a real
stack's handlers late. Connections: advertising stops when a central connects; the radio
may advertise again while it has fewer than CONNS (the air's PERIPHERAL_CONNS), and
connectable advertising with every connection taken raises OSError(ENOMEM).
"""
from binascii import hexlify, unhexlify
import errno
import json
import os
import select
import socket
import sys
import time

import micropython
from micropython import const

try:
    import _thread
except ImportError:            # a unix port built without threads: IRQs from poll() only
    _thread = None

from airwire import ENV, PERIPHERAL_CONNS as CONNS, encode, is_socket_path

FLAG_BROADCAST = const(0x0001)
FLAG_READ = const(0x0002)
FLAG_WRITE_NO_RESPONSE = const(0x0004)
FLAG_WRITE = const(0x0008)
FLAG_NOTIFY = const(0x0010)
FLAG_INDICATE = const(0x0020)

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)
_IRQ_GATTS_INDICATE_DONE = const(20)
_IRQ_MTU_EXCHANGED = const(21)
_IRQ_CONNECTION_UPDATE = const(27)

_DEFAULT_BUF = const(20)     # what an attribute holds unless gatts_set_buffer says more
_ADV_MAX = const(31)         # legacy advertising data (BLE_HS_ADV_MAX_SZ)
_CCCD_UUID = const(0x2902)
_IPPROTO_TCP = const(6)
_TCP_NODELAY = const(1)
_ENODEV = const(19)          # ERRNO_BLUETOOTH_NOT_ACTIVE (extmod/modbluetooth.h)
# NimBLE on the ESP32-C3 (ESP-IDF components/bt/host/nimble/Kconfig.in: MSYS_1 is 12
# blocks of 256 bytes where the SoC has no SOC_ESP_NIMBLE_CONTROLLER, as the C3; 24 x 128
# is the C2/C6/H2's; ports/esp32/boards/sdkconfig.ble sets neither). A notification's
# value goes into a chain from MSYS_1 (ble_hs_mbuf_from_flat asks os_msys_get_pkthdr for
# 0 bytes: the smallest pool, never MSYS_2): the first block holds its size less the
# os_mbuf header, the packet header and the leading space NimBLE keeps, each further one
# its size less the header; ble_att_clt_tx_notify takes one block more for the ATT
# header. So up to 219 bytes take 2 blocks, 244 take 3. The blocks are held only while
# the notification waits in the host: once the controller has an ACL buffer for it,
# ble_hci_trans_hs_acl_tx (esp-hci/src/esp_nimble_hci.c) copies it over and frees the
# chain; the controller's buffer frees when the air has carried it.
MSYS_BLOCKS = const(12)
MSYS_BLOCK_SIZE = const(256)
_MBUF_HDR = const(16)
_MBUF_FIRST = const(219)
# The C3 controller's LE ACL buffers (its LE Read Buffer Size answer): its library is
# closed and allocates them on the fly (BT_CTRL_BLE_STATIC_ACL_TX_BUF_NB 0); 4 is an
# assumption on the strict side, a figure only a board can give (README, Not yet).
NIMBLE_ACL_SLOTS = const(4)
# BTstack: notifications the controller (the CYW43's ACL buffers) takes before
# att_server_notify answers BTSTACK_ACL_BUFFERS_FULL (an assumption: the chip reports it).
ACL_SLOTS = const(8)
# The heap a pending BTstack notification takes besides its value
# (notify_indicate_pending_op_t: a registration, op, handles, length).
_PENDING_HDR = const(24)

BOARD_PORTS = {"esp32c3": "nimble", "picow": "btstack"}
PORTS = ("nimble", "btstack", "sim")
TX_SLOTS = const(24)         # the "sim" model's notification buffers
# Where the air is ("host:port" or a Unix socket's path; None: $STEAMER_AIR) and the name
# the air knows this radio by (it keeps the same address across resets; a radio of the
# same name replaces it on the air): the board sets both before BLE().active(True). A
# program of its own (aioble's examples) needs only $STEAMER_AIR: without a name, each
# radio gets an address of its own. PORT: the port model (None: from $STEAMER_SIM_BOARD).
AIR = None
NAME = ""
PORT = None
# Whether the real ports' models deliver IRQs where those ports do (a reader thread:
# NimBLE's handlers run on it, BTstack's are scheduled with micropython.schedule and run
# at the main thread's next bytecode branch, inside heap_lock() too); False: from poll().
THREADS = True


def port_model():
    """The port model the next BLE() gets: PORT, else the simulated board's."""
    if PORT is not None:
        if PORT not in PORTS:
            raise ValueError("bluetooth.PORT must be one of %r, not %r" % (PORTS, PORT))
        return PORT
    board = os.getenv("STEAMER_SIM_BOARD")
    if board and board not in BOARD_PORTS:
        raise ValueError("$STEAMER_SIM_BOARD must be one of %r, not %r"
                         % (tuple(BOARD_PORTS), board))
    return BOARD_PORTS.get(board or "", "sim")


class _UUID(bytes):
    """A UUID as the port holds it: its 2, 4 or 16 bytes, little-endian, which the
    buffer protocol gives (bytes(uuid)); equal only to a UUID of the same type and value
    (modbluetooth.c bluetooth_uuid_binary_op, bluetooth_uuid_get_buffer)."""

    def __eq__(self, other):
        return isinstance(other, _UUID) and bytes(self) == bytes(other)

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash(bytes(self))

    def __repr__(self):
        b = bytes(self)
        if len(b) <= 4:
            return "UUID(0x%s)" % hexlify(bytes(reversed(b))).decode()
        return "UUID('%s')" % _uuid_str(self)

    __str__ = __repr__


def UUID(value):
    """bluetooth.UUID(value): an int (16-bit), a 2/4/16-byte buffer, or a string such as
    '6E400001-B5A3-F393-E0A9-E50E24DCCA9E' (modbluetooth.c bluetooth_uuid_make_new)."""
    if isinstance(value, _UUID):
        return value
    if isinstance(value, int):
        if not 0 <= value <= 0xFFFF:
            raise ValueError("invalid UUID")
        return _UUID(bytes((value & 0xFF, value >> 8)))
    if not isinstance(value, str):
        b = bytes(value)
        if len(b) in (2, 4, 16):
            return _UUID(b)
        value = b.decode()
    hexs = value.replace("-", "")
    if len(hexs) != 32:
        raise ValueError("UUID too long" if len(hexs) > 32 else "UUID too short")
    try:
        return _UUID(bytes(reversed(unhexlify(hexs))))
    except ValueError:
        raise ValueError("invalid char in UUID")


class _Attr:
    def __init__(self, handle):
        self.handle = handle
        self.value = b""
        self.size = _DEFAULT_BUF
        self.append = False


_ble = None


def BLE():
    """The one radio, as on a board."""
    global _ble
    if _ble is None:
        _ble = _Radio()
    return _ble


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def acquire(self, wait=True):
        return True

    def release(self):
        pass


def reset_radio():
    """The sim's seam for tests: the radio goes (active(False)) and the next BLE() makes a
    new one, with the port model PORT (or the board) then says."""
    global _ble
    if _ble is not None:
        _ble.active(False)
    _ble = None


class _Radio:
    def __init__(self):
        self.port = port_model()
        self._active = False
        self._sock = None
        self._poller = None
        self._rx = b""
        self._handler = None
        self._attrs = {}
        self._next_handle = 1
        self._addr = None
        self._mtu = 23
        self._name = b"MPY"
        self._conns = {}           # conn_handle -> negotiated mtu
        self._coalesce = {}        # conn_handle -> writes appended per IRQ batch
        self._mtu_asked = []       # connections this side ran its own MTU exchange on
        self._late = []            # write IRQs not yet delivered: (conn, handle)
        # Notifications the air has not carried yet, oldest first: NimBLE's mbuf blocks
        # each holds; BTstack's heap copy (None while the controller holds it).
        self._tx = []
        self.tx_in_flight = 0
        self.mbufs_used = 0
        # Counters a test may read: writes the stack had to cut, notifications refused
        # (NimBLE) or copied onto the heap (BTstack), handler exceptions.
        self.rx_overflow = 0
        self.rx_truncated = 0
        self.enomem = 0
        self.heap_copies = 0
        self.irq_errors = 0
        self.threaded = THREADS and _thread is not None and self.port != "sim"
        self._lock = _thread.allocate_lock() if _thread is not None else _NoLock()
        # Threaded: IRQs not yet delivered, (event, data), in a ring the main thread takes
        # from without allocating (list.pop shrinks its list with m_renew, py/objlist.c
        # list_pop, which raises MemoryError inside heap_lock(): with this lock held).
        # The reader thread grows it when full; it may allocate.
        self._ring = [None] * 32
        self._head = 0
        self._count = 0
        self._scheduled = False
        self._dispatch_cb = self._scheduled_dispatch    # bound once: scheduling allocates nothing
        self._got = 0              # threaded: messages the reader thread took
        self._got_seen = 0
        self._sim_q = []
        # The simulated world's events the air carried (`steamer sim press` ...): no
        # radio's business, the board takes them at its next period.
        self.sim_events = []
        self._gattc = None         # the central role (blecentral.Central), once used

    # ---- the MicroPython API --------------------------------------------------------
    def active(self, state=None):
        if state is None:
            return self._active
        if state and not self._active:
            self._connect_air()
        elif not state and self._active:
            if self._sock is not None:
                self._sock.close()
            self._sock = None
            if self._gattc is not None:
                self._gattc.close()
                self._gattc = None
            self._conns = {}
            self._coalesce = {}
            self._mtu_asked = []
            self._tx = []
            self.tx_in_flight = self.mbufs_used = 0
        self._active = bool(state)
        return self._active

    def config(self, *names, **kw):
        if names:
            name = names[0]
            if name == "mac":
                if not self._active:
                    raise OSError(_ENODEV)
                self._await_addr()
                return (0, self._addr)
            if name == "mtu":
                return self._mtu
            if name == "gap_name":
                return self._name
            raise ValueError("unknown config param")
        for k, v in kw.items():
            if k == "mtu":
                if v < 23 or v > 517:
                    raise ValueError("mtu")
                self._mtu = v
                self._send({"op": "mtu", "mtu": v})
            elif k == "gap_name":
                self._name = v.encode() if isinstance(v, str) else bytes(v)
            elif k in ("rxbuf", "bond", "io", "mitm", "le_secure"):
                pass
            else:
                raise ValueError("unknown config param")

    def irq(self, handler):
        self._handler = handler

    def gap_advertise(self, interval_us, adv_data=None, *, resp_data=None, connectable=True):
        if interval_us is None:
            self._send({"op": "adv", "data": None})
            return
        adv_data = bytes(adv_data or b"")
        resp_data = bytes(resp_data or b"")
        if len(adv_data) > _ADV_MAX or len(resp_data) > _ADV_MAX:
            # NimBLE: ble_gap_adv_set_data answers BLE_HS_EINVAL. BTstack passes it on,
            # and the controller refuses the HCI command: no advertising either way.
            if self.port != "btstack":
                raise OSError(errno.EINVAL)
            self._send({"op": "adv", "data": None})
            return
        if connectable and len(self._conns) >= CONNS:
            raise OSError(errno.ENOMEM)
        self._send({"op": "adv", "data": _hex(adv_data), "resp": _hex(resp_data)})

    def gap_disconnect(self, conn_handle):
        if conn_handle not in self._conns:
            if self._gattc is not None and self._gattc.has(conn_handle):
                with self._lock:
                    return self._gattc.gap_disconnect(conn_handle)
            return False
        self._send({"op": "disconnect", "conn": conn_handle})
        return True

    def gatts_register_services(self, services):
        out = []
        desc = []
        for svc_uuid, chars in services:
            handles = []
            # The attribute table as a GATT client discovers it (blecentral.py): the
            # service's handle range, each characteristic's value handle and descriptors.
            svc = {"uuid": _uuid_str(svc_uuid), "chars": [], "start": self._next_handle}
            self._next_handle += 1          # the service declaration
            for ch in chars:
                self._next_handle += 1      # the characteristic declaration
                h = self._next_handle
                self._next_handle += 1
                self._attrs[h] = _Attr(h)
                handles.append(h)
                descs = []
                svc["chars"].append({"uuid": _uuid_str(ch[0]), "flags": ch[1], "handle": h,
                                     "descs": descs})
                if ch[1] & (FLAG_NOTIFY | FLAG_INDICATE):
                    descs.append({"uuid": _uuid_str(_CCCD_UUID), "handle": self._next_handle})
                    self._next_handle += 1  # its CCCD (BTstack: value handle + 1)
                for d in (ch[2] if len(ch) > 2 else ()):
                    dh = self._next_handle
                    self._next_handle += 1
                    self._attrs[dh] = _Attr(dh)
                    handles.append(dh)
                    descs.append({"uuid": _uuid_str(d[0]), "handle": dh})
            svc["end"] = self._next_handle - 1
            out.append(tuple(handles))
            desc.append(svc)
        self._send({"op": "services", "services": desc})
        return tuple(out)

    def gatts_read(self, value_handle):
        a = self._attrs.get(value_handle)
        if a is None:
            return b""
        with self._lock:            # MICROPY_PY_BLUETOOTH_ENTER in gatts_db_read
            v = a.value
            if a.append:
                a.value = b""
        return bytes(memoryview(v))     # mp_obj_new_bytes: a new object, on the heap

    def gatts_write(self, value_handle, data, send_update=False):
        a = self._attr(value_handle)
        a.value = bytes(data)
        self._send({"op": "value", "handle": value_handle, "data": _hex(a.value)})
        if send_update:
            for conn in self._conns:
                self.gatts_notify(conn, value_handle)
        return len(a.value)

    def gatts_notify(self, conn_handle, value_handle, data=None):
        with self._lock:
            self._notify(conn_handle, value_handle, data)

    def _notify(self, conn_handle, value_handle, data):
        if conn_handle not in self._conns:
            raise OSError(errno.ENOTCONN)
        if data is None:
            data = self._attr(value_handle).value
        room = self._conns[conn_handle] - 3
        if len(data) > room:
            data = data[:room]
        if self.port == "sim":
            if self.tx_in_flight >= TX_SLOTS:
                self.enomem += 1
                self._send({"op": "enomem", "conn": conn_handle})
                raise OSError(errno.ENOMEM)
            self._tx.append(0)
        elif self.port == "nimble":
            blocks = 0      # straight into a free controller buffer: its mbufs freed
            if self.tx_in_flight >= NIMBLE_ACL_SLOTS:
                more = len(data) - _MBUF_FIRST
                blocks = 2 if more <= 0 else 2 + (more + MSYS_BLOCK_SIZE - _MBUF_HDR - 1) // (
                    MSYS_BLOCK_SIZE - _MBUF_HDR)
                if self.mbufs_used + blocks > MSYS_BLOCKS:
                    self.enomem += 1
                    self._send({"op": "enomem", "conn": conn_handle})     # for the air's stats
                    raise OSError(errno.ENOMEM)
                self.mbufs_used += blocks
            self._tx.append(blocks)
        elif self.tx_in_flight >= ACL_SLOTS:
            self._tx.append(bytearray(_PENDING_HDR + len(data)))     # allocates, as there
            self.heap_copies += 1
        else:
            self._tx.append(None)
        self.tx_in_flight += 1
        self._send({"op": "notify", "conn": conn_handle, "handle": value_handle,
                    "data": _hex(data)})

    def gatts_indicate(self, conn_handle, value_handle, data=None):
        self.gatts_notify(conn_handle, value_handle, data)
        self._irq(_IRQ_GATTS_INDICATE_DONE, (conn_handle, value_handle, 0))
        self._deliver()

    def gatts_set_buffer(self, value_handle, length, append=False):
        a = self._attr(value_handle)
        a.size = length
        a.append = bool(append)

    def gattc_exchange_mtu(self, conn_handle):
        """This side's own MTU exchange (as GATT client), which the central answers; the
        IRQ (_IRQ_MTU_EXCHANGED) comes when it completes, as for the central's. NimBLE
        (extmod/nimble/modbluetooth_nimble.c mp_bluetooth_gattc_exchange_mtu ->
        ble_gattc_exchange_mtu) refuses a second request on a connection with
        BLE_HS_EALREADY, OSError(EALREADY) through ble_hs_err_to_errno; BTstack
        (extmod/btstack/modbluetooth_btstack.c: gatt_client_send_mtu_negotiation) returns
        0 and sends one request a connection. An unknown connection: ENOTCONN. On a
        connection this radio made as a central, the central's own exchange."""
        if conn_handle not in self._conns:
            if self._gattc is not None and self._gattc.has(conn_handle):
                with self._lock:
                    self._gattc.exchange_mtu(conn_handle)
                return
            raise OSError(errno.ENOTCONN)
        if conn_handle in self._mtu_asked:
            if self.port == "nimble":
                raise OSError(errno.EALREADY)
            return
        self._mtu_asked.append(conn_handle)
        self._send({"op": "exchange_mtu", "conn": conn_handle})

    # ---- the central role: blecentral.py, loaded on first use ---------------------------
    def gap_scan(self, duration_ms=0, interval_us=1280000, window_us=11250, active=False):
        """modbluetooth.c bluetooth_ble_gap_scan: no argument scans until stopped, None
        stops."""
        self._as_central("gap_scan", duration_ms, interval_us, window_us, active)

    def gap_connect(self, addr_type, addr=None, scan_duration_ms=None,
                    min_conn_interval_us=None, max_conn_interval_us=None):
        """modbluetooth.c bluetooth_ble_gap_connect: gap_connect(None) cancels; the
        address is 6 bytes; None takes the default (2,000 ms,
        MP_BLUETOOTH_CONNECT_DEFAULT_SCAN_DURATION_MS)."""
        if addr is None:
            if addr_type is not None:
                raise TypeError("invalid addr")
            self._as_central("cancel_connect")
            return
        if len(bytes(addr)) != 6:
            raise ValueError("invalid addr")
        self._as_central("gap_connect", addr_type, addr,
                         2000 if scan_duration_ms is None else scan_duration_ms)

    def gattc_discover_services(self, conn_handle, uuid=None):
        self._as_central("discover_services", conn_handle, uuid)

    def gattc_discover_characteristics(self, conn_handle, start_handle, end_handle, uuid=None):
        self._as_central("discover_characteristics", conn_handle, start_handle, end_handle, uuid)

    def gattc_discover_descriptors(self, conn_handle, start_handle, end_handle):
        self._as_central("discover_descriptors", conn_handle, start_handle, end_handle)

    def gattc_read(self, conn_handle, value_handle):
        self._as_central("gattc_read", conn_handle, value_handle)

    def gattc_write(self, conn_handle, value_handle, data, mode=0):
        self._as_central("gattc_write", conn_handle, value_handle, data, mode)

    def _as_central(self, name, *args):
        # The central role made (outside the lock: that may wait for the reader thread),
        # then its method run under the lock, as the reader thread runs what it hears.
        c = self._central()
        with self._lock:
            return getattr(c, name)(*args)

    def own_addr(self):
        """This radio's address (blecentral.Central's hello)."""
        self._await_addr()
        return self._addr

    def irq_from_air(self, event, data):
        """An IRQ the central role heard, queued (or run) as the radio's own are; under
        the lock."""
        self._irq(event, data)

    def _central(self):
        c = self._gattc
        if c is None:
            if not self._active or self._sock is None:
                raise OSError(_ENODEV)
            import blecentral
            self._await_addr()
            sock = _air_socket()
            c = self._gattc = blecentral.Central(self, sock, UUID)
            if self.threaded:
                _thread.start_new_thread(self._central_reader, (c, sock))
        return c

    def _central_reader(self, c, sock):
        # The central role's side of the stack's task, as _reader is the peripheral's.
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        while c.sock is sock:
            ready = poller.poll(20)
            with self._lock:
                c.wake()
            self._deliver()
            if not ready:
                continue
            chunk = _recv(sock)
            if c.sock is not sock:
                break
            with self._lock:
                n = c.take(chunk) if chunk else c.lost()
            self._deliver()
            self._got += n
            if not chunk:
                break

    def _poll_central(self):
        # Not threaded: what the central role heard, from poll().
        c = self._gattc
        c.wake()
        got = 0
        while c.sock is not None and c.poller.poll(0):
            chunk = _recv(c.sock)
            got += c.take(chunk) if chunk else c.lost()
            if not chunk:
                break
        return got

    # ---- the sim board's side ---------------------------------------------------------
    def poll(self, timeout_ms):
        """Delivers what the air sent, waiting up to timeout_ms for the first of it, and
        returns how many messages that was. The board calls this from wait_tick: IRQ
        handlers never run inside a step."""
        if self._sock is None:
            if timeout_ms > 0:
                time.sleep_ms(timeout_ms)       # no air: a radio that hears nothing
            return 0
        if self.threaded:
            return self._poll_threaded(timeout_ms)
        self._run_late()           # the handlers a poll ago left waiting
        got = self._lines()
        if self._gattc is not None:
            got += self._poll_central()
        waited = got > 0
        while True:
            ready = self._poller.poll(0 if waited else timeout_ms)
            waited = True
            if not ready:
                return got
            chunk = _recv(self._sock)
            if not chunk:
                self._lose_air()
                return got
            self._rx += chunk
            got += self._lines()

    def _poll_threaded(self, timeout_ms):
        # The reader thread delivers; this only waits for it (and hands the world's
        # events over on the main thread, where the board takes them).
        t0 = time.ticks_ms()
        while self._got == self._got_seen and self._sock is not None:
            left = timeout_ms - time.ticks_diff(time.ticks_ms(), t0)
            if left <= 0:
                break
            time.sleep_ms(2 if left > 2 else left)
        if self._sim_q:
            with self._lock:
                q = self._sim_q
                self._sim_q = []
            self.sim_events.extend(q)
        if self.port == "btstack":
            self._dispatch(None)    # what was scheduled and has not run yet
        got = self._got - self._got_seen
        self._got_seen = self._got
        return got

    def _reader(self, sock):
        """The stack's own task: takes what the air sends and runs the stack's side of it
        (buffers, connections) under the lock, then delivers the IRQs as the port does."""
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        while self._sock is sock:
            ready = poller.poll(20)
            if self._count and not self._scheduled:
                # What a scheduled run left (the lock was busy, the scheduler's queue
                # full): the port's soft timer polls the stack again
                # (ports/rp2/mpbthciport.c mp_bluetooth_hci_poll_in_ms), and
                # mp_sched_schedule_node never fails, so nothing waits for a next message.
                self._deliver()
            if self._late:
                with self._lock:
                    self._run_late()
                self._deliver()
            if not ready:
                continue
            chunk = _recv(sock)
            if self._sock is not sock:
                break
            if not chunk:
                with self._lock:
                    self._lose_air()
                self._deliver()
                break
            self._rx += chunk
            with self._lock:
                n = self._lines()
            self._deliver()
            self._got += n

    def _deliver(self):
        """Threaded: the IRQs queued so far, run here (NimBLE: its task calls the handler)
        or scheduled for the main thread (BTstack: mp_sched_schedule)."""
        if not self.threaded or not self._count:
            return
        if self.port == "btstack":
            if not self._scheduled:
                self._scheduled = True
                try:
                    micropython.schedule(self._dispatch_cb, None)
                except RuntimeError:
                    self._scheduled = False     # the queue is full: the reader retries
            return
        self._dispatch(None)

    def _scheduled_dispatch(self, _arg):
        # BTstack: run at the main thread's next branch, which may be inside this radio's
        # own locked section (a gatts_notify the firmware is in): the real port has no
        # lock there (one thread), so this must not wait on it, or the main thread waits
        # on itself for good. Busy: the reader thread schedules again at its next wake.
        self._dispatch(None, False)

    def _dispatch(self, _arg, wait=True):
        # Allocation-free: it may run inside heap_lock().
        self._scheduled = False
        while True:
            if not self._lock.acquire(wait):
                return
            ev = None
            if self._count:
                ring = self._ring
                ev = ring[self._head]
                ring[self._head] = None
                self._head = (self._head + 1) % len(ring)
                self._count -= 1
            self._lock.release()
            if ev is None:
                return
            self._call(ev[0], ev[1])

    # ---- internals ---------------------------------------------------------------------
    def _lines(self, only=None):
        got = 0
        while self._sock is not None:
            nl = self._rx.find(b"\n")
            if nl < 0:
                break
            line = self._rx[:nl]
            self._rx = self._rx[nl + 1:]
            got += 1
            self._on(json.loads(line))
            if only is not None and self._addr is not None:
                break
        return got

    def _connect_air(self):
        s = _air_socket()
        self._sock = s
        self._poller = select.poll()
        self._poller.register(s, select.POLLIN)
        self._addr = None
        self._send({"op": "hello", "role": "peripheral", "name": NAME})
        self._send({"op": "mtu", "mtu": self._mtu})
        if self.threaded:
            _thread.start_new_thread(self._reader, (s,))

    def _await_addr(self):
        """The air's first answer, the address: a stack knows its own once active (its
        controller is up); here that is when the air has said it."""
        t0 = time.ticks_ms()
        while self._addr is None and self._sock is not None:
            if time.ticks_diff(time.ticks_ms(), t0) > 5000:
                raise OSError(errno.ETIMEDOUT)
            if self.threaded:
                time.sleep_ms(2)    # the reader thread takes it
            elif self._poller.poll(100):
                chunk = self._sock.recv(512)
                if not chunk:
                    self._lose_air()
                    break
                self._rx += chunk
                self._lines(True)
        if self._addr is None:
            raise OSError(_ENODEV)

    def _send(self, msg):
        if self._sock is not None:
            try:
                self._sock.sendall(encode(msg))
            except OSError:
                self._lose_air()

    def _lose_air(self):
        """The air went away (its process ended): as a radio out of range of every
        central, each connection ends with a disconnect event and nothing more is heard.
        The firmware's loop never sees the socket's error."""
        try:
            self._sock.close()
        except OSError:
            pass
        self._sock = None
        self._rx = b""
        conns = list(self._conns)
        self._conns = {}
        self._coalesce = {}
        self._mtu_asked = []
        self._tx = []
        self.tx_in_flight = self.mbufs_used = 0
        for conn in conns:
            self._irq(_IRQ_CENTRAL_DISCONNECT, (conn, 0, memoryview(b"\0" * 6)))

    def _attr(self, handle):
        a = self._attrs.get(handle)
        if a is None:
            raise OSError(errno.EINVAL)     # mp_bluetooth_gatts_db_write: MP_EINVAL
        return a

    def _irq(self, event, data):
        if self.threaded:
            # Under the lock; _deliver() runs it.
            ring = self._ring
            n = len(ring)
            if self._count == n:
                ring = ring[self._head:] + ring[:self._head] + [None] * n
                self._ring = ring
                self._head = 0
                n += n
            ring[(self._head + self._count) % n] = (event, data)
            self._count += 1
            return
        self._call(event, data)

    def _call(self, event, data):
        # modbluetooth.c invoke_irq_handler_run_protected: an exception is printed and
        # the handler disabled for good; it never reaches the code the IRQ interrupted.
        handler = self._handler
        if handler is None:
            return
        try:
            handler(event, data)
        except Exception as e:  # noqa: BLE001 - as the port does
            self.irq_errors += 1
            self._handler = None
            try:
                print("Unhandled exception in IRQ callback handler")
                sys.print_exception(e)
            except MemoryError:
                pass                # inside heap_lock(): the port's printer needs no heap

    def _run_late(self):
        late = self._late
        self._late = []
        for ev in late:
            self._irq(_IRQ_GATTS_WRITE, ev)

    def _sent(self, n):
        tx = self._tx
        for _ in range(min(n, len(tx))):
            tx.pop(0)       # carried: its controller buffer is free ("sim": a slot)
        self.tx_in_flight = max(0, self.tx_in_flight - n)
        if self.port == "nimble":
            # The host hands what waits to the controller as its buffers free (the
            # Number of Completed Packets event, ble_hs_hci_acl_tx_now), freeing its mbufs.
            for i in range(min(NIMBLE_ACL_SLOTS, len(tx))):
                if tx[i]:
                    self.mbufs_used -= tx[i]
                    tx[i] = 0

    def _on(self, msg):
        op = msg["op"]
        if self._late and op not in ("write", "tx_done"):
            self._run_late()       # IRQs keep their order
        if op == "addr":
            self._addr = bytes(int(x, 16) for x in msg["addr"].split(":"))
        elif op == "sim_event":
            (self._sim_q if self.threaded else self.sim_events).append(msg["event"])
        elif op == "connect":
            self._conns[msg["conn"]] = 23
            self._coalesce[msg["conn"]] = msg.get("coalesce", 1)
            # The interval is not reported at connect: only a later update says it.
            self._irq(_IRQ_CENTRAL_CONNECT, (msg["conn"], 0, memoryview(unhexlify(msg["addr"]))))
        elif op == "conn_update":
            if msg["conn"] in self._conns:
                self._conn_update(msg)
        elif op == "mtu":
            self._conns[msg["conn"]] = msg["mtu"]
            self._irq(_IRQ_MTU_EXCHANGED, (msg["conn"], msg["mtu"]))
        elif op == "disconnect":
            # The model's own state of a connection goes with it: kept, it grew the
            # firmware's heap by an entry a connection until a long run of reconnects
            # (the benchmark's 1,000 chaos rounds) could not boot (MemoryError, 8 KB).
            self._coalesce.pop(msg["conn"], None)
            if msg["conn"] in self._mtu_asked:
                self._mtu_asked.remove(msg["conn"])
            if self._conns.pop(msg["conn"], None) is not None:
                self._irq(_IRQ_CENTRAL_DISCONNECT, (msg["conn"], 0, memoryview(b"\0" * 6)))
        elif op == "tx_done":
            self._sent(msg["n"])
        elif op == "write":
            self._write(msg)

    def _write(self, msg):
        h = msg["handle"]
        a = self._attrs.get(h)
        if a is None:
            return
        data = unhexlify(msg["data"])
        if a.append:
            # att_write_callback: data_len = MIN(data_alloc, size + append_offset), the
            # IRQ fires whatever was cut.
            room = a.size - len(a.value)
            if len(data) > room:
                self.rx_overflow += 1
                data = data[:max(0, room)]
            a.value = a.value + data
        else:
            if len(data) > a.size:
                self.rx_truncated += 1
                data = data[:a.size]
            a.value = data
        n = self._coalesce.get(msg["conn"], 1)
        if n <= 1:
            self._irq(_IRQ_GATTS_WRITE, (msg["conn"], h))
            return
        self._late.append((msg["conn"], h))
        if len(self._late) >= n:
            self._run_late()

    def _conn_update(self, msg):
        # The interval in the stack's units of 1.25 ms; latency 0; supervision in 10 ms.
        units = (int(msg["interval_ms"] * 4) + 4) // 5
        self._irq(_IRQ_CONNECTION_UPDATE, (msg["conn"], units, 0, 40, 0))


def _air_socket():
    """A socket connected to the air (AIR, else $STEAMER_AIR): a Unix socket's path or
    HOST:PORT."""
    air = AIR or os.getenv(ENV)
    if not air:
        raise OSError(errno.ENODEV)
    if is_socket_path(air):
        # A Unix socket: sockaddr_un is the family (u16, little-endian here), the path.
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(bytes((socket.AF_UNIX, 0)) + air.encode() + b"\0")
        return s
    host, port = air.rsplit(":", 1)
    s = socket.socket()
    # A radio's host hands each packet over at once; Nagle's algorithm would hold a
    # notification back until the air's last message is acknowledged (the air's next
    # event, a delayed ACK), so the air found the stack nearly empty while the stack
    # counted itself full. The unix port's socket module has no names for these:
    # Linux's IPPROTO_TCP and TCP_NODELAY. Python's asyncio sets it on the air's side
    # (and the host's) itself.
    s.setsockopt(_IPPROTO_TCP, _TCP_NODELAY, 1)
    s.connect(socket.getaddrinfo(host, int(port))[0][-1])
    return s


def _recv(sock):
    """What the air sent next (b"": it went away). Small reads: a 2 KB block is hard to
    find in a full heap."""
    try:
        return sock.recv(512)
    except OSError:
        return b""


def _hex(b):
    return hexlify(b).decode()


def _uuid_str(u):
    """A UUID as the air (and bleak) spell it: 128-bit, lower case; a 16- or 32-bit one
    on the Bluetooth base UUID."""
    b = bytes(UUID(u))
    if len(b) < 16:
        return "%08x-0000-1000-8000-00805f9b34fb" % int.from_bytes(b, "little")
    h = hexlify(bytes(reversed(b))).decode()
    return "%s-%s-%s-%s-%s" % (h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
