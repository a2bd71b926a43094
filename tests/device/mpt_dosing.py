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
    app.reserved_nl = app.dose_limit_nl     # as if the ledger had reserved it all
    total = 0
    for _ in range(600):          # one minute
        total += app._dose()
    assert app.session_nl == 250020    # 4167 nl/s * 60 s
    assert total == 4167 * 600


def test_pump_never_passes_what_the_ledger_has_reserved():
    b, app = simkit.make()
    app.start_session()
    assert app.reserved_nl == 50 * 1000       # the first chunk, on flash before any dose
    commits = app.ledger.commits
    app.state = hal.ST_STEAMING
    app.dosing = 1
    total = 0
    for _ in range(2000):                     # no service(): nobody reserves more
        total += app._dose()
    assert app.session_nl == app.reserved_nl == 50 * 1000
    assert app.state == hal.ST_STEAMING       # paused, not ended
    app._reserve_ahead()                      # service() tops up: the next chunk, committed
    assert app.ledger.commits == commits + 1
    assert app.reserved_nl == 100 * 1000
    assert app._dose() > 0


def test_ledger_counts_what_was_reserved_after_a_power_cut():
    b, app = simkit.make()
    app.start_session()
    serial = app.session_podlet["serial"]
    app.state = hal.ST_STEAMING
    app.dosing = 1
    for _ in range(30):
        app._dose()
    delivered = app.session_nl
    # Power goes: RAM is lost, the flash keeps what was committed.
    b.mount_flash()
    from fw import ledger
    after = ledger.Ledger(b.data_dir)
    assert after.podlet_ul(serial) * 1000 >= delivered               # never less
    assert after.podlet_ul(serial) * 1000 - delivered <= 50 * 1000   # by at most a chunk
