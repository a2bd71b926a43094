"""The Raspberry Pi Pico W board (RP2040): the board contract (device/BOARD.md) from
machine objects.

What is particular to this board lives here: the pin table (here and nowhere else), the
PWM's slowest rate, where the cut-off's mark survives a reset, and the reset causes. The
rest is boards/common/realboard.py. README.md next to this file has the differences from
the ESP32-C3 board.
"""
import machine
import rp2
from machine import ADC, RTC, Pin
from micropython import const

import realboard
from fw import codes

# ---- pins (Pico W; GP23-25 and GP29 belong to the CYW43 radio) ----------------------------
_PIN_BOILER_NTC = const(26)     # ADC0
_PIN_OUTLET_NTC = const(27)     # ADC1
_PIN_HEATER_SSR = const(2)
_PIN_HEATER_KEEPALIVE = const(3)
_PIN_CUTOFF_RELAY = const(4)
_PIN_PUMP_STEP = const(5)       # PWM slice 2 B; no other pin uses slice 2
_PIN_PUMP_ENCODER = const(6)
_PIN_PODLET_1W = const(7)
_PIN_WATER_FLOAT = const(8)
_PIN_TILT = const(9)
_PIN_BUTTON = const(10)

# The RP2040 PWM's slowest at 125 MHz (ports/rp2/machine_pwm.c: div16 < 256 * 16 means
# over ~7.45 Hz); slower rates are gated per period (realboard.Pump).
_PUMP_STEP_HZ_MIN = const(8)
_PUMP_TIMER_ID = const(-1)          # the pump's keep-alive: the port has only virtual timers
# Written to the watchdog's SCRATCH3 register when the cut-off opens: the watchdog
# scratch registers survive watchdog and soft resets and are cleared by power-on, exactly
# the cut-off's lifetime (the pico-sdk uses SCRATCH4-7 for reboots; 0-3 are free).
_WATCHDOG_SCRATCH3 = const(0x40058018)
_CUTOFF_MARK = const(0x0C0FF0FF)


def _ntc(pin_no):
    # The RP2040's ADC is 12-bit over 0..3.3 V, no attenuation to choose.
    return realboard.Ntc(ADC(Pin(pin_no)))


class _ScratchMark:
    def is_set(self):
        return machine.mem32[_WATCHDOG_SCRATCH3] == _CUTOFF_MARK

    def set(self):
        # From the control step: a register write, no allocation.
        machine.mem32[_WATCHDOG_SCRATCH3] = _CUTOFF_MARK


class Board(realboard.Board):
    name = "picow"
    # ports/rp2/modules/_boot.py: littlefs on rp2.Flash() with 256-byte programs.
    LFS_KW = {"progsize": 256}

    def flash_device(self):
        return rp2.Flash()

    def __init__(self):
        self.boiler_ntc = _ntc(_PIN_BOILER_NTC)
        self.outlet_ntc = _ntc(_PIN_OUTLET_NTC)
        self.heater = realboard.Heater(_PIN_HEATER_SSR, _PIN_HEATER_KEEPALIVE)
        self.heater_cutoff = realboard.Cutoff(_PIN_CUTOFF_RELAY, _ScratchMark())
        self.pump = realboard.Pump(_PIN_PUMP_STEP, _PIN_PUMP_ENCODER, _PUMP_TIMER_ID,
                                   _PUMP_STEP_HZ_MIN)
        # Float closed = water present; tilt closed = upright; button closed = held.
        self.water_low = realboard.Switch(_PIN_WATER_FLOAT, 0)
        self.tilt = realboard.Switch(_PIN_TILT, 0)
        self.button = realboard.Switch(_PIN_BUTTON, 1)
        self.podlet = realboard.PodletReader(_PIN_PODLET_1W)
        realboard.Board.__init__(self, _reset_cause(), RTC())


def _reset_cause():
    # The rp2 port knows two causes: machine.reset() is a watchdog reset here too, so
    # a soft reset reads as RESET_WDT (the cut-off mark survives it either way).
    if machine.reset_cause() == machine.WDT_RESET:
        return codes.RESET_WDT
    return codes.RESET_POWER


def maintenance_requested():
    """The maintenance gesture on this board's button (realboard.maintenance_requested)."""
    return realboard.maintenance_requested(_PIN_BUTTON, 1)


def make():
    return Board()
