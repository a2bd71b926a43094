"""The port models' shared state: virtual time, the soft-IRQ scheduler, and what a flash
operation blocks. machine.py, time.py, onewire.py, rp2.py and esp32.py (this folder) all
move the same clock; portrun.py hooks the world's periods and the watchdog onto it.

Time is virtual and advances only where the models say a port spends it: sleeps, flash
erases and programs, 1-Wire slots. The firmware's own bytecode costs no virtual time (an
approximation: a real step takes ~1-3 ms of a period on these chips).

The scheduler is MicroPython's (py/scheduler.c, mp_sched_schedule): a queue of
MICROPY_SCHEDULER_DEPTH entries, 8 on both ports (ports/rp2/mpconfigport.h,
ports/esp32/mpconfigport.h); a callback scheduled while it is full is lost; pending ones
run "between bytecodes", here at the next call into a model, each through the
equivalent of mp_call_function_1_protected (an exception is printed, not raised).

While a flash operation runs (rp2_flash.c begin_critical_flash_section: interrupts off;
the esp32 port: the flash cache off, so no ISR outside IRAM runs) no interrupt is
served: edges on a pin collapse into the one its IRQ latch holds, a timer's alarm waits,
and both are served when the operation ends. A peripheral that counts a pin's edges by
itself (the rp2 PWM slice: machine.RP2Regs) is no interrupt and counts on.

Everything here that the control step can reach (ticks, schedule, run_pending, Pin and
PWM calls) allocates nothing: state lives in preallocated lists and attributes.
"""
import sys

from micropython import const

SCHED_DEPTH = const(8)

# [now_us, blocked (1 while a flash operation runs), scheduled, lost (queue full),
#  edges collapsed]
NOW = [0, 0, 0, 0, 0]
_q_fun = [None] * SCHED_DEPTH
_q_arg = [None] * SCHED_DEPTH
_q = [0, 0]        # head, count

# Timers and edge sources the clock serves (machine.Timer, machine.Pin); filled at
# construction, which is never under heap_lock.
TIMERS = []
EDGE_PINS = []

# portrun.py's hooks: next_us(now_us, until_us) and on_time(now_us) at each sleep and
# after each flash operation (the world's periods that have passed, the watchdog);
# None when a model runs alone.
HOOK = [None]


def now_us():
    return NOW[0]


def schedule(fun, arg):
    """mp_sched_schedule: False when the queue is full (the callback is lost)."""
    if _q[1] == SCHED_DEPTH:
        NOW[3] += 1
        return False
    i = (_q[0] + _q[1]) & (SCHED_DEPTH - 1)
    _q_fun[i] = fun
    _q_arg[i] = arg
    _q[1] += 1
    NOW[2] += 1
    return True


def run_pending():
    """mp_handle_pending: runs what is queued, unless a flash operation holds the VM."""
    if NOW[1]:
        return
    while _q[1]:
        i = _q[0]
        fun = _q_fun[i]
        arg = _q_arg[i]
        _q_fun[i] = None
        _q_arg[i] = None
        _q[0] = (i + 1) & (SCHED_DEPTH - 1)
        _q[1] -= 1
        try:
            fun(arg)
        except Exception as e:  # noqa: BLE001  (mp_call_function_1_protected prints it)
            sys.print_exception(e)


def clear():
    """A reset: the queue, the timers and pins are gone."""
    _q[0] = 0
    _q[1] = 0
    for i in range(SCHED_DEPTH):
        _q_fun[i] = None
        _q_arg[i] = None
    TIMERS.clear()
    EDGE_PINS.clear()
    NOW[1] = 0


def _serve(to_us):
    # Interrupt sources due by to_us, in no particular order among themselves.
    blocked = NOW[1]
    for p in EDGE_PINS:
        p.edges_until(to_us, blocked)
    if not blocked:
        for t in TIMERS:
            t.expire_until(to_us)


def serve_now():
    """Interrupt sources up to now (before an output they follow changes)."""
    _serve(NOW[0])


def advance(dt_us):
    """Time passes (a native call that holds the VM: no callback runs meanwhile)."""
    to_us = NOW[0] + dt_us
    _serve(to_us)
    NOW[0] = to_us


def busy(dt_us):
    """A flash operation of dt_us: interrupts off throughout, served at its end."""
    NOW[1] = 1
    advance(dt_us)
    NOW[1] = 0
    _serve(NOW[0])
    hook = HOOK[0]
    if hook is not None:
        hook.on_time(NOW[0])
    run_pending()


def sleep_us(dt_us):
    """time.sleep_*: the VM waits, callbacks run as their interrupts come."""
    end = NOW[0] + dt_us
    hook = HOOK[0]
    while True:
        run_pending()
        nxt = end
        for t in TIMERS:
            d = t.next_due()
            if d is not None and NOW[0] < d < nxt:
                nxt = d
        for p in EDGE_PINS:
            d = p.next_edge()
            if d is not None and NOW[0] < d < nxt:
                nxt = d
        if hook is not None:
            nxt = hook.next_us(NOW[0], nxt)
        _serve(nxt)
        NOW[0] = nxt
        if hook is not None:
            hook.on_time(nxt)
        run_pending()
        if NOW[0] >= end:
            return
