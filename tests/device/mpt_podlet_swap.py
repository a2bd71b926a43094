"""A podlet swapped for another within one control period leaves no presence edge: the
firmware confirms the chip's ROM ID at a session start and while a session runs, and
refuses or ends on any change or failed read (issue 11, item 1)."""
from fw import codes
from podproto import podlet as podlet_fmt
import simkit

# The fake: unsigned, expired, a type without a profile, 100 ul.
FAKE = {"serial": "0000bad0fa4e", "podlet_type": 9, "capacity_ul": 100,
        "expiry": "2020-01-01", "lot": "FAKE"}
FAKE_HEX = podlet_fmt.encode(FAKE, b"\xff" * podlet_fmt.SIG_LEN).hex()
GENUINE = simkit.PODLET["serial"]


def _records(app, fn):
    return app.collect(lambda _: fn(), None)


def _swap(b, info):
    """Another chip in the slot, in one instant: presence never drops."""
    b.podlet.info = info
    assert b.podlet.v == 1


def _events(records, name):
    return [r for r in records if r["event"] == name]


def _run(b, app, n):
    """n periods; the decision records they made."""
    return _records(app, lambda: simkit.tick(b, app, n))


def test_a_swap_before_start_refuses_the_start_and_reads_the_new_chip():
    b, app = simkit.make()
    _swap(b, dict(FAKE, image_hex=FAKE_HEX))
    got = _records(app, app.start_session)
    assert [r["reason"] for r in _events(got, "session_refused")] == ["podlet_changed"]
    assert app.state == codes.ST_IDLE and app.session_prof is None
    got += _run(b, app, 3) + app.finish_checks()
    # The chip in the slot now is the fake: read, and refused as what it is.
    # (An image whose signature fails names no serial: it is not vouched for.)
    assert [r["reason"] for r in _events(got, "podlet_rejected")] == ["bad_signature"]
    assert app.podlet is None
    assert _events(_records(app, app.start_session) + app.finish_checks(),
                   "session_refused")[0]["reason"] == "no_podlet"
    assert app.ledger.podlet_ul(GENUINE) == 0
    assert app.ledger.podlet_ul(FAKE["serial"]) == 0


def test_a_swap_mid_session_ends_it_with_the_pump_off_within_a_second():
    b, app = simkit.make()
    app.start_session()
    simkit.until_pumping(b, app)
    simkit.tick(b, app, 30)                 # 3 s into dosing
    swapped_nl = app.session_nl
    _swap(b, dict(FAKE, image_hex=FAKE_HEX))
    got = []
    pumping = 0
    for _ in range(10):                     # one second
        got += _run(b, app, 1)
        if app.pump_nl_s:
            pumping += 1
    assert pumping < 10 and app.pump_nl_s == 0
    [end] = _events(got, "session_ended")
    assert end["reason"] == "podlet_changed"
    assert app.state == codes.ST_COOLDOWN
    # At 5 ul/s, what the pump gave after the swap is a few steps' worth, no more; the
    # genuine podlet's ledger entry counts the session's dose, and the fake has none.
    after_ul = end["session_ul"] - swapped_nl / 1000
    assert 0 <= after_ul <= 3, after_ul
    assert app.ledger.podlet_ul(GENUINE) == int(end["session_ul"] + 0.999)
    assert app.ledger.podlet_ul(FAKE["serial"]) == 0
    got += _run(b, app, 3) + app.finish_checks()
    assert [r["reason"] for r in _events(got, "podlet_rejected")] == ["bad_signature"]
    # Nothing runs on the fake: no session starts on it.
    assert app.podlet is None


def test_a_swap_to_the_same_chip_changes_nothing():
    b, app = simkit.make()
    app.start_session()
    simkit.until_pumping(b, app)
    _swap(b, dict(b.podlet.info))           # the same podlet, out and back in an instant
    got = _run(b, app, 20)
    assert not _events(got, "session_ended")
    assert app.state == codes.ST_STEAMING and app.pump_nl_s > 0


def test_a_failed_rom_read_mid_session_ends_it():
    b, app = simkit.make()
    app.start_session()
    simkit.until_pumping(b, app)
    # A contact that breaks four bytes into every exchange: inside the ROM ID.
    b.podlet.BUS_ERROR_AFTER_BYTES = 4
    b.podlet.bus_error = True
    got = []
    for _ in range(10):
        got += _run(b, app, 1)
    assert app.pump_nl_s == 0
    [end] = _events(got, "session_ended")
    assert end["reason"] == "podlet_unreadable"
    assert app.podlet is None


def test_a_failed_rom_read_refuses_the_start():
    b, app = simkit.make()
    b.podlet.BUS_ERROR_AFTER_BYTES = 4
    b.podlet.bus_error = True
    got = _records(app, app.start_session) + app.finish_checks()
    assert [r["reason"] for r in _events(got, "session_refused")] == ["podlet_unreadable"]
    assert app.state == codes.ST_IDLE


def test_the_rom_read_is_short():
    b, app = simkit.make()
    bus = b.podlet.bus
    moved = bus.bytes_moved
    resets = bus.resets
    rom = b.podlet.read_rom()
    assert rom == podlet_fmt.rom_id(int(GENUINE, 16))
    # One reset, Read ROM and its 8 bytes: about 6 ms at standard speed.
    assert bus.resets - resets == 1
    assert bus.bytes_moved - moved == 9


def test_a_podlet_inserted_in_the_period_of_a_start_is_checked_once():
    b, app = simkit.make()
    b.podlet.v = 0
    b.podlet.info = None
    simkit.tick(b, app, 2)
    assert app.podlet is None
    b.podlet.info = dict(simkit.PODLET, image_hex=simkit.signed.PODLET_OK_HEX)
    b.podlet.v = 1
    b.commands.append(("start_session", None))
    got = _run(b, app, 10)
    names = [r["event"] for r in got if r["event"] != "sample"]
    assert names.count("podlet_accepted") == 1
    assert names.index("podlet_accepted") < names.index("session_started")
    assert app.state == codes.ST_PREHEAT
