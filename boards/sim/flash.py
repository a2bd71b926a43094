"""The simulated board's flash: a littlefs block device on a host file.

A file rather than a bytearray so that a board-sized flash costs the 192 KB heap
nothing. It survives the firmware's resets within a run (power cuts, watchdog), as
flash does. `cut_at_write` arms a power cut on the Nth program or erase from now: that
operation is torn (half of it lands) and the cut is raised from inside the filesystem,
so tests can cut power at every single flash write. From the cut until the next mount
(the filesystem's init of the device: a boot) the power is off: whatever the code still
tries to write as the cut unwinds it (a file closed by a `with`) lands nowhere and raises
the cut again. A file the cut left half closed would close itself from its finaliser
whenever the collector ran, through the filesystem object of before the cut, over the
one mounted since: so the mount collects first, while the power is still off (those
finalisers fail; the unix port prints their exceptions). `save` and `restore` copy the whole image to and from another host file,
so each cut can start from the same flash.
"""
import gc

from micropython import const

_IOCTL_INIT = const(1)
_IOCTL_BLOCK_COUNT = const(4)
_IOCTL_BLOCK_SIZE = const(5)
_IOCTL_BLOCK_ERASE = const(6)


class PowerCut(BaseException):
    """Raised out of a write when an armed power cut happens."""


class FileFlash:
    def __init__(self, path, blocks=128, block_size=4096):
        self.block_size = block_size
        self.blocks = blocks
        self.writes = 0          # programs and erases so far
        self.cut_at = 0          # 0: no cut armed
        self.off = False         # cut: nothing lands until the next boot
        self.image = None        # the host file last saved or restored, and since then
        self.dirty = bytearray(blocks)  # the blocks written (so a restore copies few)
        self.erased = b"\xff" * block_size
        try:
            self.f = open(path, "r+b")
        except OSError:
            self.f = open(path, "w+b")
            for _ in range(blocks):
                self.f.write(self.erased)
            self.f.flush()

    def cut_at_write(self, n):
        """Power fails during the nth program or erase from now (n >= 1)."""
        self.cut_at = self.writes + n

    def _land(self, offset, data):
        if self.off:
            raise PowerCut()
        self.writes += 1
        self.dirty[offset // self.block_size] = 1
        if self.cut_at and self.writes >= self.cut_at:
            self.cut_at = 0
            self.off = True
            self.f.seek(offset)
            self.f.write(data[:len(data) // 2])
            self.f.flush()
            raise PowerCut()
        self.f.seek(offset)
        self.f.write(data)

    def readblocks(self, n, buf, off=0):
        self.f.seek(n * self.block_size + off)
        self.f.readinto(buf)

    def writeblocks(self, n, buf, off=None):
        if off is None:
            self._land(n * self.block_size, self.erased)
            off = 0
        self._land(n * self.block_size + off, buf)

    def ioctl(self, op, arg):
        if op == _IOCTL_INIT:
            if self.off:
                gc.collect()     # RAM from before the cut is gone: see the docstring
            self.off = False     # mounted again: the power is back
            return 0
        if op == _IOCTL_BLOCK_COUNT:
            return self.blocks
        if op == _IOCTL_BLOCK_SIZE:
            return self.block_size
        if op == _IOCTL_BLOCK_ERASE:
            self._land(arg * self.block_size, self.erased)
            return 0
        return 0

    def save(self, path):
        """Copies the whole image to the host file at path."""
        buf = bytearray(self.block_size)
        with open(path, "wb") as out:
            for n in range(self.blocks):
                self.readblocks(n, buf)
                out.write(buf)
        self.image = path
        self.dirty[:] = bytes(self.blocks)

    def restore(self, path):
        """The image saved at path, as if freshly made: no writes counted, no cut armed.
        Restoring the image saved or restored last copies only the blocks written since."""
        buf = bytearray(self.block_size)
        every = path != self.image
        with open(path, "rb") as src:
            for n in range(self.blocks):
                if every or self.dirty[n]:
                    src.seek(n * self.block_size)
                    src.readinto(buf)
                    self.f.seek(n * self.block_size)
                    self.f.write(buf)
        self.f.flush()
        self.image = path
        self.dirty[:] = bytes(self.blocks)
        self.writes = 0
        self.cut_at = 0
        self.off = False

    def close(self):
        self.f.close()
