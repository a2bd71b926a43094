"""The profiles' version marks (fw.trust) and the paired hosts' keys (fw.keystore) on flash:
a flipped bit, a copy rolled back to an older commit, or every copy lost never lets an
older profile in again nor a host back that the store had let go."""
import gc
import os

from fw import keystore
from fw import trust
import powercut
import signed
import versions

_D = powercut.MOUNT

_OLD, _NEW, _TYPE = versions.OLD, versions.NEW, versions.TYPE


def _provision():
    with open(_D + "/" + trust.KEY_FILE, "wb") as f:
        f.write(bytes.fromhex(signed.MFG_PUBLIC_HEX))


def _corrupt():
    """A bit flipped in the installed profile's file: its signature no longer verifies."""
    path = "%s/profiles/%d" % (_D, _TYPE)
    with open(path, "rb") as f:
        blob = bytearray(f.read())
    blob[10] ^= 1
    with open(path, "wb") as f:
        f.write(blob)


def _files(paths):
    out = {}
    for p in paths:
        try:
            with open(p, "rb") as f:
                out[p] = f.read()
        except OSError:
            pass
    assert out
    return out


def _restore(files, gone=()):
    for p in files:
        with open(p, "wb") as f:
            f.write(files[p])
    for p in gone:
        if p not in files:
            try:
                os.remove(p)
            except OSError:
                pass


# ---- profile version marks -------------------------------------------------------------
_MARKS = (_D + "/profile_versions", _D + "/safe.a/profile_versions",
          _D + "/safe.b/profile_versions")


def _two_versions():
    """Versions 1 then 2 installed, and the installed file gone bad since."""
    gc.collect()
    rig = powercut.Rig()
    _provision()
    t = trust.Trust(_D)
    assert t.install(_OLD)[1] is None and t.install(_NEW)[1] is None
    _corrupt()
    return rig


def _no_rollback(why):
    t = trust.Trust(_D)
    t.load()
    got = t.install(_OLD)
    assert got[0] is None, why
    return got[1]


def test_a_flipped_bit_in_the_marks_lets_no_older_profile_in():
    rig = _two_versions()
    files = _files(_MARKS)
    seen = {}
    for p, _, _, bad in powercut.bit_flips(files, 5):
        with open(p, "wb") as f:
            f.write(bad)
        reason = _no_rollback((p, bad))
        seen[reason] = seen.get(reason, 0) + 1
        _restore(files)
    print("marks, bits flipped:", seen)
    rig.close()


def test_a_mark_copy_rolled_back_lets_no_older_profile_in():
    gc.collect()
    rig = powercut.Rig()
    _provision()
    t = trust.Trust(_D)
    assert t.install(_OLD)[1] is None
    old = _files(_MARKS)
    assert t.install(_NEW)[1] is None
    _corrupt()
    files = _files(_MARKS)
    for p in files:
        _restore({p: old[p]} if p in old else {}, [p])
        assert _no_rollback(p) == "stale_version", p
        _restore(files)
    rig.close()


def test_every_mark_copy_bad_refuses_the_type_whose_profile_is_bad_too():
    rig = _two_versions()
    files = _files(_MARKS)
    for p in files:
        data = bytearray(files[p])
        data[len(data) // 2] ^= 2
        with open(p, "wb") as f:
            f.write(data)
    t = trust.Trust(_D)
    assert t.load() == [(str(_TYPE), "bad_signature")]
    assert t.install(_OLD) == (None, "versions_lost")
    assert t.install(_NEW) == (None, "versions_lost")
    rig.close()


# ---- host keys ---------------------------------------------------------------------------
_KEYS = (_D + "/safe.a/hosts", _D + "/safe.b/hosts")


def _host(i):
    return bytes([i]) * 8


def _key_files():
    """The key store's files: the copies, or the one file a host of before."""
    paths = list(_KEYS)
    try:
        paths += [_D + "/hosts/" + n for n in os.listdir(_D + "/hosts")]
    except OSError:
        pass
    return paths


def _full_then_one_more():
    """Hosts 1 to 8 paired, then host 9: host 1, the least recently used, is let go.
    Returns the store's files before host 9 and after."""
    gc.collect()
    rig = powercut.Rig()
    ks = keystore.KeyStore(_D)
    for i in range(1, 9):
        ks.put(_host(i), bytes([i]) * 32)
    before = _files(_key_files())
    ks.put(_host(9), bytes([9]) * 32)
    assert ks.get(_host(1)) is None and ks.get(_host(9)) == bytes([9]) * 32
    return rig, before, _files(_key_files())


def _let_go_stays_gone(why):
    ks = keystore.KeyStore(_D)
    assert ks.get(_host(1)) is None, why
    for i in range(2, 10):
        got = ks.get(_host(i))
        assert got is None or got == bytes([i]) * 32, (why, i)
    return sum(1 for i in range(2, 10) if ks.get(_host(i)) is not None)


def test_a_key_store_copy_rolled_back_brings_no_host_back():
    """Each file of the store taken back (or brought back) to what it was before host 9
    paired, as a littlefs metadata rollback of its directory does."""
    rig, before, after = _full_then_one_more()
    for p in set(before) | set(after):
        _restore({p: before[p]} if p in before else {}, [p])
        _let_go_stays_gone(p)
        _restore(after, set(before) | set(after))
    rig.close()


def test_a_flipped_bit_in_the_key_store_gives_no_wrong_or_old_key():
    rig, before, after = _full_then_one_more()
    kept = {}
    for p, _, _, bad in powercut.bit_flips(after, 5):
        with open(p, "wb") as f:
            f.write(bad)
        n = _let_go_stays_gone((p, bad))
        kept[n] = kept.get(n, 0) + 1
        _restore(after)
    print("keys, bits flipped: hosts kept", kept)
    rig.close()


def test_every_key_copy_bad_keeps_no_key():
    rig, before, after = _full_then_one_more()
    for p in after:
        data = bytearray(after[p])
        data[len(data) // 2] ^= 8
        with open(p, "wb") as f:
            f.write(data)
    assert _let_go_stays_gone("both") == 0
    ks = keystore.KeyStore(_D)
    ks.put(_host(3), b"\x33" * 32)              # paired again: the store works on
    assert keystore.KeyStore(_D).get(_host(3)) == b"\x33" * 32
    rig.close()


def test_keys_of_before_the_copies_are_taken_over():
    gc.collect()
    rig = powercut.Rig()
    os.mkdir(_D + "/hosts")
    with open(_D + "/hosts/" + "01" * 8, "wb") as f:
        f.write(b"\x01" * 32 + (5).to_bytes(4, "little"))
    with open(_D + "/hosts/" + "07" * 8, "wb") as f:
        f.write(b"\x07" * 32)                   # before use numbers were kept
    ks = keystore.KeyStore(_D)
    assert ks.get(_host(1)) == b"\x01" * 32 and ks.get(_host(7)) == b"\x07" * 32
    ks = keystore.KeyStore(_D)
    assert ks.get(_host(1)) == b"\x01" * 32 and ks.get(_host(7)) == b"\x07" * 32
    rig.close()


# ---- power cuts ----------------------------------------------------------------------------
def _keys_now(d):
    ks = keystore.KeyStore(d)
    assert ks.problem is None, ks.problem          # a cut is never a doubt
    return sorted((n, ks.keys[n][0], ks.keys[n][1]) for n in ks.keys)


def test_the_key_store_under_a_cut_at_every_write():
    """A full store: a ninth host (the least recent goes), a host used, a tenth; after a
    cut at any write the store is the one before the step cut or after it, in no doubt."""
    gc.collect()
    rig = powercut.Rig()
    ks = keystore.KeyStore(_D)
    for i in range(1, 9):
        ks.put(_host(i), bytes([i]) * 32)
    ks = None
    rig.save()

    def boot(s):
        s.ks = keystore.KeyStore(s.dir)

    def put(i):
        return lambda s: s.ks.put(_host(i), bytes([i]) * 32)

    steps = [boot, put(9), lambda s: s.ks.used(_host(2)), put(10)]

    def observe(s):
        return _keys_now(s.dir) if hasattr(s, "ks") else None

    per_step, seen = powercut.count_writes(rig, steps, observe)
    assert all(per_step[1:]), per_step

    def check(s, done, seen):
        got = _keys_now(s.dir)
        ok = [seen[done], seen[done + 1]] if done else [seen[1]]
        assert got in ok, (s.k, done)

    n = powercut.every_cut(rig, steps, check, observe)
    rig.close()
    print("key store: %d writes cut" % n)
