"""The firmware's main loop: boot, then one control step per period, forever."""
import gc
import time

import micropython

from fw import app as app_mod
from fw import codes


def boot(board):
    """Builds the application and records why this boot happened."""
    # The board's construction leaves garbage (a real board's remount of its flash,
    # realboard.mount_pump_safe, among it): collected first, the ledger's tables and
    # App's attribute table, the largest blocks boot asks for, find them whole.
    gc.collect()
    app = app_mod.App(board)
    cause = board.reset_cause()
    app.emit({"event": "boot", "reason": codes.RESET_NAMES[cause], "board": board.name})
    if cause == codes.RESET_WDT:
        app.emit({"event": "watchdog_reset"})
    app.end_interrupted_session(cause)
    if app.ledger_problem:
        app.emit({"event": "ledger_error", "reason": app.ledger_problem})
    elif app.ledger is not None and app.ledger.doubt:
        # A copy bad or rolled back (fw.copies): counted conservatively, and said.
        app.emit({"event": "record_doubt", "reason": app.ledger.doubt})
    problem = getattr(board, "record_problem", None)
    if problem:
        # A record the board keeps (a real board's ADC calibration) not taken.
        app.emit({"event": "record_doubt", "reason": problem})
    if not app.trust.provisioned():
        app.emit({"event": "not_provisioned"})
    app.load_profiles()
    if app.trust.marks_problem:
        app.emit({"event": "record_doubt", "reason": app.trust.marks_problem})
    radio = getattr(board, "radio", None)
    if radio is not None:
        from fw import ble
        link = ble.Link(app, radio)
        app.attach_link(link)
        if link.keys.problem:
            app.emit({"event": "record_doubt", "reason": link.keys.problem})
    return app


def run(board):
    """Runs the firmware on board until the board resets it. The control step runs
    under heap_lock on every board: a step that tries to allocate raises MemoryError,
    is counted in alloc_errors, and its outputs are forced off for that period."""
    app = boot(board)
    step = app.step
    # A board with a radio lets the host link move log sync along while it waits for
    # the next period (fw.ble.Link.pump); the board stops calling it in time for the step.
    idle = app.link.pump if app.link is not None else None
    errors = [0, 0]     # service() failures since boot, uptime_s of the last record
    while True:
        if idle is None:
            board.wait_tick()
        else:
            board.wait_tick(idle)
        control_step(board, app, step)
        try:
            app.service()
        except Exception as e:  # noqa: BLE001  (whatever it was, the loop goes on safe)
            service_failed(board, app, e, errors)
        board.telemetry(app)


def control_step(board, app, step):
    """app's control step (step: app.step, bound once by the caller: a bound method made
    here would allocate) as the loop runs it, under heap_lock. A step that allocates or
    fails is counted in alloc_errors and its outputs go off; returns True if it
    completed. The one way to run the step: run() and the limits driver
    (steamer_harness.limits_mp) call it."""
    ok = False
    micropython.heap_lock()
    try:
        t0 = time.ticks_us()
        step()
        app.step_us = time.ticks_diff(time.ticks_us(), t0)
        ok = True
    except Exception:  # noqa: BLE001
        # With the heap locked nearly every exception surfaces as MemoryError (the step
        # allocated, or failed and its exception could not be made); one raised from an
        # instance made before keeps its type. Either way this period's outputs go off,
        # and the watchdog, fed only at the end of a completed step, goes unfed.
        pass
    finally:
        # Whatever left the step (a BaseException too, which goes on up), the heap is
        # unlocked: service() and the next boot must be able to allocate.
        micropython.heap_unlock()
        if not ok:
            app.alloc_errors += 1
            board.heater.set(0)
            board.pump.set(0)
    return ok


# service_error records: the first, then at most one a minute (a flash that stays broken
# fails every period), each with the count so far.
_ERROR_EVERY_S = 60


def service_failed(board, app, err, errors):
    """service() raised (a flash commit or audit append failed, the heap ran out, a
    bug): the outputs go off now, in the period whose step commanded them; the fault
    `service_error` latches, so the session ends (its reason `fault`), no later step
    counts or pumps a dose, and only an acknowledgement once the boiler is cool clears
    it; the error is recorded if anything can still record it.

    Why the loop goes on rather than resetting the board: the step, with its
    supervisor, keeps running every period and feeding the watchdog, and in the fault
    state it commands heater and pump off every period, whatever service() does next.
    A reset would clear the latched fault (it lives in RAM) and come back idle, ready
    to start a session on the same failing flash or heap, and a failure that repeats
    at boot would reset-loop; the ledger on flash already counts every dose that was
    pumped (it is reserved before), so nothing needs the reset to be safe. The board's
    hardware keep-alives (heater 300 ms, pump one period) stay the backstop if the
    loop itself ever stops."""
    board.heater.set(0)
    board.pump.set(0)
    if app.state != codes.ST_FAULT:
        app.latch(app.sup.external(codes.F_SERVICE_ERROR))
    n = errors[0] + 1
    errors[0] = n
    now_s = app.uptime_s()
    if n > 1 and now_s - errors[1] < _ERROR_EVERY_S:
        return
    errors[1] = now_s
    try:
        gc.collect()
        # To the board first (the trace, the real boards' log), then audit and journal,
        # which are on the flash that may be what failed.
        app.emit({"event": "service_error", "error": type(err).__name__,
                  "detail": str(err), "count": n})
    except Exception:  # noqa: BLE001
        pass
