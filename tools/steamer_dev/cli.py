"""The `steamer dev` group: firmware developers' commands."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from steamer_bench import cli as bench
    from steamer_dev import build
    from steamer_dev import flash
    from steamer_dev import vboard

    build.register(sub)
    flash.register(sub)
    vboard.register(sub)
    bench.register(sub)
