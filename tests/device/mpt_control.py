"""The heat controllers: bounded outputs, anti-windup, no allocation."""
import micropython

from fw import control


def test_boiler_pid_saturates_cold_and_settles_without_windup():
    pid = control.BoilerPid()
    pid.target_mc = 99000
    pid.reset(20000)
    for _ in range(3000):   # five minutes far below the target at full output
        assert pid.update(20000) == 1000
    # Windup would keep the output high after the target is passed.
    out = 1000
    for _ in range(5):
        out = pid.update(101000)
    assert out == 0


def test_outlet_controller_ramps_and_trims_integral():
    ctl = control.OutletController()
    ctl.target_mc = 45000
    ctl.ambient_mc = 22000
    ctl.reset(25000)
    ctl.update(25000)
    assert ctl.sp_mc < 45000                      # ramps, does not jump
    for _ in range(2000):
        ctl.update(44000)
    high = ctl.update(44000)
    for _ in range(2000):
        ctl.update(46000)
    low = ctl.update(46000)
    assert high > low                             # the integral moved both ways
    assert 0 <= low <= 1000 and 0 <= high <= 1000


def test_outlet_controller_cuts_steam_far_above_setpoint():
    ctl = control.OutletController()
    ctl.target_mc = 45000
    ctl.reset(45000)
    assert ctl.update(48000) == 0


def test_feed_forward_adds_the_power_the_pump_takes():
    ctl = control.OutletController()
    ctl.target_mc = 45000
    ctl.ambient_mc = 22000
    dry = ctl.feed_forward_pm(45000)
    ctl.pump_nl_s = 5000
    wet = ctl.feed_forward_pm(45000)
    # 5 ul/s of liquid needs ~12.9 W, ~32 permille of a 400 W element.
    assert 28 <= wet - dry <= 36


def test_updates_allocate_nothing():
    pid = control.BoilerPid()
    ctl = control.OutletController()
    ctl.target_mc = 45000
    pid.target_mc = 99000
    micropython.heap_lock()
    try:
        for i in range(500):
            pid.update(20000 + i * 150)
            ctl.update(30000 + i * 30)
        ok = True
    except MemoryError:
        ok = False
    micropython.heap_unlock()
    assert ok
