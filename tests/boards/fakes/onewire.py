"""A stand-in `onewire` for the unix port: the sim board's emulated DS2431 bus
(boards/sim/ds2431.py, the same API as MicroPython's onewire.OneWire), so a real board's
podlet reader runs byte for byte. The test puts a chip on the bus: BUSES[-1].image."""
from ds2431 import Ds2431Bus, OneWireError  # noqa: F401  (onewire's own exception)

BUSES = []


class OneWire(Ds2431Bus):
    def __init__(self, pin):
        super().__init__(None)
        self.pin = pin
        BUSES.append(self)
