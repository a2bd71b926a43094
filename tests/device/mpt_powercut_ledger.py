"""The dosing ledger under a power cut at every flash write: after the boot the flash
mounts and the ledger is the one before or the one after the commit that was cut, so
nothing reserved (and so perhaps delivered) is forgotten and the limit clock's floor
never goes back."""
import gc

from fw import codes
from fw import ledger
from fw import main
import hashlib

import powercut
import simkit

_T0_S = 1795000000


def _state(led):
    """What the ledger holds: clocks, day entries, and the podlets (least recently used
    first) as a digest and, for the bounds, a dict of those the sequence uses."""
    h = hashlib.sha256()
    watched = {}
    for serial, ul in led.podlet_items():
        h.update("%s %d\n" % (serial, ul))
        if serial in _watch:
            watched[serial] = ul
    return (led.floor_s, led.wall_floor_s, led.last_start_s, led.day_entries(), h.digest(),
            watched)


_watch = set()


def _observe(s):
    return _state(s.led) if hasattr(s, "led") else None


def _day_ul(state, now_s):
    return sum(ul for t, ul in state[3] if t > now_s - ledger.DAY_S)


def _total(state):
    return sum(state[5].values())


def _boot(s):
    s.led = ledger.Ledger(s.dir)


def _at(uptime_s, op, *args):
    """A step: op on the ledger at uptime_s since this boot (on the limit clock)."""
    def step(s):
        led = s.led
        getattr(led, op)(*(args + (led.now_s(uptime_s),)))
    return step


def _check(s, done, seen):
    before, after = seen[done], seen[done + 1]
    led = ledger.Ledger(s.dir)
    got = _state(led)
    # Committed whole: the ledger before the cut step or after it, nothing in between.
    assert got == before or got == after, (s.k, done, got, before, after)
    # What the pump may have delivered when the power went: what was reserved before
    # the step; or, if the step settled a session (lowered the counts without starting
    # one), what that session really delivered.
    settle = after[2] == before[2] and _total(after) < _total(before)
    delivered = after if settle else before
    pods = delivered[5]
    for serial in after[5]:
        ul = led.podlet_ul(serial)
        lowest = pods.get(serial, 0)
        assert lowest <= ul <= lowest + ledger.CHUNK_UL, (s.k, serial, ul, lowest)
    now = led.now_s(0)
    lowest = _day_ul(delivered, now)
    assert lowest <= led.day_ul(now) <= lowest + ledger.CHUNK_UL, (s.k, led.day_ul(now), lowest)
    # The limit clock starts this boot where the last commit left it, or later.
    assert now >= before[0] and led.wall_floor_s >= before[1], (s.k, now, before)
    assert led.last_start_s >= before[2]
    # And the ledger goes on: the next commit lands and reads back.
    led.commit(led.now_s(1))
    assert _state(ledger.Ledger(s.dir)) == _state(led)


def test_cut_at_every_write_of_two_sessions():
    """A new device: the clock set, a session of podlet A (three chunks, the last one
    short, then settled), a floor commit, a session of B, A again, and B a day later
    (the day's entries expire)."""
    gc.collect()
    _watch.clear()
    _watch.update(("A", "B"))
    rig = powercut.Rig()
    rig.save()
    steps = [_boot,
             lambda s: s.led.see_wall(_T0_S, 5),
             _at(10, "begin", "A"),
             _at(20, "reserve", "A", 50),
             _at(30, "reserve", "A", 50),
             _at(40, "reserve", "A", 30),
             _at(45, "settle", "A", 20),
             lambda s: s.led.keep_floor(700),
             _at(800, "begin", "B"),
             _at(810, "reserve", "B", 50),
             _at(820, "reserve", "B", 50),
             _at(830, "settle", "B", 10),
             _at(900, "begin", "A"),
             _at(910, "reserve", "A", 50),
             _at(90000, "begin", "B"),
             _at(90010, "reserve", "B", 50),
             _at(90020, "settle", "B", 50)]
    per_step, seen = powercut.count_writes(rig, steps, _observe)
    assert all(per_step[1:]), per_step               # every step after the boot commits
    assert seen[-1][3] == [[90010, 0]], seen[-1]     # the first day's doses expired
    assert seen[-1][5] == {"A": 160, "B": 90}
    n = powercut.every_cut(rig, steps, _check, _observe)
    rig.close()
    print("ledger, two sessions: %d writes cut" % n)
    assert n == sum(per_step)


def test_cut_at_every_write_with_a_full_ledger():
    """A ledger already holding PODLETS_MAX podlets and a full day: a new podlet evicts the
    least recently used one and the day's two oldest entries merge, in the same commit;
    a session of it; then a podlet from the middle of the ledger becomes the newest."""
    gc.collect()
    rig = powercut.Rig()
    led = ledger.Ledger(powercut.MOUNT)
    n_pods = ledger.PODLETS_MAX + 4
    for i in range(n_pods):
        serial = "0000%08x" % i
        led.begin(serial, 100 * i)
        if i % 32 == 0:
            led.reserve(serial, 20, 100 * i + 10)
    held = led.podlet_items()
    assert len(held) == ledger.PODLETS_MAX and len(led.day_entries()) == 64
    oldest = held[0][0]
    middle = held[100][0]
    led = held = None
    _watch.clear()
    _watch.update((oldest, middle, "new1"))
    rig.save()
    steps = [_boot,
             _at(10, "begin", "new1"),
             _at(20, "reserve", "new1", 50),
             _at(30, "settle", "new1", 30),
             _at(40, "begin", middle)]
    per_step, seen = powercut.count_writes(rig, steps, _observe)
    assert oldest in seen[1][5] and oldest not in seen[2][5]      # evicted
    assert seen[-1][5] == {"new1": 20, middle: 0}
    assert len(seen[-1][3]) == 64
    n = powercut.every_cut(rig, steps, _check, _observe)
    s = powercut.Run()
    rig.restore()
    for step in steps:
        step(s)
    held = s.led.podlet_items()
    assert len(held) == ledger.PODLETS_MAX and held[-2:] == [("new1", 20), (middle, 0)]
    rig.close()
    print("ledger, full: %d writes cut" % n)
    assert n == sum(per_step)


def _dose_until(b, app, ul):
    """Runs the session until ul are delivered or it ends."""
    for _ in range(20000):
        simkit.tick(b, app)
        if app.session_nl >= ul * 1000 or app.state in (codes.ST_COOLDOWN, codes.ST_IDLE,
                                                         codes.ST_FAULT):
            return
    raise AssertionError("session stuck in state %d" % app.state)


def test_after_a_cut_the_app_counts_what_was_reserved():
    """A session cut at its next flash write once 600 ul are delivered: after the boot the
    podlet has less left and the next session is limited by what the ledger counted."""
    from flash import PowerCut
    b, app = simkit.make()
    serial = app.podlet["serial"]
    capacity_ul = app.podlet["capacity_ul"]
    assert app.start_session()
    _dose_until(b, app, 600)
    assert app.state == codes.ST_STEAMING
    b.flash.cut_at_write(1)
    try:
        simkit.tick(b, app, 1000)
        raise AssertionError("no flash write in 100 s of a session")
    except PowerCut:
        pass
    delivered_ul = app.session_nl // 1000
    app = None
    b.clock_base_s = 0                    # no battery: the RTC is lost
    b.mount_flash()
    app = main.boot(b)
    counted_ul = app.ledger.podlet_ul(serial)
    print("app: delivered %d ul, ledger counts %d ul after the cut" % (delivered_ul, counted_ul))
    # Never less; more by at most one commit's worth: fw.app tops the reservation up to
    # CHUNK_UL past what it has counted, never further.
    assert delivered_ul <= counted_ul <= delivered_ul + ledger.CHUNK_UL, (
        delivered_ul, counted_ul)
    simkit.tick(b, app)                   # the podlet, still in, is read again
    app.finish_checks()                   # and its signature checked
    assert app.podlet is not None
    assert app.start_session()
    limit_ul = min(simkit.PROFILE["max_session_ul"], capacity_ul - counted_ul)
    assert limit_ul < simkit.PROFILE["max_session_ul"]    # the ledger's number decides
    assert app.dose_limit_nl == limit_ul * 1000
    # Both sessions together never give more than the podlet holds.
    _dose_until(b, app, capacity_ul)
    assert app.state == codes.ST_COOLDOWN and app.session_nl == limit_ul * 1000
    assert delivered_ul + limit_ul <= capacity_ul


def _corrupt_newest(d):
    """Flips a bit in the middle of the newest ledger copy."""
    newest = None
    for p in (d + "/safe.a/ledger", d + "/safe.b/ledger"):
        with open(p, "rb") as f:
            data = bytearray(f.read())
        c = int(data[:data.index(b"\n")].split()[1])
        if newest is None or c > newest[0]:
            newest = (c, p, data)
    c, p, data = newest
    data[len(data) // 2] ^= 0x10
    with open(p, "wb") as f:
        f.write(data)


def test_cut_at_every_write_after_a_copy_went_bad():
    """The newest copy fails its hash: the boot counts the commit it may have lost (a
    chunk more, a start at the floor) and commits that; a cut anywhere in that commit or
    the session after it boots to the same count or the next, never less."""
    gc.collect()
    _watch.clear()
    _watch.update(("A", "B"))
    rig = powercut.Rig()
    led = ledger.Ledger(powercut.MOUNT)
    led.see_wall(_T0_S, 5)
    led.begin("A", 10)
    led.reserve("A", 50, 20)
    led.reserve("A", 50, 30)
    led = None
    _corrupt_newest(powercut.MOUNT)
    rig.save()
    steps = [_boot,
             _at(10, "reserve", "A", 50),
             _at(20, "settle", "A", 20),
             _at(30, "begin", "B"),
             _at(40, "reserve", "B", 50)]
    per_step, seen = powercut.count_writes(rig, steps, _observe)
    assert per_step[0] > 0 and seen[1][5] == {"A": 100}, (per_step, seen[1])
    assert seen[1][2] == seen[1][0]               # a start assumed at the floor

    def check(s, done, seen):
        gc.collect()                    # two ledgers at once below, each 7 KB in blocks
        if done == 0:
            # Cut in the boot's own commit: the same conservative count again.
            got = _state(ledger.Ledger(s.dir))
            assert got == seen[1], (s.k, got, seen[1])
        else:
            _check(s, done, seen)

    n = powercut.every_cut(rig, steps, check, _observe)
    rig.close()
    print("ledger, a copy bad: %d writes cut" % n)
    assert n == sum(per_step)
