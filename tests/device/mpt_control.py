"""The heat controllers: bounded outputs, the model's feed-forward, the integral, no allocation."""
import micropython

from fw import control


def test_boiler_rush_is_full_power_until_the_boil_then_only_the_losses():
    rush = control.BoilerRush(400)
    rush.target_mc = 99000
    rush.reset(20000)
    assert rush.update(20000) == 1000
    assert rush.update(98999) == 1000
    hold = rush.update(99000)
    # 0.4 W/K over ~80 K is 32 W: 80 permille of a 400 W element, 32 of a 1000 W one.
    assert hold == 80
    big = control.BoilerRush(1000)
    big.target_mc = 99000
    assert big.update(99500) == 32


def _mpc(heater_w=400, target_mc=45000, outlet_mc=25000):
    ctl = control.OutletMpc(heater_w)
    ctl.target_mc = target_mc
    ctl.ambient_mc = 22000
    ctl.reset(outlet_mc)
    return ctl


def test_outlet_mpc_is_full_power_far_below_and_off_far_above():
    ctl = _mpc()
    assert ctl.update(25000) == 1000
    ctl = _mpc(outlet_mc=47500)
    assert ctl.update(47500) == 0


def test_outlet_mpc_holds_the_model_power_at_the_target():
    ctl = _mpc(outlet_mc=45000)
    out = ctl.update(45000)
    # The model: 45 C from 22 C needs ~155 W of steam (after the body's 3.1 C), plus
    # 31 W of losses: ~47 % of 400 W, ~19 % of 1000 W.
    assert 440 <= out <= 500, out
    big = _mpc(1000, outlet_mc=45000)
    assert 170 <= big.update(45000) <= 200


def test_outlet_mpc_feeds_forward_the_pumped_liquid():
    ctl = _mpc(outlet_mc=45000)
    dry = ctl.power_pm(45000)
    ctl.pump_nl_s = 5000
    wet = ctl.power_pm(45000)
    assert 28 <= wet - dry <= 36


def test_outlet_mpc_estimates_the_nozzle_ahead_of_a_rising_reading():
    ctl = _mpc(outlet_mc=38000)
    for i in range(20):     # the reading rises 2 C/s
        ctl.update(38000 + i * 200)
    # 1.5 s of sensor lag at 2 C/s: the nozzle is ~3 C ahead of the reading.
    assert 2500 <= ctl.nozzle_mc - (38000 + 19 * 200) <= 3500, ctl.nozzle_mc
    # Rising toward the target that fast, it backs off before the reading gets there.
    assert ctl.update(38000 + 20 * 200) < 600


def test_outlet_mpc_integral_learns_both_ways():
    ctl = _mpc(outlet_mc=44800)
    for _ in range(300):
        ctl.update(44800)
    high = ctl.update(44800)
    ctl = _mpc(outlet_mc=45200)
    for _ in range(300):
        ctl.update(45200)
    low = ctl.update(45200)
    plain = _mpc(outlet_mc=45000).update(45000)
    assert low < plain < high
    assert ctl.i_acc < 0


def test_outlet_mpc_allocates_nothing():
    ctl = _mpc()
    rush = control.BoilerRush(400)
    rush.target_mc = 99000
    micropython.heap_lock()
    try:
        for i in range(500):
            rush.update(20000 + i * 200)
            ctl.pump_nl_s = i * 10
            ctl.update(30000 + i * 40)
        ok = True
    except MemoryError:
        ok = False
    micropython.heap_unlock()
    assert ok


def test_outlet_mpc_tells_steam_from_the_hot_body():
    ctl = _mpc(outlet_mc=30000)
    for i in range(100):    # the body alone: 0.02 C/s
        ctl.update(30000 + i * 2)
    assert ctl.steam_seen == 0
    for i in range(10):     # steam: 2 C/s
        ctl.update(30200 + i * 200)
    assert ctl.steam_seen == 1
    ctl.reset(30000)
    assert ctl.steam_seen == 0
