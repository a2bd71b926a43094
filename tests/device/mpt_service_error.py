"""fw.main.run when service() raises (a flash that fails to write, the heap run out): the
outputs go off in that same period, the fault service_error latches and ends the
session, no later step counts or pumps a dose, and the loop and the watchdog go on."""
from fw import codes
from fw import main
import board as simboard
import signed
import simkit

_EIO = 5
_IOCTL_BLOCK_ERASE = 6
_T0_S = 1795000000


def _scenario(duration_s):
    scen = simkit.scenario(duration_s=duration_s)
    scen["events"] = [
        {"t_s": 0.5, "do": "set_clock", "epoch_s": _T0_S},
        {"t_s": 1.0, "do": "insert_podlet",
         "podlet": dict(simkit.PODLET, image_hex=signed.PODLET_OK_HEX)},
        {"t_s": 3.0, "do": "start_session"},
    ]
    return scen


def _fail_writes(b, n):
    """The next n programs or erases of the board's flash fail as a failing chip's do
    (the block device answers EIO, so littlefs raises OSError); n < 0: all of them."""
    flash = b.flash
    left = [n]
    write = flash.writeblocks
    ioctl = flash.ioctl

    def failing():
        if left[0] == 0:
            return False
        if left[0] > 0:
            left[0] -= 1
        return True

    def writeblocks(block, buf, off=None):
        if failing():
            return -_EIO
        return write(block, buf, off)

    def failing_ioctl(op, arg):
        if op == _IOCTL_BLOCK_ERASE and failing():
            return -_EIO
        return ioctl(op, arg)

    flash.writeblocks = writeblocks
    flash.ioctl = failing_ioctl
    b.mount_flash()     # the filesystem takes the device's methods when it mounts


class _Watch:
    """Runs fw.main.run on a sim board to the scenario's end, arming `arm(b, app)` once
    the session has dosed dose_nl. Keeps the first service() failure with what the
    outputs were right after it was handled, and checks every later period against it
    as it goes (the heap has no room for a record of each)."""

    def __init__(self, duration_s, dose_nl, arm):
        self.b = b = simkit.board(_scenario(duration_s))
        self.armed_ms = None
        self.first = None       # (t_ms, error, plant pump_nl_s, plant heater_pm, session_nl)
        self.failures = 0
        self.at_failure = None  # (state, session_nl, plant pumped_nl) at that period's end
        self.later = 0          # periods after it
        self.bad = []           # the first few later periods that broke the rules
        self.events = []
        telemetry = b.telemetry
        emit = b.emit

        def on_telemetry(app):
            telemetry(app)
            if self.armed_ms is None:
                if app.dosing and app.session_nl >= dose_nl:
                    self.armed_ms = b.now_ms
                    arm(b, app)
                return
            if self.first is None:
                return
            p = b.plant
            if self.at_failure is None:
                self.at_failure = (app.state, app.session_nl, p.pumped_nl)
                return
            self.later += 1
            # In the fault state, nothing more counted, commanded or pumped.
            if (app.state != codes.ST_FAULT or app.session_nl != self.at_failure[1]
                    or app.pump_nl_s != 0 or p.pump_nl_s != 0
                    or p.pumped_nl != self.at_failure[2]) and len(self.bad) < 3:
                self.bad.append((b.now_ms, app.state, app.session_nl, p.pump_nl_s))

        def on_emit(record):
            if self.armed_ms is not None:
                self.events.append(record)
            emit(record)

        b.telemetry = on_telemetry
        b.emit = on_emit
        real = main.service_failed

        def service_failed(board, app, err, errors):
            real(board, app, err, errors)
            self.failures += 1
            if self.first is None:
                p = board.plant
                self.first = (board.now_ms, type(err).__name__, p.pump_nl_s, p.heater_pm,
                              app.session_nl)

        main.service_failed = service_failed
        try:
            main.run(b)
        except simboard.SimEnd:
            pass
        finally:
            main.service_failed = real
        self.app = b.app

    def named(self, event):
        return [e for e in self.events if e["event"] == event]


def test_flash_write_failure_cuts_pump_that_period_and_ends_session():
    w = _Watch(320, 20000, lambda b, app: _fail_writes(b, 1))
    b = w.b
    assert w.armed_ms is not None, "never dosed"
    assert w.failures == 1
    t_ms, error, pump_nl_s, heater_pm, counted_nl = w.first
    assert error == "OSError"
    # The period whose service() raised: its step had counted and commanded a dose; the
    # pump and heater are off before the plant moves on, and the fault is latched.
    assert (pump_nl_s, heater_pm) == (0, 0)
    assert w.at_failure[0] == codes.ST_FAULT and w.at_failure[1] == counted_nl > 0
    assert w.later > 400                             # 40 s more: the loop went on
    assert w.bad == []                               # no dose counted, commanded, pumped
    # Recorded: the error (first to the board, so the trace has it), the fault, and the
    # session's end once the flash took writes again.
    err = w.named("service_error")
    assert len(err) == 1 and err[0]["error"] == "OSError" and err[0]["count"] == 1
    assert "5" in err[0]["detail"]                   # EIO
    assert [f["code"] for f in w.named("fault_latched")] == ["service_error"]
    ended = w.named("session_ended")
    assert len(ended) == 1 and ended[0]["reason"] == "fault"
    assert ended[0]["session_ul"] * 1000 == counted_nl
    assert w.app.fault == codes.F_SERVICE_ERROR
    assert b.resets == [] and w.app.alloc_errors == 0   # no watchdog reset: it was fed


def test_flash_that_stays_broken_keeps_the_loop_safe_and_fed():
    w = _Watch(300, 10000, lambda b, app: _fail_writes(b, -1))
    assert w.armed_ms is not None, "never dosed"
    assert (w.first[2], w.first[3]) == (0, 0)
    # It fails again while the fault is recorded and the session settled; the loop
    # never stops, and nothing more is counted or pumped.
    assert w.failures >= 2
    assert w.later > 400 and w.bad == []
    assert w.b.resets == []
    err = w.named("service_error")
    assert err and err[0]["count"] == 1
    assert len(err) <= 1 + (300 - w.armed_ms // 1000) // 60   # at most one a minute
    # The fault record reached the board (the trace) though the audit append failed.
    assert [f["code"] for f in w.named("fault_latched")] == ["service_error"]


def test_memory_error_in_service_is_handled_the_same():
    def arm(b, app):
        service = app.service

        def failing_once():
            app.service = service
            raise MemoryError("memory allocation failed")
        app.service = failing_once
    w = _Watch(260, 10000, arm)
    assert w.failures == 1
    t_ms, error, pump_nl_s, heater_pm, counted_nl = w.first
    assert (error, pump_nl_s, heater_pm) == ("MemoryError", 0, 0)
    assert w.later > 100 and w.bad == []
    assert w.named("session_ended")[0]["reason"] == "fault"
    assert w.b.resets == []
