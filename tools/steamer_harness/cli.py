"""A command group of `steamer` run in the test's own process, as its face registers it
(a module's register(subparsers): steamer_mfg.cli, steamer_dev.flash, ...), so a test
sees the exit code and the output, and a failure's traceback, directly."""
from __future__ import annotations

import argparse
from typing import Callable


def run_registered(register: Callable[[argparse._SubParsersAction], None],
                   argv: list[str]) -> int:
    """The exit code of ARGV run through register()'s commands."""
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)
