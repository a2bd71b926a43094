"""`rp2` for the port models: rp2.Flash, the RP2040's filesystem flash. Called with no
arguments the port returns one object over the whole filesystem area
(ports/rp2/rp2_flash.c, rp2_flash_make_new: "Default singleton object"), the one its
_boot.py mounted: here the timed block device portrun's boot mounted
(timedflash.DEVICE). The rest of the rp2 module (PIO, StateMachine, DMA) is not
modelled."""
import timedflash


def Flash():
    dev = timedflash.DEVICE[0]
    if dev is None:
        raise OSError(19)       # no filesystem flash made yet (ENODEV)
    return dev
