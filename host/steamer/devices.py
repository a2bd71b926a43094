"""What the `steamer` commands that talk to a steamer share: the radio (a real one or
the simulated air), finding the steamer a command names, this host's pairing keys,
connecting and authenticating, signed profile files, and one line for each failure.

    air = sim_air(args.sim)                        # None: bleak's platform radio
    keys = load_keys(args.keys)
    found = await resolve("bathroom", air=air)
    async with connected(found, keys, air, auth=True) as st:
        await st.start_session()
"""
from __future__ import annotations

import asyncio
import json
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

from bleak.exc import BleakError

from podproto import ProtocolError, profile
from steamer.client import Found, KeyRing, Steamer, SteamerError, find, load_radio, scan
from steamer.inputs import InputTooLarge, read_input
from podproto.names import FAULT_NAMES, STATE_NAMES

# Set (to anything but 0) to reach simulated steamers on $STEAMER_AIR without --sim.
SIM_ENV = "STEAMER_SIM"
# The pairing key file, when --keys is not given.
KEYS_ENV = "STEAMER_KEYS"
SCAN_S = 5.0


# What a steamer's refusal reasons (error details) mean to a person.
REASONS = {
    "no_podlet": "no podlet is inserted (or it was refused)",
    "busy": "a session is already running",
    "fault": "a fault is latched (press the steamer's button once it has cooled)",
    "water_low": "the water is low: fill the reservoir",
    "tilted": "it is tilted: stand it level",
    "no_profile": "it has no profile for this podlet (steamer profile push)",
    "min_interval": "too soon after the last session (the profile's minimum interval)",
    "course_spacing": "too soon after the last session of this course (its minimum "
                      "spacing: `steamer course PROFILE.bin` says when)",
    "not_acknowledged": "the podlet's warnings have not been acknowledged (`steamer course "
                        "PROFILE.bin --acknowledge DEVICE` shows them and asks)",
    "podlet_empty": "the podlet is used up",
    "max_day": "today's dose limit is reached",
    "ledger_error": "its dose ledger cannot be read",
    "no_session": "no session is running",
    "bad_signature": "the signature is not from the manufacturer key this steamer trusts",
    "unsigned": "the profile is not signed",
    "stale_version": "it already has this profile at the same or a newer version",
    "outlet_target_c": "the outlet target is above this steamer's limit",
    "not_provisioned": "the steamer has no manufacturer key yet",
    "malformed": "the profile is malformed",
}


class DeviceError(Exception):
    """A command cannot be done; str() is one line for a person naming the problem."""


class InputFileError(DeviceError):
    """A file a command reads (given, or the key file) is not what it must be: a wrong
    input (exit 2), not a failure."""


class ProfileFileError(InputFileError):
    """A profile file given to a command is not a signed profile (a wrong input)."""


def sim_air(flag: bool) -> Any:
    """The simulated air's radio (the `sim` plugin of steamer.client.load_radio: its
    .scanner, .client, .address and unreachable(e)) when --sim (or $STEAMER_SIM) asks
    for it, else None. DeviceError when $STEAMER_AIR is neither HOST:PORT nor a socket
    path, or when no simulator is installed."""
    if flag or os.environ.get(SIM_ENV, "") not in ("", "0"):
        try:
            return load_radio("sim")(None)
        except (ValueError, LookupError) as e:
            raise DeviceError(str(e)) from None
    return None


def keys_path(path: str | os.PathLike | None) -> Path:
    if path:
        return Path(path)
    if os.environ.get(KEYS_ENV):
        return Path(os.environ[KEYS_ENV])
    import platformdirs
    return Path(platformdirs.user_config_dir("steamer", appauthor=False)) / "keys.json"


def load_keys(path: str | os.PathLike | None) -> KeyRing:
    """This host's pairing keys from their file (none yet when it does not exist).
    InputFileError when it is too large, not JSON or not of the shape `steamer pair`
    writes ({address: {"host_id": 16 hex digits, "key": 64 hex digits}})."""
    p = keys_path(path)
    ring = KeyRing()
    ring.path = p
    if not p.exists():
        return ring
    try:
        data = read_input(p, KEYS_MAX_BYTES, "a key file")
        keys = json.loads(data)
    except InputTooLarge as e:
        raise InputFileError(f"the key file {p} is {e.reason}: move it aside and pair "
                             "again") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DeviceError(f"cannot read the key file {p}: {getattr(e, 'strerror', None) or e}") from None
    except json.JSONDecodeError as e:
        raise InputFileError(f"the key file {p} is not valid JSON (line {e.lineno}): "
                             "move it aside and pair again") from None
    except (ValueError, RecursionError):
        raise InputFileError(f"the key file {p} is not valid JSON: move it aside and pair "
                             "again") from None
    problem = _keys_problem(keys)
    if problem:
        raise InputFileError(f"the key file {p} {problem}: move it aside and pair again")
    ring.keys = keys
    return ring


# The key file's size limit: a few hundred bytes a steamer.
KEYS_MAX_BYTES = 1 << 20
_HEX = {"host_id": 16, "key": 64}


def _keys_problem(keys: object) -> str | None:
    """What is wrong with a key file's JSON, as "holds ..." words; None when nothing."""
    if not isinstance(keys, dict):
        return (f"holds {type(keys).__name__}, not the object of keys by address that "
                "`steamer pair` writes")
    for address, entry in keys.items():
        if not isinstance(entry, dict):
            return f"holds {type(entry).__name__} for {address}, not its host_id and key"
        for name, digits in _HEX.items():
            value = entry.get(name)
            if not (isinstance(value, str) and len(value) == digits
                    and all(c in "0123456789abcdefABCDEF" for c in value)):
                return f"holds no {name} of {digits} hex digits for {address}"
    return None


def label(found: Found) -> str:
    return found.name or found.device.address


def _radio_error(e: Exception, air: Any) -> DeviceError:
    if air:
        return DeviceError(air.unreachable(e))
    why = (f"cannot reach the system's Bluetooth service: {e.strerror}"
           if isinstance(e, OSError) and e.strerror else str(e))
    return DeviceError(f"no Bluetooth adapter available ({why}); for a simulated steamer "
                       "add --sim")


def _scanner(air: Any) -> Any:
    return air.scanner if air else None


async def scan_all(timeout_s: float, air: Any) -> list[Found]:
    try:
        return await scan(timeout_s, backend=_scanner(air))
    except (BleakError, OSError) as e:
        raise _radio_error(e, air) from None


def scan_row(f: Found, keys: KeyRing) -> dict:
    """A steamer heard in a scan as JSON-ready data: name, address, state, latched
    fault's name, whether its pairing window is open and this host is paired, signal."""
    return {"name": f.name, "address": f.device.address, "state": f.state,
            "fault": FAULT_NAMES[f.fault] if 0 < f.fault < len(FAULT_NAMES) else None,
            "pairing_open": f.pairing_open, "paired": keys.get(f.device.address) is not None,
            "rssi": f.rssi}


def _matches(query: str, f: Found) -> bool:
    return f.name == query or f.device.address.lower() == query.lower()


async def resolve_many(queries: list[str], timeout_s: float = SCAN_S,
                       air: Any = None,
                       heard: set[str] | None = None) -> dict[str, Found | None]:
    """Each name or address in `queries` to the steamer that advertises it (None when
    none did in timeout_s); one scan, ending as soon as all are found. The names of
    every steamer heard go into `heard` (for not_found's suggestion)."""
    want = list(dict.fromkeys(queries))
    names = heard if heard is not None else set()

    def wanted(f: Found) -> bool:
        if f.name:
            names.add(f.name)
        return any(_matches(q, f) for q in want)
    try:
        hits = await find(wanted, len(want), timeout_s, backend=_scanner(air))
    except (BleakError, OSError) as e:
        raise _radio_error(e, air) from None
    return {q: next((f for f in hits if _matches(q, f)), None) for q in want}


def not_found(query: str, timeout_s: float, heard: set[str] | None = None) -> DeviceError:
    import difflib
    close = difflib.get_close_matches(query, sorted(heard or ()), n=1)
    if close:
        return DeviceError(f"unknown device {query}: not found in a {timeout_s:g} s scan "
                           f"(did you mean '{close[0]}'?)")
    return DeviceError(f"unknown device {query}: not found in a {timeout_s:g} s scan "
                       "(steamer scan lists what is in range; a steamer connected to another "
                       "app does not advertise)")


async def resolve(query: str, timeout_s: float = SCAN_S, air: Any = None) -> Found:
    heard: set[str] = set()
    found = (await resolve_many([query], timeout_s, air, heard))[query]
    if found is None:
        raise not_found(query, timeout_s, heard)
    return found


def not_paired(name: str) -> DeviceError:
    return DeviceError(f"not paired with {name}: run `steamer pair {name}` while holding "
                       "the steamer's button")


@asynccontextmanager
async def connected(found: Found, keys: KeyRing, air: Any, *,
                    auth: bool) -> AsyncIterator[Steamer]:
    """A connection to `found`, authenticated with this host's key when `auth`."""
    name = label(found)
    if auth and keys.get(found.device.address) is None:
        raise not_paired(name)
    st = Steamer(found.device, keys, backend=air and air.client,
                 scanner_backend=_scanner(air))
    try:
        await st.connect()
    except SteamerError as e:
        raise DeviceError(f"cannot connect to {name}: {e} (is another app connected to "
                          "it?)") from None
    try:
        if auth:
            try:
                await st.authenticate()
            except SteamerError as e:
                if e.code in ("auth_failed", "auth_required"):
                    raise DeviceError(f"{name} no longer knows this computer's key (paired "
                                      f"elsewhere or reset): run `steamer pair {name}` while "
                                      "holding the steamer's button") from None
                raise
        yield st
    finally:
        await st.close()


def detail_of(e: SteamerError) -> str:
    """The steamer's reason word of a refusal ("steamer refused: code: detail")."""
    text = str(e)
    return text.split(": ", 2)[2] if text.startswith("steamer refused: ") and \
        text.count(": ") >= 2 else ""


def explain(e: SteamerError, name: str, doing: str) -> DeviceError:
    """One line for a refusal or a link failure while `doing` something on `name`."""
    if e.code in ("link", "timeout", "no_credits"):
        return DeviceError(f"lost the link to {name} while {doing} ({e}): try again")
    reason = detail_of(e) or e.code
    meaning = REASONS.get(reason) or REASONS.get(e.code)
    if e.code == "busy":
        return DeviceError(f"{name} is busy ({meaning or reason}): try again later")
    return DeviceError(f"{name} refused {doing}: {meaning or reason}"
                       + (f" ({reason})" if meaning else ""))


def state_name(status: dict) -> str:
    s = status.get("state", 0)
    return STATE_NAMES[s] if s < len(STATE_NAMES) else str(s)


# ---- signed profile files ------------------------------------------------------------

@dataclass(frozen=True)
class ProfileFile:
    path: Path
    data: bytes            # what is pushed: canonical bytes + signature
    fields: dict           # decoded (not verified: the steamer does that)

    @property
    def title(self) -> str:
        f = self.fields
        return f"{f['name']} v{f['version']} (podlet type {f['podlet_type']})"


# A signed profile is about 150 bytes; a file of more is something else.
PROFILE_MAX_BYTES = 4096


def read_profile_file(path: str | os.PathLike) -> ProfileFile:
    """A signed profile file as `steamer mfg sign-profile` writes it. DeviceError names
    the file and what is wrong: unreadable, too large, JSON (bad, or an unsigned
    profile), or not a signed profile. The signature itself is the steamer's to check."""
    p = Path(path)
    try:
        data = read_input(p, PROFILE_MAX_BYTES, "a signed profile")
    except InputTooLarge as e:
        raise ProfileFileError(str(e)) from None
    except OSError as e:
        raise ProfileFileError(f"{p}: {e.strerror or e}") from None
    return read_profile_bytes(data, p)


def read_profile_bytes(data: bytes, path: str | os.PathLike) -> ProfileFile:
    """A signed profile from a file's bytes (an upload named `path`): ProfileFileError
    as read_profile_file says."""
    p = Path(path)
    if len(data) > PROFILE_MAX_BYTES:
        raise ProfileFileError(f"{p} is too large for a signed profile ({len(data)} bytes)")
    head = data.lstrip()[:1]
    if head in (b"{", b"["):
        try:
            json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            where = f" (line {e.lineno} column {e.colno}: {e.msg})" \
                if isinstance(e, json.JSONDecodeError) else ""
            raise ProfileFileError(f"{p}: not valid JSON{where}, and not a signed profile "
                              "either") from None
        raise ProfileFileError(f"{p} is an unsigned profile (JSON): sign it first with "
                          f"`steamer mfg sign-profile {p} --key KEYFILE -o PROFILE.bin`")
    if not data or data[0] not in profile.FORMATS or len(data) <= profile.SIG_LEN:
        raise ProfileFileError(f"{p}: not a signed profile ({len(data)} bytes; `steamer mfg "
                          "sign-profile` makes one)")
    try:
        fields = profile.decode(data[:-profile.SIG_LEN])
    except ProtocolError as e:
        raise ProfileFileError(f"{p}: not a valid signed profile ({e})") from None
    return ProfileFile(p, data, fields)



# ---- the newest journal records ------------------------------------------------------

_READ_BATCH = 20    # records per log_read: within the steamer's reply size


async def read_info(st: Steamer) -> dict:
    """The Info characteristic now (log_next moves as the steamer journals)."""
    import podproto
    from podproto import gatt
    if st.client is None:
        raise SteamerError("not connected")
    return podproto.decode(bytes(await st.client.read_gatt_char(gatt.INFO_UUID)))


async def last_record(st: Steamer, kind: str, max_back: int = 600,
                      timeout_s: float = 4.0) -> dict | None:
    """The newest journal record of `kind` ({"seq", "kind", "payload"}) among the last
    max_back, read without acknowledging anything; None when there is none, when the
    steamer has already dropped it after a sync, or when it cannot be read in timeout_s
    (what it adds to a command's output is not worth failing the command for)."""
    try:
        return await asyncio.wait_for(_last_record(st, kind, max_back), timeout_s)
    except (SteamerError, asyncio.TimeoutError, ProtocolError, KeyError):
        return None


async def _last_record(st: Steamer, kind: str, max_back: int) -> dict | None:
    from podproto import logevents
    # Info is written when the link comes up: the journal may have grown since. So read
    # forward from its log_next to the end first, then back from it.
    info = await read_info(st)
    first, top = max(1, info.get("log_first", 1)), info.get("log_next", 1)
    code = logevents.code_of(kind)
    best: dict | None = None
    at = top
    while at < top + 5000:
        got = await _read_span(st, at, at + _READ_BATCH * 6)
        best = _newest(got, code, best)
        if len(got) < _READ_BATCH * 6:
            break
        at += _READ_BATCH * 6
    end = top
    while best is None and end > first and top - end < max_back:
        start = max(first, end - _READ_BATCH * 6)
        got = [r for r in await _read_span(st, start, end) if start <= r["seq"] < end]
        best = _newest(got, code, best)
        end = start
    return logevents.from_wire(best) if best is not None else None


async def _read_span(st: Steamer, start: int, end: int) -> list[dict]:
    """The records from seq start up to end (fewer at the journal's end), a few reads in
    flight at once: one round trip for the lot."""
    ids = []
    for at in range(start, end, _READ_BATCH):
        ids.append(await st.send({"type": "log_read", "from_seq": at,
                                  "max_records": min(_READ_BATCH, end - at),
                                  "journal_id": st.info["journal_id"]}))
    got: list[dict] = []
    for mid in ids:
        got += (await st.receive(["log_records"], mid))["records"]
    return got


def _newest(entries: list[dict], code: int, best: dict | None) -> dict | None:
    for entry in entries:
        if entry["event"] == code and (best is None or entry["seq"] > best["seq"]):
            best = entry
    return best
