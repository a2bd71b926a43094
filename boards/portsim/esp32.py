"""`esp32` for the port models: esp32.Partition for the filesystem partition, as the
timed block device of timedflash.py (ports/esp32/esp32_partition.c). The rest (RMT,
NVS, ULP) is not modelled."""
from timedflash import TimedFlash


class Partition(TimedFlash):
    RUNNING = 1
    TYPE_DATA = 1

    def __init__(self, label="vfs", path="esp32-flash.img", blocks=128):
        TimedFlash.__init__(self, path, blocks, 4096)
        self.label = label
