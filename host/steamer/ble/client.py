"""The host's steamer client: scan, connect with retries, pair, authenticate, status,
sessions, clock, profile push and log sync, over bleak (a real radio or the simulated
air). The CLI, a GUI and the tests all use this; nothing here prints.

    keys = KeyRing(Path("~/.config/steamer/keys.json").expanduser())
    found = await scan(sim=True)
    async with Steamer(found[0].device, keys, sim=True) as st:
        await st.pair()                      # once, while the steamer's button is held
        await st.authenticate()
        print(await st.status())
        await st.start_session()

`sim=True` (or an air address) uses steamer.ble.simbackend; otherwise bleak's platform
backend. Every frame is podproto's; credits and fragmentation are podproto.flow/link.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError

import podproto
from podproto import gatt, logevents, messages, pairing
from podproto.flow import TxCredits
from podproto.link import Fragmenter, Reassembler

MFR_ID = 0xFFFF
HOST_MAX_FRAME = 8192
COMMIT_TIMEOUT_S = 30.0


class SteamerError(Exception):
    """The steamer refused a command (`code` is podproto.messages.ERR_NAMES's) or the
    link failed while it ran."""

    def __init__(self, message: str, code: str = "link") -> None:
        super().__init__(message)
        self.code = code


class LinkLost(SteamerError):
    def __init__(self, message: str = "link lost") -> None:
        super().__init__(message, "link")


@dataclass
class Found:
    device: BLEDevice
    name: str | None
    state: str | None
    fault: int
    pairing_open: bool
    rssi: int


def _backends(sim: bool | str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    if not sim:
        return {}, {}
    from steamer.ble.simbackend import SimClient, SimScanner
    air = sim if isinstance(sim, str) else None
    return {"backend": SimScanner, "air": air}, {"backend": SimClient, "air": air}


async def scan(timeout_s: float = 3.0, *, sim: bool | str | None = None) -> list[Found]:
    """Steamers advertising the podproto service, strongest first."""
    scan_kw, _ = _backends(sim)
    seen = await BleakScanner.discover(timeout=timeout_s, service_uuids=[gatt.SERVICE_UUID],
                                       return_adv=True, **scan_kw)
    out = [_found(device, adv) for device, adv in seen.values()]
    out.sort(key=lambda f: -f.rssi)
    return out


async def find(wanted: Callable[[Found], bool], count: int = 1, timeout_s: float = 5.0, *,
               sim: bool | str | None = None) -> list[Found]:
    """Steamers for which wanted(found) is true, as soon as `count` of them (by address)
    have been heard or after timeout_s, in the order heard."""
    scan_kw, _ = _backends(sim)
    hits: dict[str, Found] = {}
    enough = asyncio.Event()

    def heard(device: BLEDevice, adv: Any) -> None:
        f = _found(device, adv)
        if device.address not in hits and wanted(f):
            hits[device.address] = f
            if len(hits) >= count:
                enough.set()
    async with BleakScanner(heard, service_uuids=[gatt.SERVICE_UUID], **scan_kw):
        try:
            await asyncio.wait_for(enough.wait(), timeout_s)
        except asyncio.TimeoutError:
            pass
    return list(hits.values())


def _found(device: BLEDevice, adv: Any) -> Found:
    mfr = adv.manufacturer_data.get(MFR_ID, b"")
    state = None
    if len(mfr) >= 1:
        from podproto.names import STATE_NAMES
        state = STATE_NAMES[mfr[0]] if mfr[0] < len(STATE_NAMES) else str(mfr[0])
    return Found(device, adv.local_name, state, mfr[1] if len(mfr) > 1 else 0,
                 bool(mfr[2]) if len(mfr) > 2 else False, adv.rssi)


@dataclass
class KeyRing:
    """This host's pairing keys, one per steamer (by address), in a JSON file."""
    path: Path | None = None
    keys: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.path is not None and self.path.exists():
            self.keys = json.loads(self.path.read_text())

    def get(self, address: str) -> tuple[bytes, bytes] | None:
        k = self.keys.get(address)
        return (bytes.fromhex(k["host_id"]), bytes.fromhex(k["key"])) if k else None

    def put(self, address: str, host_id: bytes, key: bytes) -> None:
        self.keys[address] = {"host_id": host_id.hex(), "key": key.hex()}
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".new")
            tmp.write_text(json.dumps(self.keys, indent=1))
            os.chmod(tmp, 0o600)
            tmp.replace(self.path)


class LogSink(Protocol):
    """Where synced log records go, each as podproto.logevents.from_wire gives it
    ({"seq", "kind", "payload"}: what steamer.store.Store.ingest takes). add() must have
    stored them durably when it returns: the steamer is told to compact them right after."""

    def last_seq(self) -> int: ...

    def add(self, records: list[dict]) -> None: ...


@dataclass
class MemoryLogSink:
    records: list[dict] = field(default_factory=list)

    def last_seq(self) -> int:
        return self.records[-1]["seq"] if self.records else 0

    def add(self, records: list[dict]) -> None:
        self.records.extend(records)


@dataclass
class SyncResult:
    records: int
    bytes: int
    seconds: float
    last_seq: int


class Steamer:
    """One steamer over one BLE connection at a time; reconnect() starts a new one."""

    def __init__(self, device: BLEDevice | str, keys: KeyRing | None = None, *,
                 sim: bool | str | None = None, app: str = "steamer",
                 timeout_s: float = 10.0, mtu: int | None = None) -> None:
        self.device = device
        self.address = device.address if isinstance(device, BLEDevice) else device
        self.keys = keys or KeyRing()
        self.app = app
        self.timeout_s = timeout_s
        self._client_kw = _backends(sim)[1]
        if sim and mtu:
            self._client_kw["mtu"] = mtu      # what the simulated central asks for
        self.client: BleakClient | None = None
        self._frames: asyncio.Queue[dict] = asyncio.Queue()
        self._credit_event = asyncio.Event()
        self._reasm = Reassembler(HOST_MAX_FRAME, 512)
        self._frag: Fragmenter | None = None
        self._credits: TxCredits | None = None
        self._id = 0
        self._lost = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self.authenticated = False
        self.info: dict = {}
        self.rx_errors = 0
        self.rx_bytes = 0          # Event payload bytes received, PDU headers included
        self.rx_last_t = 0.0       # time.monotonic() of the last Event notification

    # ---- connection ------------------------------------------------------------------
    async def __aenter__(self) -> "Steamer":
        await self.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def connect(self, attempts: int = 4) -> None:
        """Connects, retrying with backoff as bleak-retry-connector does, then reads Info
        and subscribes to Event."""
        last: Exception | None = None
        for attempt in range(attempts):
            try:
                await self._connect_once()
                return
            except (BleakError, asyncio.TimeoutError, OSError) as e:
                last = e
                await self._drop_client()
                await asyncio.sleep(min(1.0, 0.1 * (attempt + 1)))
        raise SteamerError(f"{self.address}: could not connect after {attempts} attempts: {last}")

    async def _connect_once(self) -> None:
        self._lost = asyncio.Event()
        self._frames = asyncio.Queue()
        self._reasm = Reassembler(HOST_MAX_FRAME, 512)
        self.authenticated = False
        self._id = 0
        client = BleakClient(self.device, disconnected_callback=self._on_disconnect,
                             timeout=self.timeout_s, **self._client_kw)
        await client.connect()
        self.client = client
        char = client.services.get_characteristic(gatt.COMMAND_UUID)
        if char is None:
            raise BleakError("not a steamer: no Command characteristic")
        max_pdu = max(20, min(512, char.max_write_without_response_size))
        self._frag = Fragmenter(max_pdu)
        self.info = podproto.decode(bytes(await client.read_gatt_char(gatt.INFO_UUID)))
        self._credits = TxCredits(self.info["rx_credits"])
        await client.start_notify(gatt.EVENT_UUID, self._on_event)

    def _on_disconnect(self, _client: BleakClient) -> None:
        self._lost.set()
        self._credit_event.set()

    async def _drop_client(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            try:
                await client.disconnect()
            except (BleakError, OSError):
                pass

    async def close(self) -> None:
        await self._drop_client()

    async def reconnect(self, attempts: int = 8) -> None:
        await self._drop_client()
        await self.connect(attempts)

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.is_connected and not self._lost.is_set()

    # ---- frames ----------------------------------------------------------------------
    def _on_event(self, _char: Any, data: bytearray) -> None:
        self.rx_bytes += len(data)
        self.rx_last_t = time.monotonic()
        try:
            n = self._reasm.feed(bytes(data))
            if not n:
                return
            msg = self._reasm.message(n)
        except podproto.ProtocolError:
            self.rx_errors += 1
            return
        if msg.get("credits") and self._credits is not None:
            try:
                self._credits.grant(msg["credits"])
            except podproto.ProtocolError:
                self.rx_errors += 1
            self._credit_event.set()
        if msg["type"] != "credit":
            self._frames.put_nowait(msg)

    async def send(self, msg: dict, ack: bool = False) -> int:
        """Writes one frame (as PDUs, spending credits); returns its id."""
        if not self.connected or self._frag is None or self._credits is None:
            raise LinkLost()
        async with self._write_lock:
            self._id = (self._id + 1) & 0xFF
            msg = {**msg, "id": self._id, "flags": messages.FLAG_ACK_REQ if ack else 0}
            for pdu in self._frag.split(podproto.encode(msg)):
                await self._write_pdu(pdu)
            return self._id

    async def write_pdu(self, pdu: bytes) -> None:
        """Writes one raw PDU to Command, spending a credit (diagnostics and fuzzing:
        everything else goes through send())."""
        async with self._write_lock:
            await self._write_pdu(pdu)

    async def _write_pdu(self, pdu: bytes) -> None:
        assert self._credits is not None
        while self._credits.credits <= 0:
            self._credit_event.clear()
            if self._lost.is_set():
                raise LinkLost()
            try:
                await asyncio.wait_for(self._credit_event.wait(), self.timeout_s)
            except asyncio.TimeoutError:
                raise SteamerError("no credits from the steamer", "no_credits") from None
        self._credits.spend()
        try:
            assert self.client is not None
            await self.client.write_gatt_char(gatt.COMMAND_UUID, pdu, response=False)
        except (BleakError, OSError) as e:
            self._lost.set()
            raise LinkLost(str(e)) from e

    async def receive(self, types: Iterable[str], ref_id: int | None = None,
                      timeout_s: float | None = None) -> dict:
        """The next frame of one of `types`; an `error` (about ref_id, when given) raises.
        Waits timeout_s (default: the client's) at most."""
        want = set(types)
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        while True:
            if self._lost.is_set() and self._frames.empty():
                raise LinkLost()
            left = deadline - time.monotonic()
            if left <= 0:
                raise SteamerError(f"no {'/'.join(sorted(want))} from the steamer", "timeout")
            get = asyncio.ensure_future(self._frames.get())
            lost = asyncio.ensure_future(self._lost.wait())
            done, _ = await asyncio.wait({get, lost}, timeout=left,
                                         return_when=asyncio.FIRST_COMPLETED)
            lost.cancel()
            if get not in done:
                get.cancel()
                continue
            msg = get.result()
            if msg["type"] == "error" and (ref_id is None or msg["ref_id"] == ref_id):
                code = messages.ERR_NAMES[msg["code"]] if msg["code"] < len(messages.ERR_NAMES) else "?"
                raise SteamerError(f"steamer refused: {code}: {msg['detail']}", code)
            if msg["type"] in want:
                return msg

    async def request(self, msg: dict, types: Iterable[str], ack: bool = False,
                      timeout_s: float | None = None) -> dict:
        mid = await self.send(msg, ack)
        return await self.receive(types, mid, timeout_s)

    # ---- status ----------------------------------------------------------------------
    async def status(self) -> dict:
        """The State characteristic, decoded (readable without pairing)."""
        if self.client is None:
            raise LinkLost()
        return podproto.decode(bytes(await self.client.read_gatt_char(gatt.STATE_UUID)))

    async def status_stream(self, on_status: Callable[[dict], None]) -> Callable[[], Any]:
        """Calls on_status with each State notification (1 Hz); returns a coroutine
        function that stops it. Below ATT MTU 39 there are none: poll status()."""
        assert self.client is not None

        def cb(_c: Any, data: bytearray) -> None:
            try:
                on_status(podproto.decode(bytes(data)))
            except podproto.ProtocolError:
                self.rx_errors += 1
        await self.client.start_notify(gatt.STATE_UUID, cb)
        client = self.client

        async def stop() -> None:
            if client.is_connected:
                await client.stop_notify(gatt.STATE_UUID)
        return stop

    # ---- pairing and authentication ----------------------------------------------------
    async def pair(self) -> bytes:
        """Pairs while the steamer's pairing window is open (button held 3 s); stores the
        key in the key ring and returns this host's id."""
        priv, pub = pairing.keypair()
        host_nonce = os.urandom(16)
        mid = await self.send({"type": "pair_request", "host_pub": pub, "host_nonce": host_nonce})
        chal = await self.receive(["pair_challenge"], mid)
        confirm = await self.receive(["key_confirm"], mid)
        shared = pairing.x25519(priv, chal["dev_pub"])
        key = pairing.pair_key(shared, host_nonce, chal["dev_nonce"])
        host_id = pairing.host_id_of(pub)
        if not pairing.equal(confirm["mac"], pairing.pair_confirm(key, host_id)):
            raise SteamerError("pairing: the steamer's confirmation does not match", "auth_failed")
        self.keys.put(self.address, host_id, key)
        return host_id

    async def authenticate(self) -> None:
        """Challenge-response with this host's key; needed once per connection before any
        command that changes something."""
        k = self.keys.get(self.address)
        if k is None:
            raise SteamerError(f"{self.address}: not paired", "auth_required")
        host_id, key = k
        mid = await self.send({"type": "hello", "proto": podproto.VERSION, "caps": 0,
                               "max_pdu": self._frag.max_pdu if self._frag else 20,
                               "app": self.app[:32]})
        chal = await self.receive(["auth_challenge"], mid)
        host_nonce = os.urandom(16)
        mid = await self.send({"type": "auth_response", "host_id": host_id, "nonce": host_nonce,
                               "mac": pairing.auth_mac(key, chal["nonce"], host_nonce, host_id)})
        confirm = await self.receive(["key_confirm"], mid)
        if not pairing.equal(confirm["mac"], pairing.device_mac(key, host_nonce, chal["nonce"])):
            raise SteamerError("the steamer failed to prove it holds our key", "auth_failed")
        self.authenticated = True

    # ---- commands ----------------------------------------------------------------------
    async def start_session(self, podlet_type: int = 0) -> None:
        await self.request({"type": "session_start", "podlet_type": podlet_type}, ["ack"], True)

    async def stop_session(self) -> None:
        await self.request({"type": "session_stop"}, ["ack"], True)

    async def set_clock(self, epoch_s: int | None = None) -> None:
        await self.request({"type": "set_clock",
                            "epoch_s": int(time.time()) if epoch_s is None else epoch_s},
                           ["ack"], True)

    async def ack_faults(self) -> None:
        await self.request({"type": "fault_ack", "code": 0}, ["ack"], True)

    async def profiles(self) -> list[dict]:
        return (await self.request({"type": "profile_list_get"}, ["profile_list"]))["profiles"]

    async def faults(self) -> list[dict]:
        return (await self.request({"type": "fault_list_get"}, ["fault_list"]))["faults"]

    async def push_profile(self, blob: bytes, chunk: int | None = None) -> None:
        """Uploads a (signed) profile: resumes from the steamer's offset when an upload of
        the same bytes is under way (say, before a dropped link), checks SHA-256, commits.
        Raises SteamerError when the steamer refuses it, LinkLost when the link drops:
        call again after reconnect() and it resumes."""
        digest = hashlib.sha256(blob).digest()
        reply = await self.request({"type": "profile_begin", "size": len(blob), "sha256": digest},
                                   ["profile_offset"])
        offset = reply["offset"]
        assert self._frag is not None
        # One chunk a frame; a frame of a few PDUs keeps the credits flowing.
        step = chunk or max(16, 4 * (self._frag.max_pdu - 2) - 12 - 4)
        while offset < len(blob):
            piece = blob[offset:offset + step]
            last = offset + len(piece) >= len(blob)
            mid = await self.send({"type": "profile_chunk", "offset": offset, "data": piece},
                                  ack=last)
            offset += len(piece)
            if last:
                reply = await self.receive(["profile_offset"], mid)
                if reply["offset"] != len(blob):
                    raise SteamerError(f"profile: steamer at {reply['offset']} of {len(blob)}",
                                       "bad_offset")
        # The steamer answers once it has checked the signature, which it spreads over
        # its control periods: about 8 s on the slowest board, more behind a podlet check.
        await self.request({"type": "profile_commit"}, ["ack"], True, COMMIT_TIMEOUT_S)

    async def sync_logs(self, sink: LogSink, batch: int = 77, window: int = 12) -> SyncResult:
        """Reads every record after sink.last_seq(), hands them to sink.add() in order
        (never one twice), then acknowledges the last so the steamer may compact. A
        dropped link raises LinkLost with everything stored so far kept: call again."""
        t0 = time.monotonic()
        # The steamer's replies fit its max_frame, so it sends what we ask up to that: a
        # shorter reply means it had no more. We ask for what fills whole PDUs, since a
        # frame's last PDU goes out as one PDU however little it carries.
        assert self._frag is not None
        room = self._frag.max_pdu - 2
        whole = self.info.get("max_frame", 1024) // room * room
        rec = logevents.WIRE_BYTES
        batch = max(1, min(batch, (whole - 13) // rec))
        last = sink.last_seq()
        cursor = last + 1
        pending: list[tuple[int, int]] = []      # (frame id, from_seq) in flight
        done = False
        n = 0
        nbytes = 0
        while True:
            while not done and len(pending) < window:
                cursor = max(cursor, last + 1)
                mid = await self.send({"type": "log_read", "from_seq": cursor,
                                       "max_records": batch})
                pending.append((mid, cursor))
                cursor += batch
            if not pending:
                break
            mid, from_seq = pending.pop(0)
            reply = await self.receive(["log_records"], mid)
            nbytes += rec * len(reply["records"]) + 13
            if from_seq > last + 1:
                # Asked past the end of a short reply: what it holds may start after
                # records appended since, so it is not ours to take; we ask again.
                continue
            recs = [r for r in reply["records"] if r["seq"] > last]
            if recs:
                sink.add([logevents.from_wire(r) for r in recs])
                last = recs[-1]["seq"]
                n += len(recs)
            if len(reply["records"]) < batch:
                done = True
        seconds = time.monotonic() - t0      # the transfer, not the acknowledgement
        if n:
            await self.request({"type": "log_ack", "seq": last}, ["ack"], True)
        return SyncResult(n, nbytes, seconds, last)
