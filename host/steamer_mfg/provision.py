"""`steamer mfg provision`: signed profiles pushed to many steamers at once on the line,
with one result per device and per profile.

    from steamer_mfg.provision import load_profiles, provision
    profiles = load_profiles(Path("profiles/"))          # every *.bin, checked
    results = asyncio.run(provision(["line-1", "line-2"], profiles, keys, air=None))
    failed = [r for r in results if not r.ok]

A device this host has no key for is paired on the spot, so its pairing window must be
open (the fixture holds the button). A profile the device already has, the very same
bytes (profile_list carries each installed profile's SHA-256), counts as done; any other
is pushed, so the steamer's own refusal (a signature it does not trust, another profile
at that version: "stale") is the failure reported. At a newer version it fails unpushed.
"""
from __future__ import annotations

import asyncio
import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bleak.exc import BleakError

from podproto import ProtocolError
from steamer.client import KeyRing, SteamerError
from steamer.devices import (DeviceError, ProfileFile, ProfileFileError, connected, explain,
                             label, not_found, read_profile_file, resolve_many)


@dataclass
class ProfileResult:
    file: str
    profile: str          # "name vN (podlet type T)"
    result: str           # "installed", "already installed" or "failed"
    reason: str | None = None


@dataclass
class DeviceResult:
    device: str
    address: str | None
    ok: bool = False
    error: str | None = None
    profiles: list[ProfileResult] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def load_profiles(folder: Path) -> list[ProfileFile]:
    """Every signed profile (*.bin) in `folder`, by name; ProfileFileError for a folder
    without one, or for the first file that is not a signed profile."""
    if not folder.is_dir():
        raise ProfileFileError(f"--profiles: {folder} is not a folder")
    files = sorted(folder.glob("*.bin"))
    if not files:
        unsigned = sorted(folder.glob("*.json"))
        hint = (f" ({len(unsigned)} unsigned .json: sign them with `steamer mfg "
                "sign-profile`)" if unsigned else "")
        raise ProfileFileError(f"--profiles: no signed profiles (*.bin) in {folder}{hint}")
    return [read_profile_file(f) for f in files]


async def provision(devices: list[str], profiles: list[ProfileFile], keys: KeyRing, *,
                    air: str | None = None, jobs: int = 4, scan_s: float = 5.0,
                    pair_s: float = 10.0) -> list[DeviceResult]:
    """Pushes `profiles` to each of `devices` (names or addresses), `jobs` at a time; one
    result per device, in the order given. Never raises for one device's failure."""
    found = await resolve_many(devices, scan_s, air)
    bound = asyncio.Semaphore(max(1, jobs))

    async def one(query: str) -> DeviceResult:
        f = found.get(query)
        if f is None:
            return DeviceResult(query, None, error=str(not_found(query, scan_s)))
        result = DeviceResult(label(f), f.device.address)
        async with bound:
            try:
                await _provision_one(f, profiles, keys, air, pair_s, result)
            except DeviceError as e:
                result.error = str(e)
            except SteamerError as e:
                result.error = str(explain(e, result.device, "provisioning"))
            except (BleakError, OSError, asyncio.TimeoutError, ProtocolError) as e:
                # The radio or the link failed for this device: the others go on.
                why = (e.strerror if isinstance(e, OSError) and e.strerror else str(e)) \
                    or type(e).__name__
                result.error = f"Bluetooth: {why}"
        result.ok = result.error is None and all(p.result != "failed" for p in result.profiles)
        return result

    return list(await asyncio.gather(*(one(q) for q in dict.fromkeys(devices))))


async def _provision_one(f, profiles: list[ProfileFile], keys: KeyRing, air: str | None,
                         pair_s: float, result: DeviceResult) -> None:
    from steamer.session import pair_until
    if keys.get(f.device.address) is None:
        async with connected(f, keys, air, auth=False) as st:
            await pair_until(st, result.device, pair_s)
    async with connected(f, keys, air, auth=True) as st:
        installed = {p["podlet_type"]: p for p in await st.profiles()}
        for prof in profiles:
            kind, version = prof.fields["podlet_type"], prof.fields["version"]
            row = ProfileResult(prof.path.name, prof.title, "installed")
            result.profiles.append(row)
            have = installed.get(kind)
            if have is not None and have["sha256"] == hashlib.sha256(prof.data).digest():
                row.result = "already installed"
                continue
            if have is not None and have["version"] > version:
                row.result = "failed"
                row.reason = f"stale: the device has version {have['version']}"
                continue
            try:
                await st.push_profile(prof.data)
            except SteamerError as e:
                if e.code in ("link", "timeout"):
                    raise
                row.result, row.reason = "failed", str(explain(e, result.device, prof.title))
                if e.code == "stale_version" and have is not None:
                    row.reason = (f"the device has another {have['name']} v{have['version']}"
                                  f" (SHA-256 {have['sha256'].hex()[:16]}..., this file's "
                                  f"{hashlib.sha256(prof.data).hexdigest()[:16]}...)")
                continue
            installed[kind] = {"podlet_type": kind, "version": version,
                               "name": prof.fields["name"],
                               "sha256": hashlib.sha256(prof.data).digest()}


def table(results: list[DeviceResult]) -> list[tuple[str, str, str, str]]:
    """Rows for a person: DEVICE, ADDRESS, RESULT, DETAILS (one row per profile)."""
    rows = [("DEVICE", "ADDRESS", "RESULT", "DETAILS")]
    for r in results:
        status = "ok" if r.ok else "FAILED"
        if r.error or not r.profiles:
            rows.append((r.device, r.address or "-", status, r.error or "no profiles"))
            continue
        for i, p in enumerate(r.profiles):
            detail = f"{p.profile}: {p.result}" + (f" ({p.reason})" if p.reason else "")
            rows.append((r.device if i == 0 else "", (r.address or "-") if i == 0 else "",
                         status if i == 0 else "", detail))
    return rows
