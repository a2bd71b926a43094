"""Runs a real board's board.py (on fake machine and onewire) with the real firmware on
the unix port: every hot method under heap_lock, the podlet reader on an emulated ID chip,
then control steps through fw.main. Prints one JSON line of findings for
tests/boards/test_board_smoke.py. Argument: the number of steps; $SMOKE_PODLET_HEX: a
podlet image (an argument over 255 bytes crashes the unix port at startup)."""
import json
import os
import sys

# The firmware first: the unix port compiles each module from source into the heap, and
# the largest (fw.app) needs its biggest free block before the rest fragments the heap.
from fw import main
from fw import hal
from fw import idchip

import machine
import micropython
import onewire

import board as board_mod


def pin_table(path):
    """The board's `_PIN_X = const(N)` table (const names take no RAM, so read the source)."""
    table = {}
    with open(path) as f:
        for line in f:
            if line.startswith("_PIN_") and "const(" in line:
                name = line.split("=")[0].strip()
                table[name] = int(line.split("const(")[1].split(")")[0])
    return table


out = {}
PIN = pin_table(board_mod.__file__)
b = board_mod.make()
pins = machine.PINS
ssr = pins[PIN["_PIN_HEATER_SSR"]]
kick = pins[PIN["_PIN_HEATER_KEEPALIVE"]]
relay = pins[PIN["_PIN_CUTOFF_RELAY"]]
enc = pins[PIN["_PIN_PUMP_ENCODER"]]
out["pins_distinct"] = len(PIN) == len(set(PIN.values())) == 11
pwm = machine.PWMS[0]
out["relay_closed_at_boot"] = relay.v
out["reset_cause"] = b.reset_cause()
out["wdt_timeout"] = machine.WDTS[0].timeout

# ---- every hot method, under heap_lock ----------------------------------------
machine.ADCS[0].raw16 = 0xABCD
machine.ADCS[1].raw16 = 0xFFFF
IMAGE = bytes.fromhex(os.getenv("SMOKE_PODLET_HEX"))
bus = onewire.BUSES[-1]
bus.image = IMAGE
kicks0 = kick.writes
# Filled in place under heap_lock: [progress, heater on count, hz x5, raw, switches,
# present, pulses, cut-off open]
res = [0] * 12


def hot(b, res):
    res[0] = 1
    ons = 0
    for _ in range(40):
        b.heater.set(250)
        ons += ssr.v
    res[1] = ons
    b.heater.set(1500)
    b.heater.set(-3)
    res[0] = 2
    b.pump.set(16)
    res[2] = pwm.hz
    res[3] = pwm.duty
    b.pump.set(33333)
    res[4] = pwm.hz
    b.pump.set(10000000)
    res[5] = pwm.hz
    b.pump.set(0)
    res[6] = pwm.duty
    res[0] = 3
    for _ in range(5):
        enc.fire()
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
out["relay_after_open"] = relay.v
out["ssr_after_off"] = ssr.v

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
b.pump._count[0] = (1 << 24) - 1
enc.fire()
out["pulses_wrapped"] = b.pump.pulses()

# ---- a watchdog reset: the cut-off stays open -------------------------------------
machine.CAUSE[0] = machine.WDT_RESET
b2 = board_mod.make()
out["after_wdt"] = [b2.reset_cause(), b2.heater_cutoff.is_open(), relay.v]

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


errors = run_steps(b2, app, int(sys.argv[1]) if len(sys.argv) > 1 else 10)
out["step_errors"] = errors
out["fed"] = machine.WDTS[-1].fed
out["overruns"] = b2.overruns
out["clock_unset"] = b2.clock_s()
b2.set_clock_s(1767225600)  # 2026-01-01 00:00:00 UTC, a Thursday
out["rtc_datetime"] = list(machine.RTC_DT[0])
out["poll"] = b2.poll_command()
print(json.dumps(out))
