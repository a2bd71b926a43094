"""Profile install under a power cut at every flash write: after the boot the device has
the old profile or the new one, byte for byte and verified again, never a mix, never
none when it had one; what a cut install left behind is cleaned."""
import gc
import os

from fw import trust
from podproto import profile as profile_fmt
import powercut
import signed

_OLD = bytes.fromhex(signed.PROFILE_OK_HEX)


def _version_2():
    """The fixture's profile as version 2, with the development key's signature: the
    fixture's tampered profile carries exactly that signature (of version + 1)."""
    tamper = bytes.fromhex(signed.PROFILE_TAMPER_HEX)
    body = _OLD[:-64]
    assert tamper[:-64] == body
    prof = profile_fmt.decode(body)
    assert prof["version"] == 1
    prof["version"] = 2
    return profile_fmt.encode(prof) + tamper[-64:]


_NEW = _version_2()
_TYPE = profile_fmt.decode(_OLD[:-64])["podlet_type"]
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
