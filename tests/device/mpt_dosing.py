"""Dose accounting in the control step: counted before delivery, stopped at the limit."""
from fw import hal
import simkit


def _run_session(b, app, max_steps=20000):
    app.start_session()
    ended = None
    for _ in range(max_steps):
        simkit.tick(b, app)
        if app.state in (hal.ST_COOLDOWN, hal.ST_IDLE, hal.ST_FAULT):
            break
    return ended


def test_session_stops_exactly_at_max_session():
    b, app = simkit.make()
    _run_session(b, app)
    # 300 ul/min for 600 s would be 3000 ul; the profile allows 2500.
    assert app.session_nl == 2500 * 1000
    assert app.state == hal.ST_COOLDOWN


def test_podlet_removed_stops_pump_within_one_step():
    b, app = simkit.make()
    app.start_session()
    for _ in range(4000):
        simkit.tick(b, app)
        if app.dosing and app.pump_nl_s > 0:
            break
    assert app.pump_nl_s > 0
    b.podlet.v = 0
    b.podlet.info = None
    b.wait_tick()
    app.step()
    assert app.pump_nl_s == 0
    assert app.state == hal.ST_COOLDOWN


def test_remainder_carried_so_odd_rates_are_exact():
    b, app = simkit.make()
    app.start_session()
    app.dose_rate_nl_s = 4167     # 250 ul/min
    app.dosing = 1
    app.state = hal.ST_STEAMING
    app.session_limit_steps = 10 ** 6
    total = 0
    for _ in range(600):          # one minute
        total += app._dose()
    assert app.session_nl == 250020    # 4167 nl/s * 60 s
    assert total == 4167 * 600
