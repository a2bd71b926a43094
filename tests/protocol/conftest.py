"""Shared set-up for the podproto tests: running scripts on the MicroPython unix port."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PROTOCOL = ROOT / "protocol"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(PROTOCOL))

BOARD_HEAP = "192k"


def micropython_exe() -> str:
    exe = Path(sys.executable).with_name("micropython")
    return str(exe) if exe.exists() else "micropython"


def run_micropython(script: str | Path, *args: str, timeout_s: float = 60.0) -> str:
    """stdout of `micropython -X heapsize=192k script args` with podproto on its path."""
    env = dict(os.environ, MICROPYPATH=str(PROTOCOL) + os.pathsep + str(HERE))
    proc = subprocess.run([micropython_exe(), "-X", "heapsize=" + BOARD_HEAP, str(script),
                           *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=timeout_s)
    if proc.returncode != 0:
        raise AssertionError("micropython failed (%d):\n%s\n%s"
                             % (proc.returncode, proc.stdout[-2000:], proc.stderr[-4000:]))
    return proc.stdout


@pytest.fixture(scope="session")
def micropython():
    return run_micropython
