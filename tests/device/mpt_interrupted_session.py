"""A session a power cut or a watchdog reset cuts short ends at the next boot, with the
reset's reason and the dose the ledger counted, exactly once: whichever flash write of
its start or its end the power fails in (issue 11, item 7)."""
import os

import board as simboard
from flash import PowerCut
from fw import codes
from fw import main
import simkit


def _reboot(b, cause):
    b.reset(simboard.SimReset(cause, 0))
    return main.boot(b)


def _sessions(app):
    """The journal's session records, in order: (event, reason, session_ul)."""
    out = []
    seq = 1
    while True:
        got = app.journal.read(seq, 16)
        if not got:
            return out
        for seq, r in got:
            if r["event"] in ("session_started", "session_ended"):
                out.append((r["event"], r.get("reason"), r.get("session_ul")))
        seq += 1


def _marked(b):
    try:
        os.stat(b.data_dir + "/session")
        return True
    except OSError:
        return False


def test_a_session_cut_short_ends_at_the_next_boot_with_the_counted_dose():
    for cause, reason in ((codes.RESET_POWER, "power_loss"), (codes.RESET_WDT, "watchdog")):
        b, app = simkit.make()
        app.start_session()
        simkit.until_pumping(b, app)
        simkit.tick(b, app, 100)                # 10 s of dosing at 5 ul/s
        pumped_nl = app.session_nl
        serial = app.session_podlet["serial"]
        assert _marked(b)
        app = _reboot(b, cause)
        got = _sessions(app)
        assert [g[:2] for g in got] == [("session_started", None), ("session_ended", reason)]
        counted = got[1][2]
        assert counted == app.ledger.podlet_ul(serial)
        assert pumped_nl <= counted * 1000 <= pumped_nl + 50 * 1000
        assert not _marked(b)
        # And not again at the boot after.
        app = _reboot(b, codes.RESET_POWER)
        assert len(_sessions(app)) == 2


def test_a_session_that_ended_is_not_ended_again():
    b, app = simkit.make()
    app.start_session()
    simkit.tick(b, app, 5)
    app.stop_session()
    simkit.tick(b, app, 2)
    assert not _marked(b)
    app = _reboot(b, codes.RESET_POWER)
    assert [g[:2] for g in _sessions(app)] == [("session_started", None),
                                               ("session_ended", "stopped")]


def _cut(phase, k):
    """The power fails in the kth flash write of a session's start or end; then a boot.
    None once k is past that phase's last write."""
    b, app = simkit.make()
    if phase == "end":
        app.start_session()
        simkit.tick(b, app, 5)
    b.flash.cut_at_write(k)
    try:
        if phase == "start":
            app.start_session()
        else:
            app.stop_session()
            simkit.tick(b, app, 2)
    except PowerCut:
        return _reboot(b, codes.RESET_POWER), b
    return None


def test_a_cut_in_any_flash_write_of_a_start_or_an_end_ends_the_session_once():
    for phase in ("start", "end"):
        k = 1
        while True:
            got = _cut(phase, k)
            if got is None:
                break
            app, b = got
            rec = _sessions(app)
            starts = [r for r in rec if r[0] == "session_started"]
            ends = [r for r in rec if r[0] == "session_ended"]
            assert len(starts) <= 1 and len(ends) <= 1, (phase, k, rec)
            if starts:
                # A start the journal holds has its one end, after it.
                assert rec[-1][0] == "session_ended", (phase, k, rec)
                assert rec[-1][1] in ("stopped", "power_loss"), (phase, k, rec)
            assert not _marked(b), (phase, k)
            k += 1
        assert k > 5, (phase, k)
