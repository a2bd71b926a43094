"""The `steamer dev` group's commands from this package (build, typecheck, flash, vboard);
steamer.cli.main adds `steamer dev bench` (steamer_bench.cli) to the same group."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from steamer_dev import build
    from steamer_dev import flash
    from steamer_dev import vboard

    build.register(sub)
    flash.register(sub)
    vboard.register(sub)
