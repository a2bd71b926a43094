"""A far-future clock set locks nothing out: one set moves the wall clock at most
WALL_AHEAD_MAX_S past what the device can vouch for (`clock_clamped` otherwise), and the
owner's button hold (CLOCK_HOLD_S, idle) lets the next set move the wall clock back,
recorded (`clock_confirmed`), with the limit clock untouched."""
from fw import app as app_mod
from fw import codes
from fw import ledger
from fw import main
from podproto import logevents
import simkit

_NOW = 1795000000               # 2026-11-18: simkit's clock
_Y2099 = 4102358400             # 2099-12-31
_DAY = 86400


def _hold(b, ms):
    b.button.v = 1
    b.button_until_ms = b.now_ms + ms


def _said(b, app):
    said = []
    emit = app.emit

    def keep(rec):
        said.append(rec)
        emit(rec)
    app.emit = keep
    return said


def _events(said, name):
    return [r for r in said if r["event"] == name]


def _cut(b):
    """A power cut: the RTC lost, the firmware booted again."""
    b.clock_base_s = 0
    b.mount_flash()
    return main.boot(b)


def _reinsert(b, app):
    b.podlet.v = 0
    simkit.tick(b, app)
    b.podlet.v = 1
    simkit.tick(b, app)
    app.finish_checks()


def test_the_issues_far_future_set_locks_no_podlet_out():
    """2099-12-31, then the right time twice with a power cut between: the podlet good
    until 2030 is accepted and a session starts."""
    b, app = simkit.make()
    said = _said(b, app)
    app.set_clock(_Y2099)
    got = _events(said, "clock_clamped")
    assert got and got[-1]["asked_s"] == _Y2099, said
    assert app.wall_s() < _NOW + 400 * _DAY
    app.set_clock(_NOW + 10)
    app = _cut(b)
    app.set_clock(_NOW + 20)
    simkit.tick(b, app)
    app.finish_checks()
    assert app.podlet is not None, app.wall_s()
    assert app.start_session() is True


def test_one_set_moves_the_clock_at_most_the_bound_forward():
    b, app = simkit.make()
    said = _said(b, app)
    base = app.wall_s()
    ahead = ledger.WALL_AHEAD_MAX_S
    app.set_clock(base + ahead - 5)
    assert not _events(said, "clock_clamped") and app.wall_s() >= base + ahead - 5
    base = app.wall_s()
    app.set_clock(base + ahead + 60)
    assert _events(said, "clock_clamped")[-1]["asked_s"] == base + ahead + 60
    assert app.wall_s() <= base + 2


def test_a_device_never_set_takes_any_time_and_the_owner_can_take_it_back():
    """A new device set to 2099 (nothing to vouch for): every podlet is expired. The
    owner holds the button CLOCK_HOLD_S while idle; the next set moves the wall clock
    back, and the podlet is accepted. The limit clock did not move."""
    b = simkit.board(simkit.scenario())
    app = app_mod.App(b)
    said = _said(b, app)
    b.podlet.info = dict(simkit.PODLET, image_hex=simkit.signed.PODLET_OK_HEX)
    b.podlet.v = 1
    b.commands.append(("set_clock", _Y2099))
    simkit.tick(b, app)
    app.finish_checks()
    assert app.podlet is None and _events(said, "podlet_rejected")[-1]["reason"] == "expired"
    led = app.ledger
    app.set_clock(_NOW)                          # not confirmed: clamped to the floor
    assert app.wall_s() >= _Y2099
    floor_s, limit_s = led.floor_s, led.now_s(app.uptime_s())
    _hold(b, app_mod.CLOCK_HOLD_S * 1000 + 500)
    while b.button.v or app.button_steps:
        simkit.tick(b, app)
    assert len(_events(said, "clock_window")) == 1, said
    app.set_clock(_NOW)
    conf = _events(said, "clock_confirmed")
    assert conf and conf[-1]["asked_s"] == _NOW and conf[-1]["floor_s"] >= _Y2099, said
    assert _NOW <= app.wall_s() <= _NOW + 1
    assert led.floor_s >= floor_s and led.now_s(app.uptime_s()) >= limit_s
    # Once: the next set is bounded again.
    app.set_clock(_NOW - _DAY)
    assert app.wall_s() >= _NOW
    _reinsert(b, app)
    assert app.podlet is not None
    # And it holds across a power cut.
    app = _cut(b)
    assert _NOW <= app.wall_s() < _NOW + _DAY
    # The audit log has it, and log sync carries it whole.
    with open(b.data_dir + "/audit") as f:
        assert "clock_confirmed" in f.read()
    got = logevents.from_wire(logevents.to_wire(1, conf[-1]))
    assert got["kind"] == "clock_confirmed" and got["payload"]["asked_s"] == _NOW, got


def test_the_recovery_leaves_the_limits_as_they_were():
    """A session dosed, then the wall clock taken back by the owner: the day's doses
    and the last start still count from the limit clock."""
    b, app = simkit.make()
    assert app.start_session()
    simkit.until_pumping(b, app)
    simkit.tick(b, app, 200)
    app.stop_session()
    while app.state != codes.ST_IDLE:
        simkit.tick(b, app)
    led = app.ledger
    now = led.now_s(app.uptime_s())
    day_ul, since = led.day_ul(now), led.since_start_s(now)
    assert day_ul > 0
    _hold(b, app_mod.CLOCK_HOLD_S * 1000 + 500)
    while b.button.v or app.button_steps:
        simkit.tick(b, app)
    app.set_clock(_NOW - 300 * _DAY)
    now2 = led.now_s(app.uptime_s())
    assert now2 >= now
    assert led.day_ul(now2) == day_ul and led.since_start_s(now2) == since + now2 - now


def test_a_pairing_hold_or_a_busy_device_opens_no_clock_window():
    b, app = simkit.make()
    said = _said(b, app)
    _hold(b, 12000)                              # a long pairing hold
    while b.button.v or app.button_steps:
        simkit.tick(b, app)
    assert _events(said, "pairing_window") and not _events(said, "clock_window")
    app.set_clock(_NOW - _DAY)
    assert app.wall_s() >= _NOW and _events(said, "clock_clamped")
    # In a session the hold opens nothing either.
    assert app.start_session()
    _hold(b, app_mod.CLOCK_HOLD_S * 1000 + 500)
    while b.button.v or app.button_steps:
        simkit.tick(b, app)
    assert not _events(said, "clock_window")


def test_the_window_closes():
    b, app = simkit.make()
    said = _said(b, app)
    _hold(b, app_mod.CLOCK_HOLD_S * 1000 + 500)
    while b.button.v or app.button_steps:
        simkit.tick(b, app)
    assert _events(said, "clock_window")
    simkit.tick(b, app, app_mod.CLOCK_WINDOW_S * 10 + 10)
    app.set_clock(_NOW - _DAY)
    assert app.wall_s() >= _NOW and not _events(said, "clock_confirmed")
