"""The BLE link's benchmark: log-sync throughput against the emulated link's ceiling at
ATT MTU 23 and 247, reconnect-to-resumed-sync time, randomized disconnects during syncs
and profile pushes, and the device heap the BLE layer takes.

    from steamer_bench.ble import run
    figures = run()                 # ~20 minutes: 1,000 chaos rounds
    figures = run(chaos_rounds=50)  # quicker
    table = sync_table()            # log sync per port model x PDUs per event x MTU

    python -m steamer_bench.ble sync-table [RECORDS_23 RECORDS_247 [INTERVAL_MS]]   # the table

The drivers are steamer_harness.ble's, which the tests run too: the benchmark runs them
longer.
"""
from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from steamer_sim.air import Air, LinkParams
from steamer.client import KeyRing, LinkLost, MemoryLogSink, Steamer, SteamerError
from steamer_harness.ble import (PAIRING_SCENARIO, Served, chaos, check_records,
                                 heap_figures, make_records, pair, serve,
                                 sync_throughput)
from steamer_harness.ble import say as _say
from steamer_sim.backend import sim_radio


def _spread(runs: list[dict]) -> dict:
    """Median and range of each run's fractions, and the runs themselves."""
    out: dict = {"runs": len(runs), "enomem_total": sum(r["enomem"] for r in runs)}
    for key in ("fraction", "link_fraction"):
        vals = [r[key] for r in runs]
        out[key] = {"median": round(statistics.median(vals), 3), "min": min(vals),
                    "max": max(vals)}
    out["each"] = runs
    return out


async def _reconnect_times(served: Served, ring: KeyRing, n: int) -> dict:
    air = served.air
    times = []
    sink = MemoryLogSink()
    async with Steamer(served.addr, ring, **sim_radio(air.address).steamer_kw()) as st:
        await st.authenticate()
        await st.sync_logs(sink)
    for _ in range(n):
        st = Steamer(served.addr, ring, **sim_radio(air.address).steamer_kw(), timeout_s=5)
        await st.connect(attempts=20)
        await st.authenticate()
        await make_records(st, 30)
        t0 = time.monotonic()
        air.call(air.drop, served.addr)
        try:
            await st.sync_logs(sink)
        except (LinkLost, SteamerError):
            pass
        await st.reconnect(attempts=40)       # authenticated again, as st was
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


def run(chaos_rounds: int = 1000, sync_records: tuple[int, int] = (1500, 3300),
        speed: float = 1.0, sync_runs: int = 3, reconnects: int = 10,
        heap_records: int = 600) -> dict:
    """The BLE figures as one JSON-able dict. The steamers run at `speed` times real time
    (1.0: the firmware's loop runs every 100 ms of wall time, as on a board). Each MTU's
    sync is measured `sync_runs` times, alternating MTUs: the median is the figure (the
    machines are shared and noisy), the range says how noisy. The MTU 247 run's records
    are what the sim's 512 KB flash holds unacknowledged beside the rest of the firmware's
    files and the journal's reserve (fw.journal: 3,900 would overflow, and the run fail)."""
    params = LinkParams()
    air = Air(params)
    air.start_thread()
    out: dict = {"link": {"interval_ms": params.interval_ms,
                          "pdus_per_event": params.pdus_per_event,
                          "ceiling_bytes_s": {"mtu23": params.ceiling_bytes_s(23),
                                              "mtu247": params.ceiling_bytes_s(247)}},
                 "speed": speed}
    t0 = time.monotonic()

    def say(text: str) -> None:
        _say(f"{text} ({time.monotonic() - t0:.0f} s in)")
    with tempfile.TemporaryDirectory(prefix="bench-ble-") as tmp:
        served = serve(air, Path(tmp), "bench-ble", PAIRING_SCENARIO, speed=speed)
        try:
            ring = KeyRing()
            say("pairing")
            asyncio.run(pair(served.addr, air.address, ring))
            runs: dict[int, list[dict]] = {23: [], 247: []}
            for k in range(sync_runs):
                for mtu, n in ((23, sync_records[0]), (247, sync_records[1])):
                    say(f"sync {k + 1}/{sync_runs} at MTU {mtu}: {n} records")
                    runs[mtu].append(asyncio.run(sync_throughput(served, ring, mtu, n)))
            out["sync_mtu23"] = _spread(runs[23])
            out["sync_mtu247"] = _spread(runs[247])
            say(f"{reconnects} reconnects to a resumed sync")
            out["reconnect_to_resumed_sync"] = asyncio.run(
                _reconnect_times(served, ring, reconnects))
        finally:
            served.stop()
        fast = serve(air, Path(tmp), "bench-chaos", PAIRING_SCENARIO, speed=20)
        try:
            ring = KeyRing()
            asyncio.run(pair(fast.addr, air.address, ring))
            say(f"chaos: {chaos_rounds} rounds of cut syncs and pushes")
            out["chaos"] = asyncio.run(chaos(fast, ring, chaos_rounds))
        finally:
            fast.stop()
        say(f"device heap, syncing {heap_records} records")
        out["device_heap"] = heap_figures(air, heap_records)
        say("done")
    return out


# What the air varies and the firmware is not told: PDUs per event, fixed or changing.
SYNC_PDUS = (2, 4, 6, "changing")
SYNC_PORTS = ("nimble", "btstack")


class _Changing:
    """Changes the air's PDUs per event every period_s (2 to 6, in a fixed shuffled
    order) until stop(): no connection update says so."""

    def __init__(self, air: Air, period_s: float = 0.7) -> None:
        self.air, self.period_s = air, period_s
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        order = (6, 3, 5, 2, 4)
        i = 0
        while not self.done.wait(self.period_s):
            self.air.call(lambda: self.air.set_params(pdus_per_event=order[i % len(order)]))
            i += 1

    def stop(self) -> None:
        self.done.set()
        self.thread.join()


def sync_table(records: tuple[int, int] = (300, 1200), ports: tuple = SYNC_PORTS,
               pdus: tuple = SYNC_PDUS, speed: float = 1.0,
               interval_ms: float = LinkParams.interval_ms) -> list[dict]:
    """Log sync's fraction of the link's ceiling (link time: the connection events the
    air ran) at MTU 23 and 247, per port model (the simulated board: NimBLE for the
    ESP32-C3, BTstack for the Pico W) and PDUs per event the firmware is not told. A
    changing link's ceiling is counted event by event at the figure it had then (the
    air's pdus_between), not at the cycle's mean: a sync covers a part of the cycle,
    whose mean may be higher or lower. interval_ms: the link's connection interval,
    which no connection update reports (the firmware assumes 30 ms until one does)."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-ble-sync-") as tmp:
        for port in ports:
            board = {v: k for k, v in (("esp32c3", "nimble"), ("picow", "btstack"))}[port]
            os.environ["STEAMER_SIM_BOARD"] = board
            params = LinkParams(interval_ms=interval_ms)
            air = Air(params)
            air.start_thread()
            served = serve(air, Path(tmp), f"sync-{port}", PAIRING_SCENARIO, speed=speed)
            try:
                ring = KeyRing()
                asyncio.run(pair(served.addr, air.address, ring))
                for ppe in pdus:
                    for mtu, n in ((23, records[0]), (247, records[1])):
                        changing = None
                        if ppe == "changing":
                            changing = _Changing(air)
                        else:
                            air.call(lambda: air.set_params(pdus_per_event=ppe))
                        try:
                            fig = asyncio.run(sync_throughput(served, ring, mtu, n))
                        except (SteamerError, LinkLost, AssertionError) as e:
                            fig = {"error": str(e)[:120]}
                        finally:
                            if changing is not None:
                                changing.stop()
                                air.call(lambda: air.set_params(pdus_per_event=4))
                        if "error" in fig:
                            row = {"port": port, "pdus_per_event": ppe, "mtu": mtu,
                                   "error": fig["error"]}
                            _say(json.dumps(row))
                            rows.append(row)
                            continue
                        # The link's own count of what its events could carry, each at
                        # the PDUs per event it had: right for a changing link too.
                        frac = fig["link_fraction"]
                        row = {"port": port, "interval_ms": interval_ms,
                               "pdus_per_event": ppe, "mtu": fig["mtu"],
                               "records": fig["records"], "link_fraction": frac,
                               "enomem": fig["enomem"], "lost": fig["lost"],
                               "duplicated": fig["duplicated"]}
                        _say(json.dumps(row))
                        rows.append(row)
            finally:
                served.stop()
                os.environ.pop("STEAMER_SIM_BOARD", None)
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"{'port':8} {'PDUs/event':>10} {'MTU':>4} {'records':>7} {'of ceiling':>10} "
          f"{'ENOMEM':>6} {'lost':>4} {'dup':>4}")
    for r in rows:
        if "error" in r:
            print(f"{r['port']:8} {str(r['pdus_per_event']):>10} {r['mtu']:>4} failed: {r['error']}")
            continue
        print(f"{r['port']:8} {str(r['pdus_per_event']):>10} {r['mtu']:>4} {r['records']:>7} "
              f"{r['link_fraction']:>10.3f} {r['enomem']:>6} {r['lost']:>4} {r['duplicated']:>4}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["sync-table"]:
        counts = tuple(int(a) for a in sys.argv[2:4]) or (300, 1200)
        interval = float(sys.argv[4]) if len(sys.argv) > 4 else LinkParams.interval_ms
        print_table(sync_table(records=counts, interval_ms=interval))  # type: ignore[arg-type]
        sys.exit(0)
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    print(json.dumps(run(chaos_rounds=rounds), indent=1))
