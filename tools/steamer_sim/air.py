"""The simulated air: a loopback broker between simulated peripherals and centrals.

Peripherals are the firmware on the MicroPython unix port (boards/sim/bluetooth.py);
centrals are the bleak backend (steamer_sim.backend). Both speak the wire protocol of
boards/sim/airwire.py (newline-delimited JSON, bytes as hex, over a Unix socket or TCP),
which this module loads as `airwire` and whose names it re-exports (ENV, ATT_MTU_MIN,
ATT_MTU_MAX, PERIPHERAL_CONNS, is_socket_path, encode).
Each user has their own air by default (`default_address()`: a socket in a folder only
they can enter), so another user's simulated steamers never show up in their scans.
The broker models what matters to the protocol above it:

- ATT payload limits from the negotiated MTU (min of both sides' preferred MTU);
  a write or notification longer than MTU - 3 is refused. The MTU is 23 until an
  exchange completes: the central's, `central_mtu_after_s` after it connected (0: at
  the connect, None: it never starts one, as some centrals do not), or the
  peripheral's own (gattc_exchange_mtu), `mtu_answer_events` connection events after
  it asked; `exchange_mtu` runs one now (a test's seam).
- A connection interval with at most `pdus_per_event` PDUs per direction per event,
  so the ceiling is `pdus_per_event * (mtu - 3) * 1000 / interval_ms` bytes/s.
- Injected disconnects (`drop`), an extra one-way delay (`latency_ms`) and lost links
  (`lose`: both ends learn of it only after the supervision timeout).
- Writes without response the central's stack drops silently: `drop_writes(addr, n)`,
  or any beyond `central_write_queue` waiting for the link (CoreBluetooth's behaviour
  when the app writes faster than the link carries).
- Late IRQ handlers on the peripheral (`coalesce_writes`): its stack appends that many
  writes before the firmware's handler reads them (boards/sim/bluetooth.py).
- The connection interval reaches the peripheral as a connection update, at connect
  and whenever set_params changes it.
- A peripheral's connections as a stack holds them: it stops advertising when a central
  connects, and may advertise again (and take another) while it has fewer than
  PERIPHERAL_CONNS; a central connects only to an advertiser with a free one.

It also carries the simulated world's events to a named steamer (`sim_event`, sent by
`steamer sim press/insert/...` through `send_sim_event`), which its board applies at
the next control period as it does a scenario's.

    steamer sim air [--listen ADDR]             # a standalone broker (`sim serve` starts one)
    air = Air(); addr = air.start_thread()      # in-process, as tests do
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import errno
import json
import os
import random
import socket
import stat
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from steamer_dev.paths import BOARDS


def _load_airwire() -> Any:
    """boards/sim/airwire.py, the wire protocol the MicroPython side shares (not an
    installed package: it lives with the sim board, which imports it as its own)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("steamer_sim.airwire",
                                                  BOARDS / "sim" / "airwire.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


airwire = _load_airwire()
ENV: str = airwire.ENV
ATT_MTU_MIN: int = airwire.ATT_MTU_MIN
ATT_MTU_MAX: int = airwire.ATT_MTU_MAX
PERIPHERAL_CONNS: int = airwire.PERIPHERAL_CONNS
is_socket_path = airwire.is_socket_path
encode = airwire.encode      # a message as its line on the air
# What fits in a Unix socket address (sun_path less its terminating NUL).
_SUN_PATH_MAX = 107


def default_address() -> str:
    """This user's own air: `air.sock` in a folder of theirs, $XDG_RUNTIME_DIR/steamer
    (which only they can enter) when there is one, else steamer-UID in the temp folder."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        folder = os.path.join(runtime, "steamer")
    else:
        folder = os.path.join(tempfile.gettempdir(), f"steamer-{os.getuid()}")
    return os.path.join(folder, "air.sock")


def air_address() -> str:
    """The air this process should use: $STEAMER_AIR, else this user's own."""
    return os.environ.get(ENV) or default_address()


class AirError(ValueError):
    """An air address that is neither HOST:PORT nor a socket path; str() names $STEAMER_AIR."""


def checked_air(addr: str) -> str:
    """`addr` (the simulated air's, from $STEAMER_AIR) when it is HOST:PORT or a socket
    path (it has a "/"); AirError naming the variable otherwise."""
    if is_socket_path(addr):
        return addr
    host, _, port = addr.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise AirError(f"${ENV} is {addr!r}: not HOST:PORT nor a socket path, the "
                       "simulated air's address (what `steamer sim serve` prints)")
    return addr


def unreachable(air: str, e: BaseException) -> str:
    """One line for a simulated air that cannot be reached at `air`."""
    # The backend wraps the socket's error (naming the air again): its reason alone.
    cause = e.__cause__ if isinstance(e.__cause__, OSError) else e
    code = cause.errno if isinstance(cause, OSError) else None
    why = (os.strerror(code) if code is not None and code in errno.errorcode
           else str(cause) or type(cause).__name__)
    return f"the simulated air at {air} is not reachable ({why})"


def private_folder(path: str) -> str:
    """Makes (mode 0700) or checks the folder of the socket `path`: it must be this
    user's and closed to others, else OSError saying why (another user could have made
    it to listen in). Returns the folder."""
    if len(os.fsencode(path)) > _SUN_PATH_MAX:
        raise OSError(f"the socket path {path} is longer than {_SUN_PATH_MAX} bytes "
                      f"(set ${ENV} or $XDG_RUNTIME_DIR to a shorter place)")
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, mode=0o700, exist_ok=True)
    st = os.lstat(folder)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise OSError(f"{folder} is not a private folder of this user (owner uid "
                      f"{st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o}): remove it")
    return folder


async def open_stream(addr: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the air at `addr` (socket path or HOST:PORT)."""
    if is_socket_path(addr):
        return await asyncio.open_unix_connection(addr)
    host, port = addr.rsplit(":", 1)
    return await asyncio.open_connection(host, int(port))


def connect_socket(addr: str, timeout_s: float = 2.0) -> socket.socket:
    """A blocking socket connected to the air at `addr`; OSError when nothing answers."""
    if is_socket_path(addr):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout_s)
        try:
            s.connect(addr)
        except OSError:
            s.close()
            raise
        return s
    host, port = addr.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=timeout_s)


def answers(addr: str) -> bool:
    """Whether an air (or anything) listens at `addr`."""
    try:
        connect_socket(addr, 2.0).close()
        return True
    except OSError:
        return False


class SimEventError(Exception):
    """The air could not hand an event to the named steamer; `names` are the simulated
    steamers that are on it."""

    def __init__(self, message: str, names: list[str]):
        super().__init__(message)
        self.names = names


def send_sim_event(addr: str, name: str, event: dict, timeout_s: float = 5.0) -> None:
    """Hands `event` (a scenario event, signed for the sim as its runner needs it) to the
    simulated steamer advertising as `name` on the air at `addr`; its board applies it
    at its next control period. OSError when the air does not answer, SimEventError
    when no steamer of that name is on it."""
    with connect_socket(addr, timeout_s) as s:
        s.settimeout(timeout_s)
        f = s.makefile("rwb")
        for msg in ({"op": "hello", "role": "central"},
                    {"op": "sim_event", "req": 1, "name": name, "event": event}):
            f.write(encode(msg))
        f.flush()
        while True:
            line = f.readline()
            if not line:
                raise OSError(f"the simulated air at {addr} closed the connection")
            reply = json.loads(line)
            if reply.get("req") == 1:
                break
    if reply.get("op") == "error":
        raise SimEventError(reply.get("error", "error"), list(reply.get("names") or []))


@dataclass(eq=False)
class LinkParams:
    interval_ms: float = 30.0        # connection interval
    pdus_per_event: int = 6          # PDUs per direction per connection event
    latency_ms: float = 0.0          # extra one-way delay on every PDU
    central_mtu: int = 247           # what the central asks for in the MTU exchange
    # When the central starts the MTU exchange after connecting: 0 at the connect, None
    # never (only the peripheral's own request then raises the MTU above 23).
    central_mtu_after_s: float | None = 0.0
    # Connection events the central takes to answer the peripheral's own MTU exchange
    # (its request goes out at one, the response comes back at the next).
    mtu_answer_events: int = 2
    # Writes without response the central's stack queues for the link; one more is
    # dropped without a word, as CoreBluetooth does when its queue is full (0: no limit).
    central_write_queue: int = 0
    supervision_ms: float = 400.0    # how long a lost link takes to be noticed
    drop_per_event: float = 0.0      # chance per connection event of a disconnect
    coalesce_writes: int = 1         # writes the peripheral's stack appends per IRQ batch

    def ceiling_bytes_s(self, mtu: int) -> float:
        return self.pdus_per_event * (mtu - 3) * 1000.0 / self.interval_ms


@dataclass(eq=False)
class _Peripheral:
    writer: asyncio.StreamWriter
    addr: str
    name: str = ""
    adv: bytes = b""
    resp: bytes = b""
    advertising: bool = False
    mtu: int = ATT_MTU_MIN
    services: list = field(default_factory=list)
    values: dict = field(default_factory=dict)   # handle -> bytes
    conns: set = field(default_factory=set)     # its open connections
    enomem: int = 0            # notifications its stack refused for want of buffers


@dataclass(eq=False)
class _Central:
    writer: asyncio.StreamWriter
    scanning: bool = False
    # The address a peripheral sees it connect from: a simulated radio acting as central
    # says its own in its hello (boards/sim/blecentral.py); a host's is this one.
    addr: str = "C0FFEE000001"
    conns: set = field(default_factory=set)


@dataclass(eq=False)
class _Conn:
    handle: int
    central: _Central
    periph: _Peripheral
    mtu: int
    params: LinkParams
    want_mtu: int = ATT_MTU_MIN      # what the central asks for when it exchanges
    drop_writes: int = 0             # writes without response still to drop (drop_writes)
    exchanged: bool = False          # an MTU exchange completed
    up: collections.deque = field(default_factory=collections.deque)    # to the peripheral
    down: collections.deque = field(default_factory=collections.deque)  # to the central
    subscribed: set = field(default_factory=set)
    task: "asyncio.Task | None" = None
    open: bool = True
    lost: bool = False
    lose_at_up: int = -1             # lose(after_queued=True): silent once stats["up"] is this
    stats: dict = field(default_factory=lambda: {"up": 0, "down": 0, "down_bytes": 0,
                                                 "events": 0, "enomem": 0,
                                                 "writes_dropped": 0})
    # When each connection event ran (time.monotonic()), newest last: link time for
    # measurements that must not depend on how promptly this process was scheduled.
    event_times: collections.deque = field(
        default_factory=lambda: collections.deque(maxlen=1 << 16))
    # ... and the PDUs per event each could carry then (set_params may change it).
    event_pdus: collections.deque = field(
        default_factory=lambda: collections.deque(maxlen=1 << 16))


def _send(writer: asyncio.StreamWriter, msg: dict) -> None:
    if not writer.is_closing():
        writer.write(encode(msg))


class Air:
    """The broker. Its methods other than start/start_thread run on its own loop;
    use the *_threadsafe wrappers from other threads."""

    def __init__(self, params: LinkParams | None = None, seed: int = 0) -> None:
        self.params = params or LinkParams()
        self.rng = random.Random(seed)
        self.peripherals: dict[str, _Peripheral] = {}
        self.conns: dict[int, _Conn] = {}
        self.centrals: list[_Central] = []
        self.next_conn = 1
        self.next_addr = 1
        self.addresses: dict[str, str] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: asyncio.base_events.Server | None = None
        self.address = ""
        self.history: list[dict] = []   # closed connections' stats, newest last
        self._idle_since = time.monotonic()
        self._tap: Any = None           # tap_centrals()

    # ---- running ----------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0, *,
                    path: str | None = None) -> str:
        """Listens on TCP host:port, or on the Unix socket `path` (its folder made or
        checked private, a stale socket there replaced, the socket itself mode 0600);
        returns the address clients use."""
        self.loop = asyncio.get_running_loop()
        if path is not None:
            private_folder(path)
            if os.path.exists(path):
                if answers(path):
                    raise OSError(f"a simulated air already listens at {path}")
                os.unlink(path)     # left by an air that was killed
            self.server = await asyncio.start_unix_server(self._serve, path)
            os.chmod(path, 0o600)
            self.address = path
        else:
            self.server = await asyncio.start_server(self._serve, host, port)
            sock = self.server.sockets[0].getsockname()
            self.address = f"{sock[0]}:{sock[1]}"
        asyncio.get_running_loop().create_task(self._advertise_loop())
        return self.address

    def idle_s(self) -> float:
        """How long the air has had neither a peripheral nor a central (0 while it has)."""
        if self.peripherals or self.centrals:
            self._idle_since = time.monotonic()
        return time.monotonic() - self._idle_since

    def start_thread(self, host: str = "127.0.0.1", port: int = 0, *,
                     path: str | None = None) -> str:
        """Runs the broker on a daemon thread; returns its address once it listens."""
        ready: dict[str, Any] = {}
        done = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            try:
                ready["addr"] = loop.run_until_complete(self.start(host, port, path=path))
            except BaseException as e:  # noqa: BLE001 - handed to the starting thread
                ready["error"] = e
                done.set()
                return
            done.set()
            loop.run_forever()

        threading.Thread(target=main, name="steamer-air", daemon=True).start()
        done.wait(10)
        if "error" in ready:
            raise ready["error"]
        return ready["addr"]

    def call(self, fn, *args) -> Any:
        """Runs fn(*args) on the broker's loop from another thread and returns its result."""
        assert self.loop is not None
        async def run() -> Any:
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    # ---- injections (on the loop; from tests use call()) -------------------------------
    def drop(self, addr: str | None = None) -> int:
        """Disconnects (both ends told at once) every connection, or addr's; how many."""
        n = 0
        for conn in list(self.conns.values()):
            if addr is None or conn.periph.addr == addr:
                self._close(conn, reason=0x13)
                n += 1
        return n

    def lose(self, addr: str | None = None, after_queued: bool = False) -> int:
        """The link goes silent; both ends notice after the supervision timeout. With
        after_queued, it goes silent just after the next event that carries the last
        write the central has queued now (at once if none is queued): the peripheral
        gets those writes, and nothing it answers them with reaches the central."""
        n = 0
        for conn in list(self.conns.values()):
            if addr is None or conn.periph.addr == addr:
                queued = sum(1 for item in conn.up if item[1] == "write")
                if after_queued and queued:
                    conn.lose_at_up = conn.stats["up"] + queued
                else:
                    self._go_silent(conn)
                n += 1
        return n

    def _go_silent(self, conn: _Conn) -> None:
        if conn.lost:
            return
        conn.lost = True
        assert self.loop is not None
        self.loop.call_later(self.params.supervision_ms / 1000, self._close, conn, 0x08)

    def set_params(self, **changes: Any) -> None:
        for k, v in changes.items():
            setattr(self.params, k, v)
        if "interval_ms" in changes:
            for conn in self.conns.values():
                _send(conn.periph.writer, {"op": "conn_update", "conn": conn.handle,
                                           "interval_ms": conn.params.interval_ms})

    def drop_writes(self, addr: str, n: int = 1) -> int:
        """The central's stack drops the next n writes without response on addr's
        connections (it answers them as sent); returns how many connections."""
        conns = [c for c in self.conns.values() if c.periph.addr == addr]
        for conn in conns:
            conn.drop_writes += n
        return len(conns)

    def _dropped(self, conn: _Conn) -> bool:
        if conn.drop_writes > 0:
            conn.drop_writes -= 1
        else:
            limit = conn.params.central_write_queue
            if not limit or sum(1 for item in conn.up
                                if item[1] == "write" and item[4] is None) < limit:
                return False
        conn.stats["writes_dropped"] += 1
        return True

    def exchange_mtu(self, addr: str | None = None) -> int:
        """Completes an MTU exchange now on every connection of the peripheral at addr
        (None: every connection), as a central's late one; returns how many. On the
        loop: air.call(air.exchange_mtu, addr)."""
        conns = [c for c in self.conns.values() if addr is None or c.periph.addr == addr]
        for conn in conns:
            self._exchange_mtu(conn)
        return len(conns)

    def events_between(self, addr: str, t0: float, t1: float) -> int:
        """Connection events of addr's open connection that ran within [t0, t1]
        (time.monotonic()); times the interval, the link time a transfer took."""
        n = 0
        for conn in self.conns.values():
            if conn.periph.addr == addr:
                n += sum(1 for t in conn.event_times if t0 <= t <= t1)
        return n

    def pdus_between(self, addr: str, t0: float, t1: float) -> int:
        """The PDUs addr's connection events within [t0, t1] could carry, each at the
        PDUs per event it ran with: the link's capacity when that changed meanwhile."""
        n = 0
        for conn in self.conns.values():
            if conn.periph.addr == addr:
                n += sum(p for t, p in zip(conn.event_times, conn.event_pdus) if t0 <= t <= t1)
        return n

    def enomem(self, addr: str) -> int:
        """Notifications addr's stack has refused with ENOMEM since it joined the air."""
        p = self.peripherals.get(addr)
        return p.enomem if p is not None else 0

    def stats(self) -> dict:
        return {"open": [dict(c.stats, mtu=c.mtu) for c in self.conns.values()],
                "closed": list(self.history[-20:])}

    # ---- the wire ---------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        role: _Peripheral | _Central | None = None
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                msg = json.loads(line)
                op = msg.get("op")
                if role is None:
                    if op == "hello" and msg.get("role") == "peripheral":
                        # The same board (by name) keeps its address across resets.
                        key = msg.get("name") or f"anon-{self.next_addr}"
                        addr = self.addresses.get(key)
                        if addr is None:
                            addr = "5E:7A:00:00:%02X:%02X" % (self.next_addr >> 8,
                                                              self.next_addr & 0xFF)
                            self.next_addr += 1
                            self.addresses[key] = addr
                        old = self.peripherals.get(addr)
                        if old is not None:
                            old.writer.close()
                        role = _Peripheral(writer, addr, msg.get("name") or "")
                        self.peripherals[addr] = role
                        _send(writer, {"op": "addr", "addr": addr})
                    elif op == "hello":
                        role = _Central(writer)
                        if msg.get("addr"):
                            role.addr = str(msg["addr"]).replace(":", "")
                        self.centrals.append(role)
                        _send(writer, {"op": "hello"})
                    continue
                if isinstance(role, _Peripheral):
                    self._from_peripheral(role, op, msg)
                else:
                    (self._tap or self.handle_central)(role, op, msg)
        except (ConnectionError, json.JSONDecodeError, asyncio.IncompleteReadError):
            pass
        finally:
            if isinstance(role, _Peripheral):
                if self.peripherals.get(role.addr) is role:
                    del self.peripherals[role.addr]
                for conn in list(role.conns):
                    self._close(conn, reason=0x08)
            elif isinstance(role, _Central):
                self.centrals.remove(role)
                for conn in list(role.conns):
                    self._close(conn, reason=0x16)
            writer.close()

    def _from_peripheral(self, p: _Peripheral, op: str, msg: dict) -> None:
        if op == "adv":
            if msg.get("data") is None:
                p.advertising = False
            else:
                p.adv = bytes.fromhex(msg["data"])
                p.resp = bytes.fromhex(msg.get("resp") or "")
                p.advertising = len(p.conns) < PERIPHERAL_CONNS
        elif op == "mtu":
            p.mtu = max(ATT_MTU_MIN, min(ATT_MTU_MAX, int(msg["mtu"])))
        elif op == "services":
            p.services = msg["services"]
        elif op == "value":
            p.values[msg["handle"]] = bytes.fromhex(msg["data"])
        elif op == "notify":
            conn = self.conns.get(msg["conn"])
            if conn is None or conn.periph is not p:
                _send(p.writer, {"op": "tx_done", "conn": msg["conn"], "n": 1})
                return
            data = bytes.fromhex(msg["data"])
            conn.down.append((self._due(), "notify", msg["handle"], data, None))
        elif op == "disconnect":
            conn = self.conns.get(msg["conn"])
            if conn is not None and conn.periph is p:
                self._close(conn, reason=0x13)
        elif op == "exchange_mtu":
            # The peripheral as GATT client: its Exchange MTU Request and the central's
            # response take a connection event each.
            conn = self.conns.get(msg["conn"])
            if conn is not None and conn.periph is p:
                asyncio.get_running_loop().call_later(
                    conn.params.mtu_answer_events * conn.params.interval_ms / 1000,
                    self._exchange_mtu, conn)
        elif op == "enomem":
            p.enomem += 1
            conn = self.conns.get(msg["conn"])
            if conn is not None and conn.periph is p:
                conn.stats["enomem"] += 1

    # ---- the test seam on what centrals send -------------------------------------------
    def tap_centrals(self, hook: Any = None) -> None:
        """hook(central, op, msg) gets every message a central sends instead of the air;
        it passes one on with handle_central(central, op, msg), or answers it itself
        (refuse()). None removes the hook. On the loop: from another thread,
        air.call(air.tap_centrals, hook)."""
        self._tap = hook

    def refuse(self, central: _Central, msg: dict, error: str) -> None:
        """Answers the central's request `msg` with an error, as the stack would."""
        _send(central.writer, {"op": "error", "req": msg.get("req"), "error": error})

    def handle_central(self, c: _Central, op: str, msg: dict) -> None:
        """The air's own handling of a central's message (what tap_centrals replaces)."""
        req = msg.get("req")
        if op == "scan":
            c.scanning = bool(msg.get("on"))
        elif op == "sim_event":
            self._sim_event(c, msg)
        elif op == "connect":
            p = self.peripherals.get(msg["addr"])
            if p is None or len(p.conns) >= PERIPHERAL_CONNS or not p.advertising:
                _send(c.writer, {"op": "error", "req": req, "error": "not advertising"})
                return
            want = int(msg.get("mtu") or self.params.central_mtu)
            want = max(ATT_MTU_MIN, min(ATT_MTU_MAX, want))
            after_s = self.params.central_mtu_after_s
            if msg.get("exchange") == "manual":
                # A central that runs the exchange when it chooses (a MicroPython
                # radio's gattc_exchange_mtu), not at a time the air's params set.
                after_s = None
            conn = _Conn(self.next_conn, c, p, ATT_MTU_MIN, self.params, want_mtu=want)
            if after_s == 0:
                conn.mtu = max(ATT_MTU_MIN, min(want, p.mtu))
                conn.exchanged = True
            self.next_conn += 1
            self.conns[conn.handle] = conn
            c.conns.add(conn)
            p.conns.add(conn)
            p.advertising = False   # a connectable advertiser stops when connected
            _send(p.writer, {"op": "connect", "conn": conn.handle, "addr": c.addr,
                             "interval_ms": self.params.interval_ms,
                             "coalesce": self.params.coalesce_writes})
            if conn.exchanged:
                _send(p.writer, {"op": "mtu", "conn": conn.handle, "mtu": conn.mtu})
            _send(c.writer, {"op": "connected", "req": req, "conn": conn.handle,
                             "mtu": conn.mtu, "services": p.services})
            loop = asyncio.get_running_loop()
            conn.task = loop.create_task(self._events(conn))
            if after_s:
                loop.call_later(after_s, self._exchange_mtu, conn)
        elif op in ("read", "write", "subscribe", "disconnect", "exchange_mtu"):
            conn = self.conns.get(msg.get("conn"))
            if conn is None or conn.central is not c:
                _send(c.writer, {"op": "error", "req": req, "error": "not connected"})
                return
            if op == "disconnect":
                self._close(conn, reason=0x16)
                _send(c.writer, {"op": "ok", "req": req})
            elif op == "exchange_mtu":
                # The central's own Exchange MTU Request: answered events later, told
                # to both ends as the peripheral's is.
                conn.want_mtu = max(ATT_MTU_MIN, min(ATT_MTU_MAX, int(msg.get("mtu") or 23)))
                asyncio.get_running_loop().call_later(
                    conn.params.mtu_answer_events * conn.params.interval_ms / 1000,
                    self._exchange_mtu, conn)
                _send(c.writer, {"op": "ok", "req": req})
            elif op == "subscribe":
                (conn.subscribed.add if msg.get("on") else conn.subscribed.discard)(msg["handle"])
                _send(c.writer, {"op": "ok", "req": req})
            elif op == "read":
                conn.up.append((self._due(), "read", msg["handle"], b"", req))
            else:
                data = bytes.fromhex(msg["data"])
                if len(data) > conn.mtu - 3:
                    _send(c.writer, {"op": "error", "req": req,
                                     "error": f"{len(data)} bytes > ATT MTU {conn.mtu} - 3"})
                    return
                if not msg.get("response") and self._dropped(conn):
                    # Lost in the central's own stack: it says nothing about it.
                    _send(c.writer, {"op": "ok", "req": req})
                    return
                conn.up.append((self._due(), "write", msg["handle"], data,
                                req if msg.get("response") else None))
                if not msg.get("response"):
                    # Write without response: accepted into the central's own queue.
                    _send(c.writer, {"op": "ok", "req": req})

    def _sim_event(self, c: _Central, msg: dict) -> None:
        req = msg.get("req")
        for p in self.peripherals.values():
            if p.name == msg.get("name"):
                _send(p.writer, {"op": "sim_event", "event": msg.get("event")})
                _send(c.writer, {"op": "ok", "req": req})
                return
        names = sorted(p.name for p in self.peripherals.values() if p.name)
        _send(c.writer, {"op": "error", "req": req, "names": names,
                         "error": f"no simulated steamer named {msg.get('name')!r} is on "
                                  f"the simulated air at {self.address}"})

    def _due(self) -> float:
        return time.monotonic() + self.params.latency_ms / 1000

    async def _events(self, conn: _Conn) -> None:
        """One connection event per interval: at most pdus_per_event each way."""
        params = conn.params
        next_t = time.monotonic()
        while conn.open:
            next_t += params.interval_ms / 1000
            await asyncio.sleep(max(0.0, next_t - time.monotonic()))
            if not conn.open:
                break
            if conn.lost:
                continue
            conn.stats["events"] += 1
            conn.event_times.append(time.monotonic())
            conn.event_pdus.append(params.pdus_per_event)
            if params.drop_per_event and self.rng.random() < params.drop_per_event:
                self._close(conn, reason=0x08)
                break
            now = time.monotonic()
            self._carry(conn, conn.up, now, up=True)
            if not conn.lost:           # lose(after_queued=True) may silence it just now
                self._carry(conn, conn.down, now, up=False)

    def _carry(self, conn: _Conn, queue: collections.deque, now: float, up: bool) -> None:
        p, c = conn.periph, conn.central
        for _ in range(conn.params.pdus_per_event):
            if not queue or queue[0][0] > now:
                return
            _, kind, handle, data, req = queue.popleft()
            if kind == "read":
                value = p.values.get(handle, b"")
                _send(c.writer, {"op": "read_rsp", "req": req, "data": value.hex()})
            elif kind == "write":
                conn.stats["up"] += 1
                _send(p.writer, {"op": "write", "conn": conn.handle, "handle": handle,
                                 "data": data.hex()})
                if req is not None:
                    _send(c.writer, {"op": "ok", "req": req})
                if 0 <= conn.lose_at_up <= conn.stats["up"]:
                    conn.lose_at_up = -1
                    self._go_silent(conn)
                    return
            else:
                conn.stats["down"] += 1
                conn.stats["down_bytes"] += len(data)
                if handle in conn.subscribed:
                    _send(c.writer, {"op": "notify", "conn": conn.handle, "handle": handle,
                                     "data": data.hex()})
                _send(p.writer, {"op": "tx_done", "conn": conn.handle, "n": 1})

    def _exchange_mtu(self, conn: _Conn) -> None:
        """An MTU exchange completes (either side's): the lower of both preferred MTUs,
        told to both ends. A second one (the other side's own request) agrees on the
        same MTU and is told again, as the stacks report each exchange."""
        if not conn.open:
            return
        conn.mtu = max(ATT_MTU_MIN, min(conn.want_mtu, conn.periph.mtu))
        conn.exchanged = True
        _send(conn.periph.writer, {"op": "mtu", "conn": conn.handle, "mtu": conn.mtu})
        _send(conn.central.writer, {"op": "mtu", "conn": conn.handle, "mtu": conn.mtu})

    def _close(self, conn: _Conn, reason: int) -> None:
        if not conn.open:
            return
        conn.open = False
        self.conns.pop(conn.handle, None)
        conn.central.conns.discard(conn)
        p = conn.periph
        p.conns.discard(conn)
        self.history.append(dict(conn.stats, mtu=conn.mtu))
        # PDUs still queued in the peripheral's stack are freed with the connection.
        pending = sum(1 for item in conn.down if item[1] == "notify")
        if pending:
            _send(p.writer, {"op": "tx_done", "conn": conn.handle, "n": pending})
        _send(p.writer, {"op": "disconnect", "conn": conn.handle, "reason": reason})
        for item in conn.up:
            if item[4] is not None:
                _send(conn.central.writer, {"op": "error", "req": item[4], "error": "disconnected"})
        _send(conn.central.writer, {"op": "disconnected", "conn": conn.handle, "reason": reason})

    async def _advertise_loop(self) -> None:
        """Scanners hear every advertiser about every 100 ms."""
        while True:
            await asyncio.sleep(0.1)
            for p in list(self.peripherals.values()):
                if not p.advertising:
                    continue
                for c in self.centrals:
                    if c.scanning:
                        _send(c.writer, {"op": "adv", "addr": p.addr, "data": p.adv.hex(),
                                         "resp": p.resp.hex(), "rssi": -50})



def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The standalone air's options (`steamer sim air`, `python -m steamer_sim.air`)."""
    ap.add_argument("--listen", metavar="ADDR",
                    help="a socket path or HOST:PORT (default: $STEAMER_AIR, else this "
                         "user's own socket, e.g. $XDG_RUNTIME_DIR/steamer/air.sock)")
    ap.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help="listen on TCP HOST:PORT (--host, default "
                                             "127.0.0.1) instead")
    ap.add_argument("--idle-exit-s", type=float, default=0.0, metavar="S",
                    help="exit once no steamer and no client has been on the air for S "
                         "seconds (default: never)")
    ap.add_argument("--interval-ms", type=float, default=LinkParams.interval_ms,
                    help="connection interval (default: %(default)s)")
    ap.add_argument("--pdus-per-event", type=int, default=LinkParams.pdus_per_event,
                    help="PDUs per direction per connection event (default: %(default)s)")


def serve_forever(args: argparse.Namespace) -> int:
    """Runs the air in this process until interrupted (or idle for --idle-exit-s); its
    address goes to stdout once it listens. A socket air holds `air.lock` beside its
    socket while it runs, so that two started at once do not take each other's place:
    the second exits at once (code 3) and clients use the first."""
    import fcntl
    addr = args.listen or (f"{args.host}:{args.port}" if args.port is not None
                           else air_address())
    air = Air(LinkParams(interval_ms=args.interval_ms, pdus_per_event=args.pdus_per_event))
    lock = None
    if is_socket_path(addr):
        lock = open(os.path.join(private_folder(addr), "air.lock"), "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            print(f"a simulated air already runs at {addr}", file=sys.stderr)
            return 3

    async def run() -> None:
        if is_socket_path(addr):
            print(await air.start(path=addr), flush=True)
        else:
            host, port = addr.rsplit(":", 1)
            print(await air.start(host, int(port)), flush=True)
        while not (args.idle_exit_s > 0 and air.idle_s() > args.idle_exit_s):
            await asyncio.sleep(1.0)
    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        return 130
    finally:
        if lock is not None and air.address == addr:
            try:
                os.unlink(addr)     # ours: the lock kept every other air from it
            except OSError:
                pass
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m steamer_sim.air", description=__doc__.split("\n")[0])
    add_arguments(ap)
    return serve_forever(ap.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
