"""`steamer dev bench`: the figures behind the firmware's goals, as one JSON object.

Control loop and simulator: step time on the unix port, allocation errors, realtime
factor, heat-up against the physical limit, overshoot, steady error, dose error, each
fault's detection latency, and false trips over randomized nominal sessions; the
protocol's costs; BLE log-sync throughput, reconnects and heap; the dosing limits
against random event sequences. Medians over repeated runs: the machines are shared
and noisy. --parts picks parts; --out also writes the JSON to a file (checked before
anything runs).
"""
from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import time
from pathlib import Path

from steamer_tools import faultcases, nominal
from steamer_tools.paths import ROOT
from steamer_tools.sim import SimError, run_many, run_scenario

DEMO = ROOT / "scenarios" / "demo.json"


def _say(text: str) -> None:
    sys.stderr.write(f"bench: {text}\n")
    sys.stderr.flush()


def control_figures(repeats: int = 5) -> dict:
    """The nominal plant's session (scenarios/demo.json), run `repeats` times."""
    runs = []
    walls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        runs.append(run_scenario(str(DEMO), None))
        walls.append(time.perf_counter() - t0)
    first = runs[0]
    m = first["metrics"]
    s = first["sessions"][0]
    expected_ul = s["session_ul"]
    return {
        "scenario": str(DEMO.relative_to(ROOT)),
        "step_us_p50": statistics.median(r["loop"]["step_us_p50"] for r in runs),
        "step_us_p99": statistics.median(r["loop"]["step_us_p99"] for r in runs),
        "step_us_max": max(r["loop"]["step_us_max"] for r in runs),
        "steps": first["loop"]["steps"],
        "alloc_errors": sum(r["loop"]["alloc_errors"] for r in runs),
        "sim_wall_s_median": statistics.median(r["wall_s"] for r in runs),
        "realtime_factor_median": statistics.median(r["realtime_factor"] for r in runs),
        "command_wall_s_median": round(statistics.median(walls), 3),
        "ready_ms": m["ready_ms"],
        "ready_limit_ms": m["ready_limit_ms"],
        "ready_ratio": m["ready_ratio"],
        "overshoot_c": m["overshoot_c"],
        "steady_err_c": m["steady_err_c"],
        "steady_err_max_c": m["steady_err_max_c"],
        "session_end": s["reason"],
        "session_ul": s["session_ul"],
        "plant_pumped_ul": s["plant_pumped_ul"],
        "dose_err_pct": round(100.0 * (s["plant_pumped_ul"] - expected_ul) / expected_ul, 3),
    }


def fault_latencies() -> dict:
    cases = faultcases.CASES
    summaries = run_many([faultcases.scenario(c) for c in cases])
    out = {}
    for case, summary in zip(cases, summaries):
        lat = faultcases.latency_ms(case, summary)
        row = {"latency_ms": lat, "limit_ms": case.limit_ms,
               "ok": lat is not None and lat <= case.limit_ms,
               "latched": [f["code"] for f in summary["latched"]]}
        for f in summary["faults"]:
            if f.get("heater_off_ms") is not None:
                row["heater_off_ms"] = f["heater_off_ms"] - f["injected_ms"]
        out[case.name] = row
    return out


def false_trips(sessions: int, first_seed: int = 0) -> dict:
    scenarios = [nominal.nominal_scenario(first_seed + i) for i in range(sessions)]
    summaries = run_many(scenarios)
    trips = []
    overshoots = []
    for i, summary in enumerate(summaries):
        problems = nominal.false_trips(summary)
        if problems:
            trips.append({"seed": first_seed + i, "problems": problems})
        if summary["metrics"]["overshoot_c"] is not None:
            overshoots.append(summary["metrics"]["overshoot_c"])
    overshoots.sort()
    return {
        "sessions": sessions,
        "false_trips": len(trips),
        "trips": trips[:20],
        "alloc_errors": sum(s["loop"]["alloc_errors"] for s in summaries),
        "overshoot_c_p50": round(overshoots[len(overshoots) // 2], 3) if overshoots else None,
        "overshoot_c_p95": round(overshoots[int(len(overshoots) * 0.95)], 3) if overshoots else None,
        "virtual_s": round(sum(s["duration_s"] for s in summaries)),
        "sim_wall_s": round(sum(s["wall_s"] for s in summaries), 1),
        "stopped_in_preheat": stopped_in_preheat_trips(sessions, first_seed),
    }


def stopped_in_preheat_trips(sessions: int, first_seed: int = 0) -> dict:
    """Users who stop during the preheat, with 16-300 ml of water: no trip either."""
    summaries = run_many([nominal.stopped_in_preheat_scenario(first_seed + i)
                          for i in range(sessions)])
    trips = [{"seed": first_seed + i, "problems": p}
             for i, p in enumerate(map(nominal.false_trips, summaries)) if p]
    return {"sessions": sessions, "false_trips": len(trips), "trips": trips[:20]}


PARTS = ("control", "faults", "nominal", "protocol", "ble", "limits")


def run_bench(sessions: int, repeats: int, parts: tuple[str, ...] = PARTS,
              limits_sequences: int = 100_000) -> dict:
    result: dict = {"bench": "steamer", "version": 1}
    if "control" in parts:
        _say(f"control loop: nominal plant, {repeats} runs")
        result["control"] = control_figures(repeats)
    if "faults" in parts:
        _say(f"fault latencies: {len(faultcases.CASES)} cases")
        result["faults"] = fault_latencies()
    if "nominal" in parts:
        _say(f"false trips: {sessions} randomized nominal sessions")
        t0 = time.perf_counter()
        result["nominal"] = false_trips(sessions)
        result["nominal"]["wall_s"] = round(time.perf_counter() - t0, 1)
    # The protocol's and the BLE link's own benchmarks (the link's takes ~10 minutes).
    for name in ("protocol", "ble"):
        if name in parts:
            _say(f"{name} (steamer_tools.bench_{name})")
            result[name] = importlib.import_module(f"steamer_tools.bench_{name}").run()
    # The dosing limits against random sequences of events (issue 4), on 2 processes.
    if "limits" in parts:
        _say(f"limits: {limits_sequences} sequences (steamer_tools.bench_limits)")
        from steamer_tools import bench_limits
        result["limits"] = bench_limits.run(limits_sequences)
    return result


def check_writable(path: Path) -> None:
    """Raises OSError (naming `path`) unless `path` can be written: an existing file that
    may be opened for writing, or a new one in an existing folder. Leaves no file behind."""
    if path.is_dir():
        raise IsADirectoryError(21, "is a folder", str(path))
    if path.exists():
        with open(path, "r+b"):
            return
    with open(path, "xb"):
        pass
    path.unlink()


def _cmd(args: argparse.Namespace) -> int:
    if args.out:
        # Before a run of many minutes, not after it.
        try:
            check_writable(Path(args.out))
        except OSError as e:
            print(f"steamer dev bench: --out {e.filename or args.out}: {e.strerror or e}",
                  file=sys.stderr)
            return 1
    try:
        parts = tuple(p for p in args.parts.split(",") if p)
        unknown = [p for p in parts if p not in PARTS]
        if unknown:
            print(f"steamer dev bench: --parts: unknown part {unknown[0]!r} "
                  f"(choose from {', '.join(PARTS)})", file=sys.stderr)
            return 2
        result = run_bench(args.sessions, args.repeats, parts, args.limits_sequences)
    except SimError as e:
        print(f"steamer dev bench: {e}", file=sys.stderr)
        for line in e.stderr_tail:
            print(f"  {line}", file=sys.stderr)
        return 1
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        try:
            Path(args.out).write_text(text + "\n", encoding="utf-8")
        except OSError as e:
            print(f"steamer dev bench: --out {args.out}: {e.strerror or e}", file=sys.stderr)
            return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="measure the firmware's goals and print them as one JSON object",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Examples:\n  steamer dev bench --out out/bench.json\n"
               "  steamer dev bench --parts control,faults --sessions 50 --repeats 1")
    p.add_argument("--sessions", type=int, default=1000, metavar="N",
                   help="randomized nominal sessions for the false-trip count (default 1000)")
    p.add_argument("--repeats", type=int, default=5, metavar="N",
                   help="runs of the nominal session to take medians over (default 5)")
    p.add_argument("--limits-sequences", type=int, default=100_000, metavar="N",
                   help="random event sequences for the limits part (default 100000)")
    p.add_argument("--parts", default=",".join(PARTS), metavar="LIST",
                   help="comma-separated parts to run (default: all of %s)" % ",".join(PARTS))
    p.add_argument("-o", "--out", metavar="FILE", help="also write the JSON to FILE")
    p.set_defaults(func=_cmd)
