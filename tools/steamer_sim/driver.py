"""`steamer sim run`, `sim serve`, `sim air` and the events a running steamer takes (`sim
press/insert/remove/refill/fault`): the firmware on the MicroPython unix port, wired to
the plant model by boards/sim/simrun.py, driven from a validated scenario.

Library use (tests, the benchmark)::

    from steamer_sim.driver import run_scenario, run_many
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
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Sequence

from steamer_dev.paths import BOARDS, SIM_HEAP, micropython_env, micropython_exe
from steamer_sim.scenario import ScenarioError, load_scenario
from steamer_sim.signing import sign_for_sim

# Tests point this at a stand-in runner; nobody else should need it.
SIMRUN_ENV = "STEAMER_SIMRUN"
# Where `sim serve`'s steamer finds the simulated air (steamer_sim.air.ENV).
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
    trust = None
    if args.trust:
        from steamer_mfg.trustkey import MfgError, public_key_from
        try:
            trust = public_key_from(pub=args.trust)
        except MfgError as e:
            return _fail("serve", str(e).replace("--pub", "--trust", 1), 2)
    from steamer_sim.air import AirError
    try:
        air = ensure_air()
    except AirError as e:
        return _fail("serve", str(e), 1)
    except OSError as e:
        return _fail("serve", f"cannot start a simulated air: {e.strerror or e}", 1)
    # So that clients can be pointed at it ($STEAMER_AIR may name another air).
    print(f"steamer sim serve: {args.name} on the simulated air at {air} (clients: "
          f"{AIR_ENV}={air} steamer scan --sim)", file=sys.stderr, flush=True)
    try:
        # The runner's stdout (ending with the summary) goes through as it comes.
        # The runner finds the air in its environment (boards/sim/simrun.py).
        os.environ[AIR_ENV] = air
        run_scenario(scenario, None, progress=True, live_stdout=True, trust=trust,
                     extra_args=["--speed", repr(args.speed), "--name", args.name])
    except SimError as e:
        return _fail("serve", str(e), 1, e.stderr_tail)
    except FileNotFoundError as e:
        return _fail("serve", str(e), 1)
    return 0


# An air `sim serve` started goes once no steamer and no client has used it this long.
AIR_IDLE_EXIT_S = 600.0
_AIR_START_S = 10.0


def ensure_air() -> str:
    """The simulated air a served steamer joins: $STEAMER_AIR when set (AirError when
    it is malformed or nothing answers there), else this user's own
    (steamer_sim.air.default_address), started as its own process (`steamer sim air`)
    when nothing answers there yet, so that it outlives this serve."""
    from steamer_sim.air import AirError, answers, checked_air, default_address, unreachable
    addr = os.environ.get(AIR_ENV)
    if addr:
        checked_air(addr)
        try:
            from steamer_sim.air import connect_socket
            connect_socket(addr).close()
            return addr
        except OSError as e:
            raise AirError(f"{unreachable(addr, e)}: start one (`steamer sim air "
                              f"--listen {addr}`), or unset {AIR_ENV} and this starts your "
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


def _air(args: argparse.Namespace) -> int:
    from steamer_sim.air import serve_forever
    try:
        return serve_forever(args)
    except OSError as e:
        return _fail("air", str(e.strerror and f"{e.strerror}: {e.filename}" or e), 1)


# ---- events for a running steamer (through the air it is on) --------------------------

def _event_from_args(args: argparse.Namespace) -> dict:
    """The scenario event (without t_s) the command stands for."""
    do = args.event
    if do == "press_button":
        return {"do": do, "ms": args.ms} if args.ms is not None else {"do": do}
    if do == "refill_water":
        return {"do": do, "ml": args.ml}
    if do == "fault":
        return {"do": "clear_fault" if args.clear else "fault", "fault": args.kind}
    if do == "insert_podlet":
        if args.image:
            # The chip's bytes as they are (a bad one is the steamer's to refuse).
            return {"do": do, "podlet": _image_podlet(args.image)}
        return {"do": do, "podlet": _podlet_arg(args.podlet)}
    return {"do": do}


def _podlet_arg(text: str) -> dict:
    if text.lstrip().startswith("{"):
        raw = text
    else:
        try:
            raw = Path(text).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ScenarioError("--podlet", f"cannot read '{text}': "
                                f"{getattr(e, 'strerror', None) or e}") from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise ScenarioError("--podlet", f"not valid JSON (line {e.lineno} column {e.colno}: "
                            f"{e.msg})") from None


def _image_podlet(path: str) -> dict:
    """An ID-chip image file (`steamer mfg podlet-image`, binary or --hex) as the podlet
    the sim board's chip presents."""
    from podproto import podlet
    from steamer_mfg.images import as_bytes
    try:
        image = as_bytes(Path(path).read_bytes())
    except OSError as e:
        raise ScenarioError("--image", f"cannot read '{path}': {e.strerror or e}") from None
    if len(image) != podlet.IMAGE_LEN:
        raise ScenarioError("--image", f"'{path}' holds {len(image)} bytes, not a "
                            f"{podlet.IMAGE_LEN}-byte ID-chip image (steamer mfg podlet-image)")
    return {"image_hex": image.hex()}


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


def _inject(args: argparse.Namespace) -> int:
    command = args.command
    from steamer_sim.air import AirError, SimEventError, air_address, checked_air, send_sim_event
    from steamer_sim.air import unreachable
    try:
        event = validated_event(_event_from_args(args))
    except ScenarioError as e:
        return _fail(command, str(e), 2)
    try:
        addr = checked_air(air_address())
        send_sim_event(addr, args.name, event)
    except AirError as e:
        return _fail(command, str(e), 1)
    except SimEventError as e:
        import difflib
        close = difflib.get_close_matches(args.name, e.names, n=1)
        hint = (f" (did you mean '{close[0]}'?)" if close else
                f" (on it: {', '.join(e.names)})" if e.names else
                " (start one with `steamer sim serve`)")
        return _fail(command, f"{e}{hint}", 1)
    except OSError as e:
        return _fail(command, f"{unreachable(addr, e)}: start a steamer with `steamer "
                              f"sim serve`, or set {AIR_ENV} to the address it printed", 1)
    return 0


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
                    "interrupted (Ctrl-C). Without --scenario the steamer sits idle for a day; "
                    "`steamer sim press/insert/remove/refill/fault NAME` act on it while it "
                    "runs. It joins the simulated air at $STEAMER_AIR, else your own "
                    "(started as its own process, `steamer sim air`, when none runs: it "
                    "outlives this serve and goes after 10 idle minutes).",
        epilog="Examples:\n"
               "  steamer sim serve --name demo &\n"
               "  steamer sim press demo --ms 15000 && steamer pair demo --sim\n"
               "  steamer sim serve --name bench-steamer --scenario scenarios/demo.json --speed 10\n"
               "  steamer sim serve --name factory --trust mfg.pub   # trusts your key, not the development one",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--name", default="steamer-sim", help="advertised name (default: %(default)s)")
    serve.add_argument("--scenario", metavar="FILE", help="scenario to play (default: idle)")
    serve.add_argument("--speed", type=float, default=1.0, metavar="X",
                       help="times faster than real time (default: %(default)s)")
    serve.add_argument("--trust", metavar="PUBKEY_FILE",
                       help="provision this manufacturer public key (64 hex digits as "
                            "`steamer mfg pubkey` prints, or a file holding them) instead "
                            "of the development key: the scenario's own signed profiles "
                            "and podlets are then refused")
    serve.set_defaults(func=_serve)

    air = subparsers.add_parser(
        "air", help="run the simulated BLE air that served steamers and clients meet on",
        description="Run the simulated BLE air in the foreground. `steamer sim serve` "
                    "starts one on its own when none answers, so this is needed only for "
                    "another address or link parameters. By default it listens on your own "
                    "socket ($XDG_RUNTIME_DIR/steamer/air.sock, else steamer-UID in the "
                    "temp folder, mode 0700): other users' steamers never show up there.",
        epilog="Example: steamer sim air --listen 127.0.0.1:47474 --interval-ms 7.5",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    from steamer_sim.air import add_arguments
    add_arguments(air)
    air.set_defaults(func=_air)

    def event_command(name: str, do: str, help_text: str, example: str) -> argparse.ArgumentParser:
        p = subparsers.add_parser(
            name, help=help_text,
            description=f"{help_text[0].upper()}{help_text[1:]}: the scenario event "
                        f"{do} at the steamer's next control period, through the simulated "
                        f"air it is on ($STEAMER_AIR, else your own).",
            epilog=f"Example: {example}", formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("name", metavar="NAME", help="the served steamer's name (sim serve --name)")
        p.set_defaults(func=_inject, event=do)
        return p

    p = event_command("press", "press_button", "hold a served steamer's button",
                      "steamer sim press demo --ms 15000   # 3 s or more opens pairing")
    p.add_argument("--ms", type=int, metavar="N", help="how long, 1..600000 ms (default 100)")
    p = event_command("insert", "insert_podlet", "insert a podlet into a served steamer",
                      "steamer sim insert demo --image podlet-0000c0ffee07.bin")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--podlet", metavar="JSON|FILE",
                       help="a scenario PODLET, signed as its `sign` says with the "
                            "development key")
    which.add_argument("--image", metavar="FILE",
                       help="an ID-chip image as `steamer mfg podlet-image` writes it")
    event_command("remove", "remove_podlet", "pull the podlet out of a served steamer",
                  "steamer sim remove demo")
    p = event_command("refill", "refill_water", "refill a served steamer's reservoir",
                      "steamer sim refill demo --ml 150")
    p.add_argument("--ml", type=float, required=True, metavar="N", help="water to add, 0..300 ml")
    p = event_command("fault", "fault", "inject a fault into a served steamer (or clear it)",
                      "steamer sim fault demo water_empty")
    p.add_argument("kind", metavar="KIND", help="a scenario fault, e.g. boiler_ntc_open")
    p.add_argument("--clear", action="store_true", help="the injected fault goes away")
