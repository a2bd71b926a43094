"""A power cut at every flash write of a sequence, for the mpt_powercut_* tests.

The flash is the sim board's FileFlash (the board's 4 KB blocks, fewer of them so each
case is cheap) with littlefs mounted at MOUNT. A sequence is a list of steps, each a
function of one namespace `s` (s.dir is the data directory). `every_cut` runs it once to
count its flash writes, then for every write k: the saved flash, the sequence with the
power cut at write k, a boot (the filesystem must mount, it is never formatted again)
and the caller's check, told how many steps had completed when the power went.
"""
import os
import vfs

from flash import FileFlash, PowerCut

MOUNT = "/pcut"
_open = []      # the rig in use: a new one closes it (a failed test leaves its rig open)


class Rig:
    def __init__(self, blocks=32):
        while _open:
            _open.pop().close()
        tag = "".join("%02x" % b for b in os.urandom(6))
        self.path = "/tmp/steamer-pcut-%s.flash" % tag
        self.saved = self.path + ".saved"
        self.flash = FileFlash(self.path, blocks)
        os.remove(self.path)          # open, so it lives until closed, and never leaks
        self.mounted = False
        vfs.VfsLfs2.mkfs(self.flash)
        _open.append(self)
        self.boot()

    def boot(self):
        """A reboot: RAM from before is gone, the filesystem must mount as it is."""
        if self.mounted:
            vfs.umount(MOUNT)
            self.mounted = False
        vfs.mount(vfs.VfsLfs2(self.flash), MOUNT)
        self.mounted = True

    def save(self):
        self.flash.save(self.saved)

    def restore(self):
        """The flash as saved, freshly booted."""
        if self.mounted:
            vfs.umount(MOUNT)
            self.mounted = False
        self.flash.restore(self.saved)
        self.boot()

    def close(self):
        if self in _open:
            _open.remove(self)
        if self.mounted:
            vfs.umount(MOUNT)
            self.mounted = False
        self.flash.close()
        try:
            os.remove(self.saved)
        except OSError:
            pass


class Run:
    """The namespace the steps of a sequence share."""

    def __init__(self):
        self.dir = MOUNT


def count_writes(rig, steps, observe=None):
    """(writes of each step, what observe(s) saw before the first step and after each
    one), from the saved flash with no cut."""
    rig.restore()
    s = Run()
    per_step = []
    seen = [observe(s) if observe else None]
    for step in steps:
        w = rig.flash.writes
        step(s)
        per_step.append(rig.flash.writes - w)
        seen.append(observe(s) if observe else None)
    return per_step, seen


def every_cut(rig, steps, check, observe=None):
    """Cuts the power at every flash write of steps, from the saved flash; after each cut
    boots and calls check(s, done, seen): s the namespace as the steps left it, done how
    many steps had completed, seen what observe saw when the sequence ran uncut (seen[i]
    after i steps). Returns the number of writes cut (each one of them)."""
    per_step, seen = count_writes(rig, steps, observe)
    total = sum(per_step)
    assert total > 0
    for k in range(1, total + 1):
        rig.restore()
        rig.flash.cut_at_write(k)
        s = Run()
        s.k = k
        done = 0
        try:
            for step in steps:
                step(s)
                done += 1
            raise AssertionError("write %d of %d: no cut (steps wrote %s)" % (k, total, per_step))
        except PowerCut:
            pass
        # The same writes as the uncut run: the step cut is the one whose writes span k.
        assert sum(per_step[:done]) < k <= sum(per_step[:done + 1]), (k, done, per_step)
        rig.boot()
        check(s, done, seen)
    return total


def bit_flips(files, every):
    """(path, byte offset, bit, bad bytes) for each bit of every `every`-th byte of each
    file in files (path -> good bytes), one flipped at a time: a flash cell gone bad."""
    for p in files:
        good = files[p]
        for at in range(0, len(good), every):
            for bit in range(8):
                bad = bytearray(good)
                bad[at] ^= 1 << bit
                yield p, at, bit, bytes(bad)
