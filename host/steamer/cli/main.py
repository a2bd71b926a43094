"""The `steamer` command: a thin argparse layer over the host and tool libraries."""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from typing import Callable

# (group, module, help, examples) rows: each module has register(subparsers) adding its
# commands, whose parsers set `func` to a callable taking the parsed args and returning an
# exit code.
_GROUPS = [
    ("sim", "steamer_sim.driver", "run the firmware against the simulated steamer",
     "  steamer sim run scenarios/demo.json --trace out/trace.jsonl\n"
     "  steamer sim serve --name bench-steamer --scenario scenarios/demo.json\n"
     "  steamer sim press bench-steamer --ms 15000   # hold its button (3 s opens pairing)"),
    ("dev", "steamer_dev.cli", "build, type-check, flash and benchmark the firmware",
     "  steamer dev build --board esp32c3\n"
     "  steamer dev flash --port /dev/ttyACM0 --board esp32c3"),
    ("mfg", "steamer_mfg.cli", "manufacturer keys, signed profiles and podlet ID-chip images",
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
  steamer sim serve --name demo &       # a simulated steamer; then add --sim to the above
  steamer sim press demo --ms 15000     # hold its button from outside, to pair with it

`steamer COMMAND --help` says more, with an example."""

_FAILED = 1
_INTERRUPTED = 130
_TERMINATED = 128 + signal.SIGTERM


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="steamer",
        description="Companion app and developer tools for the podlet facial steamer.",
        epilog=_TOUR, formatter_class=argparse.RawDescriptionHelpFormatter)
    groups = parser.add_subparsers(dest="group", metavar="COMMAND")
    groups.required = True
    for name, module, help_text, examples in _GROUPS:
        group = groups.add_parser(name, help=help_text, description=help_text,
                                  epilog="Examples:\n" + examples,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        sub = group.add_subparsers(dest="command", metavar="SUBCOMMAND")
        sub.required = True
        importlib.import_module(module).register(sub)
    # The consumer commands, `sessions` (which works without a subcommand) and `plot`
    # register themselves: they are not all groups.
    from steamer.cli.consumer import register as register_app
    from steamer.cli.history import register_plot, register_sessions
    register_app(groups)
    register_sessions(groups)
    register_plot(groups)
    return parser


def reader_gone() -> int:
    """What a command does when its reader went away (`steamer status X | head -1`): says
    nothing more to it (not even at exit, when Python flushes stdout) and fails."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return _FAILED


def run_parser(make_parser: Callable[[], argparse.ArgumentParser],
               argv: list[str] | None = None) -> int:
    """Builds the parser, parses argv and runs the chosen command's func; its exit code.
    Ctrl-C (130) and SIGTERM (143) at any point, the parser's imports included, end it
    without a traceback, as does a reader that went away."""
    terminated = False

    def on_sigterm(_signum: int, _frame: object) -> None:
        # Handled as Ctrl-C is: every command's clean-up runs (child processes, temporary
        # folders), and a session on a steamer goes on.
        nonlocal terminated
        terminated = True
        raise KeyboardInterrupt

    main_thread = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, on_sigterm) if main_thread else None
    try:
        args = make_parser().parse_args(argv)
        code = int(args.func(args) or 0)
        sys.stdout.flush()      # a reader gone shows here, not in Python's exit
    except KeyboardInterrupt:
        code = _INTERRUPTED
    except BrokenPipeError:
        code = reader_gone()
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, before)
    return _TERMINATED if terminated else code


def main(argv: list[str] | None = None) -> int:
    return run_parser(build_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
