"""The Raspberry Pi Pico W board (RP2040): the board contract (device/BOARD.md) in machine objects.

Everything the control step calls (read, set, pulses, value, feed, present) moves
small ints through bound methods cached in __init__, so the step stays allocation-free
under heap_lock. Pin numbers live in the table below and nowhere else; README.md next
to this file has the wiring and the reasons behind each choice.
"""
import json
import os
import time

import machine
from machine import ADC, PWM, RTC, WDT, Pin
from micropython import const
from onewire import OneWire

from fw import config
from fw import hal

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

# ---- calibration and limits ---------------------------------------------------------
_HEATER_FULL_PM = const(1000)
_PUMP_NL_PER_PULSE = const(100)     # encoder: one pulse per 100 nl delivered
_PUMP_NL_PER_STEP = const(2)        # stepper: 2 nl per (micro)step, so step Hz = nl_s / 2
_PUMP_STEP_HZ_MAX = const(20000)    # the driver's step-input limit
_PUMP_STEP_HZ_MIN = const(8)        # the RP2040 PWM's slowest at 125 MHz (under 1 ul/min)
_PUMP_STEP_DUTY_U16 = const(32768)
_COUNT_MASK = const(0xFFFFFF)       # pulses() wraps modulo 2**24
# The RTC starts at 2021-01-01 after power-up; a reading before 2024-01-01 means unset.
_CLOCK_VALID_S = const(1704067200)
_LOG_PATH = "log.jsonl"          # relative: the working folder is / at boot
_LOG_OLD_PATH = "log.1.jsonl"
_LOG_MAX_BYTES = const(65536)       # per file; with the previous file, 128 KiB of flash
# Written to the watchdog's SCRATCH3 register when the cut-off opens: the watchdog
# scratch registers survive watchdog and soft resets and are cleared by power-on, exactly
# the cut-off's lifetime (the pico-sdk uses SCRATCH4-7 for reboots; 0-3 are free).
_WATCHDOG_SCRATCH3 = const(0x40058018)
_CUTOFF_MARK = const(0x0C0FF0FF)


class Ntc:
    """An NTC divider on an ADC1 pin, read as 12-bit counts."""

    def __init__(self, pin_no):
        # The RP2040's ADC is 12-bit, 0..3.3 V; read_u16 scales it to 16 bits.
        adc = ADC(Pin(pin_no))
        self._read_u16 = adc.read_u16

    def read(self):
        return self._read_u16() >> 4


class Heater:
    """Burst-fire through a zero-cross SSR, plus the charge-pump keep-alive.

    set() decides per control period whether the SSR conducts for that whole period,
    by error diffusion: the on-periods average exactly permille / 1000, and the SSR
    switches at a mains zero crossing by itself. The SSR's input is powered through
    a capacitor charge pump driven by the keep-alive pin: it holds for one edge every
    PERIOD_MS and drops below the SSR's turn-on voltage within 300 ms of the last edge.
    set() toggles that pin on every call, so a firmware that stops commanding the heater
    (hang, crash, reset, flash write gone wrong) turns it off in hardware, whatever
    state the SSR pin was left in.
    """

    def __init__(self, ssr_pin_no, keepalive_pin_no):
        self._ssr = Pin(ssr_pin_no, Pin.OUT, value=0).value
        self._kick = Pin(keepalive_pin_no, Pin.OUT, value=0).value
        self._acc_pm = 0
        self._kick_level = 0

    def set(self, permille):
        on = 0
        if permille > 0:
            if permille > _HEATER_FULL_PM:
                permille = _HEATER_FULL_PM
            acc = self._acc_pm + permille
            if acc >= _HEATER_FULL_PM:
                acc -= _HEATER_FULL_PM
                on = 1
            self._acc_pm = acc
        else:
            self._acc_pm = 0
        self._ssr(on)
        self._kick_level ^= 1
        self._kick(self._kick_level)


class Cutoff:
    """The second heater cut-off: a relay in series with the SSR, closed while the pin
    drives it. Once opened it stays open across watchdog and soft resets (the mark in a
    watchdog scratch register); only a power cycle clears it and lets the relay close."""

    def __init__(self, pin_no):
        self.opened = 1 if machine.mem32[_WATCHDOG_SCRATCH3] == _CUTOFF_MARK else 0
        self._drive = Pin(pin_no, Pin.OUT, value=1 - self.opened).value

    def open(self):
        # Called from the control step: a pin write and a register write, no allocation.
        self._drive(0)
        if not self.opened:
            self.opened = 1
            machine.mem32[_WATCHDOG_SCRATCH3] = _CUTOFF_MARK

    def is_open(self):
        return self.opened


class Pump:
    """A stepper-driven metering pump: the step input is a 50 % PWM whose frequency is
    the rate; an encoder on the pump head counts what it really delivered."""

    NL_PER_PULSE = _PUMP_NL_PER_PULSE

    def __init__(self, step_pin_no, encoder_pin_no):
        pwm = PWM(Pin(step_pin_no), freq=1000, duty_u16=0)
        self._freq = pwm.freq
        self._duty_u16 = pwm.duty_u16
        self._step_hz = 0
        self._count = [0]
        self._enc = Pin(encoder_pin_no, Pin.IN, Pin.PULL_UP)
        # A soft IRQ is enough at a few hundred pulses per second; the handler is the
        # bound method made once here and touches only the preallocated counter.
        self._enc.irq(handler=self._on_pulse, trigger=Pin.IRQ_RISING)

    def set(self, nl_s):
        hz = 0
        if nl_s > 0:
            hz = (nl_s + _PUMP_NL_PER_STEP // 2) // _PUMP_NL_PER_STEP
            if hz > _PUMP_STEP_HZ_MAX:
                hz = _PUMP_STEP_HZ_MAX
            elif hz < _PUMP_STEP_HZ_MIN:
                hz = _PUMP_STEP_HZ_MIN
        if hz == self._step_hz:
            return
        if hz == 0:
            self._duty_u16(0)
        else:
            self._freq(hz)
            if self._step_hz == 0:
                self._duty_u16(_PUMP_STEP_DUTY_U16)
        self._step_hz = hz

    def pulses(self):
        return self._count[0]

    def _on_pulse(self, _pin):
        count = self._count
        count[0] = (count[0] + 1) & _COUNT_MASK


class Switch:
    """A switch to ground on a pulled-up input. Float and tilt switches are wired to
    read 1 (unsafe) when their wire breaks: they close to ground while all is well."""

    def __init__(self, pin_no, closed_means):
        self._read = Pin(pin_no, Pin.IN, Pin.PULL_UP).value
        self._flip = 1 if closed_means else 0

    def value(self):
        return self._read() ^ self._flip


class PodletReader:
    """The podlet's ID chip on a 1-Wire bus."""

    def __init__(self, pin_no):
        self._reset = OneWire(Pin(pin_no)).reset

    def present(self):
        # A bus reset (about 1 ms) answered by a presence pulse means a podlet is in.
        return 1 if self._reset() else 0

    def read(self):
        # The ID chip's memory layout and signature come with the podlet format in
        # podproto, which does not exist yet. Until it does nothing is read, and the
        # firmware rejects every podlet as unreadable rather than trusting a guess.
        return None


class Board:
    name = "picow"
    PERIOD_MS = config.PERIOD_MS
    data_dir = "/data"

    def __init__(self):
        self._reset_cause = _reset_cause()
        self._rtc = RTC()
        self.ticks_ms = time.ticks_ms
        self.boiler_ntc = Ntc(_PIN_BOILER_NTC)
        self.outlet_ntc = Ntc(_PIN_OUTLET_NTC)
        self.heater = Heater(_PIN_HEATER_SSR, _PIN_HEATER_KEEPALIVE)
        self.heater_cutoff = Cutoff(_PIN_CUTOFF_RELAY)
        self.pump = Pump(_PIN_PUMP_STEP, _PIN_PUMP_ENCODER)
        # Float closed = water present; tilt closed = upright; button closed = held.
        self.water_low = Switch(_PIN_WATER_FLOAT, 0)
        self.tilt = Switch(_PIN_TILT, 0)
        self.button = Switch(_PIN_BUTTON, 1)
        self.podlet = PodletReader(_PIN_PODLET_1W)
        # The BLE host link attaches here (an object with poll() -> (name, arg) or None)
        # once the radio code lands; until then nothing outside the loop sends commands.
        self.host_link = None
        self.radio = None
        # The firmware's persistent folder on the internal littlefs (the port's default
        # filesystem, never FAT): ledger, journal, profiles, pairing keys.
        try:
            os.mkdir(self.data_dir)
        except OSError:
            pass
        self.overruns = 0
        self.log_errors = 0
        try:
            self._log_bytes = os.stat(_LOG_PATH)[6]
        except OSError:
            self._log_bytes = 0
        self._next_ms = time.ticks_add(time.ticks_ms(), config.PERIOD_MS)
        # Last: from here the loop has WATCHDOG_MS to complete its first step.
        self.watchdog = WDT(timeout=config.WATCHDOG_MS)

    def reset_cause(self):
        return self._reset_cause

    def wait_tick(self):
        left_ms = time.ticks_diff(self._next_ms, time.ticks_ms())
        if left_ms >= 0:
            time.sleep_ms(left_ms)
            self._next_ms = time.ticks_add(self._next_ms, config.PERIOD_MS)
        else:
            # Late: start this period now rather than rushing to catch up.
            self.overruns += 1
            self._next_ms = time.ticks_add(time.ticks_ms(), config.PERIOD_MS)

    def clock_s(self):
        # time.time() reads the RTC, counting from 1970 on this port.
        epoch_s = time.time()
        return epoch_s if epoch_s >= _CLOCK_VALID_S else 0

    def set_clock_s(self, epoch_s):
        t = time.gmtime(epoch_s)
        # RTC.datetime wants (year, month, day, weekday, hours, minutes, seconds, subseconds).
        self._rtc.datetime((t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0))

    def poll_command(self):
        link = self.host_link
        if link is None:
            return None
        return link.poll()

    def emit(self, record):
        """Appends the record as one JSON line to the log on the flash; when the file
        passes _LOG_MAX_BYTES it becomes the previous file and a new one starts."""
        line = '{"clock_s": %d, "up_ms": %d, %s\n' % (
            self.clock_s(), time.ticks_ms(), json.dumps(record)[1:])
        try:
            if self._log_bytes + len(line) > _LOG_MAX_BYTES:
                try:
                    os.remove(_LOG_OLD_PATH)
                except OSError:
                    pass
                os.rename(_LOG_PATH, _LOG_OLD_PATH)
                self._log_bytes = 0
            with open(_LOG_PATH, "a") as f:
                f.write(line)
            self._log_bytes += len(line)
        except OSError:
            # A full or failing flash loses the record, never the control loop.
            self.log_errors += 1

    def telemetry(self, app):
        pass


def _reset_cause():
    # The rp2 port knows two causes: machine.reset() is a watchdog reset here too, so
    # a soft reset reads as RESET_WDT (the cut-off mark survives it either way).
    if machine.reset_cause() == machine.WDT_RESET:
        return hal.RESET_WDT
    return hal.RESET_POWER


def make():
    return Board()
