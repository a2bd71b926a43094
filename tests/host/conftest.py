"""Shared set-up for the host tests: a real simulator trace, made once per test session;
files made read-only."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

STEAMER = Path(sys.executable).with_name("steamer")


@pytest.fixture(scope="session")
def demo_trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trace of scenarios/demo.json: one session ending at max_session, 2500 µl."""
    trace = tmp_path_factory.mktemp("sim") / "demo.jsonl"
    subprocess.run([str(STEAMER), "sim", "run", str(ROOT / "scenarios" / "demo.json"),
                    "--trace", str(trace), "--quiet"],
                   check=True, capture_output=True, timeout=120, cwd=ROOT)
    return trace


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
