"""`steamer sim run` and `steamer sim serve`: the firmware on the MicroPython unix port,
wired to the plant model by boards/sim/simrun.py, driven from a validated scenario.

Library use (tests, the benchmark)::

    from steamer_tools.sim import run_scenario, run_many
    summary = run_scenario({"duration_s": 60}, trace=None)
    summaries = run_many([nominal_scenario(s) for s in range(20)], jobs=4)
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Sequence

from steamer_tools.paths import BOARDS, SIM_HEAP, micropython_env, micropython_exe
from steamer_tools.scenario import ScenarioError, load_scenario
from steamer_tools.signing_sim import sign_for_sim

# Tests point this at a stand-in runner; nobody else should need it.
SIMRUN_ENV = "STEAMER_SIMRUN"
# Where `sim serve`'s steamer finds the simulated air (steamer.ble.air.ENV).
AIR_ENV = "STEAMER_AIR"

IDLE_SCENARIO = {"contract": 1, "duration_s": 86400}

_TAIL_LINES = 15


class SimError(RuntimeError):
    """The simulator did not complete: the interpreter failed or printed no summary.
    `stderr_tail` holds its last lines of output, stdout lines other than the summary
    included (the unix port prints an uncaught exception there)."""

    def __init__(self, message: str, stderr_tail: Sequence[str] = ()):
        super().__init__(message)
        self.stderr_tail = list(stderr_tail)


def simrun_path() -> str:
    return os.environ.get(SIMRUN_ENV) or str(BOARDS / "sim" / "simrun.py")


def run_scenario(scenario: dict | str | Path, trace: str | None, *, progress: bool = False,
                 extra_args: Sequence[str] = (), live_stdout: bool = False) -> dict:
    """Runs `scenario` (a dict, raw or normalized, or anything else load_scenario takes;
    validated here either way) to its end and returns the runner's summary. `trace` is a
    JSON-lines path or None.

    With `progress`, the runner's stderr goes through to ours line by line as it comes;
    without it the runner is told to be quiet. Raises ScenarioError for an invalid
    scenario (before anything runs) and SimError when the simulator fails.
    """
    normalized = load_scenario(scenario)
    with tempfile.TemporaryDirectory(prefix="steamer-sim-") as tmp:
        scenario_path = Path(tmp) / "scenario.json"
        # The runner gets the scenario's profiles and podlets as signed bytes (dev keys).
        scenario_path.write_text(runner_text(sign_for_sim(normalized)), encoding="utf-8")
        args = [micropython_exe(), "-X", f"heapsize={SIM_HEAP}", simrun_path(),
                str(scenario_path), os.path.abspath(trace) if trace else "", *extra_args]
        if not progress:
            args.append("--quiet")
        return _run_runner(args, progress, live_stdout)


# The runner's file ends its first line so: the events follow, one per line.
EVENTS_OPEN = ', "events": ['


def runner_text(scenario: dict) -> str:
    """The runner's scenario file: one JSON object, its events last, one per line, so
    that the runner reads each event as the run reaches it (boards/sim/simrun.py) and
    never holds them all in the simulator's heap."""
    head = {k: v for k, v in scenario.items() if k != "events"}
    events = scenario["events"]
    lines = [json.dumps(head)[:-1] + EVENTS_OPEN]
    lines += [json.dumps(ev) + ("," if i + 1 < len(events) else "")
              for i, ev in enumerate(events)]
    lines.append("]}")
    return "\n".join(lines) + "\n"


def run_many(scenarios: list[dict], jobs: int | None = None) -> list[dict]:
    """Summaries of `scenarios`, in their order, run `jobs` at a time (default: one per
    CPU). Each run is its own micropython process, so threads are enough to keep `jobs`
    of them busy. The first failure is raised as SimError naming the scenario's index."""
    jobs = jobs or os.cpu_count() or 1

    def one(i: int) -> dict:
        try:
            return run_scenario(scenarios[i], None)
        except ScenarioError as e:
            raise ScenarioError(f"scenarios[{i}].{e.field}", e.message) from None
        except SimError as e:
            raise SimError(f"scenarios[{i}]: {e}", e.stderr_tail) from None

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(one, i) for i in range(len(scenarios))]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _run_runner(args: list[str], progress: bool, live_stdout: bool) -> dict:
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=micropython_env("sim"),
                            text=True, encoding="utf-8", errors="replace", bufsize=1)
    relay = threading.Thread(target=_relay, args=(proc.stderr, tail, sys.stderr if progress else None),
                             daemon=True)
    relay.start()
    last = None
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if live_stdout:
                sys.stdout.write(line)
                sys.stdout.flush()
            if not line.strip():
                continue
            if last is not None and not live_stdout:
                # Only the summary may reach our stdout: a stray print is progress.
                if progress:
                    sys.stderr.write(last)
                tail.append(last.rstrip("\n"))
            last = line
        code = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        relay.join(timeout=5)
    summary = None
    if code == 0 and last is not None:
        try:
            summary = json.loads(last)
        except json.JSONDecodeError:
            pass
    if isinstance(summary, dict):
        return _in_contract_order(summary)
    if last is not None and not live_stdout:
        # Not a summary after all: the unix port prints an uncaught exception on stdout.
        if progress:
            sys.stderr.write(last)
        tail.append(last.rstrip("\n"))
    if code != 0:
        raise SimError(f"the simulator failed: micropython exited with code {code}"
                       f"{_signal_name(code)}", tail)
    got = "nothing" if not last else f"{last.strip()[:80]!r}"
    raise SimError(f"the simulator printed no summary (last stdout line: {got})", tail)


# The order of sim.md's summary; MicroPython's dicts do not keep insertion order.
_SUMMARY_ORDER = ("contract", "duration_s", "seed", "wall_s", "realtime_factor", "plant",
                  "loop", "sessions", "faults", "latched", "resets", "metrics")
_LOOP_ORDER = ("steps", "period_ms", "alloc_errors", "step_us_p50", "step_us_p99",
               "step_us_max", "crashes")


def _in_contract_order(summary: dict) -> dict:
    def ordered(d: dict, order: Sequence[str]) -> dict:
        return {**{k: d[k] for k in order if k in d}, **d}
    out = ordered(summary, _SUMMARY_ORDER)
    if isinstance(out.get("loop"), dict):
        out["loop"] = ordered(out["loop"], _LOOP_ORDER)
    return out


def _relay(stream: IO[str], tail: collections.deque, out: IO[str] | None) -> None:
    for line in stream:
        tail.append(line.rstrip("\n"))
        if out is not None:
            out.write(line)
            out.flush()


def _signal_name(code: int) -> str:
    if code >= 0:
        return ""
    import signal
    try:
        return f" ({signal.Signals(-code).name})"
    except ValueError:
        return ""


# ---- the command line ----------------------------------------------------------------------

def _fail(command: str, message: str, code: int, tail: Sequence[str] = ()) -> int:
    print(f"steamer sim {command}: {message}", file=sys.stderr)
    if tail:
        print("last lines of the simulator's output:", file=sys.stderr)
        for line in tail:
            print(f"  {line}", file=sys.stderr)
    return code


def _run(args: argparse.Namespace) -> int:
    try:
        scenario = load_scenario(Path(args.scenario), seed_override=args.seed)
    except ScenarioError as e:
        return _fail("run", str(e), 2)
    if args.trace and not Path(args.trace).resolve().parent.is_dir():
        return _fail("run", f"--trace: directory '{Path(args.trace).parent}' does not exist", 2)
    try:
        summary = run_scenario(scenario, args.trace, progress=not args.quiet)
    except SimError as e:
        return _fail("run", str(e), 1, e.stderr_tail)
    except FileNotFoundError as e:
        return _fail("run", str(e), 1)
    print(json.dumps(summary))
    return 0


def _serve(args: argparse.Namespace) -> int:
    try:
        if args.scenario:
            scenario = load_scenario(Path(args.scenario))
        else:
            scenario = load_scenario(IDLE_SCENARIO)
    except ScenarioError as e:
        return _fail("serve", str(e), 2)
    if not args.speed > 0:
        return _fail("serve", f"--speed: {args.speed} must be greater than 0", 2)
    from steamer.devices import DeviceError
    try:
        air = _ensure_air()
    except DeviceError as e:
        return _fail("serve", str(e), 1)
    except OSError as e:
        return _fail("serve", f"cannot start a simulated air: {e.strerror or e}", 1)
    # So that clients can be pointed at it (the default port may have been taken).
    print(f"steamer sim serve: {args.name} on the simulated air at {air} (clients: "
          f"{AIR_ENV}={air} steamer scan --sim)", file=sys.stderr, flush=True)
    try:
        # The runner's stdout (ending with the summary) goes through as it comes.
        # The runner finds the air in its environment (boards/sim/simrun.py).
        os.environ[AIR_ENV] = air
        run_scenario(scenario, None, progress=True, live_stdout=True,
                     extra_args=["--speed", repr(args.speed), "--name", args.name])
    except SimError as e:
        return _fail("serve", str(e), 1, e.stderr_tail)
    except FileNotFoundError as e:
        return _fail("serve", str(e), 1)
    return 0


def _ensure_air() -> str:
    """The simulated air the served steamer joins: $STEAMER_AIR when set (DeviceError
    when it is not HOST:PORT or nothing answers there), else one on the default port,
    started in this process unless another `sim serve` already has it."""
    import socket

    from steamer.ble.air import DEFAULT_ADDR, Air
    from steamer.devices import DeviceError, air_unreachable, checked_air
    addr = os.environ.get(AIR_ENV)
    if addr:
        host, port = checked_air(addr).rsplit(":", 1)
        try:
            with socket.create_connection((host, int(port)), timeout=2):
                return addr
        except OSError as e:
            raise DeviceError(f"{air_unreachable(addr, e)}: start one (`python -m "
                              f"steamer.ble.air`), or unset {AIR_ENV} and this starts its "
                              "own") from None
    host, port = DEFAULT_ADDR.rsplit(":", 1)
    try:
        return Air().start_thread(host, int(port))
    except OSError:
        pass
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return DEFAULT_ADDR     # another `sim serve`'s air is listening there
    except OSError:
        return Air().start_thread(host, 0)   # the port is someone else's: any free one


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run", help="run a scenario in virtual time and print its summary",
        description="Run SCENARIO.json (docs: the simulator contract) in virtual time, as "
                    "fast as the machine allows, and print the summary as one JSON line on "
                    "stdout. Progress goes to stderr. Exit 0 when the run completed, 2 for "
                    "an invalid scenario, 1 when the simulator itself failed.",
        epilog="Example: steamer sim run scenarios/demo.json --trace out/trace.jsonl --seed 3",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("scenario", metavar="SCENARIO.json", help="the scenario file")
    run.add_argument("--trace", metavar="OUT.jsonl", help="write the trace (JSON lines) here")
    run.add_argument("--seed", type=int, metavar="N", help="use this seed instead of the scenario's")
    run.add_argument("--quiet", action="store_true", help="no progress on stderr")
    run.set_defaults(func=_run)

    serve = subparsers.add_parser(
        "serve", help="run one simulated steamer in real time for the app to connect to",
        description="Run one simulated steamer in real time (or --speed times faster), "
                    "reachable by the host app through the simulated BLE link, until "
                    "interrupted (Ctrl-C). Without --scenario the steamer sits idle for a day.",
        epilog="Example: steamer sim serve --name bench-steamer --scenario scenarios/demo.json --speed 10",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--name", default="steamer-sim", help="advertised name (default: %(default)s)")
    serve.add_argument("--scenario", metavar="FILE", help="scenario to play (default: idle)")
    serve.add_argument("--speed", type=float, default=1.0, metavar="X",
                       help="times faster than real time (default: %(default)s)")
    serve.set_defaults(func=_serve)
