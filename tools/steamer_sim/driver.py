"""The simulator's library: runs the firmware on the MicroPython unix port, wired to the
plant model by boards/sim/simrun.py, from a validated scenario (run_scenario, run_many);
starts or finds the simulated air a served steamer joins (ensure_air); checks and signs
an event for a running steamer (validated_event). Its command-line face, `steamer sim`,
is steamer_sim.cli; the benchmark and the tests use this directly::

    from steamer_sim.driver import run_scenario, run_many
    summary = run_scenario({"duration_s": 60}, trace=None)
    summaries = run_many([nominal_scenario(s) for s in range(20)], jobs=4)
"""
from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Sequence

from steamer_dev.paths import BOARDS, SIM_HEAP, micropython_env, micropython_exe
from steamer_sim.air import ENV
from steamer_sim.scenario import ScenarioError, load_scenario
from steamer_sim.signing import sign_for_sim

# Tests point this at a stand-in runner; nobody else should need it.
SIMRUN_ENV = "STEAMER_SIMRUN"

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
                 extra_args: Sequence[str] = (), live_stdout: bool = False,
                 trust: bytes | None = None) -> dict:
    """Runs `scenario` (a dict, raw or normalized, or anything else load_scenario takes;
    validated here either way) to its end and returns the runner's summary. `trace` is a
    JSON-lines path or None.

    With `progress`, the runner's stderr goes through to ours line by line as it comes;
    without it the runner is told to be quiet. `trust` is the manufacturer public key
    the steamer is provisioned with (default: the development key, steamer_mfg.devkeys,
    which signs the scenario's own profiles and podlets). Raises ScenarioError for an invalid
    scenario (before anything runs) and SimError when the simulator fails.
    """
    normalized = load_scenario(scenario)
    with tempfile.TemporaryDirectory(prefix="steamer-sim-") as tmp:
        scenario_path = Path(tmp) / "scenario.json"
        # The runner gets the scenario's profiles and podlets as signed bytes (dev keys).
        signed = sign_for_sim(normalized)
        if trust is not None:
            signed["mfg_public_hex"] = trust.hex()
        scenario_path.write_text(runner_text(signed), encoding="utf-8")
        args = [micropython_exe(), "-X", f"heapsize={SIM_HEAP}", simrun_path(),
                str(scenario_path), os.path.abspath(trace) if trace else "", *extra_args]
        if not progress:
            args.append("--quiet")
        return run_runner(args, progress, live_stdout)


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


def run_runner(args: list[str], progress: bool, live_stdout: bool,
               env: dict[str, str] | None = None, cwd: Path | None = None) -> dict:
    """Runs a runner's micropython command line (simrun.py's, or portrun.py's with `env`)
    to its summary, the last stdout line: with `progress` its stderr goes through to ours,
    with `live_stdout` its stdout too. Raises SimError with the output's tail."""
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env or micropython_env("sim"),
                            cwd=cwd, text=True, encoding="utf-8", errors="replace", bufsize=1)
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


# An air `sim serve` started goes once no steamer and no client has used it this long.
AIR_IDLE_EXIT_S = 600.0
_AIR_START_S = 10.0


def ensure_air() -> str:
    """The simulated air a served steamer joins: $STEAMER_AIR when set (AirError when
    it is malformed or nothing answers there), else this user's own
    (steamer_sim.air.default_address), started as its own process (`steamer sim air`)
    when nothing answers there yet, so that it outlives this serve."""
    from steamer_sim.air import AirError, answers, checked_air, default_address, unreachable
    addr = os.environ.get(ENV)
    if addr:
        checked_air(addr)
        try:
            from steamer_sim.air import connect_socket
            connect_socket(addr).close()
            return addr
        except OSError as e:
            raise AirError(f"{unreachable(addr, e)}: start one (`steamer sim air "
                              f"--listen {addr}`), or unset {ENV} and this starts your "
                              "own") from None
    addr = default_address()
    if answers(addr):
        return addr
    from steamer_sim.air import private_folder
    log_path = Path(private_folder(addr)) / "air.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "steamer.cli.main", "sim", "air",
                                 "--listen", addr, "--idle-exit-s", repr(AIR_IDLE_EXIT_S)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=log, cwd="/", start_new_session=True)
    deadline = time.monotonic() + _AIR_START_S
    while time.monotonic() < deadline:
        if answers(addr):
            return addr
        code = proc.poll()
        if code is not None and code != 3:    # 3: another one won the race: wait for it
            break
        time.sleep(0.05)
    tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
    raise AirError(f"the simulated air did not start at {addr} ({tail[0]}; its log: "
                   f"{log_path})")


# The option of each event field, for the one-line errors.
_OPTIONS = {"ms": "--ms", "ml": "--ml", "fault": "KIND", "podlet": "--podlet"}


def validated_event(event: dict) -> dict:
    """`event` (a scenario event without t_s) checked by the scenario's own validator
    and signed for the sim as a scenario's would be; ScenarioError names the option.
    A podlet given as an image (`image_hex` alone) is passed as it is."""
    if "image_hex" in event.get("podlet", {}):
        return dict(event, t_s=0)
    try:
        scenario = load_scenario({"duration_s": 1, "events": [dict(event, t_s=0)]})
    except ScenarioError as e:
        key, _, rest = e.field.replace("events[0].", "", 1).partition(".")
        option = _OPTIONS.get(key, key)
        raise ScenarioError(f"{option} {rest}" if rest else option, e.message) from None
    (signed,) = sign_for_sim(scenario)["events"]
    return signed
