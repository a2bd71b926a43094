"""`machine` for the port models: the esp32 (ESP32-C3) and rp2 (RP2040) ports' Pin, ADC,
PWM, Timer, WDT and RTC as the real boards' code (boards/common/realboard.py,
boards/esp32c3/board.py, boards/picow/board.py) meets them, on the virtual clock of
portclock.py. $PORTSIM_PORT picks the port ("esp32" or "rp2"); $PORTSIM_CHIP_SEED the
C3's ADC chip (its spread). portrun.py wires the pins to the plant; tests/boards drive
the models alone. Each class says which C source it follows and what it leaves out.
"""
import os

import portclock
from micropython import const

PORT = os.getenv("PORTSIM_PORT") or "rp2"
ESP32 = PORT == "esp32"

# ---- rp2 peripheral registers (machine.mem32) ----------------------------------------
# RP2040 datasheet: IO_BANK0 (2.19, GPIO) GPIOx_CTRL at 0x40014004 + 8x, FUNCSEL in bits
# 4:0 (reset 0x1f, null); PWM (4.5) at 0x40050000, per slice CSR, DIV, CTR, CC and TOP
# at +0x00..+0x10, a slice every 0x14, and EN at +0xa0 (each slice's CSR.EN in one
# word). CSR: EN bit 0, PH_CORRECT 1, A_INV 2, B_INV 3, DIVMODE 5:4 (0 free-running, 1
# B high, 2 B rising, 3 B falling). DIV: INT 11:4 (0 means 256), FRAC 3:0; reset 1.0.
_IO_BANK0_CTRL = const(0x40014004)
_GPIOS = const(30)
_FUNC_PWM = const(4)            # GPIO_FUNC_PWM
_FUNC_SIO = const(5)            # GPIO_FUNC_SIO
_FUNC_NULL = const(0x1F)
_PWM_BASE = const(0x40050000)
_PWM_SLICES = const(8)
_PWM_EN = const(0x400500A0)
# A slice's registers, in RP2Regs.regs at slice * 5 + offset // 4.
_CSR = const(0)
_DIV = const(1)
_CTR = const(2)
_TOP = const(4)
_CSR_EN = const(1)
_DIVMODE_B_RISING = const(2)

# machine.reset_cause() values: ports/esp32/modmachine.c and ports/rp2/modmachine.c
# (MP_PWRON_RESET etc. from extmod/modmachine.h).
PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5
CAUSE = [PWRON_RESET]

PINS = {}
ADCS = {}
# What the wiring drives, by pin number: input levels, ADC pin voltages (uV). A pin or
# ADC made later starts from these.
EXT = {}
PIN_UV = {}
PWMS = {}
WDTS = []
_NOW = portclock.NOW


def reset_cause():
    return CAUSE[0]


def freq():
    return 160000000 if ESP32 else 125000000


def idle():
    pass


def gpio_edge(pin_no, blocked):
    """A rising edge the wiring puts on GPIO pin_no (portrun.Encoder): through its Pin
    when one was made, else to the PWM slice alone (a pin set up by mem32 only)."""
    pin = PINS.get(pin_no)
    if pin is not None:
        pin.edge(blocked)
    elif not ESP32:
        RP2_REGS.b_edge(pin_no)


class Pin:
    """A GPIO (ports/esp32/machine_pin.c, ports/rp2/machine_pin.c). An input reads `ext`
    (what the wiring drives; a floating pulled-up pin reads 1); an output records its
    last write and when. irq() is soft on both ports as the boards use it: the edge's
    ISR calls mp_irq_handler -> mp_sched_schedule (shared/runtime/mpirq.c), and the
    handler runs from the scheduler. Edges the wiring queues (add_edges) reach the IRQ
    at their time; while a flash operation runs they collapse into one.

    rp2: a mode sets the pin's function in the IO_BANK0 model (RP2_REGS): IN, OUT and
    OPEN_DRAIN select SIO (ports/rp2/mphalport.h mp_hal_pin_input/_output), ALT the
    `alt` function (ports/rp2/machine_pin.c machine_pin_obj_init_helper:
    gpio_set_function). An edge reaches the PWM slice whose B input the pin is
    (RP2Regs.b_edge) whatever a flash operation blocks; its IRQ as above. The mode
    numbers are the model's; the boards use the names."""
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2
    if not ESP32:
        ALT = 11
        ALT_PWM = 4         # GPIO_FUNC_PWM

    def __init__(self, id, mode=-1, pull=-1, value=None, alt=-1):
        self.id = id
        self.ext = EXT.get(id, -1)
        self.out = 0
        self.mode = mode
        self.pull = pull
        self.writes = 0
        self.write_us = -10 ** 9
        self.gap_us_max = 0     # the longest time between two writes
        self.handler = None
        self.edges = []
        self.edge_i = 0
        self.latched = 0
        self.collapsed = 0
        if value is not None:
            self.out = 1 if value else 0
        if not ESP32 and mode != -1:
            RP2_REGS.set_function(id, alt if mode == Pin.ALT else _FUNC_SIO)
        PINS[id] = self

    def value(self, v=None):
        if v is None:
            if self.mode == Pin.OUT:
                return self.out
            if self.ext >= 0:
                return self.ext
            return 1 if self.pull == Pin.PULL_UP else 0
        self.out = 1 if v else 0
        now = _NOW[0]
        if self.writes and now - self.write_us > self.gap_us_max:
            self.gap_us_max = now - self.write_us
        self.writes += 1
        self.write_us = now
        portclock.run_pending()

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def irq(self, handler=None, trigger=3, hard=False):
        if hard and ESP32:
            # ports/esp32/machine_pin.c machine_pin_irq: hard IRQs are not supported.
            raise ValueError("hard IRQ is not supported")
        self.handler = handler
        if self not in portclock.EDGE_PINS:
            portclock.EDGE_PINS.append(self)

    # ---- the wiring's side -----------------------------------------------------------
    def add_edges(self, times_us):
        """Edges at these virtual times (ascending, all after the last queued): the
        clock serves them whether or not the pin has an IRQ (a PWM slice may count
        them)."""
        self.edges = self.edges[self.edge_i:] + times_us
        self.edge_i = 0
        if self not in portclock.EDGE_PINS:
            portclock.EDGE_PINS.append(self)

    def edge(self, blocked):
        """One rising edge now: to the PWM slice counting it (rp2: in hardware, so a
        flash operation blocks nothing), and to the IRQ, or into its latch while a
        flash operation runs."""
        if not ESP32:
            RP2_REGS.b_edge(self.id)
        if blocked:
            if self.latched:
                self.collapsed += 1
                _NOW[4] += 1
            self.latched = 1
        elif self.handler is not None:
            portclock.schedule(self.handler, self)

    def next_edge(self):
        if self.edge_i < len(self.edges):
            return self.edges[self.edge_i]
        return None

    def edges_until(self, to_us, blocked):
        edges = self.edges
        i = self.edge_i
        n = len(edges)
        while i < n and edges[i] <= to_us:
            i += 1
            self.edge(blocked)
        self.edge_i = i
        if not blocked and self.latched:
            self.latched = 0
            if self.handler is not None:
                portclock.schedule(self.handler, self)


# ---- ADC ----------------------------------------------------------------------------
# The C3's ADC at 11 dB: full scale ~2.5 V against its internal reference, spread per
# chip; read_uv() is the eFuse calibration's estimate. The spread (+-5 %) and the
# calibration's residual (+-0.5 %: the datasheet bounds the calibrated error at 11 dB by
# +-35 mV over 0..2500 mV, 1.4 % at the top) are approximations drawn from
# $PORTSIM_CHIP_SEED; what the unit around the chip adds (rail, resistors) is unit.py's.
# Full scale per attenuation (0, 2.5, 6, 11 dB), as the datasheet's ranges.
_C3_FULL_SCALE_UV = (750000, 1050000, 1300000, 2500000)
C3_GAIN_PPM = C3_CAL_PPM = 1000000


def draw_chip(seed):
    """The C3 chip of `seed`: its full scale's spread and its calibration's error."""
    global C3_GAIN_PPM, C3_CAL_PPM
    s = (seed * 2654435761) & 0xFFFFFFFF
    C3_GAIN_PPM = 1000000 + (s % 100001) - 50000            # the chip's full scale
    C3_CAL_PPM = 1000000 + ((s >> 17) % 10001) - 5000       # its calibration's error


draw_chip(int(os.getenv("PORTSIM_CHIP_SEED") or "1"))


class ADC:
    """An ADC channel; `uv` is the pin's voltage (the wiring sets it).

    rp2 (ports/rp2/machine_adc.c adc_config_and_read_u16): 12 bits against ADC_VREF,
    the 3.3 V supply (ratiometric), read_u16 = raw << 4 | raw >> 8; no read_uv.
    esp32 (ports/esp32/machine_adc.c mp_machine_adc_read_u16, ports/esp32/adc.c
    madcblock_read_uv_helper): 12 bits against the internal reference at the chosen
    attenuation, saturating above it; read_u16 scales the same way; read_uv is
    adc_cali_raw_to_voltage (whole mV) * 1000. Left out: the C3's non-linearity near
    both ends and the rp2's DNL spikes, noise (the plant adds its own)."""
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3
    WIDTH_12BIT = 12

    def __init__(self, pin, atten=None):
        self.pin = pin
        self.uv = PIN_UV.get(pin.id if isinstance(pin, Pin) else pin, 0)
        self.atten = atten if atten is not None else 3
        if not ESP32 and atten is not None:
            raise TypeError("unexpected keyword argument 'atten'")
        ADCS[pin.id if isinstance(pin, Pin) else pin] = self

    def _raw(self):
        uv = self.uv
        if uv < 0:
            uv = 0
        if ESP32:
            fs = _C3_FULL_SCALE_UV[self.atten]
            fs = fs * (C3_GAIN_PPM // 100) // 10000
        else:
            fs = 3300000
        raw = uv * 4095 // fs
        return 4095 if raw > 4095 else raw

    def read_u16(self):
        raw = self._raw()
        portclock.run_pending()
        return raw << 4 | raw >> 8

    def read(self):
        return self._raw()

    if ESP32:
        def read_uv(self):
            raw = self._raw()
            fs = _C3_FULL_SCALE_UV[self.atten]
            fs = fs * (C3_GAIN_PPM // 100) // 10000 * (C3_CAL_PPM // 100) // 10000
            portclock.run_pending()
            return (raw * fs // 4095) // 1000 * 1000


# ---- PWM -----------------------------------------------------------------------------
# rp2: ports/rp2/machine_pwm.c mp_machine_pwm_freq_set at clk_sys 125 MHz: the divider
# div16 must stay under 256 * 16 ("freq too small": under ~7.45 Hz) and at least 16.
_RP2_HZ = 125000000
_RP2_TOP_MAX = 65534
# esp32 (C3): ports/esp32/machine_pwm.c set_freq: APB 80 MHz, the resolution from
# find_suitable_duty_resolution (14 bits less one on the C3), then ledc_timer_config,
# whose divider (10 integer bits) fails under 80 MHz / (8192 * 1024) = 9.54 Hz: ESP_FAIL,
# raised by check_esp_err as OSError. check_freq_ranges: 1 Hz .. 40 MHz else ValueError.
_C3_APB_HZ = 80000000
_C3_DIV_MAX_X_RES = 8192 * 1024


# A figure for the benchmark: how long a PWM ran past this after its last non-zero duty
# write (the pump's control period: realboard.Pump re-writes the duty every period).
LATE_AFTER_US = 100000


class PWM:
    """A PWM output on a pin. Counts the steps (cycles) it put out while its duty was
    non-zero: a stepper's step input advances once per cycle. Left out: the duty latch
    at the end of a cycle (a stop loses at most the cycle in progress) and the
    frequency's rounding to what the divider can make.

    rp2: what ports/rp2/machine_pwm.c writes to its slice's registers (RP2_REGS), so a
    counter sharing the slice sees it: mp_machine_pwm_make_new selects the pin's PWM
    function, mp_machine_pwm_freq_set writes DIV and TOP, machine_pwm_start (after
    freq and duty) sets CSR.EN, mp_machine_pwm_deinit clears it. CC is not kept."""

    def __init__(self, pin, freq=0, duty_u16=None, duty_ns=None, invert=False):
        self.pin = pin
        self.hz = 0
        self.duty = 0
        self.since_us = _NOW[0]
        self.acc = 0            # Hz * us, for the steps under way
        self.steps = 0          # steps put out so far
        self.on_us = 0          # the last non-zero duty write
        self.late_us = 0        # time it ran more than LATE_AFTER_US after that write
        self.late_steps = 0
        no = pin.id if isinstance(pin, Pin) else pin
        self.slice = (no >> 1) & 7
        if freq:
            self.freq(freq)
        if duty_u16 is not None:
            self.duty_u16(duty_u16)
        if not ESP32:
            RP2_REGS.set_function(no, _FUNC_PWM)
        PWMS[no] = self

    def settle(self):
        portclock.serve_now()       # what follows this output (an encoder) sees it so far
        now = _NOW[0]
        if self.duty and self.hz:
            self.acc += self.hz * (now - self.since_us)
            whole = self.acc // 1000000
            self.steps += whole
            self.acc -= whole * 1000000
            # Steps past a period after the last duty write (the pump's keep-alive).
            late_from = self.on_us + LATE_AFTER_US
            if now > late_from:
                self.late_us += now - (late_from if late_from > self.since_us else self.since_us)
                self.late_steps = self.late_us * self.hz // 1000000
        self.since_us = now

    def freq(self, hz=None):
        if hz is None:
            return self.hz
        if ESP32:
            if hz <= 0 or hz > _C3_APB_HZ // 2:
                raise ValueError("frequency must be from 1Hz to 40MHz")
            if hz * _C3_DIV_MAX_X_RES < _C3_APB_HZ:
                raise OSError(-1)       # ESP_FAIL from ledc_timer_config
        else:
            if hz <= 0:
                raise ValueError("freq too small")
            if (_RP2_HZ + hz // 2) // hz < _RP2_TOP_MAX:
                div16 = 16
            else:
                d = _RP2_TOP_MAX * hz
                div16 = (16 * _RP2_HZ + d - 1) // d
            if div16 >= 256 * 16:
                raise ValueError("freq too small")
            if hz > _RP2_HZ // 2:
                raise ValueError("freq too large")
            if div16 == 16:
                top = (_RP2_HZ + hz // 2) // hz - 1
            else:
                top = (16 * _RP2_HZ + div16 * hz // 2) // (div16 * hz) - 1
            RP2_REGS.regs[5 * self.slice + _DIV] = div16
            RP2_REGS.regs[5 * self.slice + _TOP] = top
        self.settle()
        self.hz = hz
        portclock.run_pending()

    def duty_u16(self, d=None):
        if d is None:
            return self.duty
        if d < 0 or d > 65535:
            raise ValueError("duty_u16 must be from 0 to 65535")
        self.settle()
        self.duty = d
        if d:
            self.on_us = _NOW[0]
        if not ESP32 and self.hz:
            RP2_REGS.regs[5 * self.slice] |= _CSR_EN
        portclock.run_pending()

    def deinit(self):
        self.duty_u16(0)
        if not ESP32:
            RP2_REGS.regs[5 * self.slice] &= ~_CSR_EN


# ---- Timer ---------------------------------------------------------------------------
class Timer:
    """A timer whose callback is scheduled (soft) when it expires: ports/esp32/
    machine_timer.c (hardware timers 0..1 on the C3; the ISR calls mp_sched_schedule
    unless hard=True), ports/rp2/machine_timer.c (virtual timers only, id -1, on the
    soft-timer alarm; mp_irq_dispatch schedules unless hard). An alarm that comes
    during a flash operation waits for its end. Left out: the esp32 virtual timer's
    10 ms FreeRTOS tick."""
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id=-1, **kw):
        if ESP32 and id not in (-1, 0, 1):
            raise ValueError("Timer(%d) doesn't exist, there are only 2 hardware timers" % id)
        if not ESP32 and id != -1:
            raise ValueError("Timer doesn't exist")
        self.id = id
        self.mode = Timer.PERIODIC
        self.period = 0
        self.callback = None
        self.armed = False
        self.due_us = 0
        self.inits = 0
        portclock.TIMERS.append(self)
        if kw:
            self.init(**kw)

    def init(self, mode=1, period=-1, callback=None, freq=None, tick_hz=1000, hard=False):
        self.mode = mode
        self.period = period
        self.callback = callback
        self.due_us = _NOW[0] + period * 1000
        self.armed = True
        self.inits += 1
        portclock.run_pending()

    def deinit(self):
        self.armed = False

    def next_due(self):
        return self.due_us if self.armed else None

    def expire_until(self, to_us):
        while self.armed and self.due_us <= to_us:
            if self.mode == Timer.ONE_SHOT:
                self.armed = False
            else:
                self.due_us += self.period * 1000
            if self.callback is not None:
                portclock.schedule(self.callback, self)


# ---- WDT -------------------------------------------------------------------------------
class WDT:
    """The watchdog: started by its constructor, fed by feed(), never stopped (no
    deinit on either port: ports/esp32/machine_wdt.c, ports/rp2/machine_wdt.c, whose
    timeout is at most 8388 ms). The bite is portrun.py's: it resets the process's
    board with the same flash and reset_cause() WDT_RESET."""

    def __init__(self, id=0, timeout=5000):
        if id != 0:
            raise ValueError("WDT(%d) doesn't exist" % id)
        if not ESP32 and timeout > 8388:
            raise ValueError("timeout exceeds 8388")
        if timeout <= 0:
            raise ValueError("WDT timeout too short")
        self.timeout = timeout
        self.fed_us = _NOW[0]
        self.fed = 0
        self.gap_us_max = 0     # the longest time between two feeds (or start and feed)
        WDTS.append(self)

    def feed(self):
        now = _NOW[0]
        if now - self.fed_us > self.gap_us_max:
            self.gap_us_max = now - self.fed_us
        self.fed_us = now
        self.fed += 1

    def overdue_us(self, now_us):
        return now_us - self.fed_us - self.timeout * 1000


def watchdog_bitten(now_us):
    """True when a started watchdog has gone unfed past its timeout."""
    for w in WDTS:
        if w.overdue_us(now_us) > 0:
            return True
    return False


# ---- RTC ---------------------------------------------------------------------------------
# RTC user memory (esp32 only: ports/esp32/machine_rtc.c, RTC_NOINIT): survives every
# reset but power-on; rp2's watchdog scratch registers likewise (mem32 below).
RTC_MEM = [b""]


class RTC:
    def datetime(self, dt=None):
        import time
        if dt is None:
            t = time.gmtime()
            return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)
        s = time.mktime((dt[0], dt[1], dt[2], dt[4], dt[5], dt[6], 0, 0))
        time.EPOCH[1] = s
        time.EPOCH[2] = _NOW[0]

    if ESP32:
        def memory(self, data=None):
            if data is None:
                return RTC_MEM[0]
            RTC_MEM[0] = data


# ---- rp2 peripheral registers (machine.mem32, the constants above) ----------------
class RP2Regs:
    """The RP2040's IO_BANK0 function selects and its 8 PWM slices as registers, for
    what a board does with them through mem32: a slice in DIVMODE 2 counts the rising
    edges of its B pin (odd GPIO n: slice (n >> 1) & 7) through its divider, wrapping
    from TOP to 0, once the slice is enabled and the pin's FUNCSEL is PWM; the PWM block
    runs without the CPU, so it counts through a flash operation. The free-running and
    level-gated modes are machine.PWM's (its steps) or not modelled: reading CTR of a
    slice enabled in one raises, as do PH_CORRECT and the inversions in DIVMODE 2.
    Storage is preallocated lists: an edge or a read from the control step allocates
    nothing."""

    def __init__(self):
        self.funcsel = [_FUNC_NULL] * _GPIOS
        self.regs = [0] * (5 * _PWM_SLICES)
        self.frac16 = [0] * _PWM_SLICES     # the divider's count toward the next step
        self.reset()

    def reset(self):
        """Every reset the boards see (a watchdog reset restarts the peripherals)."""
        for n in range(_GPIOS):
            self.funcsel[n] = _FUNC_NULL
        for s in range(_PWM_SLICES):
            for r in range(5):
                self.regs[5 * s + r] = 0
            self.regs[5 * s + _DIV] = 16
            self.regs[5 * s + _TOP] = 0xFFFF
            self.frac16[s] = 0

    def set_function(self, pin_no, func):
        """gpio_set_function (the port's Pin and PWM constructors)."""
        if 0 <= pin_no < _GPIOS:
            self.funcsel[pin_no] = func

    def b_edge(self, pin_no):
        """A rising edge on GPIO pin_no."""
        if not pin_no & 1 or pin_no >= _GPIOS or self.funcsel[pin_no] != _FUNC_PWM:
            return
        s = (pin_no >> 1) & 7
        regs = self.regs
        csr = regs[5 * s]
        if not csr & _CSR_EN or (csr >> 4) & 3 != _DIVMODE_B_RISING:
            return
        div16 = regs[5 * s + _DIV]
        if div16 < 16:
            div16 += 256 * 16
        acc = self.frac16[s] + 16
        if acc < div16:
            self.frac16[s] = acc
            return
        self.frac16[s] = acc - div16
        c = regs[5 * s + _CTR] + 1
        regs[5 * s + _CTR] = 0 if c > regs[5 * s + _TOP] else c

    def read(self, a):
        if _IO_BANK0_CTRL <= a < _IO_BANK0_CTRL + 8 * _GPIOS and not (a - _IO_BANK0_CTRL) & 7:
            return self.funcsel[(a - _IO_BANK0_CTRL) >> 3]
        regs = self.regs
        if a == _PWM_EN:
            en = 0
            for s in range(_PWM_SLICES):
                en |= (regs[5 * s] & _CSR_EN) << s
            return en
        i = self._index(a)
        csr = regs[i - i % 5]
        if i % 5 == _CTR and csr & _CSR_EN and (csr >> 4) & 3 != _DIVMODE_B_RISING:
            raise ValueError("portsim: CTR of slice %d outside DIVMODE 2 is not modelled"
                             % (i // 5))
        return regs[i]

    def write(self, a, v):
        if _IO_BANK0_CTRL <= a < _IO_BANK0_CTRL + 8 * _GPIOS and not (a - _IO_BANK0_CTRL) & 7:
            # OUTOVER, OEOVER, INOVER and IRQOVER (bits 8-29) are not modelled: 0, normal.
            if v & ~0x1F:
                raise ValueError("portsim: GPIO_CTRL overrides are not modelled")
            self.funcsel[(a - _IO_BANK0_CTRL) >> 3] = v
            return
        regs = self.regs
        if a == _PWM_EN:
            for s in range(_PWM_SLICES):
                regs[5 * s] = (regs[5 * s] & ~_CSR_EN) | ((v >> s) & 1)
            return
        i = self._index(a)
        r = i % 5
        if r == _CSR:
            if (v >> 4) & 3 == _DIVMODE_B_RISING and v & 0xE:
                raise ValueError("portsim: DIVMODE 2 with PH_CORRECT or an inversion "
                                 "is not modelled")
            v &= 0xFF
        elif r == _DIV:
            v &= 0xFFF
        elif r != 3:            # CTR and TOP: 16 bits; CC holds both channels' levels
            v &= 0xFFFF
        regs[i] = v

    def _index(self, a):
        off = a - _PWM_BASE
        if off < 0 or off >= 5 * 4 * _PWM_SLICES:
            raise ValueError("portsim: mem32 at 0x%08x is not modelled" % a)
        return off >> 2


RP2_REGS = RP2Regs()


class _Mem32:
    """machine.mem32 for the rp2 registers a board touches: the watchdog's scratch
    registers (0x4005800c-0x40058028), IO_BANK0's function selects and the PWM slices
    (RP2Regs), addressed as unsigned or as signed 32-bit."""

    def __init__(self):
        # Preallocated: a write from the control step must not grow the dict.
        self.words = {a: 0 for a in range(0x4005800C, 0x4005802C, 4)}

    def _addr(self, a):
        a &= 0xFFFFFFFF
        if a & 3:
            # extmod/machine_mem.c machine_mem_get_addr
            raise ValueError("address %08x is not aligned to 4 bytes" % a)
        return a

    def __getitem__(self, a):
        a = self._addr(a)
        if 0x4005800C <= a <= 0x40058028:
            return self.words[a]
        return RP2_REGS.read(a)

    def __setitem__(self, a, v):
        a = self._addr(a)
        if 0x4005800C <= a <= 0x40058028:
            self.words[a] = v & 0xFFFFFFFF
        else:
            RP2_REGS.write(a, v & 0xFFFFFFFF)


mem32 = _Mem32()


class BootReset(BaseException):
    """machine.reset(): raised to portrun.py, which boots the board again."""


def reset():
    raise BootReset()


def soft_reset():
    raise BootReset()


def unique_id():
    return b"\x00\x01\x02\x03\x04\x05\x06\x07"


def _rtc_at_boot():
    # What a chip's boot sets the RTC to. rp2: main() starts the always-on timer at
    # 2021-01-01 00:00:00 before anything else, at every boot of the chip (ports/rp2/
    # main.c: aon_timer_start, ahead of the soft-reset loop, so Ctrl-D keeps the time).
    # esp32: time.time() is gettimeofday()'s seconds (ports/esp32/modtime.c), from 0 (the
    # port's epoch, 2000-01-01) at power-on; ESP-IDF keeps the system time in the RTC
    # domain through the digital resets (watchdog, machine.reset()), not a power-off.
    import time
    time.EPOCH[1] = 0 if ESP32 else time.mktime((2021, 1, 1, 0, 0, 0, 0, 0))
    time.EPOCH[2] = _NOW[0]


def power_on():
    """Power-on (portrun.py): what survives only a reset is cleared, the RTC among it."""
    RTC_MEM[0] = b""
    for a in mem32.words:
        mem32.words[a] = 0
    reset_state(PWRON_RESET)
    _rtc_at_boot()


def chip_reset(cause):
    """A reset that boots the chip again (the watchdog's): as reset_state, and on rp2
    the RTC back to 2021-01-01 (_rtc_at_boot); the esp32's runs on."""
    reset_state(cause)
    if not ESP32:
        _rtc_at_boot()


def reset_state(cause):
    """A reset of cause: peripherals back to their reset state, RAM lost."""
    CAUSE[0] = cause
    RP2_REGS.reset()
    PINS.clear()
    ADCS.clear()
    PWMS.clear()
    WDTS.clear()
    portclock.clear()
