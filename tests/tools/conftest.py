"""Shared by the tools' tests: what a stopped command left running."""
from __future__ import annotations

from collections.abc import Callable
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
