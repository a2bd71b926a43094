"""The simulated `bluetooth` module's central role (GAP central, GATT client), loaded
by bluetooth.py on the first call that needs it, so a steamer's firmware, which never
scans or connects out, carries none of it on its heap.

The radio talks to the air as a central does (the air's central protocol, the one the
host's bleak backend speaks: tools/steamer_sim/air.py handle_central), on a second
socket. The IRQs and their data are modbluetooth.c's (mp_bluetooth_gap_on_scan_result,
mp_bluetooth_gap_on_connected_disconnected, mp_bluetooth_gattc_on_*), delivered as the
radio delivers its peripheral ones (the port model's thread or scheduler, or poll()).
What the model follows, from extmod/nimble/modbluetooth_nimble.c:
- gap_scan(duration_ms, ...): a result per advertisement heard (adv_type 0, ADV_IND), a
  scan response too (adv_type 4) when active; _IRQ_SCAN_DONE when the duration ends or
  gap_scan(None) stops it (mp_bluetooth_gap_scan_stop calls
  mp_bluetooth_gap_on_scan_complete itself); 0 scans until stopped.
- gap_connect stops a scan first, then waits up to scan_duration_ms for the peripheral
  to advertise; none: _IRQ_PERIPHERAL_DISCONNECT with conn_handle 0xFFFF and addr_type
  0xFF (peripheral_gap_event_cb, the connect event's failed status).
- No MTU exchange until gattc_exchange_mtu (the central's own request): the MTU is 23
  until then, and a read returns MTU-1 bytes at most (one ATT Read Request,
  ble_gattc_read; no Read Blob).
- Discovery (services, characteristics with their end handle, descriptors) answers from
  the peripheral's attribute table as the air describes it, with 16-bit UUIDs as 16-bit,
  one connection event (the next reader wake, ~20 ms) after the call.
- One at a time: NimBLE runs one characteristic discovery at a time (OSError 16,
  MP_EBUSY: modbluetooth_nimble.c's char_disc_end_handle lock) and queues the rest;
  BTstack's GATT client runs one operation per connection (a discovery, a read, a write
  with response): another before its done raises EALREADY (GATT_CLIENT_IN_WRONG_STATE,
  modbluetooth_btstack.c btstack_error_to_errno).
- gattc_write mode 0 (without response) says nothing; mode 1 gives _IRQ_GATTC_WRITE_DONE.
  A write to a characteristic's CCCD subscribes to (or, with 0, unsubscribes from) its
  notifications, which come as _IRQ_GATTC_NOTIFY.
"""
from binascii import hexlify, unhexlify
import errno
import json
import select
import time

from micropython import const

from airwire import encode

_IRQ_SCAN_RESULT = const(5)
_IRQ_SCAN_DONE = const(6)
_IRQ_PERIPHERAL_CONNECT = const(7)
_IRQ_PERIPHERAL_DISCONNECT = const(8)
_IRQ_GATTC_SERVICE_RESULT = const(9)
_IRQ_GATTC_SERVICE_DONE = const(10)
_IRQ_GATTC_CHARACTERISTIC_RESULT = const(11)
_IRQ_GATTC_CHARACTERISTIC_DONE = const(12)
_IRQ_GATTC_DESCRIPTOR_RESULT = const(13)
_IRQ_GATTC_DESCRIPTOR_DONE = const(14)
_IRQ_GATTC_READ_RESULT = const(15)
_IRQ_GATTC_READ_DONE = const(16)
_IRQ_GATTC_WRITE_DONE = const(17)
_IRQ_GATTC_NOTIFY = const(18)
_IRQ_MTU_EXCHANGED = const(21)

_ADV_IND = const(0)
_SCAN_RSP = const(4)
_ADDR_PUBLIC = const(0)
_CONN_NONE = const(0xFFFF)       # BLE_HS_CONN_HANDLE_NONE: a connect that failed
_ATT_ERR_UNLIKELY = const(0x0E)  # an ATT error status for what the air refused
_CCCD = "00002902-0000-1000-8000-00805f9b34fb"
_BASE = "-0000-1000-8000-00805f9b34fb"
_EBUSY = const(16)


def _addr_str(addr):
    return ":".join("%02X" % b for b in bytes(addr))


def _addr_bytes(s):
    return bytes(int(x, 16) for x in s.split(":"))


class _Conn:
    def __init__(self, handle, addr, services):
        self.handle = handle
        self.addr = addr                # 6 bytes
        self.mtu = 23
        self.services = services        # the air's description of the attribute table


class Central:
    """One radio's central role: its own socket to the air. The radio (bluetooth.py's
    _Radio) owns the lock, the IRQ queue and the handler; this calls radio.irq_from_air()
    for each IRQ, under the lock."""

    def __init__(self, radio, sock, make_uuid):
        self.radio = radio
        self.make_uuid = make_uuid      # bluetooth.UUID (passed in: no import back)
        self.sock = sock
        self.rx = b""
        self.req = 0
        self.reqs = {}                  # req -> (kind, conn, handle)
        self.conns = {}                 # conn handle -> _Conn
        self.scanning = False
        self.scan_active = False
        self.scan_until = None          # ticks_ms, or None: until stopped
        self.connecting = None          # (addr str, addr bytes, deadline ticks_ms)
        self.retry_at = None            # ticks_ms of the next connect attempt
        self.later = []                 # (event, data): delivered at the next wake
        self.chr_busy = False
        self.ops = set()                # BTstack: connections with an operation under way
        self.poller = select.poll()
        self.poller.register(sock, select.POLLIN)
        self.send({"op": "hello", "addr": _addr_str(radio.own_addr())})

    # ---- the MicroPython API (bluetooth.py delegates) --------------------------------
    def gap_scan(self, duration_ms, interval_us, window_us, active):
        if duration_ms is None:
            if self.scanning:
                self._scan_off()
            return
        self.scanning = True
        self.scan_active = bool(active)
        self.scan_until = (time.ticks_add(time.ticks_ms(), duration_ms)
                           if duration_ms > 0 else None)
        self.send({"op": "scan", "on": True})

    def gap_connect(self, addr_type, addr, scan_duration_ms):
        if self.connecting is not None:
            raise OSError(errno.EALREADY)     # BLE_HS_EALREADY: one connect at a time
        if self.scanning:
            self._scan_off()
        addr = bytes(addr)
        self.connecting = (_addr_str(addr), addr,
                           time.ticks_add(time.ticks_ms(), scan_duration_ms))
        self._try_connect()

    def cancel_connect(self):
        """gap_connect(None): NimBLE's ble_gap_conn_cancel; the connect's event comes
        as a failed one (_IRQ_PERIPHERAL_DISCONNECT, 0xFFFF); none under way: EALREADY
        (BLE_HS_EALREADY through ble_hs_err_to_errno)."""
        if self.connecting is None:
            raise OSError(errno.EALREADY)
        self.retry_at = None
        self._connect_failed()

    def gap_disconnect(self, conn_handle):
        if conn_handle not in self.conns:
            return False
        self.send({"op": "disconnect", "conn": conn_handle, "req": self._req("disc", conn_handle, 0)})
        return True

    def discover_services(self, conn_handle, uuid):
        c = self._conn(conn_handle)
        self._start_op(conn_handle)
        for svc in c.services:
            u = self._uuid(svc["uuid"])
            if uuid is None or u == uuid:
                self.later.append((_IRQ_GATTC_SERVICE_RESULT,
                                   (conn_handle, svc["start"], svc["end"], u)))
        self.later.append((_IRQ_GATTC_SERVICE_DONE, (conn_handle, 0)))

    def discover_characteristics(self, conn_handle, start, end, uuid):
        c = self._conn(conn_handle)
        if self.chr_busy and self.radio.port == "nimble":
            raise OSError(_EBUSY)       # MP_EBUSY; the unix port's errno has no name for it
        self._start_op(conn_handle)
        self.chr_busy = True
        chars = []
        for svc in c.services:
            for ch in svc["chars"]:
                if start <= ch["handle"] - 1 <= end:
                    chars.append((ch, svc["end"]))
        for i in range(len(chars)):
            ch, svc_end = chars[i]
            last = chars[i + 1][0]["handle"] - 2 if i + 1 < len(chars) else min(end, svc_end)
            u = self._uuid(ch["uuid"])
            if uuid is None or u == uuid:
                self.later.append((_IRQ_GATTC_CHARACTERISTIC_RESULT,
                                   (conn_handle, last, ch["handle"], ch["flags"] & 0xFF, u)))
        self.later.append((_IRQ_GATTC_CHARACTERISTIC_DONE, (conn_handle, 0)))

    def discover_descriptors(self, conn_handle, start, end):
        c = self._conn(conn_handle)
        self._start_op(conn_handle)
        for svc in c.services:
            for ch in svc["chars"]:
                for d in ch.get("descs", ()):
                    if start <= d["handle"] <= end:
                        self.later.append((_IRQ_GATTC_DESCRIPTOR_RESULT,
                                           (conn_handle, d["handle"], self._uuid(d["uuid"]))))
        self.later.append((_IRQ_GATTC_DESCRIPTOR_DONE, (conn_handle, 0)))

    def gattc_read(self, conn_handle, value_handle):
        self._conn(conn_handle)
        self._start_op(conn_handle)
        self.send({"op": "read", "conn": conn_handle, "handle": value_handle,
                   "req": self._req("read", conn_handle, value_handle)})

    def gattc_write(self, conn_handle, value_handle, data, mode):
        c = self._conn(conn_handle)
        if mode not in (0, 1):
            raise OSError(errno.EINVAL)
        data = bytes(data)
        kind = "write" if mode == 1 else "wnr"
        if mode == 1:
            self._start_op(conn_handle)
        of = self._cccd_of(c, value_handle)
        if of is not None:
            on = len(data) > 0 and (data[0] & 3) != 0
            self.send({"op": "subscribe", "conn": conn_handle, "handle": of, "on": on,
                       "req": self._req(kind, conn_handle, value_handle)})
            return
        self.send({"op": "write", "conn": conn_handle, "handle": value_handle,
                   "data": hexlify(data).decode(), "response": mode == 1,
                   "req": self._req(kind, conn_handle, value_handle)})

    def exchange_mtu(self, conn_handle):
        self._conn(conn_handle)
        self.send({"op": "exchange_mtu", "conn": conn_handle, "mtu": self.radio.config("mtu"),
                   "req": self._req("mtu", conn_handle, 0)})

    def has(self, conn_handle):
        return conn_handle in self.conns

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        self.sock = None

    # ---- the air ----------------------------------------------------------------------
    def send(self, msg):
        if self.sock is not None:
            self.sock.sendall(encode(msg))

    def wake(self):
        """Under the radio's lock, at each reader wake (or poll): what is due."""
        now = time.ticks_ms()
        if self.later:
            later = self.later
            self.later = []
            for event, data in later:
                if event == _IRQ_GATTC_CHARACTERISTIC_DONE:
                    self.chr_busy = False
                if event in (_IRQ_GATTC_SERVICE_DONE, _IRQ_GATTC_CHARACTERISTIC_DONE,
                             _IRQ_GATTC_DESCRIPTOR_DONE):
                    self.ops.discard(data[0])
                self.radio.irq_from_air(event, data)
        if self.scanning and self.scan_until is not None and time.ticks_diff(now, self.scan_until) >= 0:
            self._scan_off()
        if self.retry_at is not None and time.ticks_diff(now, self.retry_at) >= 0:
            self.retry_at = None
            self._try_connect()

    def lost(self):
        """Under the radio's lock: the air went away. Each connection ends as out of
        range: its disconnect, and nothing more is heard."""
        self.close()
        conns = self.conns
        self.conns = {}
        for c in conns.values():
            self.radio.irq_from_air(_IRQ_PERIPHERAL_DISCONNECT,
                                    (c.handle, _ADDR_PUBLIC, memoryview(c.addr)))
        return 0

    def take(self, chunk):
        """Under the radio's lock: what the air sent; the number of messages."""
        self.rx += chunk
        n = 0
        while b"\n" in self.rx:
            line, self.rx = self.rx.split(b"\n", 1)
            self._on(json.loads(line))
            n += 1
        return n

    def _on(self, msg):
        op = msg["op"]
        if op == "adv":
            if self.scanning:
                addr = memoryview(_addr_bytes(msg["addr"]))
                self.radio.irq_from_air(_IRQ_SCAN_RESULT, (
                    _ADDR_PUBLIC, addr, _ADV_IND, msg.get("rssi", -50),
                    memoryview(unhexlify(msg["data"]))))
                if self.scan_active and msg.get("resp"):
                    self.radio.irq_from_air(_IRQ_SCAN_RESULT, (
                        _ADDR_PUBLIC, addr, _SCAN_RSP, msg.get("rssi", -50),
                        memoryview(unhexlify(msg["resp"]))))
        elif op == "connected":
            self.reqs.pop(msg.get("req"), None)
            if self.connecting is None:
                return
            addr = self.connecting[1]
            self.connecting = None
            c = _Conn(msg["conn"], addr, msg.get("services") or [])
            self.conns[c.handle] = c
            self.radio.irq_from_air(_IRQ_PERIPHERAL_CONNECT,
                                    (c.handle, _ADDR_PUBLIC, memoryview(addr)))
        elif op == "disconnected":
            self.ops.discard(msg["conn"])
            c = self.conns.pop(msg["conn"], None)
            if c is not None:
                self.radio.irq_from_air(_IRQ_PERIPHERAL_DISCONNECT,
                                        (c.handle, _ADDR_PUBLIC, memoryview(c.addr)))
        elif op == "mtu":
            c = self.conns.get(msg["conn"])
            if c is not None:
                c.mtu = msg["mtu"]
                self.radio.irq_from_air(_IRQ_MTU_EXCHANGED, (c.handle, c.mtu))
        elif op == "notify":
            if msg["conn"] in self.conns:
                self.radio.irq_from_air(_IRQ_GATTC_NOTIFY, (
                    msg["conn"], msg["handle"], memoryview(unhexlify(msg["data"]))))
        elif op in ("read_rsp", "ok", "error"):
            self._answer(op, msg)

    def _answer(self, op, msg):
        got = self.reqs.pop(msg.get("req"), None)
        if got is None:
            return
        kind, conn, handle = got
        if kind == "connect":
            # Not advertising (yet): the port's connect goes on listening for it until
            # its scan duration ends.
            if self.connecting is not None:
                if time.ticks_diff(self.connecting[2], time.ticks_ms()) > 0:
                    self.retry_at = time.ticks_add(time.ticks_ms(), 100)
                else:
                    self._connect_failed()
            return
        status = 0 if op != "error" else _ATT_ERR_UNLIKELY
        if kind in ("read", "write"):
            self.ops.discard(conn)
        if kind == "read":
            c = self.conns.get(conn)
            if op == "read_rsp" and c is not None:
                data = unhexlify(msg["data"])[:c.mtu - 1]      # one Read Response
                self.radio.irq_from_air(_IRQ_GATTC_READ_RESULT, (conn, handle, memoryview(data)))
            self.radio.irq_from_air(_IRQ_GATTC_READ_DONE, (conn, handle, status))
        elif kind == "write":
            self.radio.irq_from_air(_IRQ_GATTC_WRITE_DONE, (conn, handle, status))

    # ---- helpers ----------------------------------------------------------------------
    def _req(self, kind, conn, handle):
        self.req += 1
        self.reqs[self.req] = (kind, conn, handle)
        return self.req

    def _start_op(self, conn_handle):
        if self.radio.port == "btstack":
            if conn_handle in self.ops:
                raise OSError(errno.EALREADY)
            self.ops.add(conn_handle)

    def _conn(self, conn_handle):
        c = self.conns.get(conn_handle)
        if c is None:
            raise OSError(errno.ENOTCONN)
        return c

    def _try_connect(self):
        if self.connecting is None:
            return
        self.send({"op": "connect", "addr": self.connecting[0], "exchange": "manual",
                   "mtu": self.radio.config("mtu"), "req": self._req("connect", 0, 0)})

    def _connect_failed(self):
        # The connect's event with a failed status (peripheral_gap_event_cb): no handle
        # (BLE_HS_CONN_HANDLE_NONE), addr_type 0xFF, no address.
        self.connecting = None
        self.radio.irq_from_air(_IRQ_PERIPHERAL_DISCONNECT,
                                (_CONN_NONE, 0xFF, memoryview(bytes(6))))

    def _scan_off(self):
        self.scanning = False
        self.send({"op": "scan", "on": False})
        self.radio.irq_from_air(_IRQ_SCAN_DONE, ())

    def _uuid(self, s):
        """A UUID from the air's 128-bit spelling: 16-bit where it is on the Bluetooth
        base UUID (as the ATT responses carry it)."""
        if s.endswith(_BASE) and s.startswith("0000"):
            return self.make_uuid(int(s[4:8], 16))
        return self.make_uuid(s)

    def _cccd_of(self, c, handle):
        for svc in c.services:
            for ch in svc["chars"]:
                for d in ch.get("descs", ()):
                    if d["handle"] == handle and d["uuid"] == _CCCD:
                        return ch["handle"]
        return None
