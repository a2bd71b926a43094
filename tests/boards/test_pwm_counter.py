"""Issue 14: the Pico W's pump encoder counted in hardware, by an RP2040 PWM slice in
DIVMODE "B rising edge" (boards/picow/board.py PwmEdgeCounter), not by a soft Pin IRQ.

The model first (boards/portsim/machine.py RP2Regs, tests/boards/pwm_slice_checks.py),
against the RP2040 datasheet (4.5, PWM; 2.19.6.1, IO_BANK0 GPIOx_CTRL) and
ports/rp2/machine_pwm.c (mp_machine_pwm_make_new, mp_machine_pwm_freq_set,
machine_pwm_start, mp_machine_pwm_deinit): the slice counts while a flash operation has
interrupts off, wraps from TOP to 0, and counts nothing unless its B pin's FUNCSEL is
PWM and it is enabled in DIVMODE 2. Then the board (tests/boards/pwm_board_flash.py):
every encoder edge counted through a long flash write, where the soft IRQ realboard
counted with before (realboard.IrqCounter) loses about half of them.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from steamer_dev.paths import BOARDS, ROOT, micropython_exe

HERE = Path(__file__).resolve().parent
_RP2_HZ = 125000000


def _run(script: str, path: list[Path], cwd: Path, **env_extra: str) -> list[dict]:
    env = dict(os.environ, PORTSIM_PORT="rp2", MICROPYPATH=os.pathsep.join(map(str, path)),
               **env_extra)
    proc = subprocess.run([micropython_exe(), str(HERE / script)], capture_output=True,
                          text=True, env=env, timeout=60, cwd=cwd)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return _run("pwm_slice_checks.py", [BOARDS / "portsim", BOARDS / "sim"],
                tmp_path_factory.mktemp("pwm-model"))[-1]


@pytest.fixture(scope="module")
def picow(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("pwm-picow")
    # The timed flash and the 1-Wire chip from boards/sim, not its bluetooth or board.
    parts = cwd / "sim-parts"
    parts.mkdir()
    for name in ("flash.py", "ds2431.py"):
        (parts / name).symlink_to(BOARDS / "sim" / name)
    path = [BOARDS / "portsim", BOARDS / "picow", BOARDS / "common", ROOT / "device",
            ROOT / "protocol", parts]
    return _run("pwm_board_flash.py", path, cwd, PORTSIM_FLASH="worst",
                BOARD_PY=str(BOARDS / "picow" / "board.py"))[-1]


# ---- the model -----------------------------------------------------------------------------
def test_slice_counts_through_a_flash_operation_where_a_pin_irq_loses_edges(model):
    # 200 edges at 2 kHz while a 100 ms flash operation has interrupts off: the slice
    # counts them all; the soft IRQ fed the same edges runs once, at the end.
    assert model["flash_op_200_edges"] == [200, 1]
    # With interrupts on, both count every edge (the slice on from its 200).
    assert model["sleeping_200_edges"] == [400, 200]


def test_slice_wraps_at_top(model):
    assert model["top_99_after_250"] == 250 % 100        # 0..99, then 0 again
    assert model["top_written_0x1ffff"] == 0xFFFF        # TOP is 16 bits
    assert model["from_0xfffe_after_3"] == 1             # 0xffff, 0, 1


def test_slice_counts_only_on_a_pwm_b_pin_enabled_in_divmode_2(model):
    # Pin(ALT, alt=ALT_PWM) and Pin(IN) set FUNCSEL as the port does (PWM 4, SIO 5).
    assert model["funcsel_alt_pwm"] == 4 and model["funcsel_in"] == 5
    assert model["sio_10_edges"] == 0                    # the pin is SIO's: no count
    assert model["funcsel_written_10_edges"] == 10       # FUNCSEL = 4 through mem32
    assert model["disabled_10_edges"] == 10              # EN off: nothing more
    assert model["en_alias"] == [1 << 7, 0x21]           # EN's bit 7 is slice 7's CSR.EN
    assert model["enabled_by_alias_10_edges"] == 20
    assert model["even_pin_10_edges"] == 20              # GPIO14 is slice 7's A: no input
    assert model["div_2_10_edges"] == 5                  # through the divider (DIV 2.0)
    assert model["ctr_free_running"] == "ValueError"     # not modelled: refused


def test_a_pwm_output_writes_its_slice_as_the_port_does(model):
    # mp_machine_pwm_freq_set: DIV 1 and TOP = round(F / f) - 1 while TOP fits, else the
    # smallest divider; a counter sharing the slice would be rewritten.
    assert model["pwm_10khz_div_top_en"] == [16, (_RP2_HZ + 5000) // 10000 - 1, 1, 4]
    div16 = -(-16 * _RP2_HZ // (65534 * 8))
    assert model["pwm_8hz_div_top"] == [div16, (16 * _RP2_HZ + div16 * 4) // (div16 * 8) - 1]
    assert model["pwm_deinit_en"] == 0


def test_slice_edges_and_reads_allocate_nothing(model):
    assert model["locked_20_edges"] == [20, 1]


# ---- the Pico W board --------------------------------------------------------------------
def test_picow_counts_every_encoder_pulse_through_a_long_flash_write(picow):
    # 16 KiB written with 400 ms erases: over 2 s with interrupts off, through the
    # board's PumpSafeFlash, while 1600 edges come at 400 Hz.
    assert picow["flash_longest_op_ms"] == 400 and picow["flash_busy_ms"] > 1500
    assert picow["pulses"] == picow["edges"] == 1600
    # The soft IRQ the board counted with before loses the edges of every operation but
    # one (on main's board code the board's own count was 744 of 1600).
    assert picow["irq_counted"] < picow["edges"] - 500
    assert picow["may_miss_edges"] == 0


def test_picow_count_extends_the_16_bit_counter_to_24_bits(picow):
    # CTR from 0xfff0 and the count from 2**24 - 100, then 1600 edges between two reads:
    # CTR wraps once (to 1584), the count wraps modulo 2**24 (to 1500).
    assert picow["wrapped"] == [1500, (0xFFF0 + 1600) & 0xFFFF]
