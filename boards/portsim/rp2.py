"""`rp2` for the port models: rp2.Flash, the RP2040's filesystem flash, as the timed
block device of timedflash.py (ports/rp2/rp2_flash.c). The rest of the rp2 module (PIO,
StateMachine, DMA) is not modelled."""
from timedflash import TimedFlash


class Flash(TimedFlash):
    def __init__(self, path="rp2-flash.img", blocks=128):
        TimedFlash.__init__(self, path, blocks, 4096)
