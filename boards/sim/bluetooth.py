"""MicroPython's `bluetooth` module for the unix port, carried over a loopback socket to
the simulated air (tools/steamer_sim/air.py), so the firmware's GATT server runs unchanged.
What it says there is airwire.py's wire protocol.

Same API as the real module for what a peripheral uses: BLE().active, config, irq (same
event codes and data tuples), gap_advertise, gap_disconnect, gatts_register_services,
gatts_read / write / notify / indicate, gatts_set_buffer; UUID and the FLAG_* constants.
What differs is only how IRQs arrive: the board calls `poll(timeout_ms)` from its
wait_tick, so handlers run between control steps as the stack's callbacks would.

Modelled as NimBLE does it: a write longer than the characteristic's buffer is cut
(replace mode) or refused (append mode when full), never queued elsewhere; a
notification beyond the stack's TX_SLOTS buffers in flight raises OSError(ENOMEM).
The air may ask for scheduled IRQs (LinkParams.coalesce_writes = n): the write IRQs
then wait until n writes have been appended (or the next poll), so the first handler
reads them all at once and the others read nothing, as when MicroPython runs a real
stack's handlers late. A connection's interval arrives as _IRQ_CONNECTION_UPDATE.
Connections as NimBLE holds them: advertising stops when a central connects; the radio
may advertise again while it has fewer than CONNS (the air's PERIPHERAL_CONNS), and
connectable advertising with every connection taken raises OSError(ENOMEM).
"""
from binascii import hexlify, unhexlify
import errno
import json
import select
import socket
import time

from micropython import const

from airwire import PERIPHERAL_CONNS as CONNS, is_socket_path

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

TX_SLOTS = const(24)         # the stack's notification buffers
_DEFAULT_BUF = const(20)     # what an attribute holds unless gatts_set_buffer says more

# Where the air is ("host:port" or a Unix socket's path) and the name the air knows this radio by (it keeps the
# same address across resets): the board sets both before BLE().active(True).
AIR = None
NAME = "steamer"


class UUID:
    def __init__(self, value):
        if isinstance(value, UUID):
            value = value.s
        if isinstance(value, int):
            value = "0000%04x-0000-1000-8000-00805f9b34fb" % value
        self.s = value.lower()

    def __eq__(self, other):
        return isinstance(other, UUID) and other.s == self.s

    def __hash__(self):
        return hash(self.s)

    def __str__(self):
        return "UUID('%s')" % self.s


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


class _Radio:
    def __init__(self):
        self._active = False
        self._sock = None
        self._poller = None
        self._rx = b""
        self._handler = None
        self._attrs = {}
        self._next_handle = 1
        self._addr = b"\x5e\x7a\x00\x00\x00\x00"
        self._mtu = 23
        self._name = "steamer"
        self._conns = {}           # conn_handle -> negotiated mtu
        self._coalesce = {}        # conn_handle -> writes appended per IRQ batch
        self._late = []            # write IRQs not yet delivered: (conn, handle)
        self.tx_in_flight = 0
        # Counters a test may read: writes the stack had to refuse or cut.
        self.rx_overflow = 0
        self.rx_truncated = 0
        self.enomem = 0
        # The simulated world's events the air carried (`steamer sim press` ...): no
        # radio's business, the board takes them at its next period.
        self.sim_events = []

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
            self._conns = {}
        self._active = bool(state)
        return self._active

    def config(self, *names, **kw):
        if names:
            name = names[0]
            if name == "mac":
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
                self._name = v
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
        if connectable and len(self._conns) >= CONNS:
            raise OSError(errno.ENOMEM)
        self._send({"op": "adv", "data": _hex(adv_data or b""), "resp": _hex(resp_data or b"")})

    def gap_disconnect(self, conn_handle):
        if conn_handle not in self._conns:
            return False
        self._send({"op": "disconnect", "conn": conn_handle})
        return True

    def gatts_register_services(self, services):
        out = []
        desc = []
        for svc_uuid, chars in services:
            handles = []
            svc = {"uuid": _uuid_str(svc_uuid), "chars": []}
            self._next_handle += 1          # the service declaration
            for ch in chars:
                self._next_handle += 1      # the characteristic declaration
                h = self._next_handle
                self._next_handle += 1
                self._attrs[h] = _Attr(h)
                handles.append(h)
                svc["chars"].append({"uuid": _uuid_str(ch[0]), "flags": ch[1], "handle": h})
                for d in (ch[2] if len(ch) > 2 else ()):
                    dh = self._next_handle
                    self._next_handle += 1
                    self._attrs[dh] = _Attr(dh)
                    handles.append(dh)
            out.append(tuple(handles))
            desc.append(svc)
        self._send({"op": "services", "services": desc})
        return tuple(out)

    def gatts_read(self, value_handle):
        a = self._attr(value_handle)
        v = a.value
        if a.append:
            a.value = b""
        return v

    def gatts_write(self, value_handle, data, send_update=False):
        a = self._attr(value_handle)
        a.value = bytes(data)
        self._send({"op": "value", "handle": value_handle, "data": _hex(a.value)})
        if send_update:
            for conn in self._conns:
                self.gatts_notify(conn, value_handle)

    def gatts_notify(self, conn_handle, value_handle, data=None):
        if conn_handle not in self._conns:
            raise OSError(errno.ENOTCONN)
        if data is None:
            data = self._attr(value_handle).value
        if len(data) > self._conns[conn_handle] - 3:
            raise OSError(errno.EINVAL)
        if self.tx_in_flight >= TX_SLOTS:
            self.enomem += 1
            self._send({"op": "enomem", "conn": conn_handle})     # for the air's stats
            raise OSError(errno.ENOMEM)
        self.tx_in_flight += 1
        self._send({"op": "notify", "conn": conn_handle, "handle": value_handle,
                    "data": _hex(data)})

    def gatts_indicate(self, conn_handle, value_handle, data=None):
        self.gatts_notify(conn_handle, value_handle, data)
        self._irq(_IRQ_GATTS_INDICATE_DONE, (conn_handle, value_handle, 0))

    def gatts_set_buffer(self, value_handle, length, append=False):
        a = self._attr(value_handle)
        a.size = length
        a.append = bool(append)

    # ---- the sim board's side ---------------------------------------------------------
    def poll(self, timeout_ms):
        """Delivers what the air sent, waiting up to timeout_ms for the first of it, and
        returns how many messages that was. The board calls this from wait_tick: IRQ
        handlers never run inside a step."""
        if self._sock is None:
            if timeout_ms > 0:
                time.sleep_ms(timeout_ms)       # no air: a radio that hears nothing
            return 0
        self._run_late()           # the handlers a poll ago left waiting
        waited = False
        got = 0
        while True:
            ready = self._poller.poll(0 if waited else timeout_ms)
            waited = True
            if not ready:
                return got
            try:
                chunk = self._sock.recv(512)    # small: a 2 KB block is hard to find in a full heap
            except OSError:
                chunk = b""
            if not chunk:
                self._lose_air()
                return got
            self._rx += chunk
            while True:
                nl = self._rx.find(b"\n")
                if nl < 0:
                    break
                line = self._rx[:nl]
                self._rx = self._rx[nl + 1:]
                got += 1
                self._on(json.loads(line))

    # ---- internals ---------------------------------------------------------------------
    def _connect_air(self):
        if not AIR:
            raise OSError(errno.ENODEV)
        if is_socket_path(AIR):
            # A Unix socket: sockaddr_un is the family (u16, little-endian here), the path.
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(bytes((socket.AF_UNIX, 0)) + AIR.encode() + b"\0")
        else:
            host, port = AIR.rsplit(":", 1)
            s = socket.socket()
            s.connect(socket.getaddrinfo(host, int(port))[0][-1])
        self._sock = s
        self._poller = select.poll()
        self._poller.register(s, select.POLLIN)
        self._send({"op": "hello", "role": "peripheral", "name": NAME})
        self._send({"op": "mtu", "mtu": self._mtu})

    def _send(self, msg):
        if self._sock is not None:
            try:
                self._sock.sendall(json.dumps(msg).encode() + b"\n")
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
        for conn in conns:
            self._irq(_IRQ_CENTRAL_DISCONNECT, (conn, 0, memoryview(b"\0" * 6)))

    def _attr(self, handle):
        a = self._attrs.get(handle)
        if a is None:
            raise ValueError("invalid handle")
        return a

    def _irq(self, event, data):
        if self._handler is not None:
            self._handler(event, data)

    def _run_late(self):
        late = self._late
        self._late = []
        for ev in late:
            self._irq(_IRQ_GATTS_WRITE, ev)

    def _on(self, msg):
        op = msg["op"]
        if self._late and op not in ("write", "tx_done"):
            self._run_late()       # IRQs keep their order
        if op == "addr":
            self._addr = bytes(int(x, 16) for x in msg["addr"].split(":"))
        elif op == "sim_event":
            self.sim_events.append(msg["event"])
        elif op == "connect":
            self._conns[msg["conn"]] = 23
            self._coalesce[msg["conn"]] = msg.get("coalesce", 1)
            self._irq(_IRQ_CENTRAL_CONNECT, (msg["conn"], 0, memoryview(unhexlify(msg["addr"]))))
            if msg.get("interval_ms"):
                self._conn_update(msg)
        elif op == "conn_update":
            if msg["conn"] in self._conns:
                self._conn_update(msg)
        elif op == "mtu":
            self._conns[msg["conn"]] = msg["mtu"]
            self._irq(_IRQ_MTU_EXCHANGED, (msg["conn"], msg["mtu"]))
        elif op == "disconnect":
            if self._conns.pop(msg["conn"], None) is not None:
                self._irq(_IRQ_CENTRAL_DISCONNECT, (msg["conn"], 0, memoryview(b"\0" * 6)))
        elif op == "tx_done":
            self.tx_in_flight = max(0, self.tx_in_flight - msg["n"])
        elif op == "write":
            h = msg["handle"]
            a = self._attrs.get(h)
            if a is None:
                return
            data = unhexlify(msg["data"])
            if a.append:
                if len(a.value) + len(data) > a.size:
                    self.rx_overflow += 1
                    return
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


def _hex(b):
    return hexlify(b).decode()


def _uuid_str(u):
    return u.s if isinstance(u, UUID) else UUID(u).s
