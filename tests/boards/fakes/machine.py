"""A stand-in `machine` for running a real board's board.py on the unix port: it records
what the board drove and lets the test set inputs. Its methods allocate nothing, so a
board method that allocates under heap_lock is the board's fault."""
import time

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
SOFT_RESET = 5
CAUSE = [PWRON_RESET]
PINS = {}


def reset_cause():
    return CAUSE[0]


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 1
    IRQ_RISING = 1

    def __init__(self, no, mode=0, pull=None, value=None):
        self.no = no
        self.mode = mode
        self.pull = pull
        self.v = 1 if pull == Pin.PULL_UP else 0
        if value is not None:
            self.v = value
        self.writes = 0
        self.handler = None
        PINS[no] = self

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v
        self.writes += 1

    def irq(self, handler=None, trigger=0):
        self.handler = handler

    def fire(self):
        self.handler(self)


class ADC:
    ATTN_11DB = 3

    def __init__(self, pin, atten=None):
        self.pin = pin
        self.atten = atten
        self.raw16 = 0
        ADCS.append(self)

    def read_u16(self):
        return self.raw16


ADCS = []


class PWM:
    def __init__(self, pin, freq=0, duty_u16=0):
        self.pin = pin
        self.hz = freq
        self.duty = duty_u16
        PWMS.append(self)

    def freq(self, hz=None):
        if hz is None:
            return self.hz
        self.hz = hz

    def duty_u16(self, d=None):
        if d is None:
            return self.duty
        self.duty = d


PWMS = []


class WDT:
    def __init__(self, timeout=5000):
        self.timeout = timeout
        self.fed = 0
        WDTS.append(self)

    def feed(self):
        self.fed += 1


WDTS = []


class Timer:
    """A timer the test expires by hand: due() once its period has passed since init(),
    fire() as the port's scheduler would run the callback (a one-shot disarms first)."""
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id=-1):
        self.id = id
        self.mode = Timer.PERIODIC
        self.period = 0
        self.callback = None
        self.armed = False
        self.armed_ms = 0
        self.inits = 0
        TIMERS.append(self)

    def init(self, mode=1, period=-1, callback=None):
        self.mode = mode
        self.period = period
        self.callback = callback
        self.armed_ms = time.ticks_ms()
        self.armed = True
        self.inits += 1

    def deinit(self):
        self.armed = False

    def due(self):
        return self.armed and time.ticks_diff(time.ticks_ms(), self.armed_ms) >= self.period

    def fire(self):
        if self.mode == Timer.ONE_SHOT:
            self.armed = False
        self.callback(self)


TIMERS = []
RTC_MEM = [b""]


class RTC:
    def memory(self, data=None):
        if data is None:
            return RTC_MEM[0]
        RTC_MEM[0] = data

    def datetime(self, dt=None):
        if dt is not None:
            RTC_DT[0] = dt
        return RTC_DT[0]


RTC_DT = [None]


class _Mem32:
    def __init__(self):
        self.words = {0x40058018: 0}    # the watchdog scratch register the picow board uses

    def __getitem__(self, addr):
        return self.words[addr]

    def __setitem__(self, addr, v):
        self.words[addr] = v


mem32 = _Mem32()
