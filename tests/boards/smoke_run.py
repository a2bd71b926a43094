"""Runs a real board's board.py (on the port models of boards/portsim: machine, onewire,
time) with the real firmware on the unix port: every hot method under heap_lock, the podlet reader on an emulated ID chip,
then control steps through fw.main. Prints one JSON line of findings for
tests/boards/test_board_smoke.py. Argument: the number of steps; $SMOKE_PODLET_HEX: a
podlet image (an argument over 255 bytes crashes the unix port at startup). The board's
data folder (/data) is a littlefs on a flash file in the working folder, as on a board;
a FAT one is refused."""
import json
import os
import sys
import time
import vfs

# The firmware first: the unix port compiles each module from source into the heap, and
# the largest (fw.app) needs its biggest free block before the rest fragments the heap.
from fw import main
from fw import codes
from fw import idchip

import gc
import machine
import micropython
import onewire
import portclock

gc.collect()
import board as board_mod  # noqa: E402
import realboard  # noqa: E402
import timedflash  # noqa: E402
from flash import FileFlash  # noqa: E402


def pin_table(path):
    """The board's `_PIN_X = const(N)` table (const names take no RAM, so read the source)."""
    table = {}
    with open(path) as f:
        for line in f:
            if line.startswith("_PIN_") and "const(" in line:
                name = line.split("=")[0].strip()
                table[name] = int(line.split("const(")[1].split(")")[0])
    return table


def mount_data(fs_class, blocks, block_size):
    """A fresh flash of fs_class mounted at the board's data folder."""
    try:
        vfs.umount(realboard.Board.data_dir)
    except OSError:
        pass
    flash = FileFlash("%s.flash" % fs_class.__name__, blocks, block_size)
    fs_class.mkfs(flash)
    vfs.mount(fs_class(flash), realboard.Board.data_dir)
    timedflash.DEVICE[0] = flash      # what rp2.Flash() / esp32.Partition.find give
    return flash


out = {}
time.set_port_epoch(2000 if machine.ESP32 else 1970)
# The board module is loaded from .mpy: its pin table is read from its source.
PIN = pin_table(os.getenv("SMOKE_BOARD_PY"))
# ---- the data folder's filesystem: anything but littlefs is refused -----------------
refused = []
for fs_class in (None, vfs.VfsFat):
    if fs_class is not None:
        mount_data(fs_class, 128, 512)
    wdts = len(machine.WDTS)
    try:
        board_mod.make()
        refused.append("ran")
    except realboard.FilesystemError as e:
        refused.append(str(e))
    refused.append(len(machine.WDTS) - wdts)      # the watchdog was never started
out["refused"] = refused
machine.PINS.clear()
machine.PWMS.clear()
machine.ADCS.clear()
onewire.BUSES.clear()
mount_data(vfs.VfsLfs2, 32, 4096)
b = board_mod.make()
pins = machine.PINS
ssr = pins[PIN["_PIN_HEATER_SSR"]]
kick = pins[PIN["_PIN_HEATER_KEEPALIVE"]]
relay = pins[PIN["_PIN_CUTOFF_RELAY"]]
enc = pins[PIN["_PIN_PUMP_ENCODER"]]


def fire_encoder():
    # One edge on the encoder pin, its soft IRQ run as the scheduler would.
    enc.edge(0)
    portclock.run_pending()


out["pins_distinct"] = len(PIN) == len(set(PIN.values())) == 11
pwm = machine.PWMS[PIN["_PIN_PUMP_STEP"]]
out["relay_closed_at_boot"] = relay.value()
out["reset_cause"] = b.reset_cause()
out["wdt_timeout"] = machine.WDTS[0].timeout

# ---- every hot method, under heap_lock ----------------------------------------
# 1.0 V on the boiler's pin, the outlet's at the rail (open).
machine.ADCS[PIN["_PIN_BOILER_NTC"]].uv = 1000000
machine.ADCS[PIN["_PIN_OUTLET_NTC"]].uv = 3300000
IMAGE = bytes.fromhex(os.getenv("SMOKE_PODLET_HEX"))
bus = onewire.BUSES[-1]
bus.image = IMAGE
kicks0 = kick.writes
# Filled in place under heap_lock: [progress, heater on count, hz x5, raw, switches,
# present, pulses, cut-off open, on-periods of 16 at 15 nl/s * 1000 + their hz,
# hz at 4999 nl/s]
res = [0] * 14


def hot(b, res):
    res[0] = 1
    ons = 0
    for _ in range(40):
        b.heater.set(250)
        ons += ssr.out
    res[1] = ons
    b.heater.set(1500)
    b.heater.set(-3)
    res[0] = 2
    b.pump.set(20)
    res[2] = pwm.hz
    res[3] = pwm.duty
    b.pump.set(33333)
    res[4] = pwm.hz
    b.pump.set(10000000)
    res[5] = pwm.hz
    b.pump.set(0)
    res[6] = pwm.duty
    on = 0
    for _ in range(16):     # 7.5 Hz: under both ports' slowest, gated per period
        b.pump.set(15)
        if pwm.duty:
            on += 1
    res[12] = on * 1000 + pwm.hz
    b.pump.set(4999)        # 2499.5 Hz: down, never up
    res[13] = pwm.hz
    b.pump.set(0)
    res[0] = 3
    for _ in range(5):
        fire_encoder()
    res[0] = 4
    res[7] = b.boiler_ntc.read() * 10000 + b.outlet_ntc.read()
    res[8] = b.water_low.value() * 100 + b.tilt.value() * 10 + b.button.value()
    res[0] = 5
    res[9] = b.podlet.present()
    res[10] = b.pump.pulses()
    res[0] = 6
    b.watchdog.feed()
    res[0] = 7
    b.heater_cutoff.open()
    res[11] = b.heater_cutoff.is_open()
    res[0] = 100


micropython.heap_lock()
try:
    hot(b, res)
except MemoryError:
    pass
micropython.heap_unlock()
out["hot_progress"] = res[0]
out["heater_on_of_40_at_250"] = res[1]
out["keepalive_writes"] = kick.writes - kicks0
out["pump"] = res[2:7]
out["raw"] = res[7]
out["switches"] = res[8]
out["present"] = res[9]
out["pulses"] = res[10]
out["cutoff_open"] = res[11]
out["pump_duty_at_15"] = res[12]
out["pump_hz_at_4999"] = res[13]
out["relay_after_open"] = relay.value()
out["ssr_after_off"] = ssr.value()

# ---- the pump's keep-alive: one period after the last set(), under heap_lock -------------
timer = portclock.TIMERS[-1]   # the last one the board made: the pump's keep-alive
# [progress, duty: running, after a stale callback, re-armed at 60 ms and 120 ms on,
#  due at 105 ms after the last set, after the callback, set again]
ka = [0] * 8


def keepalive(b, ka):
    ka[0] = 1
    b.pump.set(5000)
    ka[1] = pwm.duty
    timer.callback(timer)   # the callback of a timer armed before this set(): stale
    ka[2] = pwm.duty
    time.sleep_ms(60)
    b.pump.set(5000)        # on time: re-armed, a period from now
    time.sleep_ms(60)
    ka[3] = 0 if timer.armed else 1
    ka[4] = pwm.duty
    time.sleep_ms(45)       # no set() for over a period: it expires, its callback stops it
    ka[5] = 0 if timer.armed else 1
    ka[6] = pwm.duty
    b.pump.set(5000)
    ka[7] = pwm.duty
    b.pump.set(0)
    ka[0] = 100


micropython.heap_lock()
try:
    keepalive(b, ka)
except MemoryError:
    pass
micropython.heap_unlock()
out["keepalive"] = ka
out["pump_timer"] = [timer.id, timer.mode, timer.period, timer.armed]

# ---- the pump through a flash operation (realboard.PumpSafeFlash), under heap_lock ----


class _Probe:
    """A block device that notes the step output's duty while each operation runs."""

    def __init__(self):
        self.duty = [-1, -1, -1]
        self.n = 0

    def readblocks(self, n, buf, off=0):
        pass

    def writeblocks(self, n, buf, off=None):
        self.duty[self.n] = pwm.duty
        self.n += 1

    def ioctl(self, op, arg):
        self.duty[self.n] = pwm.duty
        self.n += 1
        return 0


probe = _Probe()
safe = realboard.PumpSafeFlash(probe, b.pump)
page = bytearray(16)
# [progress, duty during an erase, after it, held() twice, duty during a program, after
#  a program that ended past the period, held() when the pump was off, during an erase]
fl = [0] * 9


def through_flash(b, fl):
    fl[0] = 1
    b.pump.set(5000)
    safe.ioctl(6, 0)
    fl[1] = probe.duty[0]
    fl[2] = pwm.duty
    fl[3] = b.pump.held()
    fl[4] = b.pump.held()
    portclock.advance(150000)   # the VM held 150 ms (a native call): no callback ran
    safe.writeblocks(0, page, 0)
    fl[5] = probe.duty[1]
    fl[6] = pwm.duty
    b.pump.held()
    b.pump.set(0)
    safe.ioctl(6, 1)
    fl[7] = b.pump.held()
    fl[8] = probe.duty[2]
    fl[0] = 100


micropython.heap_lock()
try:
    through_flash(b, fl)
except MemoryError:
    pass
micropython.heap_unlock()
portclock.run_pending()
out["through_flash"] = fl

# ---- the podlet's ID chip, read by fw.idchip through the board's reader ---------------


def hexed(image):
    return None if image is None else "".join("%02x" % x for x in image)


resets0 = bus.resets
out["podlet_read"] = hexed(b.podlet.read())
out["podlet_status"] = idchip.STATUS_NAMES[b.podlet.chip.status]
out["podlet_resets"] = bus.resets - resets0
bad = bytearray(IMAGE)
bad[7] ^= 0xFF
bus.image = bytes(bad)
out["podlet_bad_crc"] = hexed(b.podlet.read())
bus.image = IMAGE
bus.break_after = 40
out["podlet_bus_error"] = [hexed(b.podlet.read()), idchip.STATUS_NAMES[b.podlet.chip.status]]
bus.break_after = 0
bus.image = None
out["podlet_absent"] = [b.podlet.present(), hexed(b.podlet.read()),
                        idchip.STATUS_NAMES[b.podlet.chip.status]]

# ---- the encoder counter wraps at 2**24 ------------------------------------------
b.pump.encoder.start_at((1 << 24) - 1)
fire_encoder()
out["pulses_wrapped"] = b.pump.pulses()

# ---- a watchdog reset: the cut-off stays open -------------------------------------
machine.CAUSE[0] = machine.WDT_RESET
# A board holds one Board: the first one goes before the second is made (kept, it held
# ~7.7 KB of the budget that no board's firmware ever holds).
del b
gc.collect()
b2 = board_mod.make()
out["after_wdt"] = [b2.reset_cause(), b2.heater_cutoff.is_open(), relay.value()]

# ---- the firmware's own loop pieces, steps under heap_lock ------------------------
app = main.boot(b2)


def run_steps(b, app, n):
    errors = 0
    for _ in range(n):
        b.wait_tick()
        micropython.heap_lock()
        try:
            app.step()
        except MemoryError:
            errors += 1
        micropython.heap_unlock()
        app.service()
        b.telemetry(app)
    return errors


# App.__init__ feeds the watchdog between the files a blank flash gets (fw.app); the
# steps' feeds are counted apart from those.
out["fed_boot"] = machine.WDTS[-1].fed
erase_fed = b2.flash.fed
errors = run_steps(b2, app, int(sys.argv[1]) if len(sys.argv) > 1 else 10)
out["step_errors"] = errors
out["fed_erases"] = b2.flash.fed - erase_fed
out["fed"] = machine.WDTS[-1].fed - out["fed_boot"] - out["fed_erases"]
out["overruns"] = b2.overruns
out["clock_unset"] = b2.clock_s()
b2.set_clock_s(1767225600)  # 2026-01-01 00:00:00 UTC, a Thursday
out["rtc_datetime"] = list(machine.RTC().datetime())
out["poll"] = b2.poll_command()
# Streamed (json.dump writes piece by piece): the report needs no contiguous kilobyte
# of the board's heap, which the firmware never asks for either.
json.dump(out, sys.stdout)
print()
