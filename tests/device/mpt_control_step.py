"""fw.main.control_step, the one way the loop runs the step under heap_lock, when the
step does not complete: whatever leaves it, the heap is unlocked again (service() and the
next boot allocate), and unless it completed its outputs go off and alloc_errors counts
it. An exception the step raises from an instance made before the lock keeps its type
(py/objexcept.c makes a new one only when it can allocate; a raised instance is raised
as it is, py/runtime.c mp_raise / nlr_raise), so the step's `except` must not be
MemoryError alone: before this test, a ValueError left the heap locked for good."""
import gc

from fw import main
import simkit


class _Interrupt(BaseException):
    """Not an Exception: what a KeyboardInterrupt or SystemExit is to the loop."""


def _pumping():
    b, app = simkit.make()
    assert app.start_session()
    simkit.until_pumping(b, app)
    assert b.plant.heater_pm > 0 or b.plant.pump_nl_s > 0
    return b, app


def _allocates():
    gc.collect()
    x = bytearray(64)      # fails with MemoryError if the heap is still locked
    return len(x)


def _fails_safe(b, app, step):
    """control_step of a step that does not complete: counted, outputs off, heap free."""
    errors = app.alloc_errors
    assert main.control_step(b, app, step) is False
    assert app.alloc_errors == errors + 1
    assert b.plant.heater_pm == 0 and b.plant.pump_nl_s == 0
    assert _allocates() == 64


def test_a_step_that_allocates_is_counted_and_its_outputs_go_off():
    b, app = _pumping()

    def step():
        return [1, 2, 3]   # a list: allocates
    _fails_safe(b, app, step)


def test_an_exception_made_before_the_lock_keeps_the_outputs_off_and_the_heap_unlocked():
    b, app = _pumping()
    made = ValueError("a bug in the step")

    def step():
        b.heater.set(1000)
        b.pump.set(500)
        raise made
    _fails_safe(b, app, step)


def test_a_base_exception_goes_on_up_with_the_heap_unlocked_and_the_outputs_off():
    b, app = _pumping()
    made = _Interrupt()

    def step():
        b.pump.set(500)
        raise made
    got = None
    try:
        main.control_step(b, app, step)
    except _Interrupt as e:
        got = e
    assert got is made
    assert b.plant.pump_nl_s == 0
    assert _allocates() == 64


def test_a_step_that_completes_keeps_its_outputs():
    b, app = _pumping()
    errors = app.alloc_errors
    assert main.control_step(b, app, app.step) is True
    assert app.alloc_errors == errors
    assert b.plant.heater_pm > 0 or b.plant.pump_nl_s > 0
    assert _allocates() == 64
