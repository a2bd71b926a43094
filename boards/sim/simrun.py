"""Runs one scenario: the real firmware (fw.main.run) on the sim board, across every
reset the scenario causes, then prints the summary as one JSON line on stdout.

    micropython -X heapsize=192k boards/sim/simrun.py SCENARIO.json TRACE|"" [--speed X] [--name N] [--air HOST:PORT] [--quiet]

With --air HOST:PORT (or, for `steamer sim serve`, which passes --speed, $STEAMER_AIR)
the board has a radio on the simulated air (tools/steamer_sim/air.py), advertising as
--name.

The scenario must already be validated and normalized (steamer_sim.scenario does it;
`steamer sim run` is the command people use). Its events are read as the run reaches
them when the file is laid out as steamer_sim.driver.runner_text writes it (the first
line ends with EVENTS_OPEN, then an event per line), so no scenario is too long for the
heap; any other JSON file is read whole.
"""
import json
import os
import sys
import time

import airwire
import board as simboard
from flash import PowerCut
from fw import codes
from fw import main
from world import SimEnd, SimReset


EVENTS_OPEN = ', "events": ['


def load(path):
    """The scenario at path, its events an iterator over the file's lines when it is
    laid out for that."""
    f = open(path)
    first = f.readline().rstrip()
    if not first.endswith(EVENTS_OPEN):
        scenario = json.loads(first + f.read())
        f.close()
        return scenario
    scenario = json.loads(first[:-len(EVENTS_OPEN)] + "}")
    scenario["events"] = _events(f)
    return scenario


def _events(f):
    with f:
        for line in f:
            line = line.rstrip()
            if line == "]}":
                return
            yield json.loads(line[:-1] if line.endswith(",") else line)


def _options(argv):
    # `steamer sim serve` names the air in the environment; `sim run` never has one.
    opts = {"speed": 0.0, "name": "steamer-sim", "quiet": False, "air": None}
    if "--speed" in argv and os.getenv(airwire.ENV):
        opts["air"] = os.getenv(airwire.ENV)
    i = 3
    while i < len(argv):
        if argv[i] == "--speed":
            opts["speed"] = float(argv[i + 1])
            i += 1
        elif argv[i] == "--name":
            opts["name"] = argv[i + 1]
            i += 1
        elif argv[i] == "--air":
            opts["air"] = argv[i + 1]
            i += 1
        elif argv[i] == "--quiet":
            opts["quiet"] = True
        i += 1
    return opts


def run(scenario, trace_path, speed=0.0, progress=True, air=None, name="steamer-sim"):
    b = simboard.make(scenario, trace_path or None, speed, progress, air=air, ble_name=name)
    world = b.world
    start = time.ticks_ms()
    try:
        while True:
            try:
                main.run(b)
            except SimReset as r:
                world.reset(r)
            except PowerCut:
                # Cut in the middle of a flash write (armed by a test).
                world.reset(SimReset(codes.RESET_POWER, 1.0))
            except SimEnd:
                raise
            except Exception as e:  # a firmware bug: the board hangs until the watchdog
                sys.print_exception(e, sys.stderr)
                world.reset(world.crashed())
    except SimEnd:
        pass
    summary = world.summary(time.ticks_diff(time.ticks_ms(), start) / 1000)
    b.close()
    return summary


def _main():
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        sys.exit(2)
    opts = _options(sys.argv)
    if opts["air"]:
        # A steamer on the air (`sim serve`). A board runs the firmware's modules frozen
        # in flash; the unix port compiles them into the heap, the link's needing a large
        # free block: they are compiled first, on a heap still empty.
        from fw import ble  # noqa: F401
    scenario = load(sys.argv[1])
    summary = run(scenario, sys.argv[2], opts["speed"], not opts["quiet"], opts["air"],
                  opts["name"])
    print(json.dumps(summary))


_main()
