"""Reads a podlet's ID chip (a DS2431-style 1-Wire EEPROM) into podproto.podlet's image.

The bus is any object with MicroPython's onewire.OneWire API: reset(required=False) ->
presence, writebyte, readinto, crc8. A real board hands over onewire.OneWire(Pin(n)); the
sim board an emulated DS2431 on an emulated bus (boards/sim/ds2431.py), so this code runs
in every simulation.

One read is a single bus transaction: reset, Read ROM (0x33: the 8-byte ROM ID, family
code and CRC-8), then Read Memory (0xF0, address 0: the 128 bytes of memory). The ROM ID
carries a CRC-8 but the DS2431's memory read carries none, so a result counts only once
two reads in a row agree byte for byte (about 2 x 80 ms at standard speed). What the
reader can tell apart is its status:

    OK            the image, confirmed
    BAD_CRC       the ROM ID fails its CRC-8 the same way on two reads: what the chip holds
    WRONG_FAMILY  the ROM ID is sound but names another kind of chip (memory not read)
    ABSENT        no presence pulse at the first reset: nothing on the bus
    BUS_ERROR     the bus failed: the chip stopped answering resets during the read (contact
                  lost), the bus raised, reads never agreed twice, or the bus is held low

read() gives the image for the first three (the podlet format then refuses a bad CRC or
family by itself, with a reason) and None for the last two (the firmware's "unreadable").

read_rom() is the short read that confirms which chip is in the slot: reset and Read ROM
only (10 bytes on the wire, about 6 ms at standard speed), the ROM ID sound by its CRC-8
and family code, or None.
"""
from micropython import const

from podproto.podlet import FAMILY, IMAGE_LEN, ROM_LEN

OK = const(0)
BAD_CRC = const(1)
WRONG_FAMILY = const(2)
ABSENT = const(3)
BUS_ERROR = const(4)
STATUS_NAMES = ("ok", "bad_crc", "wrong_family", "absent", "bus_error")

_READ_ROM = const(0x33)
_READ_MEMORY = const(0xF0)
# Reads per podlet: two that agree are needed, so this allows two failed or garbled ones.
_ATTEMPTS = const(4)
# ROM reads per confirmation: the CRC-8 vouches for one, so a second is for a glitch.
_ROM_ATTEMPTS = const(2)


class IdChip:
    """The ID chip on `bus`. read() -> the 136-byte image (bytes) or None; `status` and
    `reads` tell what the last read() found and how many bus transactions it took."""

    def __init__(self, bus, attempts=_ATTEMPTS):
        self._bus = bus
        self.attempts = attempts
        self.image = bytearray(IMAGE_LEN)
        self._prev = bytearray(IMAGE_LEN)
        self._rom = memoryview(self.image)[0:ROM_LEN]
        self._mem = memoryview(self.image)[ROM_LEN:IMAGE_LEN]
        self._rom_only = bytearray(ROM_LEN)
        self.status = ABSENT
        self.reads = 0

    def read(self):
        status = self.read_status()
        if status == OK or status == BAD_CRC or status == WRONG_FAMILY:
            return bytes(self.image)
        return None

    def read_steps(self):
        """read() one bus transaction at a time: a generator that yields after each
        transaction but the last; its return value is read()'s. A read of up to
        _ATTEMPTS transactions (~80-90 ms each on a real 1-Wire bus) then spreads over
        as many service() calls, so none outlasts the heater's 300 ms keep-alive (issue
        14 item 6)."""
        self.status = status = yield from self._read_steps()
        if status == OK or status == BAD_CRC or status == WRONG_FAMILY:
            return bytes(self.image)
        return None

    def read_rom(self):
        """The ROM ID (8 bytes) of the chip on the bus, its CRC-8 and family sound; None
        when no chip answers, the bus fails, or no read passes its CRC-8."""
        bus = self._bus
        rom = self._rom_only
        for _ in range(_ROM_ATTEMPTS):
            try:
                if not bus.reset():
                    return None
                bus.writebyte(_READ_ROM)
                bus.readinto(rom)
            except MemoryError as e:   # the heap, not the bus
                raise e
            except Exception:   # whatever the bus raised
                return None
            # All zeros (a bus held low) pass the CRC-8; no chip has family 0.
            if bus.crc8(rom) == 0 and rom[0] == FAMILY:
                return bytes(rom)
        return None

    def read_status(self):
        """Reads until two transactions agree; returns the status and leaves the image in
        self.image."""
        steps = self._read_steps()
        try:
            while True:
                next(steps)
        except StopIteration as done:
            status = done.value
        self.status = status
        return status

    def _read_steps(self):
        image = self.image
        prev = self._prev
        prev_status = -1
        for attempt in range(self.attempts):
            if attempt:
                yield
            self.reads = attempt + 1
            try:
                got = self._transaction()
            except MemoryError as e:   # the heap, not the bus
                raise e
            except Exception:   # OSError, onewire.OneWireError: whatever the bus raised
                return BUS_ERROR
            if got == ABSENT:
                # Unanswered at once: no chip. Unanswered later: the chip left the bus
                # during the read, so nothing read so far can be trusted.
                return ABSENT if attempt == 0 else BUS_ERROR
            if got == BUS_ERROR:
                prev_status = -1
                continue
            if got == prev_status and image == prev:
                return got
            prev_status = got
            prev[:] = image
        return BUS_ERROR

    def _transaction(self):
        bus = self._bus
        image = self.image
        if not bus.reset():
            return ABSENT
        bus.writebyte(_READ_ROM)
        bus.readinto(self._rom)
        # Run over the whole ROM ID, its CRC byte included, the CRC-8 comes out 0.
        if bus.crc8(self._rom) != 0:
            self._blank_memory()
            return BAD_CRC
        if image[0] != FAMILY:
            if not any(self._rom):
                # A bus held low reads all zeros, which pass the CRC-8.
                return BUS_ERROR
            self._blank_memory()
            return WRONG_FAMILY
        bus.writebyte(_READ_MEMORY)
        bus.writebyte(0)        # TA1, TA2: target address 0x0000
        bus.writebyte(0)
        bus.readinto(self._mem)
        return OK

    def _blank_memory(self):
        # Memory of a chip that failed its ROM checks is never read: it reads as erased.
        mem = self._mem
        for i in range(len(mem)):
            mem[i] = 0xFF
