"""Refusals a scenario cannot reach (the sim driver always provisions the key and writes
a sound ledger and whole images): each with its reason, and each in the audit log."""
import json

from fw import app as app_mod
from fw import audit
from fw import main
import signed
import simkit


def _decisions(app, fn):
    """The decision records fn() made, the signature checks it queued run to their end."""
    return [(r["event"], r.get("reason")) for r in app.collect(lambda _: fn(), None)
            + app.finish_checks()]


def _audited(b):
    """The audit log's records, its chain checked."""
    with open(b.data_dir + "/audit") as f:
        lines = f.readlines()
    audit.verify(lines)
    return [(r["event"], r.get("reason")) for r in (
        json.loads(audit.parse(line)[1].partition(" ")[2]) for line in lines)]


def _insert(b, app, image_hex=signed.PODLET_OK_HEX):
    b.podlet.info = dict(simkit.PODLET, image_hex=image_hex)
    b.podlet.v = 1
    app.podlet_in = 1


def test_not_provisioned():
    scen = simkit.scenario()
    del scen["mfg_public_hex"]                     # a device the factory never keyed
    b = simkit.board(scen)
    b.commands = []
    app = main.boot(b)
    assert not app.trust.provisioned()
    app.set_clock(1795000000)
    got = _decisions(app, lambda: app.install_profile(bytes.fromhex(signed.PROFILE_OK_HEX)))
    assert got == [("profile_rejected", "not_provisioned")]
    _insert(b, app)
    got = _decisions(app, app._check_podlet)
    assert got == [("podlet_rejected", "not_provisioned")]
    got = _decisions(app, app.start_session)
    assert got == [("podlet_rejected", "not_provisioned"), ("session_refused", "no_podlet")]
    assert ("not_provisioned", None) in _audited(b)


def test_ledger_unreadable():
    b = simkit.board(simkit.scenario())
    b.commands = []
    with open(b.data_dir + "/ledger", "w") as f:
        f.write("ledger 2 garbage\n")
    app = main.boot(b)
    assert app.ledger is None
    app.set_clock(1795000000)
    app.install_profile(bytes.fromhex(signed.PROFILE_OK_HEX))
    app.finish_checks()
    _insert(b, app)
    assert _decisions(app, app._check_podlet) == [("podlet_rejected", "ledger_error")]
    assert _decisions(app, app.start_session) == [
        ("podlet_rejected", "ledger_error"), ("session_refused", "ledger_error")]
    assert ("ledger_error", "ledger unreadable") in _audited(b)


def test_a_podlet_chip_of_another_family():
    b = simkit.board(simkit.scenario())
    b.commands = []
    app = app_mod.App(b)
    app.set_clock(1795000000)
    image = bytearray(bytes.fromhex(signed.PODLET_OK_HEX))
    image[0] = 0x28                                # a temperature sensor's family code
    _insert(b, app, bytes(image).hex())
    assert _decisions(app, app._check_podlet) == [("podlet_rejected", "malformed")]


def test_a_profile_that_is_not_bytes():
    b = simkit.board(simkit.scenario())
    b.commands = []
    app = app_mod.App(b)
    assert _decisions(app, lambda: app.command("install_profile", None)) == [
        ("profile_rejected", "malformed")]


def test_a_push_the_link_refuses_is_a_decision_in_the_audit_log():
    """The host link refuses a profile whose bytes fail their SHA-256 (or whose size is
    too large) before the app sees it: it says so through the app."""
    b = simkit.board(simkit.scenario())
    b.commands = []
    app = app_mod.App(b)
    assert _decisions(app, lambda: app.profile_refused("bad_hash")) == [
        ("profile_rejected", "bad_hash")]
    assert _audited(b)[-1] == ("profile_rejected", "bad_hash")
