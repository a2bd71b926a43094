"""The BLE link's benchmark: log-sync throughput against the emulated link's ceiling at
ATT MTU 23 and 247, reconnect-to-resumed-sync time, randomized disconnects during syncs
and profile pushes, and the device heap the BLE layer takes.

    from steamer_tools.bench_ble import run
    figures = run()                 # several minutes: 1,000 chaos rounds
    figures = run(chaos_rounds=50)  # quicker

Everything goes through the real pieces: the firmware on micropython (`steamer sim
serve`), the simulated air, bleak with the sim backend, and steamer.ble.client.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from steamer.ble.air import ENV, Air, LinkParams
from steamer.ble.client import KeyRing, LinkLost, MemoryLogSink, Steamer, SteamerError

# Held 3.5 s from t=1 s: the pairing window opens at 4 s of device time, for 60 s.
PAIRING_SCENARIO = {"contract": 1, "duration_s": 86400,
                    "events": [{"t_s": 1, "do": "press_button", "ms": 3500}]}
TEST_PODLET_TYPE = 7


@dataclass
class Served:
    """A steamer served on an air by `steamer sim serve`, until stop()."""
    air: Air
    addr: str
    name: str
    proc: subprocess.Popen
    log: Path

    def crashes(self) -> list[str]:
        """Firmware tracebacks in the steamer's output (each ends in a watchdog reset)."""
        text = self.log.read_text(errors="replace")
        return [part[:600] for part in text.split("Traceback (most recent call last):")[1:]]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def serve(air: Air, tmp: Path, name: str, scenario: dict | None = None,
          speed: float = 10.0) -> Served:
    """Starts `steamer sim serve --name name` on `air` and waits until it advertises."""
    scen = tmp / f"{name}.json"
    scen.write_text(json.dumps(scenario or PAIRING_SCENARIO))
    log = tmp / f"{name}.log"
    env = dict(os.environ, **{ENV: air.address})
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "steamer.cli", "sim", "serve",
                                 "--name", name, "--scenario", str(scen), "--speed", str(speed)],
                                env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    served = Served(air, "", name, proc, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        addr = air.call(_advertising, air, name)
        if addr:
            served.addr = addr
            return served
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    served.stop()
    raise RuntimeError(f"steamer {name} never advertised:\n{log.read_text()[-3000:]}")


def _advertising(air: Air, name: str) -> str | None:
    addr = air.addresses.get(name)
    p = air.peripherals.get(addr) if addr else None
    return addr if p is not None and p.advertising else None


# ---- steps shared with the tests ---------------------------------------------------------

async def pair(addr: str, air: str, ring: KeyRing) -> bytes:
    """Pairs once the steamer's button-held window opens (retrying until it does)."""
    async with Steamer(addr, ring, sim=air) as st:
        for _ in range(150):
            try:
                return await st.pair()
            except SteamerError as e:
                if e.code != "bad_state":
                    raise
                await asyncio.sleep(0.1)
    raise SteamerError("the pairing window never opened", "timeout")


async def make_records(st: Steamer, n: int) -> None:
    """n journal records: each refused session start is one (no podlet is in)."""
    ids = [await st.send({"type": "session_start", "podlet_type": 0}, ack=True)
           for _ in range(n)]
    for mid in ids:
        try:
            await st.receive(["ack"], mid)
        except SteamerError as e:
            if e.code != "bad_state":
                raise


def test_profile(version: int, name: str = "calm") -> dict:
    return {"podlet_type": TEST_PODLET_TYPE, "version": version, "outlet_target_mc": 42000,
            "session_s": 600, "dose_rate_ul_min": 120, "max_session_ul": 1000,
            "max_day_ul": 3000, "min_interval_s": 0, "name": name}


def signed_test_profile(version: int, name: str = "calm") -> bytes:
    """A profile signed with the development key the sim steamer trusts."""
    from steamer_tools.signing_sim import signed_profile
    return signed_profile(test_profile(version, name), "ok")


def check_records(sink: MemoryLogSink) -> None:
    """Invariant of log sync: the host holds records 1..N, each exactly once."""
    seqs = [r["seq"] for r in sink.records]
    if len(seqs) != len(set(seqs)):
        raise AssertionError("duplicated records")
    if seqs != list(range(1, len(seqs) + 1)):
        raise AssertionError("a record is missing")


async def chaos(served: Served, ring: KeyRing, rounds: int, seed: int = 5,
                max_delay_s: float = 0.15) -> dict:
    """`rounds` rounds: make a few records, then sync (two rounds in three) or push the
    next profile version (one in three) while the link is dropped at a random moment.
    Raises AssertionError when a record is lost or duplicated, or when the installed
    profile is neither the last committed version nor the one being pushed."""
    air = served.air
    rng = random.Random(seed)
    stats = {"rounds": rounds, "drops": 0, "interrupted_syncs": 0, "interrupted_pushes": 0,
             "syncs": 0, "pushes": 0}

    async def connected() -> Steamer:
        st = Steamer(served.addr, ring, sim=air.address, timeout_s=5)
        await st.connect(attempts=20)
        await st.authenticate()
        return st

    async def installed(st: Steamer) -> int:
        return max([p["version"] for p in await st.profiles()
                    if p["podlet_type"] == TEST_PODLET_TYPE] or [0])

    def drop() -> None:
        stats["drops"] += air.call(air.drop, served.addr)

    sink = MemoryLogSink()
    st = await connected()
    version = await installed(st)          # the last version known committed
    t0 = time.monotonic()
    for i in range(rounds):
        try:
            await make_records(st, rng.randint(0, 12))
        except (LinkLost, SteamerError):
            pass
        timer = threading.Timer(rng.uniform(0.0, max_delay_s), drop)
        timer.start()
        pushing = i % 3 == 2
        stats["pushes" if pushing else "syncs"] += 1
        try:
            if pushing:
                await st.push_profile(signed_test_profile(version + 1), chunk=24)
                version += 1
            else:
                await st.sync_logs(sink)
        except LinkLost:
            stats["interrupted_pushes" if pushing else "interrupted_syncs"] += 1
        except SteamerError as e:
            if e.code not in ("timeout", "link"):
                raise
            stats["interrupted_pushes" if pushing else "interrupted_syncs"] += 1
        timer.join()
        await st.close()
        st = await connected()
        now = await installed(st)
        if now not in (version, version + 1):
            raise AssertionError(f"profile version {now} after pushing {version + 1}")
        if pushing and now == version + 1:
            version += 1                    # committed, though the answer was lost
        check_records(sink)
    await st.sync_logs(sink)
    await st.close()
    check_records(sink)
    st = await connected()
    if st.info["log_next"] != sink.last_seq() + 1:
        raise AssertionError(f"device numbered {st.info['log_next'] - 1} records, "
                             f"host holds {sink.last_seq()}")
    await st.close()
    stats.update(records=len(sink.records), lost=0, duplicated=0, profile_version=version,
                 wall_s=round(time.monotonic() - t0, 1))
    return stats


# ---- figures ------------------------------------------------------------------------

async def sync_throughput(served: Served, ring: KeyRing, mtu: int, records: int) -> dict:
    """One log sync of `records` new records at `mtu`. The fraction is Event bytes (PDU
    headers included) over the link's ceiling, in wall time and in link time (the
    connection events the air ran while the sync lasted, times the interval): the air
    catches up on late events, so link time stays close to wall time, and a starved
    steamer or host shows in both as events that carried nothing."""
    air = served.air
    async with Steamer(served.addr, ring, sim=air.address, mtu=mtu) as st:
        await st.authenticate()
        # Acknowledge what is there, reading from the oldest unacknowledged record.
        old = await st.sync_logs(_After(MemoryLogSink(), st.info["log_first"] - 1))
        await make_records(st, records)
        before = st.rx_bytes
        t0 = time.monotonic()
        res = await st.sync_logs(_After(MemoryLogSink(), old.last_seq))
        got = st.rx_bytes - before
        events = air.call(air.events_between, served.addr, t0, t0 + res.seconds)
        negotiated = st.client.mtu_size if st.client else mtu
    p = air.params
    ceiling = p.ceiling_bytes_s(negotiated)
    rate = got / res.seconds if res.seconds else 0.0
    capacity = events * p.pdus_per_event * (negotiated - 3)
    return {"mtu": negotiated, "records": res.records, "event_bytes": got,
            "seconds": round(res.seconds, 3), "bytes_s": round(rate),
            "ceiling_bytes_s": round(ceiling), "fraction": round(rate / ceiling, 3),
            "link_events": events,
            "link_fraction": round(got / capacity, 3) if capacity else 0.0,
            "records_s": round(res.records / res.seconds) if res.seconds else None}


def _spread(runs: list[dict]) -> dict:
    """Median and range of each run's fractions, and the runs themselves."""
    out: dict = {"runs": len(runs)}
    for key in ("fraction", "link_fraction"):
        vals = [r[key] for r in runs]
        out[key] = {"median": round(statistics.median(vals), 3), "min": min(vals),
                    "max": max(vals)}
    out["each"] = runs
    return out


@dataclass
class _After:
    """A sink that starts after `last` (so a measurement reads only new records)."""
    inner: MemoryLogSink
    last: int

    def last_seq(self) -> int:
        return self.inner.last_seq() or self.last

    def add(self, records: list[dict]) -> None:
        self.inner.add(records)


async def _reconnect_times(served: Served, ring: KeyRing, n: int) -> dict:
    air = served.air
    times = []
    sink = MemoryLogSink()
    async with Steamer(served.addr, ring, sim=air.address) as st:
        await st.authenticate()
        await st.sync_logs(sink)
    for _ in range(n):
        st = Steamer(served.addr, ring, sim=air.address, timeout_s=5)
        await st.connect(attempts=20)
        await st.authenticate()
        await make_records(st, 30)
        t0 = time.monotonic()
        air.call(air.drop, served.addr)
        try:
            await st.sync_logs(sink)
        except (LinkLost, SteamerError):
            pass
        await st.reconnect(attempts=40)
        await st.authenticate()
        first: list[float] = []

        class Stamp:
            def last_seq(self) -> int:
                return sink.last_seq()

            def add(self, records: list[dict]) -> None:
                if not first:
                    first.append(time.monotonic())
                sink.add(records)
        await st.sync_logs(Stamp())
        await st.close()
        if first:
            times.append(first[0] - t0)
    check_records(sink) if sink.records and sink.records[0]["seq"] == 1 else None
    return {"runs": len(times), "median_ms": round(statistics.median(times) * 1000),
            "max_ms": round(max(times) * 1000)}


def heap_figures(air: Air) -> dict:
    """Device heap (unix port) taken by the BLE layer: bytecode (frozen in flash on a
    board) and the objects Link allocates (RAM on any board)."""
    from steamer_tools.paths import BOARDS, SIM_HEAP, micropython_env, micropython_exe
    from steamer_tools.scenario import load_scenario
    from steamer_tools.signing_sim import sign_for_sim
    with tempfile.TemporaryDirectory() as tmp:
        scen = Path(tmp) / "s.json"
        scen.write_text(json.dumps(sign_for_sim(load_scenario({"contract": 1,
                                                                "duration_s": 60}))))
        # Run from the temporary folder: this one's flash.py would shadow the sim's.
        script = Path(tmp) / "ble_heap_mp.py"
        script.write_text(Path(__file__).with_name("ble_heap_mp.py").read_text())
        proc = subprocess.run([micropython_exe(), "-X", f"heapsize={SIM_HEAP}", str(script),
                               str(scen), air.address], env=micropython_env("sim"),
                              capture_output=True, text=True, timeout=60)
    try:
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": (proc.stdout + proc.stderr)[-500:]}


def run(chaos_rounds: int = 1000, sync_records: tuple[int, int] = (1500, 3900),
        speed: float = 1.0, sync_runs: int = 3) -> dict:
    """The BLE figures as one JSON-able dict. The steamers run at `speed` times real time
    (1.0: the firmware's loop runs every 100 ms of wall time, as on a board). Each MTU's
    sync is measured `sync_runs` times, alternating MTUs: the median is the figure (the
    machines are shared and noisy), the range says how noisy."""
    params = LinkParams()
    air = Air(params)
    air.start_thread()
    out: dict = {"link": {"interval_ms": params.interval_ms,
                          "pdus_per_event": params.pdus_per_event,
                          "ceiling_bytes_s": {"mtu23": params.ceiling_bytes_s(23),
                                              "mtu247": params.ceiling_bytes_s(247)}},
                 "speed": speed}
    with tempfile.TemporaryDirectory(prefix="bench-ble-") as tmp:
        served = serve(air, Path(tmp), "bench-ble", PAIRING_SCENARIO, speed=speed)
        try:
            ring = KeyRing()
            asyncio.run(pair(served.addr, air.address, ring))
            runs: dict[int, list[dict]] = {23: [], 247: []}
            for _ in range(sync_runs):
                for mtu, n in ((23, sync_records[0]), (247, sync_records[1])):
                    runs[mtu].append(asyncio.run(sync_throughput(served, ring, mtu, n)))
            out["sync_mtu23"] = _spread(runs[23])
            out["sync_mtu247"] = _spread(runs[247])
            out["reconnect_to_resumed_sync"] = asyncio.run(_reconnect_times(served, ring, 10))
        finally:
            served.stop()
        fast = serve(air, Path(tmp), "bench-chaos", PAIRING_SCENARIO, speed=20)
        try:
            ring = KeyRing()
            asyncio.run(pair(fast.addr, air.address, ring))
            out["chaos"] = asyncio.run(chaos(fast, ring, chaos_rounds))
        finally:
            fast.stop()
        out["device_heap"] = heap_figures(air)
    return out


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    print(json.dumps(run(chaos_rounds=rounds), indent=1))
