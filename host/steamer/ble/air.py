"""The simulated air: a loopback broker between simulated peripherals and centrals.

Peripherals are the firmware on the MicroPython unix port (boards/sim/bluetooth.py);
centrals are the bleak backend (steamer.ble.simbackend). Both speak newline-delimited
JSON over TCP, bytes as hex. The broker models what matters to the protocol above it:

- ATT payload limits from the negotiated MTU (min of both sides' preferred MTU);
  a write or notification longer than MTU - 3 is refused.
- A connection interval with at most `pdus_per_event` PDUs per direction per event,
  so the ceiling is `pdus_per_event * (mtu - 3) * 1000 / interval_ms` bytes/s.
- Injected disconnects (`drop`), an extra one-way delay (`latency_ms`) and lost links
  (`lose`: both ends learn of it only after the supervision timeout).
- Late IRQ handlers on the peripheral (`coalesce_writes`): its stack appends that many
  writes before the firmware's handler reads them (boards/sim/bluetooth.py).
- The connection interval reaches the peripheral as a connection update, at connect
  and whenever set_params changes it.

    python -m steamer.ble.air [--port N]        # a standalone broker
    air = Air(); addr = air.start_thread()      # in-process, as tests and `sim serve` do
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

ENV = "STEAMER_AIR"
DEFAULT_ADDR = "127.0.0.1:47474"
ATT_MTU_MIN = 23
ATT_MTU_MAX = 517


def air_address() -> str:
    """The air this process should use: $STEAMER_AIR, else the default loopback port."""
    return os.environ.get(ENV) or DEFAULT_ADDR


@dataclass(eq=False)
class LinkParams:
    interval_ms: float = 30.0        # connection interval
    pdus_per_event: int = 6          # PDUs per direction per connection event
    latency_ms: float = 0.0          # extra one-way delay on every PDU
    central_mtu: int = 247           # what the central asks for in the MTU exchange
    supervision_ms: float = 400.0    # how long a lost link takes to be noticed
    drop_per_event: float = 0.0      # chance per connection event of a disconnect
    coalesce_writes: int = 1         # writes the peripheral's stack appends per IRQ batch

    def ceiling_bytes_s(self, mtu: int) -> float:
        return self.pdus_per_event * (mtu - 3) * 1000.0 / self.interval_ms


@dataclass(eq=False)
class _Peripheral:
    writer: asyncio.StreamWriter
    addr: str
    adv: bytes = b""
    resp: bytes = b""
    advertising: bool = False
    mtu: int = ATT_MTU_MIN
    services: list = field(default_factory=list)
    values: dict = field(default_factory=dict)   # handle -> bytes
    conn: "_Conn | None" = None
    enomem: int = 0            # notifications its stack refused for want of buffers


@dataclass(eq=False)
class _Central:
    writer: asyncio.StreamWriter
    scanning: bool = False
    conns: set = field(default_factory=set)


@dataclass(eq=False)
class _Conn:
    handle: int
    central: _Central
    periph: _Peripheral
    mtu: int
    params: LinkParams
    up: collections.deque = field(default_factory=collections.deque)    # to the peripheral
    down: collections.deque = field(default_factory=collections.deque)  # to the central
    subscribed: set = field(default_factory=set)
    task: "asyncio.Task | None" = None
    open: bool = True
    lost: bool = False
    stats: dict = field(default_factory=lambda: {"up": 0, "down": 0, "down_bytes": 0,
                                                 "events": 0, "enomem": 0})
    # When each connection event ran (time.monotonic()), newest last: link time for
    # measurements that must not depend on how promptly this process was scheduled.
    event_times: collections.deque = field(
        default_factory=lambda: collections.deque(maxlen=1 << 16))


def _send(writer: asyncio.StreamWriter, msg: dict) -> None:
    if not writer.is_closing():
        writer.write(json.dumps(msg, separators=(",", ":")).encode() + b"\n")


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

    # ---- running ----------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self.loop = asyncio.get_running_loop()
        self.server = await asyncio.start_server(self._serve, host, port)
        sock = self.server.sockets[0].getsockname()
        self.address = f"{sock[0]}:{sock[1]}"
        asyncio.get_running_loop().create_task(self._advertise_loop())
        return self.address

    def start_thread(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Runs the broker on a daemon thread; returns its address once it listens."""
        ready: dict[str, Any] = {}
        done = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            try:
                ready["addr"] = loop.run_until_complete(self.start(host, port))
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

    def lose(self, addr: str | None = None) -> int:
        """The link goes silent; both ends notice after the supervision timeout."""
        n = 0
        for conn in list(self.conns.values()):
            if addr is None or conn.periph.addr == addr:
                conn.lost = True
                assert self.loop is not None
                self.loop.call_later(self.params.supervision_ms / 1000, self._close, conn, 0x08)
                n += 1
        return n

    def set_params(self, **changes: Any) -> None:
        for k, v in changes.items():
            setattr(self.params, k, v)
        if "interval_ms" in changes:
            for conn in self.conns.values():
                _send(conn.periph.writer, {"op": "conn_update", "conn": conn.handle,
                                           "interval_ms": conn.params.interval_ms})

    def events_between(self, addr: str, t0: float, t1: float) -> int:
        """Connection events of addr's open connection that ran within [t0, t1]
        (time.monotonic()); times the interval, the link time a transfer took."""
        n = 0
        for conn in self.conns.values():
            if conn.periph.addr == addr:
                n += sum(1 for t in conn.event_times if t0 <= t <= t1)
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
                        role = _Peripheral(writer, addr)
                        self.peripherals[addr] = role
                        _send(writer, {"op": "addr", "addr": addr})
                    elif op == "hello":
                        role = _Central(writer)
                        self.centrals.append(role)
                        _send(writer, {"op": "hello"})
                    continue
                if isinstance(role, _Peripheral):
                    self._from_peripheral(role, op, msg)
                else:
                    self._from_central(role, op, msg)
        except (ConnectionError, json.JSONDecodeError, asyncio.IncompleteReadError):
            pass
        finally:
            if isinstance(role, _Peripheral):
                if self.peripherals.get(role.addr) is role:
                    del self.peripherals[role.addr]
                if role.conn is not None:
                    self._close(role.conn, reason=0x08)
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
                p.advertising = p.conn is None
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
        elif op == "enomem":
            p.enomem += 1
            conn = self.conns.get(msg["conn"])
            if conn is not None and conn.periph is p:
                conn.stats["enomem"] += 1

    def _from_central(self, c: _Central, op: str, msg: dict) -> None:
        req = msg.get("req")
        if op == "scan":
            c.scanning = bool(msg.get("on"))
        elif op == "connect":
            p = self.peripherals.get(msg["addr"])
            if p is None or p.conn is not None or not p.advertising:
                _send(c.writer, {"op": "error", "req": req, "error": "not advertising"})
                return
            mtu = max(ATT_MTU_MIN, min(int(msg.get("mtu") or self.params.central_mtu), p.mtu))
            conn = _Conn(self.next_conn, c, p, mtu, self.params)
            self.next_conn += 1
            self.conns[conn.handle] = conn
            c.conns.add(conn)
            p.conn = conn
            p.advertising = False   # a connectable advertiser stops when connected
            _send(p.writer, {"op": "connect", "conn": conn.handle, "addr": "C0FFEE000001",
                             "interval_ms": self.params.interval_ms,
                             "coalesce": self.params.coalesce_writes})
            _send(p.writer, {"op": "mtu", "conn": conn.handle, "mtu": mtu})
            _send(c.writer, {"op": "connected", "req": req, "conn": conn.handle, "mtu": mtu,
                             "services": p.services})
            conn.task = asyncio.get_running_loop().create_task(self._events(conn))
        elif op in ("read", "write", "subscribe", "disconnect"):
            conn = self.conns.get(msg.get("conn"))
            if conn is None or conn.central is not c:
                _send(c.writer, {"op": "error", "req": req, "error": "not connected"})
                return
            if op == "disconnect":
                self._close(conn, reason=0x16)
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
                conn.up.append((self._due(), "write", msg["handle"], data,
                                req if msg.get("response") else None))
                if not msg.get("response"):
                    # Write without response: accepted into the central's own queue.
                    _send(c.writer, {"op": "ok", "req": req})

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
            if params.drop_per_event and self.rng.random() < params.drop_per_event:
                self._close(conn, reason=0x08)
                break
            now = time.monotonic()
            self._carry(conn, conn.up, now, up=True)
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
            else:
                conn.stats["down"] += 1
                conn.stats["down_bytes"] += len(data)
                if handle in conn.subscribed:
                    _send(c.writer, {"op": "notify", "conn": conn.handle, "handle": handle,
                                     "data": data.hex()})
                _send(p.writer, {"op": "tx_done", "conn": conn.handle, "n": 1})

    def _close(self, conn: _Conn, reason: int) -> None:
        if not conn.open:
            return
        conn.open = False
        self.conns.pop(conn.handle, None)
        conn.central.conns.discard(conn)
        p = conn.periph
        if p.conn is conn:
            p.conn = None
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



def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m steamer.ble.air", description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=int(DEFAULT_ADDR.rsplit(":", 1)[1]))
    ap.add_argument("--interval-ms", type=float, default=LinkParams.interval_ms)
    ap.add_argument("--pdus-per-event", type=int, default=LinkParams.pdus_per_event)
    args = ap.parse_args(argv)
    air = Air(LinkParams(interval_ms=args.interval_ms, pdus_per_event=args.pdus_per_event))

    async def run() -> None:
        print(await air.start(args.host, args.port), flush=True)
        await asyncio.Event().wait()
    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
