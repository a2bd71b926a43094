"""Profile install under a power cut at every flash write: after the boot the device has
the old profile or the new one, byte for byte and verified again, never a mix, never
none when it had one; what a cut install left behind is cleaned."""
import gc
import hashlib
import os

from fw import trust
import powercut
import signed
import versions

_OLD, _NEW, _TYPE = versions.OLD, versions.NEW, versions.TYPE
_V3 = bytes.fromhex(signed.PROFILE_V3_HEX)
_DIR = powercut.MOUNT + "/profiles"
_FILE = "%s/%d" % (_DIR, _TYPE)


def _provision():
    with open(powercut.MOUNT + "/" + trust.KEY_FILE, "wb") as f:
        f.write(bytes.fromhex(signed.MFG_PUBLIC_HEX))


def _boot(s):
    s.trust = trust.Trust(s.dir)
    assert s.trust.load() == []


def _install(blob):
    def step(s):
        assert s.trust.install(blob)[1] is None
    return step


def _installed():
    """(bytes, version) of the installed profile after a boot, or (None, None); checks
    that the boot verified it again and left nothing else in the folder."""
    t = trust.Trust(powercut.MOUNT)
    assert t.load() == []
    names = os.listdir(_DIR)
    if not names:
        assert t.profiles == {}
        return None, None
    assert names == [str(_TYPE)], names         # a cut install's .new is gone
    with open(_FILE, "rb") as f:
        blob = f.read()
    # What profile_list carries: the SHA-256 of the file the boot verified.
    assert t.profiles[_TYPE]["sha256"] == hashlib.sha256(blob).digest()
    return blob, t.profiles[_TYPE]["version"]


def _check_upgrade(s, done, seen):
    blob, version = _installed()
    # Exactly one of the two, and the one the device says it uses.
    assert (blob, version) in ((_OLD, 1), (_NEW, 2)), (s.k, version, blob)
    if done == 0:                               # cut in the boot that cleans up
        assert version == 1, s.k
    # The install works after the boot, or is already done.
    t = trust.Trust(powercut.MOUNT)
    t.load()
    assert t.install(_NEW)[1] == (None if version == 1 else "stale_version")
    assert _installed() == (_NEW, 2)


def test_the_new_version_verifies():
    """The fixture-derived version 2 is a genuine profile the device accepts."""
    rig = powercut.Rig()
    _provision()
    prof, reason = trust.Trust(powercut.MOUNT).check_profile(_NEW)
    rig.close()
    assert reason is None and prof["version"] == 2
    assert len(_NEW) == len(_OLD) and _NEW != _OLD


def test_cut_at_every_write_of_an_upgrade():
    """Version 1 installed, and the .new of an install cut short before; a boot (which
    removes that .new) then the install of version 2."""
    gc.collect()
    rig = powercut.Rig()
    _provision()
    t = trust.Trust(powercut.MOUNT)
    assert t.install(_OLD)[1] is None
    with open(_FILE + ".new", "wb") as f:       # what a cut install leaves
        f.write(_NEW[:len(_NEW) // 2])
    rig.save()
    steps = [_boot, _install(_NEW)]
    per_step, _ = powercut.count_writes(rig, steps)
    assert per_step[0] > 0 and per_step[1] > 0, per_step
    n = powercut.every_cut(rig, steps, _check_upgrade)
    rig.close()
    print("profile upgrade: %d writes cut" % n)


def _check_first(s, done, seen):
    blob, version = _installed()
    assert (blob, version) in ((None, None), (_OLD, 1)), (s.k, version, blob)
    t = trust.Trust(powercut.MOUNT)
    t.load()
    assert t.install(_OLD)[1] == (None if version is None else "stale_version")
    assert _installed() == (_OLD, 1)


def test_cut_at_every_write_of_a_first_install():
    """A new device: the first boot makes the profiles folder, then the first install."""
    gc.collect()
    rig = powercut.Rig()
    _provision()
    rig.save()
    steps = [_boot, _install(_OLD)]
    n = powercut.every_cut(rig, steps, _check_first)
    rig.close()
    print("profile first install: %d writes cut" % n)


def _corrupt():
    """A bit flipped in the installed profile's file: its signature no longer verifies."""
    with open(_FILE, "rb") as f:
        blob = bytearray(f.read())
    blob[10] ^= 1
    with open(_FILE, "wb") as f:
        f.write(blob)


def _check_no_rollback(s, done, seen):
    """After the cut: version 2 or 3. Then the installed file goes bad, and the boot
    leaves it out; yet no version below the newest one ever installed is taken again,
    while the newest's very bytes are (a repair, or the install the cut interrupted)."""
    blob, version = _installed()
    assert (blob, version) in ((_NEW, 2), (_V3, 3)), (s.k, version)
    _corrupt()
    t = trust.Trust(powercut.MOUNT)
    assert t.load() == [(str(_TYPE), "bad_signature")], s.k
    assert t.profiles == {}
    assert t.install(_OLD) == (None, "stale_version"), s.k
    if version == 3:
        assert t.install(_NEW) == (None, "stale_version"), s.k
    assert t.install(_V3)[1] is None, s.k
    assert t.install(_NEW) == (None, "stale_version"), s.k
    assert _installed() == (_V3, 3)


def test_cut_at_every_write_of_an_upgrade_then_a_bad_file_rolls_nothing_back():
    """Versions 1 then 2 installed; version 3's install cut at every write; then the
    installed file goes bad."""
    gc.collect()
    rig = powercut.Rig()
    _provision()
    t = trust.Trust(powercut.MOUNT)
    assert t.install(_OLD)[1] is None and t.install(_NEW)[1] is None
    rig.save()
    steps = [_boot, _install(_V3)]
    n = powercut.every_cut(rig, steps, _check_no_rollback)
    rig.close()
    print("profile upgrade, then a bad file: %d writes cut" % n)


def test_a_reprovisioned_key_reopens_no_older_version():
    """Version 2 installed; the device re-provisioned with another key, under which the
    installed profile fails at boot: that key's version 1 is still refused."""
    gc.collect()
    rig = powercut.Rig()
    _provision()
    t = trust.Trust(powercut.MOUNT)
    assert t.install(_OLD)[1] is None and t.install(_NEW)[1] is None
    with open(powercut.MOUNT + "/" + trust.KEY_FILE, "wb") as f:
        f.write(bytes.fromhex(signed.OTHER_PUBLIC_HEX))
    t = trust.Trust(powercut.MOUNT)
    assert t.load() == [(str(_TYPE), "bad_signature")]
    other_v1 = bytes.fromhex(signed.PROFILE_WRONG_KEY_HEX)      # signed with that key
    assert t.check_profile(other_v1)[1] is None
    assert t.install(other_v1) == (None, "stale_version")
    rig.close()


def test_the_marks_are_restored_from_the_installed_profiles():
    """A device whose mark file is lost (or that installed before marks were kept): the
    boot takes the marks from the profiles that verify, so a later bad file still rolls
    nothing back."""
    gc.collect()
    rig = powercut.Rig()
    _provision()
    t = trust.Trust(powercut.MOUNT)
    assert t.install(_OLD)[1] is None and t.install(_NEW)[1] is None
    for i in (0, 1):                           # every copy of the marks, and the witness
        os.remove(t.marks.path(i))
    os.remove(t.marks.witness)
    assert trust.Trust(powercut.MOUNT).load() == []
    _corrupt()
    t = trust.Trust(powercut.MOUNT)
    assert t.load() == [(str(_TYPE), "bad_signature")]
    assert t.install(_OLD) == (None, "stale_version")
    assert t.install(_NEW)[1] is None
    rig.close()
