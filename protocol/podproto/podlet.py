"""The podlet ID chip's memory image: DS2431-style 1-Wire ROM ID plus signed data.

ROM ID (8 bytes, as the chip sends it): family code FAMILY (0x2D), the 48-bit serial
least significant byte first, then the Dallas/Maxim CRC-8 (crc8()) of those 7 bytes.
Memory (128 bytes from address 0):

    offset 0  u8  format (FORMAT)
           1  u8  podlet_type
           2  u32 capacity_ul
           6  u16 expiry_day: days since 2000-01-01 (the MicroPython epoch), last good day
           8  8s  lot: ASCII printable, NUL-padded
          16  64  Ed25519 signature over the 6 serial bytes (as in the ROM ID) + bytes 0..15
          80  48  unused (0xFF when encoded; not read)
The dict form is that of shared/spec/sim.md: serial as 12 hex digits, expiry as
"YYYY-MM-DD"; decode() adds expiry_day.
"""
import struct

from podproto.mpconst import const

from podproto.errors import ProtocolError

FAMILY = const(0x2D)
FORMAT = const(1)
ROM_LEN = const(8)
MEM_LEN = const(128)
IMAGE_LEN = const(136)
DATA_LEN = const(16)
SIG_LEN = const(64)
LOT_LEN = const(8)
_DATA = "<BBIH8s"


def crc8(data, crc=0):
    """Dallas/Maxim 1-Wire CRC-8 (poly x^8+x^5+x^4+1, reflected 0x8C, init 0)."""
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8C if crc & 1 else crc >> 1
    return crc


def rom_id(serial):
    """The 8-byte ROM ID for a 48-bit serial (int)."""
    if not isinstance(serial, int) or serial < 0 or serial >= 1 << 48:
        raise ProtocolError("podlet serial: want 48 bits")
    rom = bytearray(ROM_LEN)
    rom[0] = FAMILY
    for i in range(6):
        rom[1 + i] = (serial >> (8 * i)) & 0xFF
    rom[7] = crc8(rom[0:7])
    return bytes(rom)


def parse_rom(rom):
    """The serial (int) of a ROM ID; ProtocolError for a wrong family or CRC."""
    if len(rom) != ROM_LEN:
        raise ProtocolError("podlet rom: %d bytes, want 8" % len(rom))
    if rom[0] != FAMILY:
        raise ProtocolError("podlet rom: family 0x%02x, want 0x%02x" % (rom[0], FAMILY))
    if crc8(rom[0:7]) != rom[7]:
        raise ProtocolError("podlet rom: crc8 mismatch", "crc")
    serial = 0
    for i in range(6):
        serial |= rom[1 + i] << (8 * i)
    return serial


def day_of(y, m, d):
    """Days from 2000-01-01 to the proleptic Gregorian date y-m-d."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 730425


def date_of(day):
    """(y, m, d) of a day number from 2000-01-01."""
    z = day + 730425
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (m <= 2), m, d


def _parse_date(text):
    try:
        if len(text) != 10 or text[4] != "-" or text[7] != "-":
            raise ValueError
        y, m, d = int(text[0:4]), int(text[5:7]), int(text[8:10])
    except (TypeError, ValueError):
        raise ProtocolError("podlet expiry: want YYYY-MM-DD")
    day = day_of(y, m, d)
    if date_of(day) != (y, m, d) or not 0 <= day <= 0xFFFF:
        raise ProtocolError("podlet expiry: not a date in 2000-01-01..2179")
    return day


def data_bytes(podlet):
    """The signed part: 6 serial bytes + the 16 data bytes (what the signature covers)."""
    if not isinstance(podlet, dict):
        raise ProtocolError("podlet: want a dict")
    serial = podlet.get("serial")
    try:
        if not isinstance(serial, str) or len(serial) != 12:
            raise ValueError
        serial = int(serial, 16)
    except ValueError:
        raise ProtocolError("podlet serial: want 12 hex digits")
    ptype = podlet.get("podlet_type")
    if not isinstance(ptype, int) or not 0 <= ptype <= 255:
        raise ProtocolError("podlet podlet_type: want 0..255")
    cap = podlet.get("capacity_ul")
    if not isinstance(cap, int) or not 0 <= cap <= 0xFFFFFFFF:
        raise ProtocolError("podlet capacity_ul: want a u32")
    day = _parse_date(podlet.get("expiry"))
    lot = podlet.get("lot")
    if not isinstance(lot, str) or not _lot_ok(lot):
        raise ProtocolError("podlet lot: want 1..8 printable ASCII chars")
    rom = rom_id(serial)
    raw = lot.encode()
    data = struct.pack(_DATA, FORMAT, ptype, cap, day, raw + bytes(LOT_LEN - len(raw)))
    return rom, rom[1:7] + data


def _lot_ok(lot):
    return isinstance(lot, str) and 1 <= len(lot.encode()) <= LOT_LEN and _printable(
        lot.encode())


def _printable(raw):
    # Lots are printable ASCII without spaces (NUL pads them).
    for c in raw:
        if c < 0x21 or c > 0x7E:
            return False
    return True


def encode(podlet, signature):
    """The 136-byte image (ROM ID + memory) of a podlet dict and its 64-byte signature."""
    rom, signed = data_bytes(podlet)
    if not isinstance(signature, (bytes, bytearray)) or len(signature) != SIG_LEN:
        raise ProtocolError("podlet signature: want 64 bytes")
    return rom + signed[6:] + bytes(signature) + b"\xff" * (MEM_LEN - DATA_LEN - SIG_LEN)


def decode(image):
    """(podlet dict, signed bytes, signature) of an image; ProtocolError if malformed."""
    try:
        if len(image) != IMAGE_LEN:
            raise ProtocolError("podlet image: %d bytes, want %d" % (len(image), IMAGE_LEN))
        image = bytes(image)
        serial = parse_rom(image[0:ROM_LEN])
        fmt, ptype, cap, day, lot = struct.unpack_from(_DATA, image, ROM_LEN)
        if fmt != FORMAT:
            raise ProtocolError("podlet format: %d, expected %d" % (fmt, FORMAT))
        n = 0
        while n < LOT_LEN and lot[n]:
            n += 1
        raw = lot[0:n]
        for i in range(n, LOT_LEN):
            if lot[i]:
                raise ProtocolError("podlet lot: bytes after its NUL padding")
        if n == 0 or not _printable(raw):
            raise ProtocolError("podlet lot: want 1..8 printable ASCII chars")
        y, m, d = date_of(day)
        podlet = {"serial": "%012x" % serial, "podlet_type": ptype, "capacity_ul": cap,
                  "expiry": "%04d-%02d-%02d" % (y, m, d), "expiry_day": day,
                  "lot": raw.decode()}
        end = ROM_LEN + DATA_LEN
        return podlet, image[1:7] + image[ROM_LEN:end], image[end:end + SIG_LEN]
    except ProtocolError:
        raise
    except MemoryError:  # the heap, not the input
        raise
    except Exception as e:
        raise ProtocolError("podlet image: malformed (%s)" % type(e).__name__)


def verify_steps(public_key, image):
    """verify() as a generator of bounded slices of work (podproto.ed25519.verify_steps):
    its return value is the podlet dict; ProtocolError as verify()."""
    from podproto import ed25519
    podlet, signed, sig = decode(image)
    ok = yield from ed25519.verify_steps(public_key, signed, sig)
    if not ok:
        raise ProtocolError("podlet signature: bad signature", "bad_signature")
    return podlet


def verify(public_key, image):
    """The podlet dict of an image whose signature verifies, else ProtocolError."""
    from podproto import ed25519
    return ed25519.run(verify_steps(public_key, image))
