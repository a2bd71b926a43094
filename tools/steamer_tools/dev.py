"""The `steamer dev` group: firmware developers' commands."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from steamer_tools import bench, build, flash, vboard

    build.register(sub)
    flash.register(sub)
    vboard.register(sub)
    bench.register(sub)
