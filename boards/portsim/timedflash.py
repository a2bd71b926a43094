"""The boards' internal flash as a block device with erase and program times: the sim
board's FileFlash (boards/sim/flash.py: a host file, power cuts at a chosen write) whose
erases and programs hold the clock (portclock.busy: interrupts off) for as long as a
QSPI NOR flash takes. rp2.Flash() and esp32.Partition.find(...) return the one in
DEVICE (portrun's boot makes it and mounts it). Times per W25Q16JV/W25Q32JV datasheet (the Pico W's and the C3 modules' class of
part): sector erase (4 KiB) 45 ms typical, 400 ms max; page program (256 B) 0.4 ms
typical, 3 ms max. $PORTSIM_FLASH=worst takes the maxima.

rp2 (ports/rp2/rp2_flash.c rp2_flash_writeblocks): the erase of the whole buffer is one
critical section, the program another, pending events handled after each. esp32
(ports/esp32/esp32_partition.c, esp_partition_erase_range/write): the cache is off
during each; modelled the same. Left out: the C3's SPI driver yielding between chunks
of a long erase (CONFIG_SPI_FLASH_YIELD_DURING_ERASE), suspend/resume."""
import os

import portclock
from flash import FileFlash

WORST = os.getenv("PORTSIM_FLASH") == "worst"
ERASE_US = 400000 if WORST else 45000
PAGE_US = 3000 if WORST else 400
_PAGE = 256
# The filesystem flash the port's boot mounted (portrun.Wiring makes it).
DEVICE = [None]


class TimedFlash(FileFlash):
    def __init__(self, path, blocks=128, block_size=4096):
        FileFlash.__init__(self, path, blocks, block_size)
        self.busy_us = 0            # time spent erasing and programming
        self.longest_us = 0         # the longest single operation
        self.erases = 0

    def _hold(self, us):
        self.busy_us += us
        if us > self.longest_us:
            self.longest_us = us
        portclock.busy(us)

    def writeblocks(self, n, buf, off=None):
        if off is None:
            self.erases += len(buf) // self.block_size or 1
            self._hold(ERASE_US * (len(buf) // self.block_size or 1))
            self._land(n * self.block_size, self.erased)
            off = 0
        self._hold(PAGE_US * ((len(buf) + _PAGE - 1) // _PAGE))
        self._land(n * self.block_size + off, buf)

    def ioctl(self, op, arg):
        if op == 6:     # MP_BLOCKDEV_IOCTL_BLOCK_ERASE
            self.erases += 1
            self._hold(ERASE_US)
        return FileFlash.ioctl(self, op, arg)
