"""Where the repository's parts live, for tools that run the firmware or build it."""
from __future__ import annotations

import os
from pathlib import Path

from steamer_mfg.usb import find_command

ROOT = Path(__file__).resolve().parents[2]
DEVICE = ROOT / "device"
PROTOCOL = ROOT / "protocol"
BOARDS = ROOT / "boards"

# Close to the 32-bit boards' free heap after the port and BLE stack take theirs.
BOARD_HEAP = "192k"
# The simulator's heap: the board's, plus what only the simulator keeps there: its own
# code (plant model, sim board, trace writer; ~40 KB compiled) and the firmware's
# bytecode and the compiler's garbage, since the unix port compiles the source in the
# heap where a board loads .mpy (320k until issue 11's fixes added ~20 KB of firmware:
# the link's compile at boot and the sim radio then no longer found their blocks). What
# a board must hold is checked at BOARD_HEAP from .mpy (tests/boards/test_board_smoke.py).
# 384k until issue 12 split the sim board (world, trace, metrics, progress, airwire) and
# App (session, intake) into modules the unix port compiles from source: `sim serve` then
# failed at boot for a 4 KB block at 384k, served at 400k; 416k leaves room for
# fragmentation. The firmware's own budget did not grow: the esp32c3 board smoke passes
# from 186k, as before the split.
SIM_HEAP = "416k"


def micropython_exe() -> str:
    """The `micropython` command of this virtual environment (or PATH)."""
    return find_command("micropython")


def micropython_env(board: str = "sim") -> dict[str, str]:
    """Environment for running the firmware of `board` on the unix port."""
    env = dict(os.environ)
    env["MICROPYPATH"] = os.pathsep.join([str(DEVICE), str(PROTOCOL), str(BOARDS / board)])
    return env
