"""The sim bleak backend as a real one may behave (issue 13 item 8), and the client's
recovery: the MTU reads 23 until the exchange completes; a value longer than one ATT
Read is a Read and Read Blobs, which a change in between tears; steamer.client reads
such a frame again until two reads agree, so a torn Info or State is never decoded.
Also the air's silent cut as the chaos rounds use it: lose(after_queued=True) lets the
peripheral have what the central queued and lets nothing it answers come back."""
from __future__ import annotations

import json
import socket
import threading
import time
from asyncio import run, sleep

import pytest
from bleak import BleakClient

import podproto
from podproto import gatt
from steamer.client import KeyRing, Steamer
from steamer_sim.air import airwire, connect_socket
from steamer_sim.backend import SimRadio
from steamer_sim.backend import sim_radio

_HANDLES = {"info": 3, "command": 5, "event": 7, "state": 10}


def _status(boiler_mc: int) -> bytes:
    return podproto.encode({"type": "status", "flags": 1, "state": 0, "fault": 0,
                            "boiler_mc": boiler_mc, "outlet_mc": 22000, "heater_pct": 0,
                            "pump_ul_min": 0, "session_ul": 0, "session_s": 0,
                            "podlet_type": 0, "clock_s": 0, "limit_ul": 0, "limit_s": 0,
                            "podlet_state": 0, "podlet_reason": 0})


class Peripheral:
    """A GATT server on the air that changes its values only when the test does (the
    firmware rewrites State every second): the steamer's service, Info and State."""

    def __init__(self, air) -> None:
        self.sock: socket.socket = connect_socket(air.address)
        self.sock.settimeout(5)
        self.send({"op": "hello", "role": "peripheral", "name": "backend-peripheral"})
        reply = b""
        while b"\n" not in reply:
            reply += self.sock.recv(4096)
        self.addr = _json(reply.split(b"\n")[0])["addr"]
        chars = [{"uuid": uuid, "flags": flags, "handle": _HANDLES[name]}
                 for name, uuid, flags in gatt.CHARACTERISTICS]
        self.send({"op": "mtu", "mtu": 247})
        self.send({"op": "services", "services": [{"uuid": gatt.SERVICE_UUID, "chars": chars}]})
        info = podproto.encode({"type": "info", "flags": 1, "proto": podproto.VERSION,
                                "caps": 0, "max_frame": 1024, "max_pdu": 244,
                                "rx_credits": 16, "log_first": 1, "log_next": 1,
                                "fw_version": "0.1.0", "journal_id": bytes(8)})
        self.send({"op": "value", "handle": _HANDLES["info"], "data": info.hex()})
        self.send({"op": "value", "handle": _HANDLES["state"], "data": _status(21000).hex()})
        self.send({"op": "adv", "data": "020106", "resp": ""})

    def send(self, msg: dict) -> None:
        self.sock.sendall(airwire.encode(msg))

    def close(self) -> None:
        self.sock.close()


def _json(line: bytes) -> dict:
    return json.loads(line)


@pytest.fixture
def peripheral(air):
    p = Peripheral(air)
    for _ in range(200):                # until the air has taken its advertising
        if air.call(lambda: getattr(air.peripherals.get(p.addr), "advertising", False)):
            break
        time.sleep(0.01)
    yield p
    p.close()


class Tear:
    """Before the k-th read of `handle` (from 1) the air's copy becomes values[k], so a
    value read in parts changes between them."""

    def __init__(self, air, handle: int, values: dict[int, bytes]) -> None:
        self.air, self.handle, self.values = air, handle, values
        self.reads = 0

    def __call__(self, central, op: str, msg: dict) -> None:
        if op == "read" and msg.get("handle") == self.handle:
            self.reads += 1
            value = self.values.get(self.reads)
            if value is not None:
                self.air.conns[msg["conn"]].periph.values[self.handle] = value
        self.air.handle_central(central, op, msg)


def _client(air, addr: str, mtu: int) -> BleakClient:
    radio = SimRadio(air.address)
    return BleakClient(radio.client.ble_device(addr), backend=radio.client, mtu=mtu)


def test_the_mtu_reads_23_until_the_exchange_completes(air, peripheral):
    async def go() -> tuple[int, int, int]:
        async with _client(air, peripheral.addr, 247) as client:
            char = client.services.get_characteristic(gatt.COMMAND_UUID)
            first = client.mtu_size, char.max_write_without_response_size
            await sleep(0.5)
            return first[0], first[1], client.mtu_size
    assert run(go()) == (23, 20, 247)


def test_a_read_longer_than_one_att_read_comes_in_parts_that_can_tear(air, peripheral):
    a, b = _status(21000), _status(99000)
    assert len(a) == len(b) > 22       # State is longer than one ATT Read at MTU 23

    async def go() -> bytes:
        async with _client(air, peripheral.addr, 23) as client:
            air.call(air.tap_centrals, Tear(air, _HANDLES["state"], {1: a, 2: b}))
            try:
                return bytes(await client.read_gatt_char(gatt.STATE_UUID))
            finally:
                air.call(air.tap_centrals, None)
    torn = run(go())
    assert torn == a[:22] + b[22:] and torn not in (a, b)


def test_the_client_reads_a_torn_frame_again_until_two_reads_agree(air, peripheral):
    a, b = _status(21000), _status(99000)

    async def go() -> tuple[dict, int]:
        async with Steamer(peripheral.addr, KeyRing(), **sim_radio(air.address).steamer_kw(),
                           mtu=23) as st:
            # Read 1 is torn at its part 2; read 2 is b whole, and read 3 agrees with it.
            tear = Tear(air, _HANDLES["state"], {1: a, 2: b})
            air.call(air.tap_centrals, tear)
            try:
                status = await st.status()
            finally:
                air.call(air.tap_centrals, None)
            return status, tear.reads
    status, reads = run(go())
    assert status["type"] == "status" and status["boiler_mc"] == 99000, status
    parts = len(a) // 22 + 1            # ATT Read, then Read Blobs to a short one
    assert reads == 3 * parts, reads


class Echo:
    """Reads the peripheral's side of the air on a thread: every write it is carried,
    it answers at once with an Event notification carrying the same bytes."""

    def __init__(self, p: Peripheral) -> None:
        self.p = p
        self.writes: list[bytes] = []
        self.conn: int | None = None
        self.gone = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        buf = b""
        while not self.gone.is_set():
            try:
                chunk = self.p.sock.recv(4096)
            except (socket.timeout, OSError):
                continue
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                msg = _json(line)
                if msg["op"] == "connect":
                    self.conn = msg["conn"]
                elif msg["op"] == "write":
                    self.writes.append(bytes.fromhex(msg["data"]))
                    self.p.send({"op": "notify", "conn": msg["conn"],
                                 "handle": _HANDLES["event"], "data": msg["data"]})


@pytest.mark.parametrize("queued", [True, False])
def test_a_link_lost_after_the_queued_writes_carries_them_and_no_answer(air, peripheral,
                                                                       queued):
    """lose(after_queued=True) armed just after a write without response was queued:
    the air carries the write to the peripheral in its next event and goes silent in
    that event, so the peripheral's answer (sent at once) never reaches the central,
    which learns of the loss at the supervision timeout. Armed with nothing queued (the
    write already carried and answered) it goes silent at once: a later write never
    reaches the peripheral. An answer can never beat the cut, as it could when the
    chaos rounds armed a lose a moment after the commit."""
    echo = Echo(peripheral)

    async def go() -> tuple[list[bytes], bool]:
        heard: list[bytes] = []
        async with _client(air, peripheral.addr, 23) as client:
            await client.start_notify(gatt.EVENT_UUID, lambda _c, d: heard.append(bytes(d)))
            if not queued:
                await client.write_gatt_char(gatt.COMMAND_UUID, b"first", response=False)
                for _ in range(100):
                    if heard:
                        break
                    await sleep(0.01)
                assert heard == [b"first"]
                assert air.call(air.lose, peripheral.addr, True) == 1
                await client.write_gatt_char(gatt.COMMAND_UUID, b"later", response=False)
            else:
                await client.write_gatt_char(gatt.COMMAND_UUID, b"cut-here", response=False)
                assert air.call(air.lose, peripheral.addr, True) == 1
            t0 = time.monotonic()
            while client.is_connected and time.monotonic() - t0 < 3:
                await sleep(0.02)
            return heard, client.is_connected
    try:
        heard, still = run(go())
    finally:
        echo.gone.set()
    assert not still, "the central never learnt of the lost link"
    if queued:
        assert echo.writes == [b"cut-here"] and heard == []
    else:
        assert echo.writes == [b"first"] and heard == [b"first"]
