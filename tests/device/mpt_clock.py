"""The wall clock's floor in the ledger: it moves on with the limit clock at every commit,
survives a power cut as committed, is never ahead of the device's own clock, and a
decision made on the wall time (a podlet's expiry) is recorded before it is made."""
from fw import codes
from fw import ledger
from fw import main
import simkit

_E = 1795046340                 # 2026-11-18 23:59:00 UTC
_DAY = 9818                     # 2026-11-18 in days since 2000-01-01


def _ledger():
    b = simkit.board(simkit.scenario())
    return b, ledger.Ledger(b.data_dir)


def test_the_wall_floor_moves_on_with_the_limit_clock_at_each_commit():
    b, led = _ledger()
    assert led.see_wall(_E, 5) == _E            # seen at 5 s: surely true from 6 s
    assert led.wall_floor_s == _E
    led.commit(led.now_s(100))
    assert led.wall_floor_s == _E + 94
    assert led.wall_s(led.now_s(110)) == _E + 104
    # A power cut: what was committed, and from a second after the floor on.
    after = ledger.Ledger(b.data_dir)
    assert after.floor_s == 100 and after.wall_floor_s == _E + 94
    assert after.wall_s(after.now_s(0)) == _E + 94
    assert after.wall_s(after.now_s(10)) == _E + 94 + 9
    # A set below the recorded floor is clamped to it and records nothing new.
    commits = after.commits
    assert after.see_wall(_E, 10) == _E + 94
    assert after.commits == commits


def test_the_recorded_wall_is_never_ahead_of_the_devices_clock():
    """The clock set a fraction of a second into a second (simkit sets it at the first
    period), then a session's commits: whole seconds of the two clocks must not add up
    to a floor past what the device's clock reads, or the next set of the same time
    would be clamped forward."""
    b, app = simkit.make(water_ml=60)
    led = app.ledger
    app.start_session()
    commits = led.commits
    for _ in range(3000):
        simkit.tick(b, app)
        now = led.now_s(app.uptime_s())
        assert led.wall_floor_s <= b.clock_s(), (led.wall_floor_s, b.clock_s())
        assert led.wall_s(now) <= b.clock_s(), (led.wall_s(now), b.clock_s())
    assert led.commits > commits + 10
    # And it kept up: within a second or two of the clock at the last commit.
    assert led.wall_floor_s >= b.clock_s() - (led.now_s(app.uptime_s()) - led.floor_s) - 2


def test_an_expiry_decided_on_the_devices_clock_is_recorded_before_it_is_said():
    """The clock set at 23:59, the podlet inserted at 00:02: refused as expired, and the
    time it was refused at is on flash before the decision is. After a power cut the
    device's clock can no longer be set back into the podlet's last day."""
    b, app = simkit.make()
    app.set_clock(_E)
    # Out, and the world moves on 3 minutes: no commit in between (nothing happens).
    b.podlet.v = 0
    b.podlet.info = None
    simkit.tick(b, app)
    commits = app.ledger.commits
    b.now_ms += 180000
    b.watchdog.fed_ms = b.now_ms
    app.set_steps(app.steps() + 1800)
    b.podlet.info = dict(simkit.PODLET, image_hex=simkit.signed.PODLET_OK_HEX)
    b.podlet.v = 1
    app.trust.podlet_date = lambda pod, wall_s, date=app.trust.podlet_date: date(
        dict(pod, expiry_day=_DAY), wall_s)       # the podlet's last day: 2026-11-18
    said = []
    app.emit = lambda rec, emit=app.emit: said.append(
        (rec["event"], rec.get("reason"), app.ledger.wall_floor_s)) or emit(rec)
    simkit.tick(b, app)
    app.finish_checks()
    assert said == [("podlet_rejected", "expired", _E + 180)], said
    assert app.ledger.commits == commits + 1
    # Power cut: the RTC is lost, the host sets 23:59 again and is clamped.
    app = None
    b.clock_base_s = 0
    b.mount_flash()
    app = main.boot(b)
    app.set_clock(_E)
    assert b.clock_s() >= _E + 180
