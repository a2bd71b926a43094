"""The `steamer` command: a thin argparse layer over the host and tool libraries."""
from __future__ import annotations

import argparse
import importlib
import sys

from steamer.terminal import run_parser

# (group, modules, help, examples) rows: each module has register(subparsers) adding its
# commands to the group, whose parsers set `func` to a callable taking the parsed args and returning an
# exit code.
_GROUPS = [
    ("sim", ("steamer_sim.cli",), "run the firmware against the simulated steamer",
     "  steamer sim run scenarios/demo.json --trace out/trace.jsonl\n"
     "  steamer sim serve --name bench-steamer --scenario scenarios/demo.json\n"
     "  steamer sim press bench-steamer --ms 15000   # hold its button (3 s opens pairing)"),
    ("dev", ("steamer_dev.cli", "steamer_bench.cli"), "build, type-check, flash and benchmark the firmware",
     "  steamer dev build --board esp32c3\n"
     "  steamer dev flash --port /dev/ttyACM0 --board esp32c3"),
    ("mfg", ("steamer_mfg.cli",), "manufacturer keys, signed profiles and podlet ID-chip images",
     "  steamer mfg keygen --out keys/mfg.pem\n"
     "  steamer mfg sign-profile vitamin-c.json --key keys/mfg.pem -o vitamin-c.bin"),
]

_TOUR = """Examples:
  steamer scan                          # the steamers in range
  steamer pair bathroom-steamer         # hold its button for 3 s
  steamer session start bathroom-steamer
  steamer sync bathroom-steamer         # its session logs into the history
  steamer sessions                      # the history
  steamer plot 3 -o session-3.png
  steamer app                           # all of it in the browser
  steamer sim serve --name demo &       # a simulated steamer; then add --sim to the above
  steamer sim press demo --ms 15000     # hold its button from outside, to pair with it

`steamer COMMAND --help` says more, with an example."""

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="steamer",
        description="Companion app and developer tools for the podlet facial steamer.",
        epilog=_TOUR, formatter_class=argparse.RawDescriptionHelpFormatter)
    groups = parser.add_subparsers(dest="group", metavar="COMMAND")
    groups.required = True
    for name, modules, help_text, examples in _GROUPS:
        group = groups.add_parser(name, help=help_text, description=help_text,
                                  epilog="Examples:\n" + examples,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        sub = group.add_subparsers(dest="command", metavar="SUBCOMMAND")
        sub.required = True
        for module in modules:
            importlib.import_module(module).register(sub)
    # The consumer commands, `sessions` (which works without a subcommand) and `plot`
    # register themselves: they are not all groups. (Imported here, as the groups are,
    # so that Ctrl-C during the imports ends the command as it does later on.)
    from steamer.cli.consumer import register as register_app
    from steamer.cli.history import register_plot, register_sessions
    register_app(groups)
    register_sessions(groups)
    register_plot(groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_parser(build_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
