"""The firmware's main loop: boot, then one control step per period, forever."""
import time

import micropython

from fw import app as app_mod
from fw import hal


def boot(board):
    """Builds the application and records why this boot happened."""
    app = app_mod.App(board)
    cause = board.reset_cause()
    app.emit({"event": "boot", "reason": hal.RESET_NAMES[cause], "board": board.name})
    if cause == hal.RESET_WDT:
        app.emit({"event": "watchdog_reset"})
    if app.ledger_problem:
        app.emit({"event": "ledger_error", "reason": app.ledger_problem})
    if not app.trust.provisioned():
        app.emit({"event": "not_provisioned"})
    app.load_profiles()
    radio = getattr(board, "radio", None)
    if radio is not None:
        from fw import ble
        app.attach_link(ble.Link(app, radio))
    return app


def run(board):
    """Runs the firmware on board until the board resets it. The control step runs
    under heap_lock on every board: a step that tries to allocate raises MemoryError,
    is counted in alloc_errors, and its outputs are forced off for that period."""
    app = boot(board)
    step = app.step
    ticks_us = time.ticks_us
    ticks_diff = time.ticks_diff
    # A board with a radio lets the host link move log sync along while it waits for
    # the next period (fw.ble.Link.pump); the board stops calling it in time for the step.
    idle = app.link.pump if app.link is not None else None
    while True:
        if idle is None:
            board.wait_tick()
        else:
            board.wait_tick(idle)
        micropython.heap_lock()
        try:
            t0 = ticks_us()
            step()
            app.step_us = ticks_diff(ticks_us(), t0)
            ok = True
        except MemoryError:
            # With the heap locked every exception surfaces as MemoryError: the step
            # allocated, or failed. Either way this period's outputs go off, and the
            # watchdog, fed only at the end of a completed step, goes unfed.
            ok = False
        micropython.heap_unlock()
        if not ok:
            app.alloc_errors += 1
            board.heater.set(0)
            board.pump.set(0)
        app.service()
        board.telemetry(app)
