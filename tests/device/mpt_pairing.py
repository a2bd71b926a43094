"""Pairing on the device: the window is open only while the button is held (after its
first 3 s, and a 1 s grace for a request already written), and the key store, full,
makes room by forgetting the host used least recently."""
import os

from fw import app as app_mod
from fw import keystore
import simkit


def _hold(b, ms):
    b.button.v = 1
    b.button_until_ms = b.now_ms + ms


def test_the_window_is_open_only_while_the_button_is_held():
    b = simkit.board(simkit.scenario())
    app = app_mod.App(b)
    seen = []
    emit = app.emit

    def keep(rec):
        if rec["event"] == "pairing_window":
            seen.append(rec["open_s"])
        emit(rec)
    app.emit = keep
    simkit.tick(b, app, 5)
    assert not app.pairing_open()
    _hold(b, 20000)                       # 200 periods
    for _ in range(29):
        simkit.tick(b, app)
        assert not app.pairing_open()     # not before 3 s held
    simkit.tick(b, app)
    assert app.pairing_open() and seen == [0]
    opened = 1
    while b.button.v:
        simkit.tick(b, app)
        if b.button.v or app.button_steps:
            assert app.pairing_open()
            opened += 1
    # Let go: open for the grace only, then closed for good.
    grace = 0
    while app.pairing_open():
        grace += 1
        assert grace <= 10
        simkit.tick(b, app)
    assert grace >= 9, grace
    simkit.tick(b, app, 600)              # the old window was 60 s after the hold
    assert not app.pairing_open()
    assert seen == [0, (opened + grace) // 10], (seen, opened, grace)
    # A short press opens nothing.
    _hold(b, 1000)
    simkit.tick(b, app, 30)
    assert not app.pairing_open() and len(seen) == 2


def _store(name):
    d = "/tmp/mpt-keys-%s-%d" % (name, os.getpid() if hasattr(os, "getpid") else 0)
    _clean(d)
    os.mkdir(d)
    return d, keystore.KeyStore(d)


def _clean(d):
    try:
        for sub in ("/hosts", "/safe.a", "/safe.b"):
            try:
                for n in os.listdir(d + sub):
                    os.remove(d + sub + "/" + n)
                os.rmdir(d + sub)
            except OSError:
                pass
        for n in os.listdir(d):
            os.remove(d + "/" + n)
        os.rmdir(d)
    except OSError:
        pass


def _host(i):
    return bytes([i]) * 8


def test_a_full_store_forgets_the_least_recently_used_host_not_the_first_by_id():
    d, ks = _store("lru")
    # Paired in descending id order: host 8 first, host 1 last.
    for i in range(8, 0, -1):
        ks.put(_host(i), bytes([i]) * 32)
    # Host 8 (the oldest pairing) authenticates: now host 7 is the least recently used.
    ks.used(_host(8))
    ks.put(_host(9), bytes([9]) * 32)
    kept = [i for i in range(1, 10) if ks.get(_host(i)) is not None]
    assert kept == [1, 2, 3, 4, 5, 6, 8, 9], kept
    # A host paired again is the most recent, and its new key replaces the old.
    ks.put(_host(6), b"\x66" * 32)
    ks.put(_host(10), bytes([10]) * 32)
    kept = [i for i in range(1, 11) if ks.get(_host(i)) is not None]
    assert kept == [1, 2, 3, 4, 6, 8, 9, 10], kept
    assert ks.get(_host(6)) == b"\x66" * 32
    _clean(d)


def test_authenticating_again_writes_nothing_and_old_key_files_still_work():
    d, ks = _store("use")
    ks.put(_host(1), b"\x01" * 32)
    ks.put(_host(2), b"\x02" * 32)
    commits = ks.copies.counter
    ks.used(_host(2))                     # already the most recent: no write
    assert ks.copies.counter == commits
    ks.used(_host(1))
    assert ks.copies.counter == commits + 1
    assert keystore.KeyStore(d).keys["01" * 8][1] == 3
    _clean(d)
    # A key written before use numbers were kept (a file per host): still found, and
    # first to go.
    os.mkdir(d)
    os.mkdir(d + "/hosts")
    with open(d + "/hosts/" + "01" * 8, "wb") as f:
        f.write(b"\x01" * 32 + (3).to_bytes(4, "little"))
    with open(d + "/hosts/" + "07" * 8, "wb") as f:
        f.write(b"\x07" * 32)
    ks = keystore.KeyStore(d)
    assert ks.get(_host(7)) == b"\x07" * 32
    for i in range(2, 9):
        if i != 7:
            ks.put(_host(i), bytes([i]) * 32)
    ks.put(_host(9), b"\x09" * 32)
    assert ks.get(_host(7)) is None and ks.get(_host(1)) is not None
    _clean(d)
