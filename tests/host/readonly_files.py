"""Files made read-only for a test, even for root (as on read-only media)."""
from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest


@contextlib.contextmanager
def read_only(*paths: Path):
    """The paths made read-only even for root (chattr +i), as on read-only media;
    skips the test where that cannot be done."""
    if os.geteuid() != 0:
        modes = [(p, p.stat().st_mode) for p in paths]
        for p in paths:
            p.chmod(0o555 if p.is_dir() else 0o444)
        try:
            yield
        finally:
            for p, mode in modes:
                p.chmod(mode)
        return
    if subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True).returncode:
        pytest.skip("chattr +i is not available here")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=True)
