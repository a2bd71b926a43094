"""The benchmark's `boards` part: the real boards' code (boards/esp32c3, boards/picow with
boards/common) on the port models (boards/portsim), wired to the plant, per board: step
time, allocation errors, the longest service() and flash operation against the watchdog
and the keep-alives, encoder pulses lost, pump over-delivery past its period, with
typical and datasheet-worst flash; and every fault case's latency. Prints the table on
stderr and returns the figures for the JSON.

Step time is virtual: the models charge only what a port spends in C (the podlet
presence check's 1-Wire reset, flash operations), not the bytecode's own time.
"""
from __future__ import annotations

import json
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from steamer_dev.paths import ROOT
from steamer_harness import faultcases
from steamer_sim.portsim import run_on_board

BOARDS = ("picow", "esp32c3")
DEMO = ROOT / "scenarios" / "demo.json"
WATCHDOG_MS = 1000          # fw.config.WATCHDOG_MS
HEATER_KEEPALIVE_MS = 300   # the SSR charge pump's hold (boards/*/README.md)
# A worst-flash run resets over and over: its scenario is shortened and its heap large,
# since the runner (unlike a board) keeps what each boot leaves in the heap.
_WORST_S = 300.0
_WORST_HEAP = "2M"


def _jobs() -> dict:
    worst = json.loads(DEMO.read_text())
    worst["duration_s"] = _WORST_S
    slow = json.loads(DEMO.read_text())
    slow["profiles"][0]["dose_rate_ul_min"] = 1
    slow["duration_s"] = 320.0
    jobs = {}
    for b in BOARDS:
        jobs[b, "typical"] = (DEMO, {})
        jobs[b, "worst"] = (worst, {"flash": "worst", "heap": _WORST_HEAP})
        jobs[b, "1ul_min"] = (slow, {})
        for c in faultcases.CASES:
            jobs[b, "fault", c.name] = (faultcases.scenario(c), {})
    return jobs


def _row(s: dict) -> dict:
    p = s["port"]
    return {
        "step_us_p50": s["loop"]["step_us_p50"], "step_us_p99": s["loop"]["step_us_p99"],
        "alloc_errors": s["loop"]["alloc_errors"], "resets": len(s["resets"]),
        "latched": [f["code"] for f in s["latched"]],
        "sessions": [x["reason"] for x in s["sessions"]],
        "service_ms_max": p["service_ms_max"], "flash_longest_op_ms": p["flash_longest_op_ms"],
        "feed_gap_ms_max": p["feed_gap_ms_max"], "watchdog_margin_ms": ("bitten" if any(r["cause"] == "watchdog" for r in s["resets"])
                               else WATCHDOG_MS - p["feed_gap_ms_max"]),
        "keepalive_gap_ms_max": p["keepalive_gap_ms_max"],
        "heater_keepalive_margin_ms": HEATER_KEEPALIVE_MS - p["keepalive_gap_ms_max"],
        "encoder_edges": p["encoder_edges"], "pulses_counted": p["pulses_counted"],
        "pulses_lost": p["encoder_edges"] - p["pulses_counted"],
        "pump_late_nl": p["pump_late_nl"], "boots": p["boots"]}


def run(jobs: int = 2) -> dict:
    """Every board's runs; the table goes to stderr."""
    todo = _jobs()
    with tempfile.TemporaryDirectory(prefix="steamer-bench-boards-") as tmp:
        cache = Path(tmp)
        for b in BOARDS:
            run_on_board(b, {"contract": 1, "duration_s": 1}, mpy_cache=cache)   # builds
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {k: pool.submit(run_on_board, k[0], sc, mpy_cache=cache, **kw)
                       for k, (sc, kw) in todo.items()}
            done = {k: f.result() for k, f in futures.items()}
    out: dict = {}
    for b in BOARDS:
        faults = {}
        for c in faultcases.CASES:
            lat = faultcases.latency_ms(c, done[b, "fault", c.name])
            faults[c.name] = {"latency_ms": lat, "limit_ms": c.limit_ms,
                              "ok": lat is not None and lat <= c.limit_ms}
        out[b] = {"nominal_typical_flash": _row(done[b, "typical"]),
                  "nominal_worst_flash_%ds" % _WORST_S: _row(done[b, "worst"]),
                  "dose_1ul_min": _row(done[b, "1ul_min"]),
                  "faults_ok": sum(f["ok"] for f in faults.values()),
                  "faults": faults}
    print_table(out, sys.stderr)
    return out


_COLUMNS = [("step_us_p50", "step p50 us"), ("step_us_p99", "p99 us"),
            ("alloc_errors", "alloc err"), ("resets", "resets"),
            ("service_ms_max", "service max ms"), ("flash_longest_op_ms", "flash op ms"),
            ("watchdog_margin_ms", "wdt margin ms"), ("heater_keepalive_margin_ms", "heater ka margin ms"),
            ("pulses_lost", "pulses lost"), ("encoder_edges", "of edges"),
            ("pump_late_nl", "pump late nl")]


def print_table(out: dict, stream) -> None:
    head = ["board", "run"] + [t for _, t in _COLUMNS]
    rows = []
    for b, parts in out.items():
        for run_name, row in parts.items():
            if isinstance(row, dict) and "step_us_p50" in row:
                rows.append([b, run_name] + [str(row[k]) for k, _ in _COLUMNS])
                if row["latched"]:
                    rows[-1][1] += " (latched %s)" % ",".join(row["latched"])
        rows.append([b, "fault cases", "%d of %d within their limits" % (
            parts["faults_ok"], len(parts["faults"]))] + [""] * (len(_COLUMNS) - 1))
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    for r in [head] + rows:
        stream.write(" | ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n")
    stream.write("Frozen builds: tests/boards/test_frozen_constants.py finds no hot-path "
                 "constant a frozen build keeps as an mpz (so 0 alloc errors frozen too; "
                 "the unix port cannot freeze, so that figure is the check's, not a run's).\n")
