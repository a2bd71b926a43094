"""Shared by the tools' tests: what a stopped command left running, a private air."""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def _processes_naming(text: str) -> list[str]:
    """The command lines of this machine's processes that mention `text`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(args)
    return found


@pytest.fixture
def processes_naming() -> Callable[[str], list[str]]:
    return _processes_naming


def _pids_naming(text: str) -> list[int]:
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except (OSError, ValueError):
            continue
    return pids


@pytest.fixture
def own_air() -> Iterator[dict[str, str]]:
    """An environment whose own simulated air (the default a person gets, no
    $STEAMER_AIR) is this test's: $XDG_RUNTIME_DIR is a fresh private folder, and keys
    and history go beside it. Every process naming that folder (the air `sim serve`
    started) is ended afterwards."""
    run = tempfile.mkdtemp(prefix="air-")      # short: a socket path has 107 bytes
    env = dict(os.environ, XDG_RUNTIME_DIR=run, STEAMER_KEYS=f"{run}/keys.json",
               STEAMER_DB=f"{run}/history.db")
    env.pop("STEAMER_AIR", None)
    env.pop("STEAMER_SIM", None)
    try:
        yield env
    finally:
        for pid in _pids_naming(run):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        shutil.rmtree(run, ignore_errors=True)


# A board's main.py as the firmware's boots: the mode said before main.run, which starts
# the 1 s watchdog and feeds it each period (steamer_dev.vboard resets the virtual board
# when it goes unfed). Tests that need more of the boot put their lines before it.
RUNNING_MAIN = ("STEAMER_MODE = 'running'\n"
                "import machine, time\n"
                "wdt = machine.WDT(timeout=1000)\n"
                "while True:\n"
                "    wdt.feed()\n"
                "    time.sleep_ms(20)\n")


@pytest.fixture
def running_main() -> str:
    """RUNNING_MAIN: the text of a main.py that runs like the firmware."""
    return RUNNING_MAIN
