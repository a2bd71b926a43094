"""`steamer mfg provision` as the line runs it: a subprocess pushing a folder of signed
profiles to several simulated steamers at once, one of which cannot take them all and
one of which is not there."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from podproto import signing
from steamer_sim.air import ENV, Air, LinkParams
from steamer_harness.ble import button_held, serve, signed_test_profile
from steamer_harness.ble import test_profile as profile_fields

SPEED = 10.0
# Held as a fixture holds it: the pairing window is open while it is held.
PRESSES = button_held(1, 3600)
NEWER = {"podlet_type": 7, "version": 5, "name": "calm", "outlet_target_c": 42.0,
         "session_s": 600, "dose_rate_ul_min": 120, "max_session_ul": 1000,
         "max_day_ul": 3000, "min_interval_s": 0, "sign": "ok"}


@pytest.fixture(scope="module")
def line(tmp_path_factory):
    """Three steamers on one air; line-3 already has podlet type 7 at version 5."""
    air = Air(LinkParams())
    air.start_thread()
    tmp = tmp_path_factory.mktemp("line")
    served = []
    try:
        for name, profiles in (("line-1", []), ("line-2", []), ("line-3", [NEWER])):
            served.append(serve(air, tmp, name, {"contract": 1, "duration_s": 86400,
                                                 "profiles": profiles, "events": PRESSES},
                                speed=SPEED))
        env = dict(os.environ, **{ENV: air.address, "STEAMER_KEYS": str(tmp / "keys.json")})
        env.pop("STEAMER_SIM", None)
        yield env, tmp, air
    finally:
        for s in served:
            s.stop()
    for s in served:
        assert s.crashes() == []


def steamer(env: dict, *args: str, code: int) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "steamer.cli.main", *args], env=env, text=True,
                       capture_output=True, timeout=90, stdin=subprocess.DEVNULL)
    assert "Traceback" not in p.stderr + p.stdout, p.stderr
    assert p.returncode == code, f"exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def folder(tmp: Path, name: str, files: dict[str, bytes]) -> Path:
    d = tmp / name
    d.mkdir()
    for fname, data in files.items():
        (d / fname).write_bytes(data)
    return d


def test_provision_reports_each_device_and_fails_if_any_did(line):
    env, tmp, _ = line
    from steamer_sim.signing import signed_profile
    other = dict(profile_fields(1, "rose"), podlet_type=8)
    profiles = folder(tmp, "profiles", {"calm.bin": signed_test_profile(2),
                                        "rose.bin": signed_profile(other, "ok")})
    p = steamer(env, "mfg", "provision", "line-1", "line-2", "line-3", "line-9",
                "--profiles", str(profiles), "--sim", "--scan-timeout", "3", "--json", code=1)
    results = {r["device"]: r for r in json.loads(p.stdout)}
    assert list(results) == ["line-1", "line-2", "line-3", "line-9"]
    for name in ("line-1", "line-2"):
        assert results[name]["ok"], results[name]
        assert [x["result"] for x in results[name]["profiles"]] == ["installed", "installed"]
    l3 = {x["file"]: x for x in results["line-3"]["profiles"]}
    assert not results["line-3"]["ok"]
    assert l3["calm.bin"]["result"] == "failed" and "version 5" in l3["calm.bin"]["reason"]
    assert l3["rose.bin"]["result"] == "installed"
    assert not results["line-9"]["ok"] and results["line-9"]["address"] is None
    assert "unknown device line-9" in results["line-9"]["error"]
    assert p.stderr.strip() == "steamer mfg provision: 2 of 4 devices failed"

    # What the devices now hold, as the consumer command lists it.
    listed = json.loads(steamer(env, "profile", "list", "line-2", "--sim", "--json",
                                code=0).stdout)
    assert {(x["podlet_type"], x["version"]) for x in listed} == {(7, 2), (8, 1)}

    # Again on the good ones: nothing to do, exit 0, and a table for a person.
    p = steamer(env, "mfg", "provision", "line-1", "line-2", "--profiles", str(profiles),
                "--sim", code=0)
    rows = p.stdout.splitlines()
    assert rows[0].split() == ["DEVICE", "ADDRESS", "RESULT", "DETAILS"]
    assert sum("already installed" in r for r in rows) == 4 and "FAILED" not in p.stdout


def test_provision_refuses_foreign_signatures_and_wrong_folders(line):
    env, tmp, _ = line
    foreign = signing.sign_profile(bytes(range(32)), profile_fields(9, "calm"))
    bad_sig = folder(tmp, "foreign", {"calm.bin": foreign})
    p = steamer(env, "mfg", "provision", "line-1", "--profiles", str(bad_sig), "--sim",
                "--json", code=1)
    (row,) = json.loads(p.stdout)
    assert row["profiles"][0]["result"] == "failed"
    assert "not from the manufacturer key this steamer trusts" in row["profiles"][0]["reason"]

    unsigned = folder(tmp, "unsigned", {"calm.json": json.dumps(profile_fields(3)).encode()})
    p = steamer(env, "mfg", "provision", "line-1", "--profiles", str(unsigned), "--sim", code=2)
    assert p.stderr.strip().splitlines() == [
        f"steamer mfg provision: --profiles: no signed profiles (*.bin) in {unsigned} (1 "
        "unsigned .json: sign them with `steamer mfg sign-profile`)"]
    junk = folder(tmp, "junk", {"a.bin": b"\x01\x02"})
    p = steamer(env, "mfg", "provision", "line-1", "--profiles", str(junk), "--sim", code=2)
    assert "a.bin: not a signed profile" in p.stderr and len(p.stderr.splitlines()) == 1


def test_provision_counts_as_installed_only_the_very_same_bytes(line):
    """line-3 holds calm v5 (podlet type 7): a file of those bytes is already installed;
    another calm v5 (other limits) and calm v5 signed with a key line-3 does not trust
    are failures, not "already installed", though type and version are the same."""
    env, tmp, _ = line
    from steamer_sim.signing import signed_profile
    other = dict(NEWER, max_day_ul=2999)
    profiles = folder(tmp, "v5", {"a-same.bin": signed_profile(NEWER, "ok"),
                                  "b-other.bin": signed_profile(other, "ok"),
                                  "c-foreign.bin": signed_profile(NEWER, "wrong_key")})
    p = steamer(env, "mfg", "provision", "line-3", "--profiles", str(profiles), "--sim",
                "--json", code=1)
    (row,) = json.loads(p.stdout)
    got = {x["file"]: x for x in row["profiles"]}
    assert not row["ok"] and got["a-same.bin"]["result"] == "already installed"
    assert got["b-other.bin"]["result"] == "failed"
    assert "another calm v5" in got["b-other.bin"]["reason"], got["b-other.bin"]
    assert got["c-foreign.bin"]["result"] == "failed"
    assert "not from the manufacturer key this steamer trusts" in \
        got["c-foreign.bin"]["reason"], got["c-foreign.bin"]
    # What line-3 holds is what it held: the list carries its SHA-256.
    listed = json.loads(steamer(env, "profile", "list", "line-3", "--sim", "--json",
                                code=0).stdout)
    import hashlib
    assert [x["sha256"] for x in listed if x["podlet_type"] == 7] == \
        [hashlib.sha256(signed_profile(NEWER, "ok")).hexdigest()]


def test_provision_works_on_jobs_devices_at_once(line):
    """--jobs N: N devices connected at the same time (their pushes overlap); --jobs 1:
    one after the other. Watched on the air: the steamers with a connection open."""
    env, tmp, air = line

    def most_at_once(*args: str) -> int:
        peak = 0
        done = threading.Event()

        def watch() -> None:
            nonlocal peak
            while not done.is_set():
                n = air.call(lambda: len({c.periph.addr for c in air.conns.values() if c.open}))
                peak = max(peak, n)
                time.sleep(0.005)
        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            p = steamer(env, "mfg", "provision", "line-1", "line-2", "--sim", "--json", *args,
                        code=0)
        finally:
            done.set()
            watcher.join()
        assert [[x["result"] for x in r["profiles"]] for r in json.loads(p.stdout)] == \
            [["installed"], ["installed"]]
        return peak

    # A new version each time, so that each device gets a push (a second or so each).
    v3 = folder(tmp, "v3", {"calm.bin": signed_test_profile(3)})
    v4 = folder(tmp, "v4", {"calm.bin": signed_test_profile(4)})
    assert most_at_once("--profiles", str(v3), "--jobs", "2") == 2
    assert most_at_once("--profiles", str(v4), "--jobs", "1") == 1


def test_a_link_failure_on_one_device_is_a_row_of_the_table(monkeypatch, tmp_path):
    """Whatever the radio raises for one device (bleak, the OS, a timeout) ends up in
    that device's row; the others are provisioned."""
    from bleak.exc import BleakError

    from steamer.client import Found, KeyRing
    from steamer_mfg import provision as prov

    class Device:
        def __init__(self, address: str) -> None:
            self.address = address

    found = {q: Found(Device(f"5E:7A:00:00:00:0{i}"), q, "idle", 0, False, -50)
             for i, q in enumerate(("a", "b", "c", "d"))}

    async def resolve_many(queries, timeout_s, air):
        return {q: found[q] for q in queries}

    async def provision_one(f, profiles, keys, air, pair_s, result):
        await asyncio.sleep(0.01)
        if f.name == "b":
            raise BleakError("Device with address 5E:7A:00:00:00:01 was not found")
        if f.name == "c":
            raise ConnectionResetError(104, "Connection reset by peer")
        if f.name == "d":
            raise asyncio.TimeoutError()
        result.profiles.append(prov.ProfileResult("calm.bin", "calm v2", "installed"))

    monkeypatch.setattr(prov, "resolve_many", resolve_many)
    monkeypatch.setattr(prov, "_provision_one", provision_one)
    results = asyncio.run(prov.provision(["a", "b", "c", "d"], [], KeyRing(None)))
    assert [(r.device, r.ok, r.error) for r in results] == [
        ("a", True, None),
        ("b", False, "Bluetooth: Device with address 5E:7A:00:00:00:01 was not found"),
        ("c", False, "Bluetooth: Connection reset by peer"),
        ("d", False, "Bluetooth: TimeoutError")]
    rows = prov.table(results)
    assert [r[2] for r in rows[1:]] == ["ok", "FAILED", "FAILED", "FAILED"]
