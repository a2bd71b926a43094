"""The parts every real board shares: the board contract (device/BOARD.md) built from
`machine` objects, with the pins and the chip-specific pieces left to each board's board.py.

A board's board.py subclasses Board: its __init__ builds the sensors, heater, cut-off,
pump, switches and podlet reader from this module's classes and its own pin table, then
calls Board.__init__, which does the rest (clock, decision log, data folder) and starts
the watchdog last. `steamer dev build` ships this module next to board.mpy.

Everything the control step calls (read, set, pulses, value, feed, present) moves small
ints through bound methods cached in __init__, so the step stays allocation-free under
heap_lock.
"""
import json
import os
import time

import vfs
from machine import PWM, WDT, Pin, Timer
from micropython import const
from onewire import OneWire

from fw import config
from fw.idchip import IdChip

_HEATER_FULL_PM = const(1000)
_PUMP_NL_PER_PULSE = const(100)     # encoder: one pulse per 100 nl delivered
_PUMP_NL_PER_STEP = const(2)        # stepper: 2 nl per (micro)step, so step Hz = nl_s / 2
_PUMP_STEP_HZ_MAX = const(20000)    # the driver's step-input limit
_PUMP_STEP_DUTY_U16 = const(32768)
_PUMP_STALE_MS = const(50)      # half a period: see Pump._on_expire
_COUNT_MASK = const(0xFFFFFF)       # pulses() wraps modulo 2**24
# Both ports' RTCs start before 2024-01-01 after power-up: an earlier reading means unset.
_CLOCK_VALID_S = const(1704067200)
_UNIX_2000_S = const(946684800)
_LOG_PATH = "log.jsonl"          # relative: the working folder is / at boot
_LOG_OLD_PATH = "log.1.jsonl"
_LOG_MAX_BYTES = const(65536)       # per file; with the previous file, 128 KiB of flash
# NtcUv: the rail the dividers hang from (public: adccal.py's too), the highest voltage
# an ADC's read_uv() still means (the C3's 11 dB range tops at ~2.5 V, 2.375 V on a chip
# 5 % low), the counts' full scale, and a resistance past which the NTC is open.
RAIL_MV = const(3300)
_ADC_TOP_MV = const(2350)
_RAW_FULL = const(4095)
_R_MAX_OHM = const(1000000)
_PPM = const(1000000)
_HALF_PPM = const(500000)


class Ntc:
    """An NTC divider on an ADC pin, read as 12-bit counts. The board makes the ADC (its
    attenuation is the chip's business); read_u16 is scaled to 16 bits on every port."""

    def __init__(self, adc):
        self._read_u16 = adc.read_u16

    def read(self):
        return self._read_u16() >> 4


class NtcUv:
    """An NTC divider on an ADC that measures volts, not a fraction of the supply (the
    ESP32-C3 at 11 dB: ~0..2.5 V against an internal reference that differs from chip
    to chip), read with read_uv() (the chip's eFuse calibration) and turned into the
    12-bit counts of a pull-up divider ratiometric to the 3.3 V rail, which fw.ntc's
    tables expect.

    high_ohm = 0: the NTC from the pin to ground under its pull-up of table_pullup_ohm
    (counts = volts / 3.3 V). high_ohm > 0: the NTC from 3.3 V to the pin over high_ohm
    to ground, so a cold NTC's voltage stays low and the divider fits the ADC's range;
    table_pullup_ohm is the pull-up its table was made for. A reading at the top of the ADC's range says
    nothing about the NTC: it is the divider's end that means a fault (open for a
    low-side NTC, shorted for a high-side one). Integer only; every product stays under
    2**30.

    gain_ppm: this unit's correction of the reading (adccal.py, measured at the factory:
    what read_uv's eFuse calibration leaves, the rail's real voltage, the fixed
    resistor's tolerance), applied to the millivolts before they become counts; 0 is an
    uncalibrated unit. The board's load_records sets it from the record, whose bounds
    (+-4 %) keep the product small (|mV x ppm| < 2500 x 40000 = 1e8)."""

    def __init__(self, adc, high_ohm=0, table_pullup_ohm=0):
        self.read_uv = adc.read_uv
        self.high_ohm = high_ohm
        self.pullup_ohm = table_pullup_ohm
        self.gain_ppm = 0

    def read(self):
        mv = self.read_uv() // 1000
        if self.high_ohm == 0:
            if mv >= _ADC_TOP_MV:
                return _RAW_FULL
            mv += (mv * self.gain_ppm + _HALF_PPM) // _PPM
            return mv * _RAW_FULL // RAIL_MV
        if mv >= _ADC_TOP_MV:
            return 0
        if mv <= 0:
            return _RAW_FULL
        mv += (mv * self.gain_ppm + _HALF_PPM) // _PPM
        r_ohm = self.high_ohm * (RAIL_MV - mv) // mv
        if r_ohm > _R_MAX_OHM:
            return _RAW_FULL
        return _RAW_FULL - _RAW_FULL * self.pullup_ohm // (r_ohm + self.pullup_ohm)


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
    drives it. Once opened it stays open across watchdog and soft resets: `mark` (the
    board's, with is_set() and set()) remembers it in memory that only power-on clears,
    so only a power cycle lets the relay close again."""

    def __init__(self, pin_no, mark):
        self._set_mark = mark.set
        self.opened = 1 if mark.is_set() else 0
        self._drive = Pin(pin_no, Pin.OUT, value=1 - self.opened).value

    def open(self):
        # Called from the control step: a pin write and the mark's write, no allocation.
        self._drive(0)
        if not self.opened:
            self.opened = 1
            self._set_mark()

    def is_open(self):
        return self.opened


class IrqCounter:
    """The encoder's rising edges counted by a soft Pin IRQ, modulo 2**24, for a chip
    with no edge counter to use: the ESP32-C3's (its Technical Reference Manual has no
    pulse count controller, PCNT, and ports/esp32/mpconfigport.h builds
    MICROPY_PY_ESP32_PCNT only where SOC_PCNT_SUPPORTED).

    Blind while a flash operation runs: the rp2 port turns interrupts off
    (ports/rp2/rp2_flash.c begin_critical_flash_section), the ESP32-C3 its flash cache,
    and the edges meanwhile collapse into the one the IRQ latch holds; past the soft-IRQ
    scheduler's 8 entries (MICROPY_SCHEDULER_DEPTH) an edge is lost too. So it may miss
    edges unless no edge comes then: the board's PumpSafeFlash stops the pump before
    every erase and program, and MAY_MISS_EDGES is 0 on that ground."""

    MAY_MISS_EDGES = 0

    def __init__(self, pin_no):
        # One preallocated cell the handler updates; the handler is the bound method
        # made once here. A soft IRQ is enough at a few hundred pulses per second.
        self._count = [0]
        self._pin = Pin(pin_no, Pin.IN, Pin.PULL_UP)
        self._pin.irq(handler=self._on_pulse, trigger=Pin.IRQ_RISING)

    def count(self):
        return self._count[0]

    def start_at(self, n):
        """The count from n on (a test starts it near the wrap; a reset's figures)."""
        self._count[0] = n & _COUNT_MASK

    def _on_pulse(self, _pin):
        count = self._count
        count[0] = (count[0] + 1) & _COUNT_MASK


class Pump:
    """A stepper-driven metering pump: the step input is a 50 % PWM whose frequency is
    the rate (nothing under step_hz_min, a PWM's slowest); an encoder on the pump head
    counts what it really delivered.

    The PWM runs on by itself, and the firmware counts exactly one period's dose per
    set(). So, like the heater's keep-alive, each set() lets the pump run for at most
    one control period: a one-shot timer armed by set() stops the step output PERIOD_MS
    later unless the next set() re-arms it first. A period that starts late (a flash
    write with interrupts off, a collection, a hang) then delivers less than was
    counted, never more. Rates are rounded down for the same reason. Both ports latch a
    new duty at the end of the PWM cycle, so a stop and a restart leave out whole steps
    and never add one.

    A rate under the PWM's slowest (step_hz_min: the C3's LEDC fails under ~9.5 Hz and
    raises, rp2's divider under ~7.5 Hz; issue 14 item 2) is gated per period: the PWM
    runs at step_hz_min in some periods and not in others, by error diffusion, so the
    periods average the rate asked (1 ul/min is 8.3 steps/s) and freq() never sees a
    rate the port refuses, which in the control step would fail every step.

    The encoder is counted by an instance of `counter` (a class made with the pin's
    number, with count() modulo 2**24, start_at() and MAY_MISS_EDGES, as IrqCounter):
    IrqCounter unless the board has a hardware counter (boards/picow: a PWM slice).
    """

    NL_PER_PULSE = _PUMP_NL_PER_PULSE
    # Whether the dose counted from the encoder may be short of what was delivered
    # (fw.session.Sessions.counted_nl): the counter's (set in __init__). A counter that
    # is blind when edges can come would say 1: the dose counted is then never less
    # than what was commanded.
    MAY_MISS_EDGES = 1

    def __init__(self, step_pin_no, encoder_pin_no, timer_id, step_hz_min=0, counter=None):
        pwm = PWM(Pin(step_pin_no), freq=1000, duty_u16=0)
        self._freq = pwm.freq
        self._duty_u16 = pwm.duty_u16
        self._hz_min = step_hz_min
        self._gate_nl_s = step_hz_min * _PUMP_NL_PER_STEP     # nl/s at step_hz_min
        self._gate_acc = 0
        self._step_hz = 0
        self._on = 0            # stepping in the period set() started (hold() aside)
        self._held = 0          # hold() stopped it since held() was last asked
        # The keep-alive. Its callback is a soft one (the esp32 port refuses hard=True,
        # the rp2 port's Timer has no such argument): it runs between bytecodes, so at
        # once after a flash write or a native call that held the VM. The bound methods
        # are made here, once.
        self._timer = Timer(timer_id)
        self._arm = self._timer.init
        self._expire = self._on_expire
        self._until_ms = 0
        self._ticks_ms = time.ticks_ms
        # Public so a test can start it near the wrap.
        self.encoder = (counter or IrqCounter)(encoder_pin_no)
        self._count = self.encoder.count
        self.MAY_MISS_EDGES = self.encoder.MAY_MISS_EDGES

    def set(self, nl_s):
        hz = 0
        if nl_s > 0:
            hz = nl_s // _PUMP_NL_PER_STEP
            if hz > _PUMP_STEP_HZ_MAX:
                hz = _PUMP_STEP_HZ_MAX
            elif hz < self._hz_min:
                hz = self._gated(nl_s)
            else:
                self._gate_acc = 0
        else:
            self._gate_acc = 0
        if hz == 0:
            self._on = 0
            self._duty_u16(0)
            return
        # Deadline first, then the timer, then the output: whatever moment the previous
        # timer's callback runs at, it cannot stop the period being started here.
        self._until_ms = time.ticks_add(self._ticks_ms(), config.PERIOD_MS)
        self._arm(mode=Timer.ONE_SHOT, period=config.PERIOD_MS, callback=self._expire)
        if hz != self._step_hz:
            self._freq(hz)
            self._step_hz = hz
        self._on = 1
        self._duty_u16(_PUMP_STEP_DUTY_U16)

    def hold(self):
        """Stops the step output now: before a flash operation (PumpSafeFlash). A pin
        register write; no allocation, so a flash write from a collection's finaliser
        may call it too."""
        self._duty_u16(0)
        if self._on:
            self._held = 1

    def held(self):
        h = self._held
        self._held = 0
        return h

    def resume(self):
        """After the flash operation: the step output on again if the period set()
        started is still running, so a write costs the dose only its own time. Past the
        period it stays off (the keep-alive's deadline) until the next set()."""
        if self._on and time.ticks_diff(self._until_ms, self._ticks_ms()) > 0:
            self._duty_u16(_PUMP_STEP_DUTY_U16)

    def _gated(self, nl_s):
        # This period at the slowest rate, or not at all: on-periods average nl_s.
        acc = self._gate_acc + nl_s
        if acc >= self._gate_nl_s:
            self._gate_acc = acc - self._gate_nl_s
            return self._hz_min
        self._gate_acc = acc
        return 0

    def _on_expire(self, _timer):
        # A callback of a timer armed before the last set() (it fired while that set()
        # ran, its callback came after) finds the deadline a period away: it is stale.
        # Half a period of tolerance covers the two clocks' disagreement.
        if time.ticks_diff(self._ticks_ms(), self._until_ms) > -_PUMP_STALE_MS:
            self._on = 0
            self._duty_u16(0)

    def pulses(self):
        return self._count()


class Switch:
    """A switch to ground on a pulled-up input. Float and tilt switches are wired to
    read 1 (unsafe) when their wire breaks: they close to ground while all is well."""

    def __init__(self, pin_no, closed_means):
        self._read = Pin(pin_no, Pin.IN, Pin.PULL_UP).value
        self._flip = 1 if closed_means else 0

    def value(self):
        return self._read() ^ self._flip


class PodletReader:
    """The podlet's ID chip on a 1-Wire bus: present() is a bus reset (about 1 ms)
    answered by a presence pulse; read() is fw.idchip's reader on the same bus."""

    def __init__(self, pin_no):
        bus = OneWire(Pin(pin_no))
        self._reset = bus.reset
        self.chip = IdChip(bus)

    def present(self):
        return 1 if self._reset() else 0

    def read(self):
        return self.chip.read()

    def read_steps(self):
        return self.chip.read_steps()

    def read_rom(self):
        return self.chip.read_rom()


# The maintenance boot's gesture: the button held from MAINT_FROM_MS after power-on (the
# C3's ROM has long since sampled GPIO9, its BOOT strap) until MAINT_UNTIL_MS.
MAINT_FROM_MS = const(500)
MAINT_UNTIL_MS = const(1500)
_MAINT_SAMPLE_MS = const(20)


def maintenance_requested(button_pin_no, closed_means=1):
    """True when the maintenance gesture is made at power-on: the button held from
    MAINT_FROM_MS to MAINT_UNTIL_MS after boot. main.py then starts nothing (no watchdog,
    heater, pump or radio) and leaves the REPL to mpremote (`steamer dev flash`,
    `steamer mfg provision-key`). Nothing is built before the answer, so a normal boot
    only waits MAINT_FROM_MS."""
    button = Switch(button_pin_no, closed_means)
    t0 = time.ticks_ms()
    left = MAINT_FROM_MS - time.ticks_diff(time.ticks_ms(), t0)
    if left > 0:
        time.sleep_ms(left)
    while time.ticks_diff(time.ticks_ms(), t0) < MAINT_UNTIL_MS:
        if not button.value():
            return False
        time.sleep_ms(_MAINT_SAMPLE_MS)
    return True


class FilesystemError(Exception):
    """The firmware's data folder is not on littlefs: the board refuses to run."""


def mount_of(path):
    """(filesystem, mount point) of the mount where path lives (the longest mount point
    that holds it), or (None, "")."""
    found = None
    found_point = ""
    for fs, point in vfs.mount():
        inside = path == point or path.startswith(point if point.endswith("/") else point + "/")
        if inside and (found is None or len(point) > len(found_point)):
            found = fs
            found_point = point
    return found, found_point


_BLOCK_ERASE = const(6)     # MP_BLOCKDEV_IOCTL_BLOCK_ERASE (extmod/vfs.h)
# Watchdog feeds PumpSafeFlash may give before erases, per control period.
_ERASE_FEEDS = const(2)


def _not_yet():
    pass    # PumpSafeFlash's feed before the board's watchdog runs


class PumpSafeFlash:
    """The data flash as littlefs sees it, with the pump stopped before every erase and
    program (issue 14 items 4 and 5).

    While either runs no interrupt is served: the rp2 port turns them off
    (ports/rp2/rp2_flash.c, begin_critical_flash_section) and the ESP32-C3 its flash
    cache (no ISR outside IRAM runs, and the esp32 port's soft timers wait for the
    scheduler). A running pump would go on stepping with two things blind:
    - the keep-alive that stops the pump a period after its last set(): its timer's
      alarm is an interrupt, on both boards. An erase outlasts what is left of a period
      (400 ms datasheet-worst, one littlefs operation up to three), so an unheld pump
      would run past its period with no set() asking for it. This is why the Pico W
      holds it too, though its encoder is counted in hardware.
    - an IRQ-counted encoder (IrqCounter, the ESP32-C3's): its edges collapse into the
      one its latch holds. The Pico W's PWM slice counts them regardless.
    So hold() comes first: the pump stops at the end of the step in progress, and the
    operation delivers nothing past the period, nor anything an IRQ counter misses.
    After it, resume() steps on if set()'s period still runs (else the next control
    step's set() starts it again): the period's dose is short by the operation's time,
    which the dose counted from the encoder makes up (fw.session). Reads leave
    interrupts on (rp2: execute-in-place) or are short enough (C3: a few hundred us,
    under the encoder's fastest edge spacing) to lose no edge."""

    def __init__(self, bdev, pump):
        self._bdev = bdev
        self._hold = pump.hold
        self._resume = pump.resume
        self.readblocks = bdev.readblocks
        # One littlefs operation may erase two or three sectors (a new data block, a
        # directory's compaction, its split): 1.2 s at the datasheet's worst 400 ms,
        # past the 1 s watchdog, and no file-level pace can split it. So an erase is
        # fed first (feed: the board's watchdog.feed, once it runs), but only
        # feeds_left times between two control periods (Board.wait_tick refills it):
        # firmware that loops on the flash still meets the watchdog within a second
        # or three, with the pump held and the heater's keep-alive lapsed meanwhile.
        self.feed = _not_yet
        self.feeds_left = _ERASE_FEEDS
        self.fed = 0            # feeds given, for the tests and the benchmark

    def writeblocks(self, n, buf, off=None):
        # A write that raises leaves the pump held: the next set() decides.
        self._hold()
        if off is None:
            r = self._bdev.writeblocks(n, buf)
        else:
            r = self._bdev.writeblocks(n, buf, off)
        self._resume()
        return r

    def ioctl(self, op, arg):
        if op != _BLOCK_ERASE:
            return self._bdev.ioctl(op, arg)
        self._hold()
        if self.feeds_left > 0:
            self.feeds_left -= 1
            self.fed += 1
            self.feed()
        r = self._bdev.ioctl(op, arg)
        self._resume()
        return r


def mount_pump_safe(path, flash_device, pump, lfs_kw):
    """Mounts littlefs on flash_device() (the port's raw flash, the one its _boot.py
    mounted) through PumpSafeFlash in place of the mount that holds path, and returns
    the PumpSafeFlash. lfs_kw: the port's littlefs options (rp2: progsize=256, as its
    _boot.py). Nothing may have a file open on that mount. FilesystemError when path is
    not on littlefs, or when the new mount fails (the old one is put back): the board
    does not run on a flash that can blind its pump."""
    fs, point = mount_of(path)
    if not isinstance(fs, vfs.VfsLfs2):
        raise FilesystemError("%s is on %s, not littlefs: reformat the flash as littlefs"
                              % (path, "nothing" if fs is None else type(fs).__name__))
    cwd = os.getcwd()
    safe = PumpSafeFlash(flash_device(), pump)
    vfs.umount(point)
    try:
        # A block device in Python is the protocol vfs asks for (readblocks,
        # writeblocks, ioctl), not the stubs' AbstractBlockDev class.
        vfs.mount(vfs.VfsLfs2(safe, **lfs_kw), point)  # pyright: ignore[reportArgumentType]
    except OSError:
        vfs.mount(fs, point)
        os.chdir(cwd)
        raise FilesystemError("%s would not mount again" % point)
    os.chdir(cwd)
    return safe


# The radio between periods: idle() every _IDLE_SLICE_MS (a connection interval or
# less) until _IDLE_MARGIN_MS before the next period.
_IDLE_SLICE_MS = const(10)
_IDLE_MARGIN_MS = const(15)


def _radio():
    """The port's bluetooth.BLE() (NimBLE on the ESP32-C3, BTstack on the Pico W); None
    on a build without one. fw.ble.Link makes it active and advertises."""
    try:
        import bluetooth
    except ImportError:
        return None
    return bluetooth.BLE()


class Board:
    """What is left of the contract once a board has built its parts: clock, ticks, the
    decision log on flash, the data folder and the watchdog."""

    name = "real"
    PERIOD_MS = config.PERIOD_MS
    data_dir = "/data"
    # fw.app's flash work per service(): records' writes start while service() is
    # within this many ms, the rest wait for the next period. One sector erase is 45 ms
    # typical, 400 ms datasheet-worst with interrupts off (issue 14 item 6): two typical
    # or one worst a period keep service() under the heater's 300 ms keep-alive (typical)
    # and the watchdog's second (worst).
    FLASH_BUDGET_MS = 60
    # The port's littlefs options for the data flash, as its _boot.py mounts it.
    LFS_KW = {}
    pump: Pump          # made by the board's __init__ before it calls this one's

    def flash_device(self):
        """The port's raw block device under the data folder's littlefs (the one the
        port's _boot.py mounted): each board's board.py says which."""
        raise NotImplementedError("a board names its flash device")

    def __init__(self, reset_cause, rtc):
        self._reset_cause = reset_cause
        self._rtc = rtc
        self.ticks_ms = time.ticks_ms
        # The BLE host link attaches here (an object with poll() -> (name, arg) or None)
        # once the radio code lands; until then nothing outside the loop sends commands.
        self.host_link = None
        self.radio = _radio()
        # The firmware's persistent folder: ledger, journal, profiles, pairing keys,
        # mfg.pub. The ledger's safety rests on littlefs: a commit is a rename over the
        # old file, atomic there, and a power cut mid-write leaves the old ledger. FAT
        # gives neither, so a board whose flash was formatted FAT (an old image, a
        # `vfs.VfsFat.mkfs` by hand) refuses to run. Nothing has run yet: the parts were
        # built with their outputs off (SSR low, keep-alive never toggled, PWM duty 0)
        # and the watchdog is not started, so the board stays at the REPL, where the
        # flash can be reformatted, rather than resetting over and over.
        # Its flash (flash_device(): the port's raw block device) is mounted again
        # through PumpSafeFlash, so no erase or program runs with the pump on.
        self.flash = mount_pump_safe(self.data_dir, self.flash_device, self.pump,
                                     self.LFS_KW)
        try:
            os.mkdir(self.data_dir)
        except OSError:
            pass
        # Why a record of the board's own was not taken: the firmware's record_doubt.
        self.record_problem = self.load_records()
        self.overruns = 0
        self.log_errors = 0
        self._log_q = []        # log lines waiting for flash_work()
        # time.time() counts from the port's epoch: 2000 on the esp32 port, 1970 on rp2.
        self._unix_offset_s = _UNIX_2000_S if time.gmtime(0)[0] == 2000 else 0
        try:
            self._log_bytes = os.stat(_LOG_PATH)[6]
        except OSError:
            self._log_bytes = 0
        self._next_ms = time.ticks_add(time.ticks_ms(), config.PERIOD_MS)
        # Last: from here the loop has WATCHDOG_MS to complete its first step.
        self.watchdog = WDT(timeout=config.WATCHDOG_MS)
        self.flash.feed = self.watchdog.feed

    def load_records(self):
        """What the board keeps on its data folder for itself (the C3: its ADC
        calibration), loaded before anything reads a sensor; returns why a record was not
        taken, or None."""
        return None

    def reset_cause(self):
        return self._reset_cause

    def wait_tick(self, idle=None):
        self.flash.feeds_left = _ERASE_FEEDS
        # The radio's IRQs arrive on their own (BTstack scheduled, NimBLE on its task);
        # idle() (fw.ble.Link.pump) moves log sync along in slices of the wait, as the
        # sim board's does, while a margin of the period is left.
        while idle is not None and time.ticks_diff(self._next_ms, time.ticks_ms()) > _IDLE_MARGIN_MS:
            idle()
            left_ms = time.ticks_diff(self._next_ms, time.ticks_ms()) - _IDLE_MARGIN_MS
            if left_ms > 0:
                time.sleep_ms(min(left_ms, _IDLE_SLICE_MS))
        left_ms = time.ticks_diff(self._next_ms, time.ticks_ms())
        if left_ms >= 0:
            time.sleep_ms(left_ms)
            self._next_ms = time.ticks_add(self._next_ms, config.PERIOD_MS)
        else:
            # Late: start this period now rather than rushing to catch up.
            self.overruns += 1
            self._next_ms = time.ticks_add(time.ticks_ms(), config.PERIOD_MS)

    def clock_s(self):
        epoch_s = time.time() + self._unix_offset_s
        return epoch_s if epoch_s >= _CLOCK_VALID_S else 0

    def set_clock_s(self, epoch_s):
        t = time.gmtime(epoch_s - self._unix_offset_s)
        # RTC.datetime wants (year, month, day, weekday, hours, minutes, seconds, subseconds).
        self._rtc.datetime((t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0))

    def poll_command(self):
        link = self.host_link
        if link is None:
            return None
        return link.poll()

    def emit(self, record):
        """The record as one JSON line for the log on the flash, stamped now and written
        by flash_work() when service() has time for it (FLASH_BUDGET_MS)."""
        self._log_q.append('{"clock_s": %d, "up_ms": %d, %s\n' % (
            self.clock_s(), time.ticks_ms(), json.dumps(record)[1:]))

    def flash_work(self):
        """Appends the oldest waiting line to the log; when the file passes
        _LOG_MAX_BYTES it becomes the previous file and a new one starts. False when no
        line waits. fw.app.App.flash_work calls it within the period's budget."""
        q = self._log_q
        if not q:
            return False
        line = q.pop(0)
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
        return True

    def telemetry(self, app):
        pass
