"""The simulated board's flash: a littlefs block device on a host file.

A file rather than a bytearray so that a board-sized flash costs the 192 KB heap
nothing. It survives the firmware's resets within a run (power cuts, watchdog), as
flash does. `cut_at_write` arms a power cut on the Nth program or erase from now: that
operation is torn (half of it lands) and the cut is raised from inside the filesystem,
so tests can cut power at every single flash write.
"""
from micropython import const

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
        self.writes += 1
        if self.cut_at and self.writes >= self.cut_at:
            self.cut_at = 0
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
        if op == _IOCTL_BLOCK_COUNT:
            return self.blocks
        if op == _IOCTL_BLOCK_SIZE:
            return self.block_size
        if op == _IOCTL_BLOCK_ERASE:
            self._land(arg * self.block_size, self.erased)
            return 0
        return 0

    def close(self):
        self.f.close()
