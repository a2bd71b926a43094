"""The host's steamer client: scan, connect with retries, pair, authenticate, status,
sessions, clock, profile push and log sync, over bleak (a real radio or the simulated
air). The CLI, a GUI and the tests all use this; nothing here prints.

    keys = KeyRing(Path("~/.config/steamer/keys.json").expanduser())
    radio = load_radio("sim")()              # the simulated air's backends (see below)
    found = await scan(backend=radio.scanner)
    async with Steamer(found[0].device, keys, backend=radio.client,
                       scanner_backend=radio.scanner) as st:
        await st.pair()                      # once, while the steamer's button is held
        await st.authenticate()
        print(await st.status())
        await st.start_session()

The radio is bleak's: `backend=` (a connection's) and `scanner_backend=` (a scan's) are
bleak backend classes as BleakClient(backend=) and BleakScanner(backend=) take them;
None is bleak's platform backend. A client backend class with a `ble_device(address)`
classmethod reaches an address without a scan. Other radios are plugins: an object in
the entry-point group `steamer.backends` (RADIOS_GROUP), called with an address or None,
gives one with `.scanner` and `.client` (and `.address`, `unreachable(e)` for messages);
`load_radio(name)` finds it, so this package never imports the one that provides it
(`sim`: steamer_sim.backend.SimRadio, the simulated air); `--sim` in the commands only
chooses that radio's backends.
Every frame is podproto's; credits and fragmentation are podproto.flow/link.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError
from bleak_retry_connector import BLEAK_RETRY_EXCEPTIONS, establish_connection

import podproto
from podproto import gatt, logevents, messages, pairing
from podproto.flow import TxCredits
from podproto.link import MAX_PDU, Fragmenter, Reassembler

MFR_ID = 0xFFFF
HOST_MAX_FRAME = 8192
COMMIT_TIMEOUT_S = 30.0
# The steamer answers a pair request once its X25519 work is done, a slice a period:
# about 9 s on the slowest board (steamer dev bench --parts protocol).
PAIR_TIMEOUT_S = 30.0
CONNECT_ATTEMPTS = 4
# The steamer drops an authenticated connection after 120 s without a frame either way
# (fw.ble.IDLE_TIMEOUT_S): status() sends a status_get when nothing was sent for this long.
KEEPALIVE_S = 30.0
# Before the nth retry: a backoff drawn from [0, min(max, first * 2**(n-1))] (full
# jitter), while a scan of up to RESCAN_S listens for the steamer's advertisement.
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 2.0
RESCAN_S = 2.0
# A value longer than one ATT Read (ATT_MTU - 1) is a Read and Read Blobs, which a
# change in between tears: such a read is repeated until two agree, READ_TRIES at most.
READ_TRIES = 4
# How long connect waits for the backend's write size to leave 20 (CoreBluetooth's may
# read 20 at first; BlueZ reports 23 until the MTU is acquired), in steps of MTU_STEP_S.
MTU_WAIT_S = 0.5
MTU_STEP_S = 0.05
# What a connection try may fail with and be tried again: bleak-retry-connector's set
# (bleak errors, timeouts, and EOFError / BrokenPipeError from a dying D-Bus socket),
# and OSError from a transport.
CONNECT_ERRORS = (*BLEAK_RETRY_EXCEPTIONS, OSError)
# SteamerError codes of a failed link rather than a refusal: worth a reconnect.
LINK_CODES = ("link", "timeout", "no_credits")


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


# The entry-point group of radio plugins (pyproject.toml's [project.entry-points]).
RADIOS_GROUP = "steamer.backends"


def load_radio(name: str) -> Any:
    """The radio plugin registered as `name` in the entry-point group steamer.backends
    (a callable: radio(address or None) -> an object with .scanner and .client);
    LookupError when no installed package provides it."""
    from importlib.metadata import entry_points
    for ep in entry_points(group=RADIOS_GROUP):
        if ep.name == name:
            return ep.load()
    raise LookupError(f"no radio {name!r} installed (entry points {RADIOS_GROUP})")


async def scan(timeout_s: float = 3.0, *, backend: Any = None) -> list[Found]:
    """Steamers advertising the podproto service, strongest first; `backend` is the
    scanner's (bleak's platform one when None)."""
    scan_kw: dict[str, Any] = {} if backend is None else {"backend": backend}
    seen = await BleakScanner.discover(timeout=timeout_s, service_uuids=[gatt.SERVICE_UUID],
                                       return_adv=True, **scan_kw)
    out = [_found(device, adv) for device, adv in seen.values()]
    out.sort(key=lambda f: -f.rssi)
    return out


async def find(wanted: Callable[[Found], bool], count: int = 1, timeout_s: float = 5.0, *,
               backend: Any = None) -> list[Found]:
    """Steamers for which wanted(found) is true, as soon as `count` of them (by address)
    have been heard or after timeout_s, in the order heard; `backend` as scan()'s."""
    scan_kw: dict[str, Any] = {} if backend is None else {"backend": backend}
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
    stored them durably when it returns: the steamer is told to compact them right after.
    A sink holds one journal's records (Info's journal_id; steamer.store.Store.sync_cursor
    gives each its own): last_seq() counts in that journal only."""

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
    # Seq ranges the steamer reports lost (journal_overflow: its journal filled up with
    # records no host had acknowledged) that this host never received.
    lost: list[tuple[int, int]] = field(default_factory=list)
    reconnects: int = 0

    @property
    def lost_records(self) -> int:
        return sum(b - a + 1 for a, b in self.lost)


class Steamer:
    """One steamer over one BLE connection at a time; reconnect() starts a new one.
    `backend` and `scanner_backend` are the bleak backends of its connections and of
    the scans that look for it again (the module's docstring); `mtu` is what a
    simulated central asks for (passed to a non-platform backend); `keepalive_s` is how
    long status() lets an authenticated link go without a frame from this host before it
    sends one (KEEPALIVE_S, a quarter of the steamer's idle timeout: a steamer simulated
    faster than real time on a real board's clock needs it that much shorter)."""

    def __init__(self, device: BLEDevice | str, keys: KeyRing | None = None, *,
                 backend: Any = None, scanner_backend: Any = None,
                 app: str = "steamer",
                 timeout_s: float = 10.0, mtu: int | None = None,
                 keepalive_s: float = KEEPALIVE_S) -> None:
        if not keepalive_s > 0:
            raise ValueError(f"keepalive_s: {keepalive_s} must be greater than 0")
        self.device = device
        self.address = device.address if isinstance(device, BLEDevice) else device
        self.keys = keys or KeyRing()
        self.app = app
        self.timeout_s = timeout_s
        self.keepalive_s = keepalive_s
        self._scanner_backend = scanner_backend
        self._backend = backend
        self._client_kw: dict[str, Any] = {} if backend is None else {"backend": backend}
        if backend is not None and mtu:
            self._client_kw["mtu"] = mtu      # what the simulated central asks for
        self.client: BleakClient | None = None
        self._frames: asyncio.Queue[dict] = asyncio.Queue()
        self._credit_event = asyncio.Event()
        self._reasm = Reassembler(HOST_MAX_FRAME, 512)
        self._frag: Fragmenter | None = None
        self._cmd_char: BleakGATTCharacteristic | None = None   # Command, for its size
        self._credits: TxCredits | None = None
        self._id = 0
        self._lost = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._session: tuple[bytes, bytes] | None = None   # pairing.session_pads
        self._ctr = 0               # the next command's counter
        self.info: dict = {}
        self.rx_errors = 0
        self.rx_bytes = 0          # Event payload bytes received, PDU headers included
        self.rx_last_t = 0.0       # time.monotonic() of the last Event notification
        self.reconnects = 0        # reconnect() calls that succeeded
        self._sent_t = 0.0         # time.monotonic() of the last frame sent
        self._was_authenticated = False   # a connection of this object authenticated
        self._commit_sent = False  # push_profile's last try got as far as the commit
        self._log_top: dict[bytes, int] = {}   # per journal, the newest seq sync read

    @property
    def credits(self) -> int | None:
        """PDUs this connection may write before the steamer grants more (None before
        one is up): a dropped write's credit comes back when the steamer sees the gap."""
        return None if self._credits is None else self._credits.credits

    @property
    def fragmenter(self) -> Fragmenter | None:
        """This connection's Fragmenter (None before one is up): the seam for writing
        one's own PDUs with write_pdu (tests, fuzzers) that continue its sequence, its
        split() and max_pdu; its seq is the next PDU's."""
        return self._frag

    # ---- connection ------------------------------------------------------------------
    async def __aenter__(self) -> "Steamer":
        await self.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def connect(self, attempts: int = CONNECT_ATTEMPTS) -> None:
        """Connects, reads Info and subscribes to Event, in up to `attempts` tries. A try
        is bleak-retry-connector's establish_connection (its error handling and BlueZ
        clean-ups) and our setup; before each next try we back off (exponential, full
        jitter) while scanning again for a fresh BLEDevice (an old one may hold a stale
        handle), and connect without the services cache. SteamerError once the budget
        is spent."""
        last: BaseException | None = None
        for attempt in range(attempts):
            if attempt:
                backoff_s = random.uniform(
                    0.0, min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (attempt - 1)))
                await asyncio.gather(asyncio.sleep(backoff_s), self._rescan())
            try:
                await self._connect_once(use_cache=attempt == 0)
                return
            except CONNECT_ERRORS as e:
                last = e
                await self._drop_client()
        raise SteamerError(f"{self.address}: could not connect after {attempts} attempts: "
                           f"{str(last) or type(last).__name__}")

    async def _rescan(self) -> None:
        """self.device from the steamer's advertisement now (kept when none is heard)."""
        try:
            hits = await find(lambda f: f.device.address == self.address, 1, RESCAN_S,
                              backend=self._scanner_backend)
        except CONNECT_ERRORS:
            return
        if hits:
            self.device = hits[0].device

    async def _ble_device(self) -> BLEDevice:
        if isinstance(self.device, BLEDevice):
            return self.device
        ble_device = getattr(self._backend, "ble_device", None)
        if ble_device is not None:
            # A radio that needs no scan to reach an address (the simulated air).
            return ble_device(self.address)
        await self._rescan()
        if not isinstance(self.device, BLEDevice):
            raise BleakError(f"{self.address}: not found in a {RESCAN_S:g} s scan")
        return self.device

    async def _connect_once(self, use_cache: bool = True) -> None:
        lost = self._lost = asyncio.Event()
        self._frames = asyncio.Queue()
        self._reasm = Reassembler(HOST_MAX_FRAME, 512)
        self.authenticated = False
        self._id = 0

        def gone(_client: BleakClient) -> None:
            # This connection's event: a late callback of an earlier one changes nothing.
            lost.set()
            self._credit_event.set()
        client = await establish_connection(
            BleakClient, await self._ble_device(), self.address, disconnected_callback=gone,
            max_attempts=1, use_services_cache=use_cache, timeout=self.timeout_s,
            **self._client_kw)
        self.client = client
        char = client.services.get_characteristic(gatt.COMMAND_UUID)
        if char is None:
            raise BleakError("not a steamer: no Command characteristic")
        self.info = await self._read_frame(client, gatt.INFO_UUID)
        waited_s = 0.0
        while char.max_write_without_response_size <= 20 and waited_s < MTU_WAIT_S:
            await asyncio.sleep(MTU_STEP_S)
            waited_s += MTU_STEP_S
        self._cmd_char = char
        self._frag = Fragmenter(self._pdu_size(char))
        self._credits = TxCredits(self.info["rx_credits"])
        await client.start_notify(gatt.EVENT_UUID, self._on_event)

    @staticmethod
    def _pdu_size(char: BleakGATTCharacteristic) -> int:
        return max(20, min(MAX_PDU, char.max_write_without_response_size))

    def _follow_mtu(self) -> None:
        """Between two frames: PDUs of the link's size now, if an MTU exchange completed
        since the last frame (a central may run it late, or leave it to the steamer,
        which asks once connected). The PDU counter runs on; the steamer reassembles
        PDUs of any size up to its MTU."""
        if self._frag is None or self._cmd_char is None:
            return
        size = self._pdu_size(self._cmd_char)
        if size > self._frag.max_pdu:
            seq = self._frag.seq
            self._frag = Fragmenter(size)
            self._frag.seq = seq

    async def _read_frame(self, client: BleakClient, uuid: str) -> dict:
        """A characteristic's frame, decoded, whole: a value longer than one ATT Read
        (which the backend reads in parts, and a change between them tears) is read
        again until two reads agree. A value shorter than one Read at the MTU the read
        began and ended with cannot tear (an MTU exchange may complete meanwhile: the
        steamer rewrites Info then). ProtocolError if none decodes."""
        last: bytes | None = None
        data = b""
        for _ in range(READ_TRIES):
            mtu = client.mtu_size
            data = bytes(await client.read_gatt_char(uuid))
            if len(data) < min(mtu, client.mtu_size) - 1 or data == last:
                try:
                    return podproto.decode(data)
                except podproto.ProtocolError:
                    pass            # torn after all: read again
            last = data
        return podproto.decode(data)

    async def _drop_client(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            try:
                await client.disconnect()
            except CONNECT_ERRORS:
                pass

    async def close(self) -> None:
        await self._drop_client()

    async def reconnect(self, attempts: int = 8) -> None:
        """A new connection, authenticated when an earlier one was."""
        await self._drop_client()
        await self.connect(attempts)
        self.reconnects += 1
        if self._was_authenticated:
            await self.authenticate()

    @property
    def authenticated(self) -> bool:
        """True once authenticate() succeeded on this connection."""
        return self._session is not None

    @authenticated.setter
    def authenticated(self, value: bool) -> None:
        if value:
            raise ValueError("authenticate() sets it")
        self._session = None        # a new connection needs a new session

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
        """Writes one frame (as PDUs, spending credits); returns its id. Once
        authenticated, every frame but pairing.OPEN's carries the next command counter
        and its tag."""
        if not self.connected or self._frag is None or self._credits is None:
            raise LinkLost()
        async with self._write_lock:
            self._follow_mtu()
            for pdu in self._frag.split(self.frame(msg, ack)):
                await self._write_pdu(pdu)
            self._sent_t = time.monotonic()
            return self._id

    def frame(self, msg: dict, ack: bool = False) -> bytes:
        """The next frame of msg as send() writes it: its id, and its counter and tag
        when authenticated (each call takes the next). For send() and for tests that
        write PDUs themselves."""
        self._id = (self._id + 1) & 0xFF
        msg = {**msg, "id": self._id, "flags": messages.FLAG_ACK_REQ if ack else 0}
        if self._session is None or msg["type"] in pairing.OPEN:
            return podproto.encode(msg)
        ctr = self._ctr
        self._ctr += 1
        return pairing.seal(msg, self._session, ctr)

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
        """The State characteristic, decoded (readable without pairing). Authenticated,
        it also keeps the connection from being dropped as idle (keepalive_s)."""
        if self.client is None:
            raise LinkLost()
        if self.authenticated and time.monotonic() - self._sent_t >= self.keepalive_s:
            await self.send({"type": "status_get"})
        return await self._read_frame(self.client, gatt.STATE_UUID)

    async def status_stream(self, on_status: Callable[[dict], None],
                            interval_s: float = 1.0) -> Callable[[], Any]:
        """Calls on_status with each status, once a second; returns a coroutine function
        that stops it. State notifications carry it when the ATT MTU is at least
        gatt.STATE_NOTIFY_MIN_MTU; below that State is read every interval_s."""
        assert self.client is not None
        client = self.client
        if client.mtu_size < gatt.STATE_NOTIFY_MIN_MTU:
            async def poll() -> None:
                while client.is_connected:
                    try:
                        on_status(await self.status())
                    except podproto.ProtocolError:
                        self.rx_errors += 1
                    except (BleakError, OSError, LinkLost):
                        return
                    await asyncio.sleep(interval_s)
            task = asyncio.ensure_future(poll())

            async def stop_polling() -> None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
            return stop_polling

        def cb(_c: Any, data: bytearray) -> None:
            try:
                on_status(podproto.decode(bytes(data)))
            except podproto.ProtocolError:
                self.rx_errors += 1
        await client.start_notify(gatt.STATE_UUID, cb)

        async def stop() -> None:
            if client.is_connected:
                await client.stop_notify(gatt.STATE_UUID)
        return stop

    # ---- pairing and authentication ----------------------------------------------------
    async def pair(self) -> bytes:
        """Pairs while the steamer's pairing window is open (its button held, after the
        first 3 s), then authenticates with the new key: the steamer keeps a key only once
        the host has proved it holds it. Stores the key in the key ring and returns this
        host's id; the connection is left authenticated."""
        priv, pub = pairing.keypair()
        host_nonce = os.urandom(16)
        mid = await self.send({"type": "pair_request", "host_pub": pub, "host_nonce": host_nonce})
        chal = await self.receive(["pair_challenge"], mid, max(self.timeout_s, PAIR_TIMEOUT_S))
        confirm = await self.receive(["key_confirm"], mid)
        shared = pairing.x25519(priv, chal["dev_pub"])
        if shared == bytes(32):
            raise SteamerError("pairing: the steamer's key shares no secret", "auth_failed")
        key = pairing.pair_key(shared, host_nonce, chal["dev_nonce"])
        host_id = pairing.host_id_of(pub)
        if not pairing.equal(confirm["mac"], pairing.pair_confirm(key, host_id)):
            raise SteamerError("pairing: the steamer's confirmation does not match", "auth_failed")
        await self._authenticate(host_id, key)
        self.keys.put(self.address, host_id, key)
        return host_id

    async def authenticate(self) -> None:
        """Challenge-response with this host's key; needed once per connection before any
        command that changes something."""
        k = self.keys.get(self.address)
        if k is None:
            raise SteamerError(f"{self.address}: not paired", "auth_required")
        await self._authenticate(*k)

    async def _authenticate(self, host_id: bytes, key: bytes) -> None:
        self._session = None        # the steamer drops the old one on hello
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
        self._session = pairing.session_pads(key, chal["nonce"], host_nonce, host_id)
        self._ctr = pairing.FIRST_CTR
        self._was_authenticated = True

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

    async def acknowledge_warnings(self, podlet_type: int, version: int) -> None:
        """Tells the steamer the user acknowledged the warnings of its profile of this
        podlet type and version (format 2): its sessions may start from now on."""
        await self.request({"type": "warnings_ack", "podlet_type": podlet_type,
                            "version": version}, ["ack"], True)

    async def profiles(self) -> list[dict]:
        return (await self.request({"type": "profile_list_get"}, ["profile_list"]))["profiles"]

    async def faults(self) -> list[dict]:
        return (await self.request({"type": "fault_list_get"}, ["fault_list"]))["faults"]

    async def push_profile(self, blob: bytes, chunk: int | None = None,
                           reconnects: int = 0) -> None:
        """Uploads a (signed) profile: resumes from the steamer's offset when an upload of
        the same bytes is under way (say, before a dropped link), checks SHA-256, commits.
        Raises SteamerError when the steamer refuses it. A dropped link: with reconnects,
        reconnects (up to that many times), authenticates and resumes; else LinkLost:
        call again after reconnect() and it resumes. When the link went with the commit
        sent, the steamer may have installed the profile without our hearing so: if
        profile_list then lists these very bytes (their SHA-256), the push is done, else
        it is pushed again, and a stale_version answer with them listed means the first
        commit installed it."""
        digest = hashlib.sha256(blob).digest()
        committed = False                 # a commit went out on an earlier connection
        for attempt in range(reconnects + 1):
            self._commit_sent = False
            try:
                if attempt:
                    await self._resume_link()
                    if committed and await self._lists(digest):
                        return
                await self._push_once(blob, chunk)
                return
            except SteamerError as e:
                if e.code == "stale_version" and committed and await self._lists(digest):
                    return
                committed = committed or self._commit_sent
                if e.code not in LINK_CODES or attempt == reconnects:
                    raise

    async def _resume_link(self) -> None:
        """A new connection, authenticated, after a lost one (push and sync resume)."""
        await self.reconnect()
        if not self.authenticated:
            await self.authenticate()

    async def _lists(self, digest: bytes) -> bool:
        return any(p["sha256"] == digest for p in await self.profiles())

    async def _push_once(self, blob: bytes, chunk: int | None) -> None:
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
        self._commit_sent = True
        await self.request({"type": "profile_commit"}, ["ack"], True, COMMIT_TIMEOUT_S)

    async def sync_logs(self, sink: LogSink, batch: int = 77, window: int = 12,
                        reconnects: int = 0,
                        on_reconnect: Callable[[dict], None] | None = None) -> SyncResult:
        """Reads every record after sink.last_seq(), hands them to sink.add() in order
        (never one twice), then acknowledges the last so the steamer may compact. A
        dropped link: with reconnects, reconnects (up to that many times), authenticates,
        calls on_reconnect(the new Info), acknowledges what is stored and carries on;
        else LinkLost with everything stored so far kept: call again. The result's
        `lost` names records the steamer reports it dropped (its journal full of
        unacknowledged records) that this host lacks.
        The sync is of the journal Info names, which every read and acknowledgement
        carries: SteamerError "journal_changed" when the steamer refuses them (its flash
        reformatted meanwhile) or Info names another after a reconnect, or when the
        sink holds records past the journal's end (the sink is another journal's).
        Only records add() returned from are acknowledged, with the journal's id."""
        journal = bytes(self.info["journal_id"])
        res = SyncResult(0, 0, 0.0, sink.last_seq())
        # Info is as the link came up; records read since on this link count too.
        top = max(self.info.get("log_next", 1) - 1, self._log_top.get(journal, 0))
        if res.last_seq > top:
            raise SteamerError(f"the sink holds records up to {res.last_seq} but the "
                               f"steamer's journal {journal.hex()} ends at {top}: it is "
                               "another journal's", "journal_changed")
        t0 = time.monotonic()
        gaps: list[tuple[int, int]] = []       # seqs skipped in what we received
        claims: list[tuple[int, int]] = []     # seqs journal_overflow records name
        start = res.last_seq
        for attempt in range(reconnects + 1):
            try:
                if attempt:
                    await self._resume_link()
                    res.reconnects += 1
                    _same_journal(journal, self.info["journal_id"])
                    if on_reconnect is not None:
                        on_reconnect(self.info)
                    if res.records:
                        # Stored before the link went: the steamer may compact it now,
                        # however often the link goes before this sync ends.
                        await self._ack_logs(res.last_seq, journal)
                await self._sync_pass(sink, batch, window, res, gaps, claims, journal)
                res.seconds = time.monotonic() - t0     # the transfer, not the ack
                if res.records:
                    # A link lost here is resumed like any other: the ack is idempotent.
                    await self._ack_logs(res.last_seq, journal)
                break
            except SteamerError as e:
                if e.code not in LINK_CODES or attempt == reconnects:
                    raise
        res.lost = _overlap(claims, gaps, start)
        return res

    async def _ack_logs(self, seq: int, journal: bytes) -> None:
        await self.request({"type": "log_ack", "seq": seq, "journal_id": journal}, ["ack"],
                           True)

    async def _sync_pass(self, sink: LogSink, batch: int, window: int, res: SyncResult,
                         gaps: list[tuple[int, int]], claims: list[tuple[int, int]],
                         journal: bytes) -> None:
        # The steamer's replies fit its max_frame, so it sends what we ask up to that: a
        # shorter reply means it had no more. We ask for what fills whole PDUs, since a
        # frame's last PDU goes out as one PDU however little it carries.
        assert self._frag is not None
        room = self._frag.max_pdu - 2
        whole = self.info.get("max_frame", 1024) // room * room
        rec = logevents.WIRE_BYTES
        batch = max(1, min(batch, (whole - 13) // rec))
        # Replies in flight, in PDUs: a stack that never refuses a notification (BTstack)
        # holds every one it was handed on the steamer's heap until the link carries it,
        # so the host keeps no more than AHEAD_PDUS (or two replies) of them asked for.
        reply_pdus = -(-(13 + batch * rec) // room)
        window = max(2, min(window, AHEAD_PDUS // reply_pdus))
        last = max(res.last_seq, sink.last_seq())
        cursor = last + 1
        pending: list[tuple[int, int]] = []      # (frame id, from_seq) in flight
        done = False
        while True:
            while not done and len(pending) < window:
                cursor = max(cursor, last + 1)
                mid = await self.send({"type": "log_read", "from_seq": cursor,
                                       "max_records": batch, "journal_id": journal})
                pending.append((mid, cursor))
                cursor += batch
            if not pending:
                break
            mid, from_seq = pending.pop(0)
            try:
                reply = await self.receive(["log_records"], mid)
            except SteamerError as e:
                if e.code == "not_found":      # a read naming another journal
                    _same_journal(journal, None)
                raise
            res.bytes += rec * len(reply["records"]) + 13
            if from_seq > last + 1:
                # Asked past the end of a short reply: what it holds may start after
                # records appended since, so it is not ours to take; we ask again.
                continue
            recs = [r for r in reply["records"] if r["seq"] > last]
            if recs:
                prev = last
                for r in recs:
                    if r["seq"] > prev + 1:
                        gaps.append((prev + 1, r["seq"] - 1))
                    prev = r["seq"]
                got = [logevents.from_wire(r) for r in recs]
                sink.add(got)
                for r in got:
                    if r["kind"] == "journal_overflow":
                        p = r["payload"]
                        claims.append((p.get("lost_from", 0), p.get("lost_to", -1)))
                last = recs[-1]["seq"]
                self._log_top[journal] = max(self._log_top.get(journal, 0), last)
                res.records += len(recs)
                res.last_seq = last
            if len(reply["records"]) < batch:
                done = True


# Log-reply PDUs a sync keeps asked for (see _sync_pass): enough to keep a fast link
# busy across the round trip, few enough for a Pico W's heap.
AHEAD_PDUS = 64


def _same_journal(journal: bytes, now: Any) -> None:
    """SteamerError "journal_changed" unless the steamer's journal is still `journal`
    (now: Info's journal_id; None when the steamer refused a read naming it)."""
    if now is None or bytes(now) != journal:
        now_hex = "another" if now is None else bytes(now).hex()
        raise SteamerError(f"the steamer's journal changed during the sync (was "
                           f"{journal.hex()}, now {now_hex}): sync again",
                           "journal_changed")


def _overlap(claims: list[tuple[int, int]], gaps: list[tuple[int, int]],
             after: int) -> list[tuple[int, int]]:
    """The seqs after `after` that some claim names and some gap holds, as ranges. A gap
    no claim names is not a loss (a record another host acknowledged, or one a power
    cut took before it had its number); a claim the host has the records of is not one
    either (a cut between the overflow record and the delete)."""
    out: list[tuple[int, int]] = []
    for ga, gb in gaps:
        for ca, cb in claims:
            a, b = max(ga, ca, after + 1), min(gb, cb)
            if a <= b:
                out.append((a, b))
    out.sort()
    merged: list[tuple[int, int]] = []
    for a, b in out:
        if merged and a <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged
