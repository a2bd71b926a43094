"""Each real board's board.py (with boards/common), on the port models of boards/portsim
(`machine`, `onewire`, `time` per the esp32 and rp2 ports' C sources; the 1-Wire bus is
the sim board's emulated DS2431), run by the real
MicroPython VM (unix port) with the real firmware: every hot method completes under
heap_lock, the outputs do what the board contract says, the podlet's ID chip is read
through the board's reader, and control steps run."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from steamer_dev import build
from steamer_sim.signing import podlet_image
from steamer_dev.paths import BOARD_HEAP, BOARDS, micropython_exe
from steamer_sim.portsim import MODELS_HEAP_K, PORT_OF, models_mpy

HERE = Path(__file__).resolve().parent
PODLET_OK_HEX = podlet_image({"serial": "0000c0ffee01", "podlet_type": 3, "capacity_ul": 3000,
                              "expiry": "2027-06-30", "lot": "L2611"}, "ok").hex()


@pytest.fixture(scope="module", params=build.real_boards())
def run(request, tmp_path_factory):
    board = request.param
    cwd = tmp_path_factory.mktemp(board)
    # The emulated 1-Wire chip and the flash file alone from boards/sim (its board.py
    # must not shadow this one).
    sim = tmp_path_factory.mktemp("sim-parts")
    for name in ("ds2431.py", "flash.py"):
        (sim / name).symlink_to(BOARDS / "sim" / name)
    # The firmware from .mpy, as a board loads it into RAM (its source compiled in the
    # heap would count the compiler's garbage against the board's 192k).
    mpy = tmp_path_factory.mktemp(board + "-mpy")
    build.build_for_unix_port(board, mpy)
    # The smoke run itself from .mpy too: compiled from source, its bytecode and the
    # compiler's garbage would cut up the heap the board's budget is checked in.
    err = build.compile_file(HERE / "smoke_run.py", mpy / "smoke_run.mpy", "x64")
    assert err is None, err
    env = dict(os.environ, SMOKE_PODLET_HEX=PODLET_OK_HEX, PORTSIM_PORT=PORT_OF[board],
               SMOKE_BOARD_PY=str(BOARDS / board / "board.py"))
    env["MICROPYPATH"] = os.pathsep.join(str(p) for p in (
        models_mpy(mpy / "portsim"), mpy / "lib", mpy, sim))
    proc = subprocess.run([micropython_exe(), "-X", "heapsize=%dk" % (int(BOARD_HEAP[:-1]) + MODELS_HEAP_K),
                           "-m", "smoke_run", "10"],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return board, json.loads(proc.stdout.splitlines()[-1]), cwd


def test_hot_methods_allocate_nothing(run):
    _, out, _ = run
    assert out["hot_progress"] == 100


def test_boot_state(run):
    _, out, _ = run
    assert out["pins_distinct"]
    assert out["relay_closed_at_boot"] == 1
    assert out["reset_cause"] == 0          # fw.codes.RESET_POWER
    assert out["wdt_timeout"] == 1000       # fw.config.WATCHDOG_MS


def test_heater_burst_fire_and_keepalive(run):
    _, out, _ = run
    assert out["heater_on_of_40_at_250"] == 10
    assert out["keepalive_writes"] == 42    # one toggle per set(), whatever the duty
    assert out["ssr_after_off"] == 0


def test_pump_rate_and_encoder(run):
    board, out, _ = run
    # 20 nl/s -> 10 Hz at 50 % duty; 33333 nl/s -> 16666 Hz (down: a step is never
    # faster than asked); clamped at 20 kHz; 0 stops.
    assert out["pump"] == [10, 32768, 16666, 20000, 0]
    assert out["pump_hz_at_4999"] == 2499
    # 15 nl/s is 7.5 Hz, under both ports' slowest (picow 8 Hz, the C3's LEDC 10 Hz:
    # freq() raised there on main): gated, the PWM runs at its slowest in 15 of 16
    # periods (15/16 * 8 = 7.5) or 12 of 16 (12/16 * 10 = 7.5).
    assert out["pump_duty_at_15"] == (15008 if board == "picow" else 12010)
    assert out["pulses"] == 5
    assert out["pulses_wrapped"] == 0        # modulo 2**24


def test_pump_stops_one_period_after_its_last_set(run):
    board, out, _ = run
    # A one-shot of 100 ms (fw.config.PERIOD_MS), re-armed by every set(): hardware
    # timer 0 on the esp32c3, the virtual timer on the picow.
    assert out["pump_timer"][:3] == [0 if board == "esp32c3" else -1, 0, 100]
    progress, running, after_stale, due_early, duty_early, due, stopped, again = \
        out["keepalive"]
    assert progress == 100                  # set() and the callback allocate nothing
    assert running == after_stale == 32768  # a callback from before the last set() is ignored
    assert (due_early, duty_early) == (0, 32768)    # re-armed by the set() 60 ms on
    assert (due, stopped) == (1, 0)         # no set() for a period: the PWM is stopped
    assert again == 32768                   # the next set() starts it again


def test_pump_is_held_through_each_flash_operation(run):
    # Issue 14 items 4 and 5: while an erase or program runs no interrupt is served (the
    # keep-alive cannot stop the pump; the C3's IRQ-counted encoder's edges collapse),
    # so PumpSafeFlash stops the step output first and starts it again after, if its
    # period still runs.
    _, out, _ = run
    progress, erase, after, held, held_again, program, late, held_off, erase_off = \
        out["through_flash"]
    assert progress == 100                  # allocation-free, a finaliser's write too
    assert (erase, after) == (0, 32768)     # off through the erase, on again after it
    assert (held, held_again) == (1, 0)     # pump.held() says so once
    assert (program, late) == (0, 0)        # a program ending past the period: stays off
    assert (held_off, erase_off) == (0, 0)  # a pump already off was not held


def test_data_folder_must_be_littlefs(run):
    _, out, cwd = run
    # Nothing mounted at /data (the unix port's own filesystem), then a FAT flash: the
    # board refuses before its watchdog starts; the smoke run's board is on littlefs.
    posix, posix_wdt, fat, fat_wdt = out["refused"]
    assert posix.startswith("/data is on VfsPosix, not littlefs") and posix_wdt == 0
    assert fat.startswith("/data is on VfsFat, not littlefs") and fat_wdt == 0
    assert (cwd / "VfsLfs2.flash").exists()


def test_sensors_switches_and_podlet(run):
    board, out, _ = run
    boiler, outlet = divmod(out["raw"], 10000)
    assert outlet == 4095                        # at the rail: open, on both boards
    if board == "picow":
        assert boiler == 1000000 * 4095 // 3300000   # ratiometric: read_u16() >> 4
    else:
        # read_uv() through the high-side divider (560 ohm), as the 1 k table's counts.
        assert abs(boiler - (4095 - 4095 * 1000 // (1000 + 560 * 2300 // 1000))) < 40
    # Pulled up, nothing closed: float and tilt read unsafe (1), the button not held.
    assert out["switches"] == 110
    assert out["present"] == 1


def test_podlet_id_chip_read_through_the_board(run):
    _, out, _ = run
    # Read ROM + Read Memory, twice to confirm: the image the chip holds.
    assert out["podlet_read"] == PODLET_OK_HEX
    assert out["podlet_status"] == "ok"
    assert out["podlet_resets"] == 2
    # A chip whose ROM CRC-8 is wrong: handed on as read, the memory left unread (0xFF),
    # for the podlet format to refuse with "crc".
    assert out["podlet_bad_crc"] == PODLET_OK_HEX[:14] + "%02x" % (
        int(PODLET_OK_HEX[14:16], 16) ^ 0xFF) + "ff" * 128
    # Contact lost mid-read, and no chip at all: unreadable.
    assert out["podlet_bus_error"] == [None, "bus_error"]
    assert out["podlet_absent"] == [0, None, "absent"]


def test_cutoff_stays_open_across_watchdog_reset(run):
    _, out, _ = run
    assert out["cutoff_open"] == 1 and out["relay_after_open"] == 0
    assert out["after_wdt"] == [1, 1, 0]     # RESET_WDT, still open, relay not driven


def test_firmware_steps_on_the_board(run):
    board, out, cwd = run
    assert out["step_errors"] == 0
    assert out["fed"] == 10                     # one feed a step
    assert out["fed_erases"] <= 2 * 10          # and at most two erases' a period
    # Boot on a blank flash: fed after the journal, the audit log, the trust store and
    # once more before them (fw.app App.__init__, issue 14 item 6), and before the first
    # two erases (realboard.PumpSafeFlash: two a period at most).
    assert out["fed_boot"] == 4 + 2
    assert out["poll"] is None
    assert out["rtc_datetime"] == [2026, 1, 1, 3, 0, 0, 0, 0]
    log = [json.loads(line) for line in (cwd / "log.jsonl").read_text().splitlines()]
    assert log[0]["event"] == "boot" and log[0]["board"] == board
    assert log[0]["reason"] == "watchdog"
