"""Shared set-up for the host tests: a real simulator trace, made once per test session."""
from __future__ import annotations

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
