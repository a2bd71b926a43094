"""The ledger's copies on flash: a flipped bit, a copy rolled back to an older commit, or
both copies bad never let the device count less than was reserved; on doubt it counts
more, and with no valid copy it refuses to dose (`ledger_error`)."""
import os

from fw import ledger
from fw import main
import powercut
import simkit

_T0_S = 1795000000
_PODLET = "0000c0ffee01"


def _files(d):
    """Every ledger copy (or the one ledger file of before) in data dir d."""
    out = []
    for p in (d + "/ledger", d + "/safe.a/ledger", d + "/safe.b/ledger"):
        try:
            os.stat(p)
            out.append(p)
        except OSError:
            pass
    assert out
    return out


def _saved(d):
    return {p: _read(p) for p in _files(d)}


def _restore(files):
    """The copies as saved (a load in doubt commits: the next case starts as before)."""
    for p in files:
        _write(p, files[p])


def _read(p):
    with open(p, "rb") as f:
        return f.read()


def _write(p, data):
    with open(p, "wb") as f:
        f.write(data)


def _used():
    """A ledger that has reserved 500 ul of one podlet today, in ten commits."""
    b = simkit.board(simkit.scenario())
    led = ledger.Ledger(b.data_dir)
    led.see_wall(_T0_S, 1)
    led.begin(_PODLET, led.now_s(10))
    for k in range(10):
        led.reserve(_PODLET, 50, led.now_s(20 + k))
    assert led.podlet_ul(_PODLET) == 500 and led.day_ul(led.now_s(30)) == 500
    return b, led


def _never_looser(d, why):
    """The ledger in d, loaded: refused, or counting at least what was reserved."""
    try:
        led = ledger.Ledger(d)
    except ledger.LedgerError:
        return "refused"
    now = led.now_s(0)
    assert led.podlet_ul(_PODLET) >= 500, (why, led.podlet_ul(_PODLET))
    assert led.day_ul(now) >= 500, (why, led.day_ul(now), led.day_entries())
    # The clocks' floors: the last commit's, or (a copy lost) the one before it.
    assert led.floor_s >= 28 and led.wall_floor_s >= _T0_S + 26, (why, led.floor_s, led.wall_floor_s)
    assert led.last_start_s >= 10, (why, led.last_start_s)
    if led.doubt:
        return "doubt"
    return "conservative" if led.podlet_ul(_PODLET) > 500 else "same"


def test_the_issues_edits_500_to_100_are_found():
    """The issue's case: the day entry's or the podlet's 500 made 100."""
    b, led = _used()
    d = b.data_dir
    files = _saved(d)
    n = 0
    for p in files:
        good = files[p]
        for old, new in ((b"\n%d 500\n" % led.day_entries()[0][0], b"\n%d 100\n"
                          % led.day_entries()[0][0]), (b" 500 ", b" 100 ")):
            if old in good:
                _write(p, good.replace(old, new, 1))
                _never_looser(d, (p, old))
                n += 1
            _restore(files)
    assert n >= 2, n


def test_every_bit_of_a_sample_of_bytes_flipped():
    """Each of the 8 bits of every 7th byte of each copy, one at a time."""
    b, led = _used()
    d = b.data_dir
    seen = {}
    files = _saved(d)
    for p, at, bit, bad in powercut.bit_flips(files, 7):
        _write(p, bad)
        got = _never_looser(d, (p, at, bit))
        seen[got] = seen.get(got, 0) + 1
        _restore(files)
    print("flipped bits:", seen)


def test_a_copy_rolled_back_to_an_older_commit():
    """Each copy in turn taken back to what it held three commits earlier (as a
    littlefs metadata rollback does): the other copy's higher counter wins."""
    b = simkit.board(simkit.scenario())
    d = b.data_dir
    led = ledger.Ledger(d)
    led.see_wall(_T0_S, 1)
    led.begin(_PODLET, led.now_s(10))
    old = {p: _read(p) for p in _files(d)}
    for k in range(10):
        led.reserve(_PODLET, 50, led.now_s(20 + k))
    files = _saved(d)
    for p in files:
        if p in old:
            _write(p, old[p])
        else:
            os.remove(p)
        _never_looser(d, p)
        _restore(files)


def test_both_copies_bad_or_lost_refuse_to_dose():
    b, led = _used()
    d = b.data_dir
    files = _files(d)
    for p in files:
        data = bytearray(_read(p))
        data[len(data) // 2] ^= 4
        _write(p, data)
    assert _never_looser(d, "both") == "refused"
    for p in files:
        os.remove(p)
    assert _never_looser(d, "lost") == "refused"
    said = []
    b.emit = lambda rec, emit=b.emit: said.append((rec["event"], rec.get("reason"))) or emit(rec)
    b.commands = []
    app = main.boot(b)
    assert app.ledger is None
    assert [r for r in said if r[0] == "ledger_error"], said
    app.start_session()
    assert said[-1] == ("session_refused", "ledger_error"), said


def test_a_ledger_of_the_old_format_is_taken_over():
    """A device updated from the format-2 ledger keeps its counts."""
    b = simkit.board(simkit.scenario())
    d = b.data_dir
    _write(d + "/ledger", b"ledger 2 40 1795000039 10 1 1 1\n30 500\n%s 500 1\nend\n"
           % _PODLET.encode())
    led = ledger.Ledger(d)
    assert led.podlet_ul(_PODLET) == 500 and led.day_ul(led.now_s(0)) == 500
    assert led.floor_s == 40 and led.wall_floor_s == 1795000039
    led.commit(led.now_s(1))
    assert _never_looser(d, "migrated") == "same"


def test_a_boot_in_doubt_says_so_and_counts_a_chunk_more():
    """The newest copy (500 ul) fails its hash: the other, a commit behind (450 ul), is
    taken with the chunk that commit may have reserved."""
    b, led = _used()
    d = b.data_dir
    newest = max(_files(d), key=lambda p: int(_read(p).split(b"\n")[0].split()[1]))
    data = bytearray(_read(newest))
    data[-70] ^= 1                          # the hash's line
    _write(newest, data)
    said = []
    b.emit = lambda rec, emit=b.emit: said.append((rec["event"], rec.get("reason"))) or emit(rec)
    app = main.boot(b)
    assert [e for e, _ in said if e == "record_doubt"] == ["record_doubt"], said
    assert app.ledger.podlet_ul(_PODLET) == 450 + ledger.CHUNK_UL
    # Committed so: the next boot is in no doubt, and counts the same.
    said.clear()
    app = main.boot(b)
    assert "record_doubt" not in [e for e, _ in said], said
    assert app.ledger.podlet_ul(_PODLET) == 450 + ledger.CHUNK_UL


def _block(f, blk, bs):
    f.seek(blk * bs)
    return f.read(bs)


def _put_block(f, blk, data):
    f.seek(blk * len(data))
    f.write(data)
    f.flush()


def test_a_metadata_commit_flipped_on_littlefs_takes_nothing_back_unnoticed():
    """The issue's rollback, on the sim's littlefs: in each metadata block the commits
    appended since a snapshot (three chunks reserved then, ten now), a bit flipped in the
    first of them, so littlefs drops it and every later one (the root's: the witness goes
    back; a copy's: that copy goes back). The ledger loads counting at least the ten
    chunks, or refuses."""
    import gc
    import powercut
    gc.collect()
    rig = powercut.Rig()
    d = powercut.MOUNT
    led = ledger.Ledger(d)
    led.see_wall(_T0_S, 1)
    led.begin(_PODLET, led.now_s(10))
    for k in range(3):
        led.reserve(_PODLET, 50, led.now_s(20 + k))
    rig.save()
    for k in range(3, 10):
        led.reserve(_PODLET, 50, led.now_s(20 + k))
    led = None
    rig.boot()
    bs = rig.flash.block_size
    f = rig.flash.f
    seen = {}
    with open(rig.saved, "rb") as snap:
        for blk in range(rig.flash.blocks):
            old = _block(snap, blk, bs)
            new = _block(f, blk, bs)
            p = 0
            while p < bs and old[p] == new[p]:
                p += 1
            # Appended to: the same up to p, and nothing was written there before.
            if p == bs or p < 16 or old[p:] != b"\xff" * (bs - p):
                continue
            bad = bytearray(new)
            bad[p + 1] ^= 0x40
            _put_block(f, blk, bad)
            rig.boot()
            got = _never_looser(d, (blk, p))
            seen[got] = seen.get(got, 0) + 1
            _put_block(f, blk, new)
            rig.boot()
    rig.close()
    print("metadata commits flipped:", seen)
    # One of the flips took the newest copy back: the witness said so.
    assert seen.get("doubt", 0) > 0, seen
