"""`time` for the port models: the unix port's own time module with virtual ticks and
sleeps (portclock.py), so a real board's wait_tick() and the pump's deadline run on the
clock the plant moves with. time.time() counts from the RTC model (machine.RTC), from
the port's epoch: 2000 on esp32 (ports/esp32/mpconfigport.h MICROPY_EPOCH_IS_1970 unset),
1970 on rp2. Loaded in place of the built-in module by MICROPYPATH; the built-in is
imported under it with sys.path emptied."""
import sys

import portclock

_path = list(sys.path)
_self = sys.modules.pop("time")
sys.path.clear()
import time as _real  # noqa: E402
sys.modules["time"] = _self
sys.path.extend(_path)
del _path, _self

ticks_add = _real.ticks_add
ticks_diff = _real.ticks_diff
gmtime_1970 = _real.gmtime
mktime_1970 = _real.mktime
_NOW = portclock.NOW
_UNIX_2000_S = 946684800
# [epoch offset to add to 1970-based seconds (esp32: -946684800), rtc seconds at
#  rtc_set_us, rtc_set_us]
EPOCH = [0, 0, 0]


def ticks_ms():
    return _NOW[0] // 1000


def ticks_us():
    return _NOW[0]


def ticks_cpu():
    return _NOW[0]


def sleep_ms(ms):
    if ms > 0:
        portclock.sleep_us(ms * 1000)


def sleep_us(us):
    if us > 0:
        portclock.sleep_us(us)


def sleep(s):
    portclock.sleep_us(int(s * 1000000))


def time():
    """Seconds since the port's epoch, from the RTC model."""
    return EPOCH[1] + (_NOW[0] - EPOCH[2]) // 1000000


def time_ns():
    return time() * 1000000000


def gmtime(s=None):
    if s is None:
        s = time()
    return _real.gmtime(s - EPOCH[0])


localtime = gmtime


def mktime(t):
    return _real.mktime(t) + EPOCH[0]


# The host's own clock, which no port has: portrun.py paces the virtual one to it when a
# run is served on the simulated air (--speed), so that a host's timeouts mean something.
wall_ms = _real.ticks_ms
wall_sleep_ms = _real.sleep_ms


def set_port_epoch(year):
    """2000 (esp32) or 1970 (rp2)."""
    EPOCH[0] = -_UNIX_2000_S if year == 2000 else 0
