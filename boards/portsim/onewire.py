"""`onewire` for the port models: the sim board's emulated DS2431 podlet chip
(boards/sim/ds2431.py, with onewire.OneWire's API) on a bus whose slots take their
time on the virtual clock, as extmod/modonewire.c bit-bangs them: a reset is
480 + 70 + 410 us (TIMING_RESET1-3), a byte eight ~70 us slots. Each slot runs with
interrupts off (mp_hal_quiet_timing_enter); between slots they are served, but the VM is
held by the native call, so callbacks wait for its end. BUSES[-1] is the board's bus."""
import portclock
from ds2431 import Ds2431Bus, OneWireError  # noqa: F401  (onewire's own exception)

_RESET_US = 960
_BYTE_US = 560

BUSES = []


class OneWire(Ds2431Bus):
    def __init__(self, pin):
        super().__init__(None)
        self.pin = pin
        self.busy_us = 0        # time spent on the bus so far
        BUSES.append(self)

    def _spend(self, us):
        self.busy_us += us
        portclock.advance(us)

    def reset(self, required=False):
        self._spend(_RESET_US)
        r = Ds2431Bus.reset(self, required)
        portclock.run_pending()
        return r

    def writebyte(self, value):
        self._spend(_BYTE_US)
        Ds2431Bus.writebyte(self, value)

    def readbyte(self):
        self._spend(_BYTE_US)
        return Ds2431Bus.readbyte(self)

    def readinto(self, buf):
        Ds2431Bus.readinto(self, buf)
        portclock.run_pending()

    def write(self, buf):
        Ds2431Bus.write(self, buf)
        portclock.run_pending()
