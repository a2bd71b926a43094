"""Frames: a message dict to bytes and back, the one definition of both directions.

    offset 0  u8  version (VERSION)
           1  u8  type (messages.TABLE)
           2  u8  flags (messages.FLAG_*; other bits must be 0)
           3  u8  id: the sender's message number, wrapping; ack/error refer to it
           4  u16 length of the body
           6  u16 credits: PDU credits granted to the host (device to host), 0 otherwise
           8  ... body, the message's fields in table order
    with messages.FLAG_MAC only (an authenticated host's command, podproto.pairing):
      8+length u32 ctr: the connection's command counter
     12+length 12 bytes tag: truncated HMAC-SHA-256 of the frame up to here
    then       u32 CRC-32 (binascii.crc32) of everything before it
All little-endian. A message is a dict: {"type": name, "id", "flags", "credits",
then the body fields}, plus "ctr" and "tag" with FLAG_MAC; encode() takes "id",
"flags" and "credits" as 0 when absent.
Decoding is strict (no trailing bytes, no reserved bits), so every accepted frame is
the canonical encoding of the message it decodes to: encode(decode(b)) == b.
"""
import binascii
import struct

from podproto.mpconst import const

from podproto import messages
from podproto.errors import ProtocolError

VERSION = const(1)
HEADER_LEN = const(8)
CRC_LEN = const(4)
OVERHEAD = const(12)
TAG_LEN = const(12)
TRAILER_LEN = const(16)    # ctr and tag, with FLAG_MAC
MAX_BODY = const(65535)
_HDR = "<BBBBHH"

_INT_RANGE = {"B": (0, 0xFF), "H": (0, 0xFFFF), "I": (0, 0xFFFFFFFF),
              "b": (-0x80, 0x7F), "h": (-0x8000, 0x7FFF), "i": (-0x80000000, 0x7FFFFFFF),
              "?": (0, 1)}
_INT_SIZE = {"B": 1, "H": 2, "I": 4, "b": 1, "h": 2, "i": 4, "?": 1}
_INT_FMT = {"B": "<B", "H": "<H", "I": "<I", "b": "<b", "h": "<h", "i": "<i", "?": "<B"}
_HEADER_KEYS = ("type", "id", "flags", "credits")
_MAC_KEYS = ("type", "id", "flags", "credits", "ctr", "tag")

_by_code = None
_by_name = None


def _tables():
    global _by_code, _by_name
    if _by_code is None or _by_name is None:
        by_code = {}
        by_name = {}
        for entry in messages.TABLE:
            by_code[entry[0]] = entry
            by_name[entry[1]] = entry
        _by_code, _by_name = by_code, by_name
        return by_code, by_name
    return _by_code, _by_name


def entry_for(name):
    """The (type, name, fields) table entry of a message name, or None."""
    return _tables()[1].get(name)


def _int_of(value, kind, where):
    lo, hi = _INT_RANGE[kind]
    if not isinstance(value, int) or value < lo or value > hi:
        raise ProtocolError("%s: want an int in %d..%d" % (where, lo, hi))
    return value


def _bytes_of(value, where):
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise ProtocolError("%s: want bytes" % where)
    return bytes(value)


def _pack(out, fields, msg, where):
    for name, kind in fields:
        at = where + name
        if name not in msg:
            raise ProtocolError("%s: missing" % at)
        value = msg[name]
        if isinstance(kind, tuple):
            if not isinstance(value, (list, tuple)) or len(value) > 255:
                raise ProtocolError("%s: want a list of at most 255 records" % at)
            out.append(len(value))
            for i in range(len(value)):
                rec = value[i]
                if not isinstance(rec, dict):
                    raise ProtocolError("%s[%d]: want a dict" % (at, i))
                _check_keys(rec, kind[1], (), "%s[%d]." % (at, i))
                _pack(out, kind[1], rec, "%s[%d]." % (at, i))
        elif kind in _INT_RANGE:
            out.extend(struct.pack(_INT_FMT[kind], _int_of(value, kind, at)))
        elif kind == "s":
            if not isinstance(value, str):
                raise ProtocolError("%s: want a str" % at)
            raw = value.encode()
            if len(raw) > 255 or not _printable(raw, 0, len(raw)):
                raise ProtocolError("%s: want at most 255 printable ASCII chars" % at)
            out.append(len(raw))
            out.extend(raw)
        elif kind == "y":
            raw = _bytes_of(value, at)
            if len(raw) > 255:
                raise ProtocolError("%s: want at most 255 bytes" % at)
            out.append(len(raw))
            out.extend(raw)
        elif kind == "Y":
            out.extend(_bytes_of(value, at))
        else:  # "xN"
            raw = _bytes_of(value, at)
            if len(raw) != int(kind[1:]):
                raise ProtocolError("%s: want exactly %s bytes" % (at, kind[1:]))
            out.extend(raw)


def _check_keys(msg, fields, extra, where):
    for key in msg:
        if key in extra:
            continue
        for name, _ in fields:
            if name == key:
                break
        else:
            raise ProtocolError("%s%s: no such field" % (where, key))


def _printable(buf, start, end):
    for i in range(start, end):
        c = buf[i]
        if c < 0x20 or c > 0x7E:
            return False
    return True


def encode(message):
    """The frame (bytes) for a message dict; ProtocolError names the field if it is bad."""
    if not isinstance(message, dict):
        raise ProtocolError("message: want a dict")
    entry = entry_for(message.get("type")) if isinstance(message.get("type"), str) else None
    if entry is None:
        raise ProtocolError("type: unknown message type %r" % (message.get("type"),))
    code, _, fields = entry
    mid = _int_of(message.get("id", 0), "B", "id")
    flags = _int_of(message.get("flags", 0), "B", "flags")
    if flags & ~messages.FLAGS_KNOWN:
        raise ProtocolError("flags: reserved bits set")
    credits = _int_of(message.get("credits", 0), "H", "credits")
    sealed = flags & messages.FLAG_MAC
    _check_keys(message, fields, _MAC_KEYS if sealed else _HEADER_KEYS, "")
    body = bytearray()
    _pack(body, fields, message, "")
    n = len(body)
    if n > MAX_BODY:
        raise ProtocolError("body: %d bytes, at most %d" % (n, MAX_BODY))
    if sealed:
        _pack(body, (("ctr", "I"), ("tag", "x12")), message, "")
    frame = bytearray(len(body) + OVERHEAD)
    struct.pack_into(_HDR, frame, 0, VERSION, code, flags, mid, n, credits)
    frame[HEADER_LEN:HEADER_LEN + len(body)] = body
    put_crc(frame)
    return bytes(frame)


def put_crc(frame):
    """Writes the CRC of a frame (a bytearray) over its last CRC_LEN bytes."""
    end = len(frame) - CRC_LEN
    struct.pack_into("<I", frame, end, binascii.crc32(memoryview(frame)[0:end]) & 0xFFFFFFFF)


def decode(data):
    """The message dict a frame holds; ProtocolError (only) for anything else."""
    try:
        n = len(data)
    except Exception:
        raise ProtocolError("frame: want bytes")
    return decode_from(data, 0, n)


def decode_from(buf, start, end):
    """decode() of buf[start:end] without copying it (the reassembler's buffer)."""
    try:
        return _decode(buf, start, end)
    except ProtocolError:
        raise
    except MemoryError:  # the heap, not the input
        raise
    except Exception as e:  # anything not bytes-like, or a check this code missed
        raise ProtocolError("frame: malformed (%s)" % type(e).__name__)


def _decode(buf, start, end):
    n = end - start
    if n < OVERHEAD:
        raise ProtocolError("frame: truncated, %d bytes (at least %d)" % (n, OVERHEAD))
    ver, code, flags, mid, length, credits = struct.unpack_from(_HDR, buf, start)
    if ver != VERSION:
        raise ProtocolError("frame: version %d, expected %d" % (ver, VERSION))
    trailer = TRAILER_LEN if flags & messages.FLAG_MAC else 0
    if length != n - OVERHEAD - trailer:
        raise ProtocolError("frame: length field %d but %d body bytes"
                            % (length, n - OVERHEAD - trailer))
    crc = struct.unpack_from("<I", buf, end - CRC_LEN)[0]
    if crc != binascii.crc32(memoryview(buf)[start:end - CRC_LEN]) & 0xFFFFFFFF:
        raise ProtocolError("frame: crc mismatch", "crc")
    entry = _tables()[0].get(code)
    if entry is None:
        raise ProtocolError("frame: unknown message type 0x%02x" % code)
    if flags & ~messages.FLAGS_KNOWN:
        raise ProtocolError("frame: reserved flag bits 0x%02x" % flags)
    msg = {"type": entry[1], "id": mid, "flags": flags, "credits": credits}
    stop = end - CRC_LEN - trailer
    off = _unpack(buf, start + HEADER_LEN, stop, entry[2], msg, "")
    if off != stop:
        raise ProtocolError("%s: %d trailing body bytes" % (entry[1], stop - off))
    if trailer:
        msg["ctr"] = struct.unpack_from("<I", buf, stop)[0]
        msg["tag"] = _copy(buf, stop + 4, stop + TRAILER_LEN)
    return msg


def _copy(buf, start, end):
    # One copy, not two: slicing a bytearray would copy before bytes() copies again.
    return bytes(memoryview(buf)[start:end])


def _unpack(buf, off, stop, fields, msg, where):
    for name, kind in fields:
        at = where + name
        if isinstance(kind, tuple):
            if off >= stop:
                raise ProtocolError("%s: truncated" % at)
            count = buf[off]
            off += 1
            recs = []
            for i in range(count):
                rec = {}
                off = _unpack(buf, off, stop, kind[1], rec, "%s[%d]." % (at, i))
                recs.append(rec)
            msg[name] = recs
        elif kind in _INT_SIZE:
            size = _INT_SIZE[kind]
            if off + size > stop:
                raise ProtocolError("%s: truncated" % at)
            if size == 1 and kind != "b":
                value = buf[off]     # no tuple for the commonest kind
            else:
                value = struct.unpack_from(_INT_FMT[kind], buf, off)[0]
            if kind == "?" and value > 1:
                raise ProtocolError("%s: want 0 or 1, got %d" % (at, value))
            msg[name] = value
            off += size
        elif kind == "s" or kind == "y":
            if off >= stop:
                raise ProtocolError("%s: truncated" % at)
            size = buf[off]
            off += 1
            if off + size > stop:
                raise ProtocolError("%s: %d bytes but %d left" % (at, size, stop - off))
            if kind == "s":
                if not _printable(buf, off, off + size):
                    raise ProtocolError("%s: not printable ASCII" % at)
                msg[name] = _copy(buf, off, off + size).decode()
            else:
                msg[name] = _copy(buf, off, off + size)
            off += size
        elif kind == "Y":
            msg[name] = _copy(buf, off, stop)
            off = stop
        else:  # "xN"
            size = int(kind[1:])
            if off + size > stop:
                raise ProtocolError("%s: truncated" % at)
            msg[name] = _copy(buf, off, off + size)
            off += size
    return off
