"""`esp32` for the port models: esp32.Partition.find for the "vfs" data partition
(ports/esp32/esp32_partition.c, esp32_partition_find: a list of the partitions that
match), each the timed block device portrun's boot mounted (timedflash.DEVICE). The
rest (RMT, NVS, ULP) is not modelled."""
import timedflash


class Partition:
    RUNNING = 1
    TYPE_APP = 0
    TYPE_DATA = 1

    @staticmethod
    def find(type=TYPE_APP, subtype=255, label=None, block_size=4096):
        dev = timedflash.DEVICE[0]
        if type != Partition.TYPE_DATA or label != "vfs" or dev is None:
            return []
        return [dev]
