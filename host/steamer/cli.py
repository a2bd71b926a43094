"""The `steamer` command: a thin argparse layer over the host and tool libraries."""
from __future__ import annotations

import argparse
import importlib
import sys

# (group, module) pairs: each module has register(subparsers) adding its commands, whose
# parsers set `func` to a callable taking the parsed args and returning an exit code.
_GROUPS = [
    ("sim", "steamer_tools.sim", "run the firmware against the simulated steamer"),
    ("dev", "steamer_tools.dev", "build, type-check, flash and benchmark the firmware"),
    ("mfg", "steamer_tools.mfg", "manufacturer keys, signed profiles and podlet ID-chip images"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="steamer",
        description="Companion app and developer tools for the podlet facial steamer.",
        epilog="Example: steamer sim run scenarios/demo.json --trace out/trace.jsonl",
    )
    groups = parser.add_subparsers(dest="group", metavar="COMMAND")
    groups.required = True
    for name, module, help_text in _GROUPS:
        group = groups.add_parser(name, help=help_text, description=help_text)
        sub = group.add_subparsers(dest="command", metavar="SUBCOMMAND")
        sub.required = True
        importlib.import_module(module).register(sub)
    # The consumer commands, `sessions` (which works without a subcommand) and `plot`
    # register themselves: they are not all groups.
    from steamer.app_cli import register as register_app
    from steamer.sessions_cli import register_plot, register_sessions
    register_app(groups)
    register_sessions(groups)
    register_plot(groups)
    return parser


def run_parser(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> int:
    """Parses argv and runs the chosen command's func; its exit code."""
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


def main(argv: list[str] | None = None) -> int:
    return run_parser(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
