"""The Raspberry Pi Pico W board (RP2040): the board contract (device/BOARD.md) from
machine objects.

What is particular to this board lives here: the pin table (here and nowhere else), the
PWM's slowest rate, the encoder counted by a PWM slice, where the cut-off's mark
survives a reset, and the reset causes. The
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
_PIN_PUMP_ENCODER = const(15)   # PWM slice 7 B, counting; no other pin can use slice 7
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
# The PWM block's registers (RP2040 datasheet 4.5): a slice's CSR, DIV, CTR and TOP;
# CSR's EN and its DIVMODE "rising edges of B" (2, bits 5:4).
_PWM_BASE = const(0x40050000)
_PWM_SLICE_STRIDE = const(0x14)
_PWM_DIV = const(0x04)
_PWM_CTR = const(0x08)
_PWM_TOP = const(0x10)
_PWM_CSR_EN = const(1)
_PWM_DIVMODE_B_RISING = const(2 << 4)
_PWM_DIV_1 = const(0x10)            # INT 1, FRAC 0: every edge counts
_PWM_CTR_MASK = const(0xFFFF)
_COUNT_MASK = const(0xFFFFFF)       # realboard.Pump.pulses() wraps modulo 2**24


def _ntc(pin_no):
    # The RP2040's ADC is 12-bit over 0..3.3 V, no attenuation to choose.
    return realboard.Ntc(ADC(Pin(pin_no)))


class _ScratchMark:
    def is_set(self):
        return machine.mem32[_WATCHDOG_SCRATCH3] == _CUTOFF_MARK

    def set(self):
        # From the control step: a register write, no allocation.
        machine.mem32[_WATCHDOG_SCRATCH3] = _CUTOFF_MARK


class PwmEdgeCounter:
    """The encoder's rising edges counted by the PWM slice whose B input its pin is, in
    hardware: in DIVMODE 2 the slice's counter advances on each rising edge of B
    (RP2040 datasheet 4.5), with no interrupt and no CPU, so it counts through a
    flash operation's interrupts-off time and never drops an edge at the encoder's few
    hundred Hz. Only an odd GPIO is a B input, and no PWM output may share its slice
    (machine.PWM would rewrite DIV and TOP).

    count() extends the 16-bit CTR in software into realboard.Pump's count modulo
    2**24: between two reads (a control period apart, a few hundred edges at most) CTR
    cannot wrap twice. Register addresses are made here once; reading them allocates
    nothing (machine.mem32 takes an int index, and CTR is a small int)."""

    MAY_MISS_EDGES = 0      # never blind: a flash operation stops the CPU, not the slice

    def __init__(self, pin_no):
        if not pin_no & 1:
            raise ValueError("GPIO%d is no PWM B input: the encoder needs an odd pin" % pin_no)
        # ports/rp2/machine_pin.c: ALT selects the function (gpio_set_function, which
        # also enables the pad's input) and sets the pull-up the encoder's output needs.
        self._pin = Pin(pin_no, Pin.ALT, Pin.PULL_UP, alt=Pin.ALT_PWM)
        base = _PWM_BASE + ((pin_no >> 1) & 7) * _PWM_SLICE_STRIDE
        self._ctr = base + _PWM_CTR
        mem32 = machine.mem32
        mem32[base] = 0                         # disabled while it is set up
        mem32[base + _PWM_DIV] = _PWM_DIV_1
        mem32[base + _PWM_TOP] = _PWM_CTR_MASK  # the full 16 bits before it wraps
        mem32[self._ctr] = 0
        mem32[base] = _PWM_DIVMODE_B_RISING | _PWM_CSR_EN
        self._mem32 = mem32
        self._last_ctr = 0
        self._count = 0

    def count(self):
        ctr = self._mem32[self._ctr]
        n = (self._count + ((ctr - self._last_ctr) & _PWM_CTR_MASK)) & _COUNT_MASK
        self._last_ctr = ctr
        self._count = n
        return n

    def start_at(self, n):
        """The count from n on (a test starts it near the wrap; a reset's figures)."""
        self._last_ctr = self._mem32[self._ctr]
        self._count = n & _COUNT_MASK


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
                                   _PUMP_STEP_HZ_MIN, PwmEdgeCounter)
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
