"""The podlet ID-chip reader (fw.idchip) on the emulated DS2431 bus of the sim board
(boards/sim/ds2431.py) and on buses that misbehave in the ways a real 1-Wire bus does."""
from ds2431 import Ds2431Bus
from podproto import ProtocolError
from podproto import podlet
from signed import PODLET_OK_HEX

from fw import idchip

IMAGE = bytes.fromhex(PODLET_OK_HEX)


def _with_rom_crc_flipped(image):
    b = bytearray(image)
    b[7] ^= 0xFF
    return bytes(b)


def _decode_error(image):
    try:
        podlet.decode(image)
    except ProtocolError as e:
        return str(e)
    return None


class Recording(Ds2431Bus):
    """Logs the bus traffic: ("reset", presence), ("w", byte), ("r", count of reads in a row)."""

    def __init__(self, image):
        super().__init__(image)
        self.log = []

    def reset(self, required=False):
        got = super().reset(required)
        self.log.append(("reset", got))
        return got

    def writebyte(self, value):
        self.log.append(("w", value))
        super().writebyte(value)

    def readbyte(self):
        log = self.log
        if log and log[-1][0] == "r":
            log[-1] = ("r", log[-1][1] + 1)
        else:
            log.append(("r", 1))
        return super().readbyte()


class Garbling(Ds2431Bus):
    """Flips bit `bit` of the byte at `offset` of the image (0..7 ROM ID, 8.. memory) in the
    transactions numbered in `bad` (1 = the first reset)."""

    def __init__(self, image, offset, bad, bit=0):
        super().__init__(image)
        self.offset = offset
        self.bad = bad
        self.bit = bit
        self.at = 0

    def reset(self, required=False):
        self.at = 0
        return super().reset(required)

    def readbyte(self):
        v = super().readbyte()
        i = self.at
        self.at += 1
        if i == self.offset and self.resets in self.bad:
            v ^= 1 << (self.bit if isinstance(self.bit, int) else self.bit[self.resets % 8])
        return v


class Raising(Ds2431Bus):
    """Raises OSError on the n-th byte read (as a bus driver that times out would)."""

    def __init__(self, image, nth):
        super().__init__(image)
        self.nth = nth
        self.n = 0

    def readbyte(self):
        self.n += 1
        if self.n == self.nth:
            raise OSError(110)
        return super().readbyte()


class HeldLow:
    """A shorted data line: the reset pulse is never released, which reads as presence,
    and every bit reads 0."""

    def reset(self, required=False):
        return True

    def writebyte(self, value):
        pass

    def readinto(self, buf):
        for i in range(len(buf)):
            buf[i] = 0

    def crc8(self, data):
        return podlet.crc8(data)


def test_reads_the_image_confirmed_by_a_second_read():
    bus = Ds2431Bus(IMAGE)
    chip = idchip.IdChip(bus)
    assert chip.read() == IMAGE
    assert chip.status == idchip.OK and chip.reads == 2 and bus.resets == 2
    assert podlet.decode(chip.read())[0]["serial"] == "0000c0ffee01"


def test_the_transaction_on_the_wire():
    bus = Recording(IMAGE)
    idchip.IdChip(bus).read()
    one = [("reset", True), ("w", 0x33), ("r", 8), ("w", 0xF0), ("w", 0), ("w", 0), ("r", 128)]
    assert bus.log == one + one


def test_no_presence_is_absent_and_unreadable():
    bus = Ds2431Bus(None)
    chip = idchip.IdChip(bus)
    assert chip.read() is None
    assert chip.status == idchip.ABSENT and chip.reads == 1 and bus.resets == 1


def test_bad_rom_crc_on_the_chip_is_handed_on_for_a_crc_refusal():
    bad = _with_rom_crc_flipped(IMAGE)
    bus = Recording(bad)
    chip = idchip.IdChip(bus)
    got = chip.read()
    assert chip.status == idchip.BAD_CRC and chip.reads == 2
    # The ROM ID as the chip gave it; the memory of a chip that failed its CRC is not read.
    assert got == bad[0:8] + b"\xff" * 128
    assert ("w", 0xF0) not in bus.log
    assert _decode_error(got) == "podlet rom: crc8 mismatch"


def test_a_crc_error_on_one_read_is_retried():
    bus = Garbling(IMAGE, 3, (1,))           # a bit of the serial flipped in read 1
    chip = idchip.IdChip(bus)
    assert chip.read() == IMAGE
    assert chip.status == idchip.OK and chip.reads == 3


def test_crc_errors_that_differ_every_time_are_a_bus_error():
    bus = Garbling(IMAGE, 3, (1, 2, 3, 4), bit=(0, 1, 2, 3, 4, 5, 6, 7))
    chip = idchip.IdChip(bus)
    assert chip.read() is None
    assert chip.status == idchip.BUS_ERROR and chip.reads == 4


def test_a_garbled_memory_read_is_outvoted():
    # Memory has no CRC: a flipped bit in read 1 makes it disagree with read 2, and read 3
    # confirms read 2.
    bus = Garbling(IMAGE, 8 + 40, (1,))
    chip = idchip.IdChip(bus)
    assert chip.read() == IMAGE
    assert chip.status == idchip.OK and chip.reads == 3


def test_memory_reads_that_never_agree_are_a_bus_error():
    bus = Garbling(IMAGE, 8 + 40, (1, 2, 3, 4), bit=(0, 1, 2, 3, 4, 5, 6, 7))
    chip = idchip.IdChip(bus)
    assert chip.read() is None
    assert chip.status == idchip.BUS_ERROR and chip.reads == 4


def test_contact_lost_mid_read_is_a_bus_error():
    # The sim's podlet_bus_error: the contact breaks 20 bytes into the memory, so the
    # chip misses the next reset: nothing from that read is trusted, not even as "crc".
    bus = Ds2431Bus(IMAGE)
    bus.break_after = 32
    chip = idchip.IdChip(bus)
    assert chip.read() is None
    assert chip.status == idchip.BUS_ERROR and chip.reads == 2
    bus.break_after = 0                      # the contact is good again: the podlet reads
    assert chip.read() == IMAGE


def test_contact_lost_inside_the_rom_id_is_a_bus_error():
    bus = Ds2431Bus(IMAGE)
    bus.break_after = 4
    chip = idchip.IdChip(bus)
    assert chip.read() is None and chip.status == idchip.BUS_ERROR


def test_a_bus_that_raises_mid_read_is_a_bus_error():
    for nth in (1, 5, 9 + 60, 136 + 100):    # in the ROM, in the memory, in the second read
        chip = idchip.IdChip(Raising(IMAGE, nth))
        assert chip.read() is None and chip.status == idchip.BUS_ERROR, nth


def test_a_bus_held_low_is_a_bus_error_not_a_chip():
    # All zeros pass the CRC-8, so only the family code tells them from a chip.
    assert podlet.crc8(bytes(8)) == 0
    chip = idchip.IdChip(HeldLow())
    assert chip.read() is None and chip.status == idchip.BUS_ERROR and chip.reads == 4


def test_another_kind_of_chip_is_not_read_and_fails_the_format():
    rom = bytearray(IMAGE[0:8])
    rom[0] = 0x28                            # a DS18B20 temperature sensor's family
    rom[7] = podlet.crc8(rom[0:7])
    bus = Recording(bytes(rom) + IMAGE[8:])
    chip = idchip.IdChip(bus)
    got = chip.read()
    assert chip.status == idchip.WRONG_FAMILY and got == bytes(rom) + b"\xff" * 128
    assert ("w", 0xF0) not in bus.log
    assert _decode_error(got) == "podlet rom: family 0x28, want 0x2d"


def test_an_erased_chip_reads_as_a_crc_failure():
    chip = idchip.IdChip(Ds2431Bus(b""))
    assert chip.read() == b"\xff" * 136 and chip.status == idchip.BAD_CRC


def test_the_emulated_chip_answers_match_rom_and_skip_rom():
    bus = Ds2431Bus(IMAGE)
    buf = bytearray(4)
    bus.select_rom(IMAGE[0:8])
    bus.write(b"\xf0\x10\x00")               # Read Memory from address 0x0010
    bus.readinto(buf)
    assert bytes(buf) == IMAGE[8 + 16:8 + 20]
    other = bytearray(IMAGE[0:8])
    other[1] ^= 1
    bus.select_rom(other)                    # another chip's ROM ID: this one drops out
    bus.write(b"\xf0\x00\x00")
    bus.readinto(buf)
    assert bytes(buf) == b"\xff" * 4
    assert bus.reset()
    bus.writebyte(0xCC)                      # Skip ROM
    bus.write(b"\xf0\x7e\x00")
    bus.readinto(buf)                        # the last 2 bytes of memory, then past it
    assert bytes(buf) == IMAGE[8 + 126:] + b"\xff\xff"



def test_read_rom_is_the_rom_id_alone_checked_by_its_crc():
    bus = Recording(IMAGE)
    chip = idchip.IdChip(bus)
    assert chip.read_rom() == IMAGE[:8]
    assert bus.log == [("reset", True), ("w", 0x33), ("r", 8)]
    assert idchip.IdChip(Ds2431Bus(None)).read_rom() is None
    assert idchip.IdChip(Ds2431Bus(_with_rom_crc_flipped(IMAGE))).read_rom() is None
    assert idchip.IdChip(HeldLow()).read_rom() is None
    other = bytearray(IMAGE)
    other[0] = 0x28                       # another family, its CRC-8 made right
    other[7] = podlet.crc8(bytes(other[:7]))
    assert idchip.IdChip(Ds2431Bus(bytes(other))).read_rom() is None
