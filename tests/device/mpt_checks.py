"""Signature checks spread over periods (fw.trust.Check run by App.service): a podlet is
not usable until its check is done, pulling it cancels the check, a session start waits
for it, a profile is installed (and its reply given) only once checked, and no period
runs more slices than the board affords."""
from fw import app as app_mod
from fw import codes
from fw import trust
from podproto import ed25519, podlet as podlet_fmt
import signed
import simkit


def _app(slices=None, profile=True):
    b = simkit.board(simkit.scenario())
    b.commands = []                  # the tests install what they need
    if slices is not None:
        b.CHECK_SLICES_PER_PERIOD = slices
    app = app_mod.App(b)
    app.set_clock(1795000000)
    if profile:
        app.install_profile(bytes.fromhex(signed.PROFILE_OK_HEX))
        app.finish_checks()
        assert 3 in app.profiles
    return b, app


def _insert(b, image_hex=signed.PODLET_OK_HEX):
    b.podlet.info = dict(simkit.PODLET, image_hex=image_hex)
    b.podlet.v = 1


def _events(b, app, periods):
    """The decision records of that many periods, with the period each came in."""
    out = []
    emit = app.emit

    def keep(rec):
        out.append((n[0], rec["event"], rec.get("reason")))
        emit(rec)
    app.emit = keep
    n = [0]
    for i in range(periods):
        n[0] = i
        simkit.tick(b, app)
    app.emit = emit
    return out


def test_a_podlet_is_usable_only_once_its_check_is_done():
    b, app = _app(slices=1)
    _insert(b)
    simkit.tick(b, app)
    check = app.checks[0][1]
    periods = 1
    while app.checks:
        assert app.podlet is None
        before = check.slices
        simkit.tick(b, app)
        assert check.slices - before <= 1
        periods += 1
    assert app.podlet is not None and app.podlet["serial"] == simkit.PODLET["serial"]
    # One slice a period: as many periods as slices, a verify's 4,400-5,000 units
    # (podproto.ed25519) a slice at a time.
    assert periods == check.slices, (periods, check.slices)
    assert 4400 // ed25519.SLICE_MULS <= periods <= 5000 // ed25519.SLICE_MULS + 10, periods
    print("podlet check: %d periods at 1 slice a period" % periods)


def test_the_board_sets_how_many_slices_a_period_runs():
    for slices in (1, 3, 8):
        b, app = _app(slices=slices)
        _insert(b)
        simkit.tick(b, app)
        check = app.checks[0][1]
        last = check.slices
        assert last == slices
        while app.checks:
            simkit.tick(b, app)
            assert check.slices - last <= slices
            last = check.slices
        assert app.podlet is not None


def test_pulling_the_podlet_cancels_its_check():
    b, app = _app(slices=1)
    _insert(b)
    events = _events(b, app, 5)
    assert app.checks and events == []
    b.podlet.v = 0
    b.podlet.info = None
    events = _events(b, app, 50)
    assert app.checks == [] and app.podlet is None
    assert events == [], events          # nothing was decided, nothing to say


def test_a_start_waits_for_the_podlet_check_then_starts():
    b, app = _app(slices=1)
    _insert(b)
    simkit.tick(b, app)
    got = []
    assert app.command("start_session", None, got.extend) is True
    # Issue 15: the boiler heats while the check runs; no session, so no dose, yet.
    assert app.state == codes.ST_PREHEAT and got == [] and app.session_prof is None
    simkit.tick(b, app)
    assert app.heater_pm == 1000 and app.checks
    events = _events(b, app, 120)
    names = [e[1] for e in events]
    assert names.index("podlet_accepted") < names.index("session_started"), names
    assert [r["event"] for r in got] == ["session_started"]
    assert app.heating_state == 1 and app.session_prof is not None


def _waiting_start(image_hex=signed.PODLET_OK_HEX):
    """A start waiting for a slow podlet check (a slice a period), heating meanwhile."""
    b, app = _app(slices=1)
    _insert(b, image_hex)
    simkit.tick(b, app)
    got = []
    assert app.start_session(got.extend) is None
    simkit.tick(b, app, 5)
    assert app.heater_pm == 1000 and app.checks
    return b, app, got


def _cooled(b, app):
    """The heat that went before a refused start stops, and no session ever was."""
    simkit.tick(b, app, 3)
    assert app.heater_pm == 0 and app.heating_state == 0
    assert app.state in (codes.ST_COOLDOWN, codes.ST_IDLE)
    assert app.session_prof is None and app.dose_steps == 0


def test_heating_before_a_bad_podlet_s_check_ends_with_its_refusal():
    b, app, got = _waiting_start(signed.PODLET_TAMPER_HEX)
    events = _events(b, app, 100)
    assert [(e[1], e[2]) for e in events] == [("podlet_rejected", "bad_signature"),
                                              ("session_refused", "no_podlet")], events
    _cooled(b, app)


def test_a_stop_while_the_check_runs_refuses_the_start_that_waits():
    b, app, got = _waiting_start()
    app.stop_session()
    events = _events(b, app, 100)
    assert [(e[1], e[2]) for e in events] == [("podlet_accepted", None),
                                              ("session_refused", "stopped")], events
    assert [r["reason"] for r in got] == ["stopped"]
    _cooled(b, app)


def test_pulling_the_podlet_while_the_check_runs_stops_the_heat():
    b, app, got = _waiting_start()
    b.podlet.v = 0
    b.podlet.info = None
    events = _events(b, app, 10)
    # Nothing was decided of the podlet; the start that waited for it is refused.
    assert [(e[1], e[2]) for e in events] == [("session_refused", "no_podlet")], events
    _cooled(b, app)


def test_a_start_waiting_on_a_bad_podlet_is_refused_after_it():
    b, app = _app(slices=2)
    _insert(b, signed.PODLET_TAMPER_HEX)
    simkit.tick(b, app)
    got = []
    assert app.start_session(got.extend) is None
    events = _events(b, app, 60)
    assert [(e[1], e[2]) for e in events] == [("podlet_rejected", "bad_signature"),
                                              ("session_refused", "no_podlet")]
    assert [r["event"] for r in got] == ["session_refused"]


def test_a_start_with_nothing_pending_is_decided_at_once():
    b, app = _app(slices=1)
    assert app.start_session() is False          # no podlet
    assert app.checks == []


def test_a_profile_is_installed_only_once_checked_and_the_reply_waits():
    b, app = _app(slices=1, profile=False)
    got = []
    assert app.command("install_profile", bytes.fromhex(signed.PROFILE_OK_HEX),
                       got.extend) is True
    periods = 0
    while not got:
        assert 3 not in app.profiles
        simkit.tick(b, app)
        periods += 1
    assert [r["event"] for r in got] == ["profile_installed"] and 3 in app.profiles
    assert 4400 // ed25519.SLICE_MULS <= periods <= 5000 // ed25519.SLICE_MULS + 10, periods
    # A wrong signature: refused, with the reason, just as late.
    app.install_profile(bytes.fromhex(signed.PROFILE_WRONG_KEY_HEX))
    recs = app.finish_checks()
    assert [(r["event"], r["reason"]) for r in recs] == [("profile_rejected", "bad_signature")]


def test_finish_checks_runs_everything_queued_in_order():
    b, app = _app(slices=1, profile=False)
    app.install_profile(bytes.fromhex(signed.PROFILE_OK_HEX))
    _insert(b)
    app.podlet_in = 1
    app.check_podlet()
    assert app.start_session() is None
    recs = app.finish_checks()
    assert [r["event"] for r in recs] == ["profile_installed", "podlet_accepted",
                                          "session_started"]
    assert app.checks == []


def test_installed_profiles_load_at_boot_feeding_the_watchdog_between_slices():
    b, app = _app(slices=1)
    feeds = []
    b.watchdog.feed = lambda: feeds.append(1)
    app2 = app_mod.App(b)
    app2.load_profiles()
    assert 3 in app2.profiles
    assert 4400 // ed25519.SLICE_MULS - 10 <= len(feeds) <= 5000 // ed25519.SLICE_MULS + 10


def test_the_install_right_after_a_check_does_not_verify_again():
    t = trust.Trust(simkit.board(simkit.scenario()).data_dir)
    blob = bytes.fromhex(signed.PROFILE_OK_HEX)
    check = t.profile_check(blob)
    prof, reason = check.run()
    assert reason is None and check.slices > 4000 // ed25519.SLICE_MULS
    calls = []
    t.on_slice = lambda: calls.append(1)
    assert t.install(blob)[1] is None
    assert calls == []                   # no slice: the check just done was reused
    # Another blob, or the same one later, is checked again.
    assert t.check_profile(blob)[0] is not None and len(calls) > 4000 // ed25519.SLICE_MULS


def test_podlet_verify_steps_agrees_with_verify():
    key = bytes.fromhex(signed.MFG_PUBLIC_HEX)
    image = bytes.fromhex(signed.PODLET_OK_HEX)
    got = ed25519.run(podlet_fmt.verify_steps(key, image))
    assert got == podlet_fmt.verify(key, image)
    log = []
    ed25519.run(ed25519.verify_steps(key, image[1:7] + image[8:24], image[24:88], log=log))
    assert max(log) <= ed25519.SLICE_MULS and sum(log) > 4000
