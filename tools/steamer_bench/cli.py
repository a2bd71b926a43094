"""`steamer dev bench`: the figures behind the firmware's goals, as one JSON object.

Control loop and simulator: step time on the unix port, allocation errors, realtime
factor, heat-up against the physical limit, overshoot, steady error, dose error, each
fault's detection latency, and false trips over randomized nominal sessions, also on
units the firmware's model is wrong about (with the error of the model they measure);
the protocol's costs; BLE log-sync throughput, reconnects and heap; the dosing limits
against random event sequences. Medians over repeated runs: the machines are shared
and noisy. --parts picks parts and each part has its size option; progress goes to
stderr. The JSON so far is written as each part ends (to --out, checked before anything
runs, else a partial file named on stderr), so an interrupted run keeps its parts.

A full run (`make bench`) takes over an hour on a 2-core machine (README says what
each part takes); `--parts`, `--sessions`, `--limits-sequences` and the `--ble-*`
options make quicker ones.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from steamer_harness import envelope
from steamer_harness import faultcases
from steamer_harness import nominal
from steamer_dev.paths import ROOT
from steamer.terminal import BAD_INPUT, FAILED, check_writable, fail, json_out
from steamer_sim.driver import SimError, run_many, run_scenario

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
        "envelope": control_envelope(),
    }


def control_envelope() -> dict:
    """Issue 15's table: start to first dose against the physical limit, overshoot and
    steady error, at each envelope value with the others nominal, the corners and the
    two model-error points (steamer_harness.envelope says which); printed on stderr."""
    points = envelope.points()
    summaries = run_many([envelope.scenario(p["plant"]) for p in points])
    rows = [envelope.row(p["name"], p["plant"], s) for p, s in zip(points, summaries)]
    for line in envelope.table(rows).splitlines():
        _say(line)
    return {"goals": {"ratio_max": envelope.RATIO_MAX,
                      "overshoot_max_c": envelope.OVERSHOOT_MAX_C,
                      "steady_err_max_c": envelope.STEADY_ERR_MAX_C},
            "all_ok": all(r["ok"] for r in rows),
            "step_us_p99_max": max(s["loop"]["step_us_p99"] for s in summaries),
            "rows": rows}


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


def units_figures(sessions: int) -> dict:
    """steamer_bench.units over `sessions` units, its model errors printed on stderr."""
    from steamer_bench import units
    r = units.run(sessions)
    _say(f"units: {r['false_trips']} false trips, {r['alloc_errors']} alloc errors over "
         f"{r['sessions']} units (hidden parameters +-{r['model_spread_pct']} %, element "
         f"+-{r['element_spread_pct']} %), {r['calibrated']} calibrated after one session")
    _say("model error |model - truth|, % | kept after one session p50 p95 max | "
         "defaults p50 p95 max")
    for key, e in r["model_error"].items():
        k, d = e["kept"], e["default"]
        if k["n"]:
            _say(f"  {key:<14} n={k['n']:<5} | {k['p50_pct']:6.2f} {k['p95_pct']:6.2f} "
                 f"{k['max_pct']:6.2f} | {d['p50_pct']:6.2f} {d['p95_pct']:6.2f} "
                 f"{d['max_pct']:6.2f}")
    return r


PARTS = ("control", "faults", "nominal", "units", "protocol", "ble", "limits", "boards")


@dataclass
class Sizes:
    """How much each part runs (the defaults are `make bench`'s)."""
    sessions: int = 1000            # nominal: randomized sessions (and as many stopped
    #                                 ones); units: as many on off-model units
    repeats: int = 5                # control: runs of the nominal session
    limits_sequences: int = 100_000
    ble_records: tuple[int, int] = (1500, 3300)     # log records synced at MTU 23, 247
    ble_sync_runs: int = 3
    ble_chaos_rounds: int = 1000
    ble_reconnects: int = 10


def _part(name: str, sizes: Sizes) -> tuple[str, Callable[[], dict]]:
    """What part `name` says it runs, and the function that runs it."""
    if name == "control":
        return f"nominal plant, {sizes.repeats} runs", lambda: control_figures(sizes.repeats)
    if name == "faults":
        return f"{len(faultcases.CASES)} fault cases", fault_latencies
    if name == "nominal":
        return (f"false trips over {sizes.sessions} randomized nominal sessions (and "
                f"{sizes.sessions} stopped in preheat)", lambda: false_trips(sizes.sessions))
    if name == "units":
        return (f"{sizes.sessions} randomized sessions on units off the firmware's model",
                lambda: units_figures(sizes.sessions))
    if name == "protocol":
        from steamer_bench import protocol as bench_protocol
        return "codec, signature and pairing costs", bench_protocol.run
    if name == "ble":
        from steamer_bench import ble as bench_ble
        return (f"log sync {sizes.ble_sync_runs} x {sizes.ble_records[0]} records at MTU 23 "
                f"and {sizes.ble_records[1]} at 247, {sizes.ble_reconnects} reconnects, "
                f"{sizes.ble_chaos_rounds} chaos rounds, heap",
                lambda: bench_ble.run(sizes.ble_chaos_rounds, sizes.ble_records,
                                      sync_runs=sizes.ble_sync_runs,
                                      reconnects=sizes.ble_reconnects))
    if name == "boards":
        from steamer_bench import boards as bench_boards
        return "the real boards' code on the port models", bench_boards.run
    from steamer_bench import limits as bench_limits
    return (f"{sizes.limits_sequences} random sequences",
            lambda: bench_limits.run(sizes.limits_sequences))


def run_bench(sizes: Sizes, parts: tuple[str, ...] = PARTS,
              on_part: Callable[[dict], None] | None = None) -> dict:
    """The figures of `parts`; on_part(result so far) after each part ends."""
    result: dict = {"bench": "steamer", "version": 1, "complete": False, "wall_s": {}}
    t_start = time.perf_counter()
    for k, name in enumerate(p for p in PARTS if p in parts):
        what, run = _part(name, sizes)
        _say(f"part {k + 1}/{len(parts)}: {name}: {what}")
        t0 = time.perf_counter()
        result[name] = run()
        result["wall_s"][name] = round(time.perf_counter() - t0, 1)
        _say(f"{name} done in {result['wall_s'][name]:.0f} s "
             f"({time.perf_counter() - t_start:.0f} s in all)")
        if on_part is not None:
            on_part(result)
    result["complete"] = True
    return result


def write_json(path: Path, result: dict) -> None:
    """Writes `result` to path whole (a new file renamed over the old)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _cmd(args: argparse.Namespace) -> int:
    if args.out:
        # Before a run of many minutes, not after it.
        try:
            check_writable(Path(args.out))
        except OSError as e:
            return fail("dev bench", f"--out {e.filename or args.out}: {e.strerror or e}")
    parts = tuple(p for p in args.parts.split(",") if p)
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        return fail("dev bench", f"--parts: unknown part {unknown[0]!r} "
                    f"(choose from {', '.join(PARTS)})", BAD_INPUT)
    sizes = Sizes(args.sessions, args.repeats, args.limits_sequences,
                  (args.ble_records[0], args.ble_records[-1]), args.ble_sync_runs,
                  args.ble_chaos_rounds, args.ble_reconnects)
    out = Path(args.out) if args.out else Path(tempfile.gettempdir()) / \
        f"steamer-bench-partial-{os.getpid()}.json"
    _say(f"each part's figures go to {out} as it ends")
    try:
        result = run_bench(sizes, parts, on_part=lambda r: write_json(out, r))
    except SimError as e:
        fail("dev bench", f"{e} ({_kept(out)})")
        for line in e.stderr_tail:
            print(f"  {line}", file=sys.stderr)
        return FAILED
    except OSError as e:
        return fail("dev bench", f"{out}: {e.strerror or e}")
    except KeyboardInterrupt:
        _say(f"interrupted ({_kept(out)})")
        raise
    try:
        write_json(out, result)
    except OSError as e:
        return fail("dev bench", f"--out {out}: {e.strerror or e}")
    json_out(result, indent=1, ensure_ascii=True)
    if not args.out:
        out.unlink(missing_ok=True)     # complete: stdout has it all
    return 0


def _kept(out: Path) -> str:
    return f"the parts done so far are in {out}" if out.exists() else "no part was done"


def _records(text: str) -> tuple[int, ...]:
    """argparse type of --ble-records: N (both MTUs) or N23,N247, each 1 or more."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not N or N,N") from None
    if not 1 <= len(values) <= 2 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: want N or N,N, each 1 or more")
    return values


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="measure the firmware's goals and print them as one JSON object",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Examples:\n  steamer dev bench --out out/bench.json\n"
               "  steamer dev bench --parts control,faults --sessions 50 --repeats 1")
    p.add_argument("--sessions", type=int, default=1000, metavar="N",
                   help="randomized nominal sessions for the false-trip count, and as many "
                        "off-model units for the units part (default 1000)")
    p.add_argument("--repeats", type=int, default=5, metavar="N",
                   help="runs of the nominal session to take medians over (default 5)")
    p.add_argument("--limits-sequences", type=int, default=100_000, metavar="N",
                   help="random event sequences for the limits part (default 100000)")
    p.add_argument("--ble-records", type=_records, default=(1500, 3300), metavar="N[,N247]",
                   help="log records per BLE sync, at MTU 23 and 247 (default 1500,3300; "
                        "3300 is about what the sim's flash holds unacknowledged)")
    p.add_argument("--ble-sync-runs", type=int, default=3, metavar="N",
                   help="BLE syncs per MTU to take medians over (default 3)")
    p.add_argument("--ble-chaos-rounds", type=int, default=1000, metavar="N",
                   help="rounds of cut syncs and pushes (default 1000)")
    p.add_argument("--ble-reconnects", type=int, default=10, metavar="N",
                   help="reconnects timed to a resumed sync (default 10)")
    p.add_argument("--parts", default=",".join(PARTS), metavar="LIST",
                   help="comma-separated parts to run (default: all of %s)" % ",".join(PARTS))
    p.add_argument("-o", "--out", metavar="FILE", help="also write the JSON to FILE")
    p.set_defaults(func=_cmd)
    from steamer_bench.app import register as register_app     # steamer dev bench-app
    register_app(sub)
