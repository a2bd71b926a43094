"""An emulated DS2431-style podlet ID chip on an emulated 1-Wire bus, behind the API of
MicroPython's onewire.OneWire, so the firmware's reader (fw.idchip) drives it byte by byte
exactly as it drives a real bus.

The chip answers a reset with a presence pulse, then takes the ROM commands Read ROM
(0x33), Match ROM (0x55) and Skip ROM (0xCC), and after one of them the memory command
Read Memory (0xF0, target address low byte then high byte). Its 136 bytes are podproto's
image: the 8-byte ROM ID, then the 128 bytes of memory (an image shorter than that reads
0xFF where it has no bytes, as erased EEPROM). Addresses past the memory, and any read
while no command is reading, give 0xFF: nobody drives the bus and the pull-up wins.
Search ROM (0xF0 as a ROM command) and the write commands are not emulated: the chip goes
idle, as a real one does on a command it does not know.

`break_after` > 0 emulates a podlet with a bad contact (the scenario's podlet_bus_error):
in every exchange the contact breaks after that many bytes (commands and data both
count), the rest of the exchange reads 0xFF, and the chip misses the next reset's presence
pulse before it is back.
"""
from podproto.podlet import IMAGE_LEN, ROM_LEN, crc8

_IDLE = 0
_ROM_COMMAND = 1
_READ_ROM = 2
_MATCH_ROM = 3
_FUNCTION = 4
_ADDRESS = 5
_READ_MEMORY = 6
_MEM_LEN = IMAGE_LEN - ROM_LEN


class OneWireError(Exception):
    pass


class Ds2431Bus:
    SEARCH_ROM = 0xF0
    MATCH_ROM = 0x55
    SKIP_ROM = 0xCC

    def __init__(self, image=None):
        self.image = image          # the chip's bytes, or None: no chip on the bus
        self.break_after = 0
        self._state = _IDLE
        self._pos = 0
        self._addr = 0
        self._moved = 0             # bytes of this exchange, for break_after
        self._broken = False
        self.resets = 0             # bus statistics, for tests
        self.bytes_moved = 0

    # ---- onewire.OneWire's API ---------------------------------------------------------
    def reset(self, required=False):
        self.resets += 1
        self._state = _IDLE
        self._moved = 0
        present = self.image is not None and not self._broken
        self._broken = False
        if present:
            self._state = _ROM_COMMAND
        elif required:
            raise OneWireError
        return present

    def writebyte(self, value):
        if not self._count():
            return
        state = self._state
        value &= 0xFF
        if state == _ROM_COMMAND:
            if value == 0x33:
                self._state, self._pos = _READ_ROM, 0
            elif value == self.MATCH_ROM:
                self._state, self._pos = _MATCH_ROM, 0
            elif value == self.SKIP_ROM:
                self._state = _FUNCTION
            else:
                self._state = _IDLE
        elif state == _MATCH_ROM:
            if value != self._byte(self._pos):
                self._state = _IDLE         # another chip's ROM ID: this one drops out
            else:
                self._pos += 1
                if self._pos == ROM_LEN:
                    self._state = _FUNCTION
        elif state == _FUNCTION:
            if value == 0xF0:
                self._state, self._pos, self._addr = _ADDRESS, 0, 0
            else:
                self._state = _IDLE
        elif state == _ADDRESS:
            self._addr |= value << (8 * self._pos)
            self._pos += 1
            if self._pos == 2:
                self._state = _READ_MEMORY
        # Writes in any other state go unheard.

    def readbyte(self):
        if not self._count():
            return 0xFF
        state = self._state
        if state == _READ_ROM:
            value = self._byte(self._pos)
            self._pos += 1
            if self._pos == ROM_LEN:
                self._state = _FUNCTION
            return value
        if state == _READ_MEMORY:
            addr = self._addr
            self._addr += 1
            return self._byte(ROM_LEN + addr) if addr < _MEM_LEN else 0xFF
        return 0xFF

    def readinto(self, buf):
        for i in range(len(buf)):
            buf[i] = self.readbyte()

    def write(self, buf):
        for b in buf:
            self.writebyte(b)

    def select_rom(self, rom):
        self.reset()
        self.writebyte(self.MATCH_ROM)
        self.write(rom)

    def crc8(self, data):
        return crc8(data)

    # ---- the chip ------------------------------------------------------------------------
    def _byte(self, i):
        image = self.image
        return image[i] if image is not None and i < len(image) else 0xFF

    def _count(self):
        """Counts one byte of the exchange; False once the contact has broken."""
        if self._state == _IDLE and not self._broken:
            return True
        self._moved += 1
        self.bytes_moved += 1
        if self.break_after and self._moved > self.break_after:
            self._broken = True
            self._state = _IDLE
        return not self._broken
