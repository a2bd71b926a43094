"""`steamer sim`: the simulator's command-line face over steamer_sim.driver (run, serve),
steamer_sim.air (air, and the events a running steamer takes: press, insert, remove,
refill, fault) and steamer_sim.scenario. steamer.cli.main registers it (register());
every failure is one line "steamer sim COMMAND: ..." (steamer.terminal) and an exit
code: 0 done, 2 a wrong input, 1 the simulator or the air failed.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from steamer.terminal import BAD_INPUT, FAILED, command, fail
from steamer_sim.driver import (IDLE_SCENARIO, SimError, ensure_air, run_scenario,
                                validated_event)
from steamer_sim.scenario import ScenarioError, load_scenario
from steamer_sim.air import ENV


def _fail(command: str, message: str, code: int, tail: Sequence[str] = ()) -> int:
    """fail() for `steamer sim COMMAND`, then the simulator's last lines when any."""
    fail(f"sim {command}", message, code)
    if tail:
        print("last lines of the simulator's output:", file=sys.stderr)
        for line in tail:
            print(f"  {line}", file=sys.stderr)
    return code


@command("sim run")
def _run(args: argparse.Namespace) -> int:
    try:
        scenario = load_scenario(Path(args.scenario), seed_override=args.seed)
    except ScenarioError as e:
        return _fail("run", str(e), BAD_INPUT)
    if args.trace and not Path(args.trace).resolve().parent.is_dir():
        return _fail("run", f"--trace: directory '{Path(args.trace).parent}' does not exist",
                     BAD_INPUT)
    try:
        summary = run_scenario(scenario, args.trace, progress=not args.quiet)
    except SimError as e:
        return _fail("run", str(e), FAILED, e.stderr_tail)
    except FileNotFoundError as e:
        return _fail("run", str(e), FAILED)
    print(json.dumps(summary))
    return 0


@command("sim serve")
def _serve(args: argparse.Namespace) -> int:
    try:
        if args.scenario:
            scenario = load_scenario(Path(args.scenario))
        else:
            scenario = load_scenario(IDLE_SCENARIO)
    except ScenarioError as e:
        return _fail("serve", str(e), BAD_INPUT)
    if not args.speed > 0:
        return _fail("serve", f"--speed: {args.speed} must be greater than 0", BAD_INPUT)
    trust = None
    if args.trust:
        from steamer_mfg.trustkey import MfgError, public_key_from
        try:
            trust = public_key_from(pub=args.trust)
        except MfgError as e:
            return _fail("serve", str(e).replace("--pub", "--trust", 1), BAD_INPUT)
    from steamer_sim.air import AirError
    try:
        air = ensure_air()
    except AirError as e:
        return _fail("serve", str(e), FAILED)
    except OSError as e:
        return _fail("serve", f"cannot start a simulated air: {e.strerror or e}", FAILED)
    # So that clients can be pointed at it ($STEAMER_AIR may name another air).
    print(f"steamer sim serve: {args.name} on the simulated air at {air} (clients: "
          f"{ENV}={air} steamer scan --sim)", file=sys.stderr, flush=True)
    try:
        # The runner's stdout (ending with the summary) goes through as it comes.
        # The runner finds the air in its environment (boards/sim/simrun.py).
        os.environ[ENV] = air
        if args.board == "sim":
            run_scenario(scenario, None, progress=True, live_stdout=True, trust=trust,
                         extra_args=["--speed", repr(args.speed), "--name", args.name])
        else:
            from steamer_dev.build import BuildError
            from steamer_sim.portsim import serve_on_board
            try:
                serve_on_board(args.board, scenario, air=air, name=args.name,
                               speed=args.speed, trust=trust)
            except BuildError as e:
                return _fail("serve", f"building {args.board}'s code for the port models: {e}",
                             FAILED)
    except SimError as e:
        return _fail("serve", str(e), FAILED, e.stderr_tail)
    except FileNotFoundError as e:
        return _fail("serve", str(e), FAILED)
    return 0


@command("sim air")
def _air(args: argparse.Namespace) -> int:
    from steamer_sim.air import serve_forever
    try:
        return serve_forever(args)
    except OSError as e:
        return _fail("air", str(e.strerror and f"{e.strerror}: {e.filename}" or e), FAILED)


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


def _inject(args: argparse.Namespace) -> int:
    cmd = args.command
    from steamer_sim.air import AirError, SimEventError, air_address, checked_air, send_sim_event
    from steamer_sim.air import unreachable
    try:
        event = validated_event(_event_from_args(args))
    except ScenarioError as e:
        return _fail(cmd, str(e), BAD_INPUT)
    try:
        addr = checked_air(air_address())
        send_sim_event(addr, args.name, event)
    except AirError as e:
        return _fail(cmd, str(e), FAILED)
    except SimEventError as e:
        import difflib
        close = difflib.get_close_matches(args.name, e.names, n=1)
        hint = (f" (did you mean '{close[0]}'?)" if close else
                f" (on it: {', '.join(e.names)})" if e.names else
                " (start one with `steamer sim serve`)")
        return _fail(cmd, f"{e}{hint}", FAILED)
    except OSError as e:
        return _fail(cmd, f"{unreachable(addr, e)}: start a steamer with `steamer "
                          f"sim serve`, or set {ENV} to the address it printed", FAILED)
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
               "  steamer sim serve --name pico --board picow   # the Pico W's own board code\n"
               "  steamer sim serve --name factory --trust mfg.pub   # trusts your key, not the development one",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--name", default="steamer-sim", help="advertised name (default: %(default)s)")
    serve.add_argument("--scenario", metavar="FILE", help="scenario to play (default: idle)")
    serve.add_argument("--speed", type=float, default=1.0, metavar="X",
                       help="times faster than real time (default: %(default)s)")
    serve.add_argument("--board", choices=("sim", "picow", "esp32c3"), default="sim",
                       help="whose code runs: the sim board's (default), or a real board's "
                            "board.py and boards/common/realboard.py on the port models of "
                            "boards/portsim, its radio the port's (NimBLE on esp32c3, "
                            "BTstack on picow); its link timeouts run on its own clock, so "
                            "above --speed 4 an idle host is dropped before its keep-alive")
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
        p.set_defaults(func=command(f"sim {name}")(_inject), event=do)
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
