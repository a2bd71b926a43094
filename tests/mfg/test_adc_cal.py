"""`steamer mfg adc-cal` (steamer_mfg.adccal) calibrating a C3 unit with the real
mpremote, on a virtual board that runs the board's own code (boards/esp32c3,
boards/common/adccal.py, fw.copies) over the port models (boards/portsim: one drawn
chip, rail and resistors), the calibration plug's resistors on its NTC pins (boot.py,
as the fixture would: the unit's divider with the plug in place of the NTC), and the
firmware's loader reading what arrived."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from steamer_dev.paths import BOARDS, DEVICE, PROTOCOL, micropython_exe
from steamer_dev.vboard import VirtualBoard
from steamer_mfg import cli as mfg
from steamer_harness.cli import run_registered

SEED = "7"      # a unit whose gains are ~+2 %: calibration has something to do
PATH = [BOARDS / "portsim", BOARDS / "common", DEVICE, PROTOCOL, BOARDS / "sim"]
ENV = {"PORTSIM_PORT": "esp32", "PORTSIM_CHIP_SEED": SEED}

# The plug on the unit (boards/esp32c3/README.md's dividers; portrun.WIRING): run at
# every soft reset, before mpremote's script makes the ADCs.
_PLUG = """import machine, unit
for pin, ch, pull, how, ohm in ((0, 'boiler', 1000, ('high', 560), %(boiler)s),
                                (1, 'outlet', 10000, 'low', %(outlet)s)):
    machine.PIN_UV[pin] = (%(open)r if ohm is None else
                           unit.unit_divider_uv(4095 * ohm / (ohm + pull), pull, how, ch))
"""


def run_cli(argv: list[str]) -> int:
    return run_registered(mfg.register, argv)


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtualBoard]:
    with VirtualBoard(root=tmp_path_factory.mktemp("c3"), board="esp32c3", run_main=True,
                      path=PATH, env=ENV) as vb:
        yield vb


def unit(board: VirtualBoard, boiler: int | None = 680, outlet: int | None = 4700,
         open_uv: int = 0) -> VirtualBoard:
    """The module's board, its flash blank, with these resistors (None: nothing, the pin
    at open_uv) on its NTC pins."""
    for p in board.root.iterdir():
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    (board.root / "boot.py").write_text(_PLUG % {"boiler": boiler, "outlet": outlet,
                                                 "open": open_uv})
    return board


def firmware_gains(data_dir: Path) -> list:
    """What the board's loader (adccal.load, as the C3 board boots) takes from data_dir."""
    env = dict(os.environ, PORTSIM_PORT="esp32", MICROPYPATH=os.pathsep.join(
        str(p) for p in [BOARDS / "esp32c3", *PATH]))
    code = "import adccal\nprint(adccal.load(%r))" % str(data_dir)
    proc = subprocess.run([micropython_exe(), "-c", code], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_calibrates_writes_and_verifies(board: VirtualBoard,
                                        capsys: pytest.CaptureFixture[str]):
    vb = unit(board)
    assert run_cli(["adc-cal", "--port", vb.port, "--reads", "16", "--json"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["verified"] and result["counter"] == 1 and result["previous"] is None
    gains = {c["name"]: c["gain_ppm"] for c in result["channels"]}
    # This unit reads ~2 % low on both channels; through the record, the plug's counts.
    assert 10000 < gains["boiler"] < 30000 and 10000 < gains["outlet"] < 30000, gains
    for c in result["channels"]:
        assert abs(c["read_counts"] - c["want_counts"]) <= 3, c
    assert firmware_gains(vb.root / "data") == "({'boiler': %d, 'outlet': %d}, None)" % (
        gains["boiler"], gains["outlet"])
    progress = [line for line in err.splitlines() if line.startswith("steamer mfg adc-cal: ")]
    assert any("reading both channels: 16 of 16" in line for line in progress)
    assert any(line.startswith("steamer mfg adc-cal: boiler: ") and "gain +" in line
               for line in progress)
    # Again: the record replaced (its next commit), the table says what was measured.
    assert run_cli(["adc-cal", "--port", vb.port, "--reads", "8"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["channel", "plug", "read"]
    assert "(commit 2, replacing gains {'boiler': %d, 'outlet': %d})" % (
        gains["boiler"], gains["outlet"]) in out and "verified" in out


@pytest.mark.parametrize("plug, words", [
    # Not the plug the command was told of (1 k on the boiler's connector, not 680 ohm).
    ({"boiler": 1000}, ["boiler: reads ", "mV where a nominal unit with 680 ohm reads",
                        "a correction of +", "outside the +-4.00 %", "nothing written"]),
    # The outlet's connector open: its pin pulled to the rail, the ADC's top.
    ({"outlet": None, "open_uv": 3300000},
     ["outlet: reads ", "a correction of -", "outside the +-4.00 %", "nothing written"]),
    # The boiler's NTC path open: nothing pulls its pin up.
    ({"boiler": None}, ["boiler: reads 0 mV with the 680 ohm plug", "nothing written"]),
])
def test_a_channel_off_its_plug_is_refused_and_nothing_written(
        board: VirtualBoard, capsys: pytest.CaptureFixture[str], plug: dict, words: list):
    vb = unit(board, **plug)
    assert run_cli(["adc-cal", "--port", vb.port, "--reads", "8"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("steamer mfg adc-cal: ")
    for w in words:
        assert w in err[-1], err[-1]
    assert not (vb.root / "data" / "safe.a").exists()
    assert firmware_gains(vb.root / "data").startswith("(None, 'adccal: no record")


def test_a_missing_port_is_a_one_line_error(capsys: pytest.CaptureFixture[str]):
    assert run_cli(["adc-cal", "--port", "/dev/does-not-exist"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "steamer mfg adc-cal: port /dev/does-not-exist does not exist (is the " \
                  "board plugged in?)"
