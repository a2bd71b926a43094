"""Type-checking each real board's firmware against that board's MicroPython stubs, and
proof that the stubs (not the host's Python) answer: a wrong call into `machine` and an
import of the other port's module are both reported."""
from __future__ import annotations

import shutil

import pytest

from steamer_dev import build
from steamer_dev.paths import BOARDS, ROOT

BOARDS_REAL = build.real_boards()
# A module of the other port: present in the venv's site-packages, absent from this board's stubs.
OTHER_PORT_MODULE = {"esp32c3": "rp2", "picow": "esp32"}


def errors(report: dict) -> list[str]:
    return ["%s:%d: %s" % (d["file"].replace(str(ROOT) + "/", ""), d["range"]["start"]["line"] + 1,
                           d["message"])
            for d in report["generalDiagnostics"] if d["severity"] == "error"]


@pytest.fixture(scope="module", params=BOARDS_REAL)
def report(request):
    return request.param, build.run_pyright(request.param)


def test_board_files_have_no_errors(report):
    board, rep = report
    mine = [e for e in errors(rep) if e.startswith("boards/%s/" % board)]
    assert mine == []


def test_whole_firmware_has_no_errors(report):
    board, rep = report
    assert errors(rep) == [], "%s: pyright errors in the firmware" % board


@pytest.mark.parametrize("board", BOARDS_REAL)
def test_wrong_calls_are_reported(board, tmp_path):
    for name in ("board.py", "main.py"):
        shutil.copy(BOARDS / board / name, tmp_path / name)
    src = (tmp_path / "board.py").read_text()
    n = src.count("\n")
    src += ("\n\ndef _wrong():\n"
            "    machine.WDT(timeout='1s')\n"            # line n + 4: str for int
            "    import %s\n" % OTHER_PORT_MODULE[board])  # line n + 5: other port's module
    (tmp_path / "board.py").write_text(src)
    found = errors(build.run_pyright(board, tmp_path))
    mine = [e for e in found if "board.py:" in e and "boards/" not in e]
    assert any(":%d:" % (n + 4) in e and "timeout" in e for e in mine), found
    assert any(":%d:" % (n + 5) in e and "could not be resolved" in e for e in mine), found
    assert len(mine) == 2, mine
