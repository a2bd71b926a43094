"""Courses (issue 17, profile format 2) on the device: a course's minimum spacing refuses
the next session of its podlet type until it has passed on the limit clock, across a
power cut and whatever the host sets the clock to; a profile whose warnings need
acknowledgement starts no session until a paired host acknowledged that type and
version, which is kept on flash and in the audit log."""
import json

import board as simboard
from fw import audit
from fw import codes
from fw import main
import signed
import simkit

DAY_S = 86400
SPACING_S = 6 * DAY_S
HOST = "00112233445566aa"


def _course(version_hex=signed.PROFILE_COURSE_HEX):
    """A device with the course profile (type 3, version 2) installed, podlet in."""
    b, app = simkit.make(duration_s=10 ** 8)
    got = _decisions(app, lambda: app.install_profile(bytes.fromhex(version_hex)))
    assert got[-1][0] == "profile_installed", got
    return b, app


def _decisions(app, fn):
    return [(r["event"], r.get("reason")) for r in app.collect(lambda _: fn(), None)
            + app.finish_checks()]


def _start(app):
    """The start's decision: "started" or the refusal's reason."""
    for ev, why in _decisions(app, app.start_session):
        if ev == "session_started":
            return "started"
        if ev == "session_refused":
            return why
    raise AssertionError("no decision")


def _session(b, app):
    """A session started now and stopped at once (it counts as started: a course is
    spaced by its starts), back to idle."""
    assert _start(app) == "started"
    simkit.tick(b, app, 3)
    app.stop_session()
    for _ in range(50):
        simkit.tick(b, app)
        if app.state == codes.ST_IDLE:
            return
    raise AssertionError("not idle: state %d" % app.state)


def _idle(b, app, s):
    """s seconds of an idle device, as the limits machine passes them (fw.app steps)."""
    app.set_steps(app.steps() + s * 10)
    b.now_ms += s * 1000
    app.service()


def _ack(app, version=2, ptype=3):
    return _decisions(app, lambda: app.command("ack_warnings", (ptype, version, HOST)))


def _reboot(b):
    b.reset(simboard.SimReset(codes.RESET_POWER, 0))
    app = main.boot(b)
    simkit.tick(b, app)
    app.finish_checks()
    return app


def _audited(b):
    with open(b.data_dir + "/audit") as f:
        lines = f.readlines()
    audit.verify(lines)
    return [json.loads(audit.parse(line)[1].partition(" ")[2]) for line in lines]


def test_refused_until_acknowledged_and_the_acknowledgement_is_kept():
    b, app = _course()
    assert _start(app) == "not_acknowledged"
    assert _ack(app, version=1) == [("command_rejected", "stale_version")]
    assert _ack(app, ptype=4) == [("command_rejected", "not_found")]
    assert _start(app) == "not_acknowledged"
    assert _ack(app) == [("warnings_acknowledged", None)]
    rec = [r for r in _audited(b) if r["event"] == "warnings_acknowledged"]
    assert [(r["podlet_type"], r["version"], r["host"]) for r in rec] == [(3, 2, HOST)]
    # Kept across a power cut: the session starts after it without asking again.
    app = _reboot(b)
    b.commands.append(("set_clock", 1795000100))
    simkit.tick(b, app)
    assert _start(app) == "started"


def test_a_new_version_is_acknowledged_anew():
    b, app = _course()
    _ack(app)
    got = _decisions(app, lambda: app.install_profile(bytes.fromhex(signed.PROFILE_COURSE_V3_HEX)))
    assert got[-1][0] == "profile_installed"
    assert _start(app) == "not_acknowledged"
    assert _ack(app, version=3) == [("warnings_acknowledged", None)]
    assert _start(app) == "started"


def test_v1_profile_needs_no_acknowledgement_and_writes_no_course():
    b, app = simkit.make()
    _session(b, app)
    assert _start(app) == "started"      # min_interval_s 0, and no course
    assert app.course is None     # never loaded: nothing on flash either


def test_second_session_refused_before_its_spacing_and_allowed_after():
    b, app = _course()
    _ack(app)
    _session(b, app)
    _idle(b, app, SPACING_S - 10)
    assert _start(app) == "course_spacing"
    _idle(b, app, 12)                    # more than the spacing, as min_interval_s
    assert _start(app) == "started"


def test_spacing_holds_across_a_power_cut_and_a_clock_set_back_or_ahead():
    b, app = _course()
    _ack(app)
    _session(b, app)
    _idle(b, app, DAY_S)
    app = _reboot(b)
    # The clock lost with the power; the host sets it back a month, then a year ahead.
    app.set_clock(1795000000 - 30 * DAY_S)
    simkit.tick(b, app)
    assert _start(app) == "course_spacing"
    app.set_clock(1795000000 + 365 * DAY_S)
    assert _start(app) == "course_spacing"
    # The limit clock stood still while the power was off: 5 more powered days are not
    # enough (only 6 days since the start counted, and the time before the last floor
    # commit is lost), a sixth is.
    _idle(b, app, 5 * DAY_S - 700)
    assert _start(app) == "course_spacing"
    _idle(b, app, DAY_S)
    assert _start(app) == "started"


def test_a_course_record_in_doubt_waits_from_the_floor_and_asks_again():
    b, app = _course()
    _ack(app)
    _session(b, app)
    _idle(b, app, SPACING_S + 5)
    # Both copies of the course record go bad: nothing of it can be trusted.
    for d in ("safe.a", "safe.b"):
        try:
            with open(b.data_dir + "/" + d + "/course", "w") as f:
                f.write("course 9\ngarbage\n")
        except OSError:
            pass
    app = _reboot(b)
    b.commands.append(("set_clock", 1795000000 + SPACING_S + 100))
    simkit.tick(b, app)
    assert _start(app) == "not_acknowledged"
    assert app.course.problem
    assert "record_doubt" in [r["event"] for r in _audited(b)]
    _ack(app)
    assert _start(app) == "course_spacing"     # as if started at the ledger's floor
    _idle(b, app, SPACING_S + 2)
    assert _start(app) == "started"
