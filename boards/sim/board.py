"""The simulated board: the board contract (device/BOARD.md) wired to the plant model.

The board gives the firmware what a real board does (heater, pump, sensors, podlet reader,
button, watchdog, clock, flash, radio); the world around it (world.py: virtual time, the
scenario's events and resets, and the trace, metrics and progress they feed) moves the
plant and the board's inputs in wait_tick(). Everything the firmware's control step calls
here only moves small ints, so the step stays allocation-free on this board too. make()
builds the board and its world.
"""
import os
import time
import vfs

from fw import config
from fw import codes
from flash import FileFlash
from plant import Plant
# SimEnd and SimReset: what the runners (simrun.py, tests) catch out of wait_tick().
from world import SimEnd, SimReset, World  # noqa: F401

DATA_DIR = "/flash"

# wait_tick(idle) calls idle only while more than this much wall time (at most a quarter
# of the period) is left before the next period.
IDLE_MARGIN_MS = 5


class Adc:
    def __init__(self):
        self.raw = 0

    def read(self):
        return self.raw


class Switch:
    def __init__(self):
        self.v = 0

    def value(self):
        return self.v


class Heater:
    def __init__(self, board):
        self.board = board

    def set(self, permille):
        plant = self.board.plant
        plant.heater_pm = permille
        plant.heater_cmd_ms = self.board.now_ms


class Cutoff:
    def __init__(self, board):
        self.board = board

    def open(self):
        self.board.plant.cutoff_open = True

    def is_open(self):
        return 1 if self.board.plant.cutoff_open else 0


class Pump:
    NL_PER_PULSE = 100
    MAY_MISS_EDGES = 0      # the sim's encoder loses no edge

    def __init__(self, board):
        self.board = board
        self.count = 0

    def set(self, nl_s):
        plant = self.board.plant
        plant.pump_nl_s = nl_s
        plant.pump_cmd_ms = self.board.now_ms

    def pulses(self):
        return self.count

    def held(self):
        return 0        # the sim's flash never stops its pump (realboard.Pump's does)


class Watchdog:
    def __init__(self, board):
        self.board = board
        self.fed_ms = 0

    def feed(self):
        self.fed_ms = self.board.now_ms


class PodletReader:
    """The podlet slot: presence (the cheap check the control step makes), and the ID chip
    read by the firmware's own reader (fw.idchip) over an emulated DS2431 on an emulated
    1-Wire bus (ds2431.py). The chip holds the scenario PODLET's image (ROM ID and signed
    memory, as steamer_sim.signing made it); podlet_bus_error gives it a contact
    that breaks in the middle of every read."""

    # podlet_bus_error: the contact breaks this many bytes into each 1-Wire exchange
    # (after the ROM ID and the memory command, 20 bytes into the memory).
    BUS_ERROR_AFTER_BYTES = 32

    def __init__(self):
        from ds2431 import Ds2431Bus
        from fw.idchip import IdChip
        self.v = 0
        self.info = None
        self.bus_error = False
        self.bus = Ds2431Bus()
        self.chip = IdChip(self.bus)

    def present(self):
        return self.v

    def read(self):
        self._sync()
        return self.chip.read()

    def read_steps(self):
        self._sync()
        return self.chip.read_steps()

    def read_rom(self):
        self._sync()
        return self.chip.read_rom()

    def _sync(self):
        # The events set info and bus_error; the chip on the bus follows them here.
        bus = self.bus
        info = self.info
        bus.image = bytes.fromhex(info.get("image_hex", "")) if info is not None else None
        bus.break_after = self.BUS_ERROR_AFTER_BYTES if self.bus_error else 0




class SimBoard:
    """The board contract on the plant; world (set by make()) moves them in wait_tick()."""
    name = "sim"
    PERIOD_MS = config.PERIOD_MS
    # Signature-check slices service() runs per period (device/BOARD.md): a PC's CPU
    # affords more than a board's one, yet a check still spans a few periods, as there.
    CHECK_SLICES_PER_PERIOD = 16
    # Notifications the simulated controller sends per connection event (the air's
    # LinkParams default): fw.ble paces the Event characteristic by it.
    BLE_PDUS_PER_EVENT = 6
    data_dir = DATA_DIR

    def __init__(self, plant, speed=0.0, flash_path=None, air=None, ble_name="steamer-sim",
                 mfg_public_hex=None):
        self.ble_name = ble_name
        self.radio = None
        self.radio_tick_ms = time.ticks_ms()
        self.flash_owned = flash_path is None
        if flash_path is None:
            flash_path = "/tmp/steamer-sim-%s.flash" % "".join(
                "%02x" % b for b in os.urandom(6))
        self.flash_path = flash_path
        self.flash = FileFlash(flash_path)
        if self.flash_owned:
            os.remove(flash_path)   # open, so it lives until closed, and never leaks
        self.flash_mounted = False
        self.mount_flash()
        self._provision(mfg_public_hex)
        self.plant = plant
        self.world = None
        self.now_ms = 0
        self.speed = speed
        self.boiler_ntc = Adc()
        self.outlet_ntc = Adc()
        self.heater = Heater(self)
        # The element's rating, as a real board's build knows it; not the mains it gets.
        self.heater.rated_w = int(plant.cfg["heater_w"])
        self.heater_cutoff = Cutoff(self)
        self.pump = Pump(self)
        self.water_low = Switch()
        self.tilt = Switch()
        self.button = Switch()
        self.button_until_ms = 0
        self.watchdog = Watchdog(self)
        self.podlet = PodletReader()
        self.clock_base_s = 0
        self.clock_set_ms = 0
        self.commands = []
        self.cause = codes.RESET_POWER
        self.app = None     # the firmware's App, as telemetry() last saw it
        self.sync_inputs()
        if air:
            # The radio: MicroPython's bluetooth API over the simulated air.
            import bluetooth
            bluetooth.AIR = air
            bluetooth.NAME = ble_name
            self.radio = bluetooth.BLE()
            # fw.ble's pace may probe past BLE_PDUS_PER_EVENT where the stack refuses what
            # it cannot hold (NimBLE); BTstack takes everything, and the "sim" model (no real
            # port) keeps the pace the tests of it were written for.
            self.BLE_REFUSES_WHEN_FULL = bluetooth.port_model() == "nimble"

    # ---- the board contract -------------------------------------------------------
    def mount_flash(self):
        """Mounts the flash at DATA_DIR as a board's boot does. Only a blank image is
        formatted: a filesystem that fails to mount after a power cut is a failure."""
        try:
            vfs.umount(DATA_DIR)    # ours from before a reset, or another board's
        except OSError:
            pass
        self.flash_mounted = False
        try:
            fs = vfs.VfsLfs2(self.flash)
        except OSError:
            if self.flash.writes or not self._blank():
                raise
            vfs.VfsLfs2.mkfs(self.flash)
            fs = vfs.VfsLfs2(self.flash)
        vfs.mount(fs, DATA_DIR)
        self.flash_mounted = True

    def _provision(self, key_hex):
        """The factory's step: the manufacturer public key into a new device's flash."""
        if not key_hex:
            return
        path = DATA_DIR + "/mfg.pub"
        try:
            os.stat(path)
        except OSError:
            with open(path, "wb") as f:
                f.write(bytes.fromhex(key_hex))

    def _blank(self):
        buf = bytearray(16)
        self.flash.readblocks(0, buf)
        return buf == b"\xff" * 16

    def close(self):
        if self.flash_mounted:
            vfs.umount(DATA_DIR)
            self.flash_mounted = False
        self.flash.close()

    def ticks_ms(self):
        return self.now_ms

    def reset_cause(self):
        return self.cause

    def clock_s(self):
        if not self.clock_base_s:
            return 0
        return self.clock_base_s + (self.now_ms - self.clock_set_ms) // 1000

    def set_clock_s(self, epoch_s):
        self.clock_base_s = epoch_s
        self.clock_set_ms = self.now_ms

    def poll_command(self):
        if self.commands:
            return self.commands.pop(0)
        return None

    def wait_tick(self, idle=None):
        self.world.period()
        if self.radio is not None:
            self._radio_wait(int(config.PERIOD_MS / self.speed) if self.speed > 0 else 0, idle)
        elif self.speed > 0:
            time.sleep_ms(int(config.PERIOD_MS / self.speed))

    def _radio_wait(self, wait_ms, idle=None):
        # IRQs are delivered here, between steps, while the period's wall time passes.
        # Periods start on a fixed wall-clock grid, as a board's timer starts them, so
        # the time the firmware spends does not stretch them.
        radio = self.radio
        now = time.ticks_ms()
        deadline = time.ticks_add(self.radio_tick_ms, wait_ms)
        if time.ticks_diff(now, deadline) > 4 * wait_ms:
            deadline = now          # far behind (a long stall): a new grid from here
        self.radio_tick_ms = deadline
        if not radio.active():
            left = time.ticks_diff(deadline, now)
            if left > 0:
                time.sleep_ms(left)
            return
        # idle() (fw.ble.Link.pump) runs after what the air sent, only while a margin of
        # the period is left: its work is bounded, so the next period starts on time.
        margin = min(IDLE_MARGIN_MS, wait_ms // 4)
        while True:
            left = time.ticks_diff(deadline, time.ticks_ms())
            got = radio.poll(left if left > 0 else 0)
            if left <= 0:
                return
            if got and idle is not None and time.ticks_diff(deadline, time.ticks_ms()) > margin:
                idle()

    def emit(self, record):
        self.world.emit(record)

    def telemetry(self, app):
        self.app = app
        self.world.telemetry(app)

    # ---- the seams the world moves the board through ----------------------------------
    def sync_inputs(self):
        """The sensors, switches and pump encoder read what the plant now shows."""
        p = self.plant
        self.boiler_ntc.raw = p.boiler_raw
        self.outlet_ntc.raw = p.outlet_raw
        self.water_low.v = p.water_low()
        self.tilt.v = p.tilted()
        self.pump.count = p.pump_pulses()

    # tests/device/mpt_supervisor.py calls it by this name (not ours to edit).
    _sync_inputs = sync_inputs

    def press_button(self, ms):
        """The button held down for ms from now."""
        self.button.v = 1
        self.button_until_ms = self.now_ms + ms

    def release_button(self):
        """The button comes up once its hold is over."""
        if self.now_ms >= self.button_until_ms:
            self.button.v = 0

    def firmware_gone(self):
        """A reset: the firmware and its queued commands are lost, the radio's stack goes
        down with it and the outputs drop."""
        self.app = None
        self.commands = []
        if self.radio is not None:
            self.radio.active(False)
        self.plant.heater_pm = 0
        self.plant.pump_nl_s = 0

    def boot(self, cause):
        """Power (back) on after a reset of cause: the watchdog starts fed, the flash is
        mounted again."""
        self.cause = cause
        self.watchdog.fed_ms = self.now_ms
        self.mount_flash()

    def reset(self, r):
        """A reset (SimReset r) as the world does it: world.reset."""
        self.world.reset(r)

    # What the world counts, by the names tests/device reads them.
    @property
    def steps(self):
        return self.world.metrics.steps

    @property
    def resets(self):
        return self.world.metrics.resets


def make(scenario, trace_path=None, speed=0.0, progress=True, flash_path=None, air=None,
         ble_name="steamer-sim"):
    """The sim board for a validated scenario, in its world."""
    plant = Plant(scenario["plant"], scenario["seed"])
    b = SimBoard(plant, speed, flash_path, air, ble_name, scenario.get("mfg_public_hex"))
    b.world = World(b, scenario, trace_path, progress)
    return b
