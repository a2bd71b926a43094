"""The real boards' radio (issue 13 item 9): boards/common/realboard.py's Board creates
the port's bluetooth.BLE() (here the sim's module, on the unix port with the port models
of boards/portsim: `machine`, and `time` on their virtual clock) for fw.ble.Link to make
active and advertise, and its wait_tick(idle) services the link between periods as the
sim board's does."""
import sys

import vfs

_ROOT = __file__.rsplit("/tests/", 1)[0]
# The port models first, `time` among them: the runner imported the built-in one, which
# realboard and this file must not get (boards/portsim/time.py imports it under itself).
sys.path.insert(0, _ROOT + "/boards/portsim")
sys.modules.pop("time", None)
sys.path.append(_ROOT + "/boards/common")

import time                             # noqa: E402 - boards/portsim's, the virtual clock
import bluetooth                        # noqa: E402 - boards/sim's, as a port's own
import realboard                        # noqa: E402
from flash import FileFlash             # noqa: E402
from fw import config                   # noqa: E402

_board = []


class _Board(realboard.Board):
    """The common board with what each board's board.py adds that the radio's tests
    need: a pump (realboard mounts the flash through PumpSafeFlash, which holds it) and
    the flash device (a file here, mounted at the data folder)."""

    def __init__(self, flash):
        self._flash = flash
        # The Pico W's step pin and timer; the encoder on pin 6, counted by its IRQ.
        self.pump = realboard.Pump(5, 6, -1, 8)
        realboard.Board.__init__(self, 0, None)

    def flash_device(self):
        return self._flash


def _realboard():
    if not _board:
        try:
            vfs.umount(realboard.Board.data_dir)
        except OSError:
            pass
        flash = FileFlash("/tmp/mpt-realboard-radio.flash", 64, 4096)
        vfs.VfsLfs2.mkfs(flash)
        vfs.mount(vfs.VfsLfs2(flash), realboard.Board.data_dir)
        _board.append(_Board(flash))
    return _board[0]


def test_the_board_has_the_ports_radio():
    b = _realboard()
    assert b.radio is not None and b.radio is bluetooth.BLE()


def test_wait_tick_services_the_link_between_periods_and_keeps_the_period():
    b = _realboard()
    b.wait_tick()                       # on the period grid
    calls = []

    def idle():
        calls.append(time.ticks_ms())
    t0 = time.ticks_ms()
    b.wait_tick(idle)
    took_ms = time.ticks_diff(time.ticks_ms(), t0)
    assert len(calls) >= 4, calls       # a slice every ~10 ms of a 100 ms period
    assert took_ms <= config.PERIOD_MS + 5, took_ms
    # The last call leaves the period's margin for the next step.
    assert time.ticks_diff(time.ticks_add(t0, took_ms), calls[-1]) >= 10
