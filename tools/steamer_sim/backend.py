"""A bleak backend whose radio is the simulated air (steamer_sim.air), so that tests and
`steamer ... --sim` reach simulated steamers through bleak's own client API:

    from bleak import BleakClient, BleakScanner
    from steamer_sim.backend import SimClient, SimScanner
    devices = await BleakScanner.discover(backend=SimScanner, air="/run/user/1000/steamer/air.sock")
    async with BleakClient(devices[0], backend=SimClient) as client:
        print(await client.read_gatt_char(podproto.gatt.STATE_UUID))

`air` defaults to the class's AIR, then $STEAMER_AIR, then this user's own
(steamer_sim.air.default_address). The backend never bonds (the steamer does its own
pairing above GATT), so pair() is a no-op.

It behaves as a real backend may (issue 13): `mtu_size` (and each characteristic's
max_write_without_response_size) reads 23 (20) until the MTU exchange has completed, a
few connection events after connect (or whenever the air's exchange completes later) (BlueZ reports 23 until the MTU is acquired,
CoreBluetooth's maximum may read 20 at first); a read of a value longer than ATT_MTU - 1
is a Read and then Read Blobs, one request each, so a value that changes meanwhile
arrives torn.

SimRadio is the `sim` radio plugin of steamer.client (pyproject.toml's entry-point
group `steamer.backends`): SimRadio(address) holds the two backend classes bound to
that air, so `steamer ... --sim` chooses it without the host importing this package.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import logging
import uuid as uuidlib
from typing import Any, Callable

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError

from steamer_sim.air import ENV, air_address, checked_air, encode, open_stream, unreachable

log = logging.getLogger(__name__)

_PROPS = ((0x02, "read"), (0x04, "write-without-response"), (0x08, "write"),
          (0x10, "notify"), (0x20, "indicate"))


class _Wire:
    """One JSON-lines connection to the air, with request/response matching."""

    def __init__(self, on_message: Callable[[dict], None]) -> None:
        self.on_message = on_message
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.pending: dict[int, asyncio.Future] = {}
        self.ids = itertools.count(1)
        self.task: asyncio.Task | None = None

    async def open(self, addr: str) -> None:
        try:
            self.reader, self.writer = await open_stream(addr)
        except OSError as e:
            raise BleakError(f"simulated air at {addr}: {e}") from e
        self.send({"op": "hello", "role": "central"})
        self.task = asyncio.get_running_loop().create_task(self._read())

    def send(self, msg: dict) -> None:
        if self.writer is None or self.writer.is_closing():
            raise BleakError("not connected to the simulated air")
        self.writer.write(encode(msg))

    async def request(self, msg: dict, timeout: float = 10.0) -> dict:
        req = next(self.ids)
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self.pending[req] = fut
        try:
            self.send({**msg, "req": req})
            reply = await asyncio.wait_for(fut, timeout)
        finally:
            self.pending.pop(req, None)
        if reply.get("op") == "error":
            raise BleakError(reply.get("error", "error"))
        return reply

    async def _read(self) -> None:
        assert self.reader is not None
        try:
            while True:
                line = await self.reader.readline()
                if not line:
                    break
                msg = json.loads(line)
                fut = self.pending.get(msg.get("req"))  # type: ignore[arg-type]
                if fut is not None and not fut.done():
                    fut.set_result(msg)
                else:
                    self.on_message(msg)
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:  # noqa: BLE001 - a bug here must not hang the caller
            log.exception("simulated air: reading")
        finally:
            for fut in self.pending.values():
                if not fut.done():
                    fut.set_exception(BleakError("the simulated air went away"))
            self.on_message({"op": "closed"})

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - closing anyway
                pass


def parse_ad(data: bytes) -> dict[str, Any]:
    """Local name, service UUIDs and manufacturer data of raw AD structures."""
    out: dict[str, Any] = {"name": None, "uuids": [], "mfr": {}}
    i = 0
    while i < len(data):
        n = data[i]
        if n == 0 or i + 1 + n > len(data):
            break
        kind, body = data[i + 1], data[i + 2:i + 1 + n]
        if kind in (0x08, 0x09):
            out["name"] = body.decode("ascii", "replace")
        elif kind in (0x06, 0x07):
            for k in range(0, len(body) - 15, 16):
                out["uuids"].append(str(uuidlib.UUID(bytes=bytes(reversed(body[k:k + 16])))))
        elif kind in (0x02, 0x03):
            for k in range(0, len(body) - 1, 2):
                u16 = body[k] | body[k + 1] << 8
                out["uuids"].append(f"0000{u16:04x}-0000-1000-8000-00805f9b34fb")
        elif kind == 0xFF and len(body) >= 2:
            out["mfr"][body[0] | body[1] << 8] = bytes(body[2:])
        i += 1 + n
    return out


class SimScanner(BaseBleakScanner):
    AIR: str | None = None     # the air of a class SimRadio bound; None: the default

    def __init__(self, detection_callback: AdvertisementDataCallback | None,
                 service_uuids: list[str] | None, scanning_mode: str = "active", *,
                 air: str | None = None, **kwargs: Any) -> None:
        super().__init__(detection_callback, service_uuids)
        self.air = air or self.AIR or air_address()
        self._wire: _Wire | None = None

    async def start(self) -> None:
        self.seen_devices = {}
        self._wire = _Wire(self._on_message)
        await self._wire.open(self.air)
        self._wire.send({"op": "scan", "on": True})

    async def stop(self) -> None:
        if self._wire is not None:
            await self._wire.close()
            self._wire = None

    def _on_message(self, msg: dict) -> None:
        if msg.get("op") != "adv":
            return
        ad = parse_ad(bytes.fromhex(msg["data"]))
        resp = parse_ad(bytes.fromhex(msg.get("resp") or ""))
        name = ad["name"] or resp["name"]
        uuids = ad["uuids"] + resp["uuids"]
        if not self.is_allowed_uuid(uuids):
            return
        adv = AdvertisementData(local_name=name, manufacturer_data={**ad["mfr"], **resp["mfr"]},
                                service_data={}, service_uuids=uuids, tx_power=None,
                                rssi=msg.get("rssi", -60), platform_data=(msg,))
        device = self.create_or_update_device(msg["addr"], msg["addr"], name,
                                              {"air": self.air}, adv)
        self.call_detection_callbacks(device, adv)


class SimClient(BaseBleakClient):
    AIR: str | None = None     # the air of a class SimRadio bound; None: the device's
    # When the MTU exchange the air ran at connect is reported: a few connection events.
    MTU_AFTER_S = 0.15

    @classmethod
    def ble_device(cls, address: str) -> BLEDevice:
        """A BLEDevice for `address` without a scan (the air reaches any address)."""
        return BLEDevice(address, None, {"air": cls.AIR})

    def __init__(self, address_or_ble_device: BLEDevice | str, *,
                 disconnected_callback: Callable[[], None] | None = None,
                 timeout: float = 10.0, air: str | None = None, mtu: int = 247,
                 **kwargs: Any) -> None:
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback,
                         timeout=timeout)
        details = getattr(address_or_ble_device, "details", None)
        self.air = air or self.AIR or (details or {}).get("air") or air_address()
        self._name = getattr(address_or_ble_device, "name", None) or self.address
        self._want_mtu = mtu
        self._mtu = 23
        self._att_mtu = 23         # the link's (what reads are split by)
        self._mtu_timer: asyncio.TimerHandle | None = None
        self._conn: int | None = None
        self._wire: _Wire | None = None
        self._callbacks: dict[int, NotifyCallback] = {}

    @property
    def name(self) -> str:
        return self._name

    @property
    def mtu_size(self) -> int:
        return self._mtu

    @property
    def is_connected(self) -> bool:
        return self._conn is not None

    async def connect(self, pair: bool = False, **kwargs: Any) -> None:
        self._wire = _Wire(self._on_message)
        await self._wire.open(self.air)
        try:
            reply = await self._wire.request({"op": "connect", "addr": self.address,
                                              "mtu": self._want_mtu}, self._timeout)
        except (BleakError, asyncio.TimeoutError) as e:
            await self._wire.close()
            self._wire = None
            raise BleakError(f"{self.address}: could not connect: {e}") from e
        self._conn = reply["conn"]
        self._mtu = 23
        self._att_mtu = reply["mtu"]
        if self._att_mtu > 23:
            self._mtu_timer = asyncio.get_running_loop().call_later(
                self.MTU_AFTER_S, self._mtu_exchanged, reply["conn"])
        self.services = self._services(reply["services"])

    def _mtu_exchanged(self, conn: int) -> None:
        if self._conn == conn:
            self._mtu = self._att_mtu

    def _services(self, described: list[dict]) -> BleakGATTServiceCollection:
        coll = BleakGATTServiceCollection()
        for svc in described:
            first = svc["chars"][0]["handle"] - 2 if svc["chars"] else 0
            service = BleakGATTService(None, first, svc["uuid"])
            coll.add_service(service)
            for ch in svc["chars"]:
                props = [name for bit, name in _PROPS if ch["flags"] & bit]
                char = BleakGATTCharacteristic(None, ch["handle"], ch["uuid"], props,
                                               lambda: self._mtu - 3, service)
                coll.add_characteristic(char)
        return coll

    async def disconnect(self) -> None:
        if self._wire is None:
            return
        if self._conn is not None:
            try:
                await self._wire.request({"op": "disconnect", "conn": self._conn}, 5)
            except (BleakError, asyncio.TimeoutError):
                pass
        self._conn = None
        if self._mtu_timer is not None:
            self._mtu_timer.cancel()
        await self._wire.close()
        self._wire = None

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        log.debug("the simulated air does not bond; the steamer pairs above GATT")

    async def unpair(self) -> None:
        log.debug("the simulated air does not bond")

    def _need(self) -> _Wire:
        if self._wire is None or self._conn is None:
            raise BleakError("not connected")
        return self._wire

    async def read_gatt_char(self, characteristic: BleakGATTCharacteristic, *,
                             use_cached: bool = False, **kwargs: Any) -> bytearray:
        # ATT Read answers ATT_MTU - 1 bytes at most; Read Blob the next part from an
        # offset, each its own request (the value may change in between).
        part = self._att_mtu - 1
        out = bytearray()
        while True:
            reply = await self._need().request({"op": "read", "conn": self._conn,
                                                "handle": characteristic.handle},
                                               self._timeout)
            value = bytes.fromhex(reply["data"])
            chunk = value[len(out):len(out) + part]
            out += chunk
            if len(chunk) < part:
                return out

    async def read_gatt_descriptor(self, descriptor: BleakGATTDescriptor, *,
                                   use_cached: bool = False, **kwargs: Any) -> bytearray:
        raise BleakError("the simulated steamer has no readable descriptors")

    async def write_gatt_char(self, characteristic: BleakGATTCharacteristic, data: Any,
                              response: bool) -> None:
        await self._need().request({"op": "write", "conn": self._conn,
                                    "handle": characteristic.handle,
                                    "data": bytes(data).hex(), "response": response},
                                   self._timeout)

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        raise BleakError("the simulated steamer has no writable descriptors")

    async def start_notify(self, characteristic: BleakGATTCharacteristic,
                           callback: NotifyCallback, **kwargs: Any) -> None:
        self._callbacks[characteristic.handle] = callback
        await self._need().request({"op": "subscribe", "conn": self._conn,
                                    "handle": characteristic.handle, "on": True})

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        self._callbacks.pop(characteristic.handle, None)
        if self._conn is not None:
            await self._need().request({"op": "subscribe", "conn": self._conn,
                                        "handle": characteristic.handle, "on": False})

    def _on_message(self, msg: dict) -> None:
        op = msg.get("op")
        if op == "mtu" and msg.get("conn") == self._conn:
            # An exchange after the connect (the central's late one, or the steamer's
            # own request): bleak's mtu_size follows it.
            self._att_mtu = self._mtu = int(msg["mtu"])
        elif op == "notify" and msg.get("conn") == self._conn:
            cb = self._callbacks.get(msg["handle"])
            if cb is not None:
                cb(bytearray.fromhex(msg["data"]))
        elif (op == "disconnected" and msg.get("conn") == self._conn) or (
                op == "closed" and self._conn is not None):
            self._conn = None
            if self._disconnected_callback is not None:
                self._disconnected_callback()


class SimRadio:
    """The simulated air as steamer.client's radio: `scanner` and `client` are SimScanner
    and SimClient bound to `address` (None: each resolves it as above). `address` is the
    air's for messages; AirError (a ValueError naming $STEAMER_AIR) when it is neither
    HOST:PORT nor a socket path."""

    def __init__(self, address: str | None = None) -> None:
        self.address = checked_air(address or air_address())
        self.scanner = type("SimScanner", (SimScanner,), {"AIR": address})
        self.client = type("SimClient", (SimClient,), {"AIR": address})

    def steamer_kw(self) -> dict[str, Any]:
        """steamer.client.Steamer's bleak backends for this air: backend= (its
        connections') and scanner_backend= (the scans that look for it again)."""
        return {"backend": self.client, "scanner_backend": self.scanner}

    def unreachable(self, e: BaseException) -> str:
        """One line for this air not answering, and what to do about it."""
        return (f"{unreachable(self.address, e)}: start a steamer with `steamer sim "
                f"serve`, or set {ENV} to the address it printed")

    def __str__(self) -> str:
        return self.address


def sim_radio(air: Any = None) -> SimRadio:
    """The radio of the simulated air at `air` (an Air, its address, or None: the one
    $STEAMER_AIR names): `Steamer(address, keys, **sim_radio(air).steamer_kw())`,
    `scan(backend=sim_radio(air).scanner)`. What the tests and the benchmark use; the
    consumer's commands reach the same class through steamer.client.load_radio("sim")."""
    return SimRadio(getattr(air, "address", air))
