"""The BLE drivers the tests and the benchmark share (steamer_bench.ble runs them longer):
steamers served on a simulated air by `steamer sim serve` (serve, served_and_paired,
advertising), pairing (pair, button_held, PAIRING_SCENARIO), records and test profiles
(make_records, test_profile, signed_test_profile, TEST_PODLET_TYPE), link cuts inside an
operation (Cutter, CutSink, chaos), a log sync's throughput (sync_throughput, After) and
the device heap the BLE layer takes (heap_figures, with ble_heap_mp.py).

Everything goes through the real pieces: the firmware on micropython, the simulated
air, bleak with the sim backend, and steamer.client.
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

from steamer_sim.air import ENV, Air, LinkParams
from steamer.client import (LINK_CODES, KeyRing, LinkLost, MemoryLogSink, Steamer,
                                SteamerError)
from steamer_sim.backend import sim_radio


def button_held(from_s: int = 1, for_s: int = 3600) -> list[dict]:
    """Scenario events that hold the steamer's button for for_s from from_s, as a
    fixture on the line would: the pairing window is open while it is held, from 3 s
    after from_s. A press lasts 600 s at most, so the button is let go for 1 s in every
    600 (the window then closes for 3 s). An event costs the simulator heap: hold it
    for the part of the run that pairs."""
    return [{"t_s": t, "do": "press_button", "ms": 599000}
            for t in range(from_s, from_s + for_s, 600)]


PAIRING_SCENARIO = {"contract": 1, "duration_s": 86400, "events": button_held()}
# What the steamer journals of its own accord as the scenario's button goes and comes.
_WORLD_KINDS = ("pairing_window", "clock_window")
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
        end_process(self.proc)


def end_process(proc: subprocess.Popen) -> None:
    """Ends a process this harness started: SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def serve(air: Air, tmp: Path, name: str, scenario: dict | None = None,
          speed: float = 10.0, board: str = "sim") -> Served:
    """Starts `steamer sim serve --name name --board board` on `air` and waits until it
    advertises (board: "sim", or a real board's code on the port models: "picow",
    "esp32c3")."""
    scen = tmp / f"{name}.json"
    scen.write_text(json.dumps(scenario or PAIRING_SCENARIO))
    log = tmp / f"{name}.log"
    env = dict(os.environ, **{ENV: air.address})
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "steamer.cli.main", "sim", "serve",
                                 "--name", name, "--scenario", str(scen), "--speed", str(speed),
                                 "--board", board],
                                env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    served = Served(air, "", name, proc, log)
    # A real board's code is built for the port models first (~5 s on two cores).
    deadline = time.monotonic() + (30 if board == "sim" else 60)
    while time.monotonic() < deadline:
        addr = air.call(advertising, air, name)
        if addr:
            served.addr = addr
            return served
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    served.stop()
    raise RuntimeError(f"steamer {name} never advertised:\n{log.read_text()[-3000:]}")


def advertising(air: Air, name: str) -> str | None:
    addr = air.addresses.get(name)
    p = air.peripherals.get(addr) if addr else None
    return addr if p is not None and p.advertising else None


def served_and_paired(air: Air, tmp: Path, name: str, speed: float = 10.0,
                      board: str = "sim") -> tuple[Served, KeyRing]:
    """A served steamer and a key ring paired with it, for a module fixture to yield."""
    s = serve(air, tmp, name, speed=speed, board=board)
    ring = KeyRing()
    try:
        asyncio.run(pair(s.addr, air.address, ring))
    except BaseException:
        s.stop()
        raise
    return s, ring


def on_own_air(tmp: Path, name: str, params: LinkParams | None = None,
               speed: float = 10.0) -> tuple[Air, Served, KeyRing]:
    """An air of its own (in this process, with params) and a steamer served on it and
    paired: for a module fixture whose tests change the air's parameters."""
    air = Air(params or LinkParams())
    air.start_thread()
    s, ring = served_and_paired(air, tmp, name, speed=speed)
    return air, s, ring


# ---- steps shared with the tests ---------------------------------------------------------

async def pair(addr: str, air: str, ring: KeyRing) -> bytes:
    """Pairs once the steamer's button-held window opens (retrying until it does)."""
    async with Steamer(addr, ring, **sim_radio(air).steamer_kw()) as st:
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
    from steamer_sim.signing import signed_profile
    return signed_profile(test_profile(version, name), "ok")


def check_records(sink: MemoryLogSink) -> None:
    """Invariant of log sync: the host holds records 1..N, each exactly once."""
    got = record_counts([r["seq"] for r in sink.records], 1)
    if got["duplicated"]:
        raise AssertionError("duplicated records")
    if got["lost"]:
        raise AssertionError("a record is missing")


def record_counts(seqs: list[int], first: int) -> dict:
    """How far seqs (as received, in order) are from first..max(seqs) once each."""
    unique = set(seqs)
    top = max(unique) if unique else first - 1
    expected = set(range(first, top + 1))
    return {"records": len(seqs), "lost": len(expected - unique),
            "duplicated": len(seqs) - len(unique), "in_order": seqs == sorted(seqs)}


class Cutter:
    """Cuts a steamer's link from inside an operation (so the cut lands in it, never
    after it): `arm(after, how)` cuts once `after` more frames of the watched types have
    gone out, or `after` more records have come in; how is "drop" (both ends told at
    once) or "lose" (silent until the supervision timeout). A commit is cut only once
    the air has carried it to the steamer: its answer is what the cut takes. A lost
    commit goes silent in the very event that carries it (the air's
    lose(after_queued=True)): a lose armed a moment after the commit could come after
    its answer had reached the host, and the push would end without having seen the
    cut, leaving the host a link that is already gone."""

    def __init__(self, served: Served, st: Steamer, types: tuple[str, ...] = ()) -> None:
        self.served, self.types = served, types
        self.left = 0
        self.how = "drop"
        self.cuts = 0
        real = st.send

        async def send(msg: dict, ack: bool = False) -> int:
            mid = await real(msg, ack)
            if msg["type"] in self.types:
                commit = msg["type"] == "profile_commit" and self.left == 1
                if commit and self.how == "drop":
                    await self._delivered()
                self.tick(1, after_queued=commit)
            return mid
        st.send = send  # type: ignore[method-assign]

    def arm(self, after: int, how: str = "drop") -> None:
        self.left, self.how = after, how

    def tick(self, n: int, after_queued: bool = False) -> None:
        if self.left <= 0:
            return
        self.left -= n
        if self.left <= 0:
            air, addr = self.served.air, self.served.addr
            if self.how == "lose":
                self.cuts += air.call(air.lose, addr, after_queued)
            else:
                self.cuts += air.call(air.drop, addr)

    async def _delivered(self) -> None:
        air = self.served.air
        addr = self.served.addr
        for _ in range(200):
            if not air.call(lambda: sum(len(c.up) for c in air.conns.values()
                                        if c.periph.addr == addr)):
                break
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.03)          # the steamer's next service() takes it


class CutSink(MemoryLogSink):
    """A MemoryLogSink whose add() moves a Cutter along, one tick per record."""

    def __init__(self, records: list[dict]) -> None:
        super().__init__(records)
        self.cutter: Cutter | None = None

    def add(self, records: list[dict]) -> None:
        super().add(records)
        if self.cutter is not None:
            self.cutter.tick(len(records))


async def linked(served: Served, ring: KeyRing, mtu: int | None = None) -> Steamer:
    """A connected, authenticated Steamer, trying again while the link keeps going."""
    st = Steamer(served.addr, ring, **sim_radio(served.air.address).steamer_kw(), timeout_s=5,
                 mtu=mtu)
    for attempt in range(10):
        try:
            await (st.reconnect(20) if attempt else st.connect(20))
            if not st.authenticated:          # reconnect() authenticates again itself
                await st.authenticate()
            return st
        except SteamerError as e:
            if e.code not in LINK_CODES:
                raise
    raise SteamerError("the link never stayed up long enough to authenticate", "link")


async def installed(st: Steamer) -> tuple[int, str]:
    """(version, name) of the test podlet type's installed profile ((0, "") if none)."""
    mine = [(p["version"], p["name"]) for p in await st.profiles()
            if p["podlet_type"] == TEST_PODLET_TYPE]
    return max(mine) if mine else (0, "")


# A chaos round that takes longer than this has hung (a round takes ~1 s; a cut one
# that resumes, a few link timeouts at most).
CHAOS_ROUND_TIMEOUT_S = 120.0


async def chaos(served: Served, ring: KeyRing, rounds: int, seed: int = 5,
                reconnects: int = 30, round_timeout_s: float = CHAOS_ROUND_TIMEOUT_S) -> dict:
    """_chaos_rounds (below) under a watchdog: a round that has not ended
    round_timeout_s after it began stops the run with AssertionError naming the round
    and the tail of the steamer's log, instead of hanging the benchmark or the test."""
    progress = {"round": -1, "t": time.monotonic()}
    task = asyncio.ensure_future(_chaos_rounds(served, ring, rounds, seed, reconnects,
                                               progress))
    while not task.done():
        await asyncio.wait({task}, timeout=1.0)
        stuck_s = time.monotonic() - progress["t"]
        if not task.done() and stuck_s > round_timeout_s:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - reported below
                pass
            tail = served.log.read_text(errors="replace")[-1500:] if served.log.exists() else ""
            r = progress["round"]
            where = "the set-up (the first link)" if r < 0 else (
                "the final sync" if r >= rounds else f"round {r} of {rounds}")
            raise AssertionError(f"chaos: {where} made no progress for {stuck_s:.0f} s; "
                                 f"the steamer's log ends:\n{tail}")
    return task.result()


async def _chaos_rounds(served: Served, ring: KeyRing, rounds: int, seed: int,
                        reconnects: int, progress: dict) -> dict:
    """`rounds` rounds: make a few records, then sync (two rounds in three) or push the
    next profile version (one in three). Three rounds in four cut the link inside the
    operation (after a random number of records, or of frames of the push, the commit
    among them; dropped, or one time in four lost); the fourth runs uninterrupted. A
    sync, and a push in two of three cut pushes, resume in the same call (reconnects):
    they must end with the records 1..N once each, or the new profile installed; a
    push left cut (no reconnects) must leave the old profile or the new one, never
    anything else. A profile is told by its version and its name, unique to each
    pushed blob (the steamer checks a blob's signature before installing it, so no
    other bytes carry that pair). Raises AssertionError when an invariant fails."""
    rng = random.Random(seed)
    stats = {"rounds": rounds, "planned_cuts": 0, "cut": 0, "cut_lost_link": 0,
             "interrupted_syncs": 0, "interrupted_pushes": 0, "abandoned_pushes": 0,
             "commit_cuts": 0, "uninterrupted": 0, "syncs": 0, "pushes": 0, "reconnects": 0}
    sink = CutSink([])
    st = await linked(served, ring)
    have = await installed(st)            # the last profile known installed
    t0 = time.monotonic()
    for i in range(rounds):
        progress["round"] = i
        progress["t"] = time.monotonic()
        if i and i % 100 == 0:
            say(f"chaos: {i}/{rounds} rounds")
        n = rng.randint(0, 12)
        try:
            await make_records(st, n)
        except SteamerError as e:
            if e.code not in LINK_CODES:
                raise
            await st.close()
            st = await linked(served, ring)
        pushing = i % 3 == 2
        cutting = i % 4 != 3
        how = "lose" if cutting and rng.random() < 0.25 else "drop"
        stats["pushes" if pushing else "syncs"] += 1
        cutter = Cutter(served, st, ("profile_begin", "profile_chunk", "profile_commit"))
        sink.cutter = cutter if not pushing else None
        if pushing:
            version = have[0] + 1
            name = "r%d-%05x" % (i, rng.randrange(1 << 20))
            blob = signed_test_profile(version, name)
            # begin, the chunks, commit; one cut push in three is cut at its commit
            # (once the steamer has it: its answer is lost), one in three is left cut.
            frames = 2 + -(-len(blob) // 24)
            at = frames if (i // 3) % 3 == 0 else rng.randint(1, frames - 1)
            keep_on = (i // 3) % 3 != 1
            if cutting:
                cutter.arm(at, how)
                stats["commit_cuts"] += at == frames
            try:
                await st.push_profile(blob, chunk=24, reconnects=reconnects if keep_on else 0)
                pushed = True
            except SteamerError as e:
                if e.code not in LINK_CODES or keep_on or not cutter.cuts:
                    raise
                pushed = False
                stats["abandoned_pushes"] += 1
        else:
            cutting = cutting and n > 0       # at least the n records to cut between
            if cutting:
                cutter.arm(rng.randint(1, n), how)
            await st.sync_logs(sink, reconnects=reconnects)
        if cutting and not cutter.cuts:
            raise AssertionError(f"round {i}: the cut did not land inside the operation")
        stats["planned_cuts"] += cutting
        stats["cut"] += cutter.cuts
        stats["cut_lost_link"] += cutter.cuts if how == "lose" else 0
        if cutter.cuts:
            stats["interrupted_pushes" if pushing else "interrupted_syncs"] += 1
        else:
            stats["uninterrupted"] += 1
        cutter.arm(0)
        if not st.connected:              # a push left cut
            stats["reconnects"] += st.reconnects
            await st.close()
            st = await linked(served, ring)
        now = await installed(st)
        if pushing:
            new = (version, name)
            if pushed and now != new:
                raise AssertionError(f"round {i}: pushed {new}, the steamer has {now}")
            if now not in (have, new):
                raise AssertionError(f"round {i}: profile {now}, neither {have} nor {new}")
            have = now
        check_records(sink)
    sink.cutter = None
    progress["round"] = rounds
    progress["t"] = time.monotonic()
    await st.sync_logs(sink, reconnects=reconnects)
    stats["reconnects"] += st.reconnects
    await st.close()
    check_records(sink)
    st = await linked(served, ring)
    if st.info["log_next"] != sink.last_seq() + 1:
        # The scenario's button (button_held) lets go and is pressed again every 600 s,
        # and the steamer journals that (pairing_window, clock_window) whenever the
        # rounds are: at speed 20, 45 rounds end near 600 s, and such a record came
        # after the last sync. Those may follow it; nothing a host caused may.
        held = len(sink.records)
        await st.sync_logs(sink)
        late = [r for r in sink.records[held:] if r["kind"] not in _WORLD_KINDS]
        if late or st.info["log_next"] > sink.last_seq() + 1:
            raise AssertionError(f"device numbered {st.info['log_next'] - 1} records, the "
                                 f"last sync ended at {sink.records[held - 1]['seq']}; after "
                                 f"it: {[(r['seq'], r['kind']) for r in sink.records[held:]]}")
        check_records(sink)
    await st.close()
    counts = record_counts([r["seq"] for r in sink.records], 1)
    stats.update(records=counts["records"], lost=counts["lost"],
                 duplicated=counts["duplicated"], profile=list(have),
                 wall_s=round(time.monotonic() - t0, 1))
    return stats


# ---- figures ------------------------------------------------------------------------

async def sync_throughput(served: Served, ring: KeyRing, mtu: int, records: int) -> dict:
    """One log sync of `records` new records at `mtu`. The fraction is Event bytes (PDU
    headers included) over the link's ceiling, in wall time and in link time (the
    connection events the air ran while the sync lasted, times the interval): the air
    catches up on late events, so link time stays close to wall time, and a starved
    steamer or host shows in both as events that carried nothing. `enomem`: the
    notifications the steamer's stack refused for want of buffers during the sync (its
    pacing should leave it at 0)."""
    air = served.air
    async with Steamer(served.addr, ring, **sim_radio(air.address).steamer_kw(), mtu=mtu) as st:
        await st.authenticate()
        # Acknowledge what is there, reading from the oldest unacknowledged record.
        old = await st.sync_logs(After(MemoryLogSink(), st.info["log_first"] - 1))
        await make_records(st, records)
        before = st.rx_bytes
        enomem0 = air.call(air.enomem, served.addr)
        t0 = time.monotonic()
        got_records = MemoryLogSink()
        res = await st.sync_logs(After(got_records, old.last_seq))
        got = st.rx_bytes - before
        enomem = air.call(air.enomem, served.addr) - enomem0
        events = air.call(air.events_between, served.addr, t0, t0 + res.seconds)
        pdus = air.call(air.pdus_between, served.addr, t0, t0 + res.seconds)
        negotiated = st.client.mtu_size if st.client else mtu
    # Every record made arrived, once: a figure from a sync that lost some means nothing.
    counts = record_counts([r["seq"] for r in got_records.records], old.last_seq + 1)
    if counts["lost"] or counts["duplicated"] or res.lost or res.records < records:
        raise AssertionError(f"MTU {mtu} sync of {records} records made: {counts}, "
                             f"the steamer reports {res.lost_records} lost")
    p = air.params
    ceiling = p.ceiling_bytes_s(negotiated)
    rate = got / res.seconds if res.seconds else 0.0
    # Each event at the PDUs per event it had: a link changed during the sync counts
    # as it was, not as it is at the end.
    capacity = pdus * (negotiated - 3)
    return {"mtu": negotiated, "records": res.records, "event_bytes": got,
            "seconds": round(res.seconds, 3), "bytes_s": round(rate),
            "ceiling_bytes_s": round(ceiling), "fraction": round(rate / ceiling, 3),
            "link_events": events, "link_pdus": pdus,
            "link_fraction": round(got / capacity, 3) if capacity else 0.0,
            "records_s": round(res.records / res.seconds) if res.seconds else None,
            "enomem": enomem,
            "lost": counts["lost"] + res.lost_records, "duplicated": counts["duplicated"]}


@dataclass
class After:
    """A sink that starts after `last` (so a measurement reads only new records)."""
    inner: MemoryLogSink
    last: int

    def last_seq(self) -> int:
        return self.inner.last_seq() or self.last

    def add(self, records: list[dict]) -> None:
        self.inner.add(records)


def heap_figures(air: Air, records: int = 600) -> dict:
    """Device heap (unix port, the sim board) the BLE layer takes: its code, loaded from
    .mpy files as a board loads them (into RAM: nothing is frozen), the Link's objects
    (the receive ring among them), and per phase (idle, a host pairing, a host syncing
    `records` log records at ATT MTU 247 with notifications queued) the most it held
    and the most one call allocated; ble_heap_mp.py (beside this) says how each is
    measured. board_* add the stack's receive buffer, which a board's bluetooth module
    keeps on the same heap."""
    from steamer_dev import build
    from steamer_dev.paths import BOARDS, DEVICE, PROTOCOL, SIM_HEAP, micropython_exe
    from steamer_sim.scenario import load_scenario
    from steamer_sim.signing import sign_for_sim
    with tempfile.TemporaryDirectory() as tmp:
        lib = Path(tmp) / "lib"
        for tree in (DEVICE, PROTOCOL):
            for src in sorted(tree.rglob("*.py")):
                rel = src.relative_to(tree).with_suffix(".mpy")
                if "__pycache__" in src.parts or src.name == "signing.py":
                    continue
                err = build.compile_file(src, lib / rel, "x64")
                if err:
                    return {"error": err[-500:]}
        scen = Path(tmp) / "s.json"
        scen.write_text(json.dumps(sign_for_sim(load_scenario(
            dict(PAIRING_SCENARIO, duration_s=86400)))))
        stop = Path(tmp) / "stop"
        # Run from the temporary folder: this one's flash.py would shadow the sim's.
        script = Path(tmp) / "ble_heap_mp.py"
        script.write_text((Path(__file__).parent / "ble_heap_mp.py").read_text())
        env = dict(os.environ, MICROPYPATH=os.pathsep.join([str(lib), str(BOARDS / "sim")]))
        out = Path(tmp) / "out.txt"
        with open(out, "w") as fout:
            proc = subprocess.Popen([micropython_exe(), "-X", f"heapsize={SIM_HEAP}",
                                     str(script), str(scen), air.address, str(stop)],
                                    env=env, stdout=fout, stderr=subprocess.STDOUT, cwd=tmp)
        probe = Served(air, "", "heap-probe", proc, out)
        try:
            deadline = time.monotonic() + 30
            while not probe.addr and time.monotonic() < deadline and proc.poll() is None:
                probe.addr = air.call(advertising, air, "heap-probe") or ""
                time.sleep(0.05)
            if probe.addr:
                time.sleep(1.0)               # idle, advertising, no host
                asyncio.run(_heap_work(probe, records))
                time.sleep(0.5)
            stop.touch()
            proc.wait(60)
        finally:
            probe.stop()
        text = out.read_text(errors="replace")
    try:
        got = json.loads(text.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": text[-500:]}
    # On a board the stack's receive buffer is on the same heap: the layer's totals.
    phases = [got[k] for k in ("idle", "connected", "pairing", "sync") if got.get(k)]
    stack = got["stack_rx_buffer_bytes"]
    got["board_idle_bytes"] = (got["idle"] or {"held": 0})["held"] + stack
    got["board_peak_held_bytes"] = max(p["held"] for p in phases) + stack
    got["note"] = ("bytes of the MicroPython heap: code loaded from .mpy into RAM (nothing "
                   "frozen); held includes code and link objects; alloc is one call's "
                   "allocations, garbage included (the collector runs meanwhile); board_* "
                   "add the stack's receive buffer, on the same heap on a board")
    return got


async def _heap_work(probe: Served, records: int) -> None:
    """What the heap probe's host does: pair (on its own connection), then make records
    and sync them at ATT MTU 247, the window of log reads keeping notifications queued."""
    ring = KeyRing()
    await pair(probe.addr, probe.air.address, ring)
    st = await linked(probe, ring)
    await make_records(st, records)
    await st.sync_logs(MemoryLogSink())
    await st.close()


def say(text: str) -> None:
    """A progress line on stderr, as the benchmark prints them."""
    sys.stderr.write(f"bench: ble: {text}\n")
    sys.stderr.flush()
