"""Profile format 2's part after the name: a course, a delivery pattern and warnings
(the layout is in podproto.profile's docstring), encoded, decoded and checked against
their bounds. podproto.profile imports it only when it meets a v2 profile, so a device
with v1 profiles only never loads it; the host's tools read its bounds.
"""
import struct

from podproto.mpconst import const

from podproto.errors import ProtocolError
from podproto.names import WARNING_CODES

FORMAT_V2 = const(2)
_V2 = "<BIIIBHHHBB"
_V2_LEN = const(22)
_ACK_FLAG = const(1)

# Format 2: the course, the pattern and the warnings, and their bounds (inclusive). A
# spacing's bound is a year (maintenance two); recommended is at least min, maintenance
# 0 (none) or at least min; a pulse's bolus is pumped at dose_rate_ul_min within its
# period, and neither period nor ramp is longer than session_s; each pattern's other
# fields are 0; acknowledge needs a warning.
PATTERNS = ("continuous", "pulsed", "ramped")
DEFAULTS = {"course_sessions": 1, "min_spacing_s": 0, "recommended_spacing_s": 0,
            "maintenance_spacing_s": 0, "pattern": "continuous", "bolus_ul": 0,
            "period_s": 0, "ramp_s": 0, "warnings": [], "acknowledge": False}
ENVELOPE = {
    "course_sessions": (1, 24),
    "min_spacing_s": (0, 31536000),
    "recommended_spacing_s": (0, 31536000),
    "maintenance_spacing_s": (0, 63072000),
    "bolus_ul": (1, 2000),
    "period_s": (2, 600),
    "ramp_s": (1, 3600),
}
WARNINGS_MAX = const(4)
WARNING_TEXT_MAX = const(60)
_V2_INTS = ("course_sessions", "min_spacing_s", "recommended_spacing_s",
            "maintenance_spacing_s", "bolus_ul", "period_s", "ramp_s")
_V2_WIDTH = (0xFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFF, 0xFFFF, 0xFFFF)
SIGNED_MAX = const(29 + 24 + 22 + 4 * 62 + 64)


def _text_ok(text, most):
    """text is a str of 1..most printable ASCII bytes."""
    if not isinstance(text, str):
        return False
    raw = text.encode()
    return 1 <= len(raw) <= most and _printable(raw)


def _printable(raw):
    for c in raw:
        if c < 0x20 or c > 0x7E:
            return False
    return True


def _text(data, start, end, what):
    raw = bytes(data[start:end])
    if not _printable(raw):
        raise ProtocolError("profile %s: not printable ASCII" % what)
    return raw.decode()


def _v2(p, name):
    return p[name] if name in p else DEFAULTS[name]


def encode_tail(p):
    """The bytes of a v2 dict's course, pattern and warnings (after the name)."""
    ints = []
    for i in range(len(_V2_INTS)):
        name = _V2_INTS[i]
        v = _v2(p, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0 or v > _V2_WIDTH[i]:
            raise ProtocolError("profile %s: want an int 0..%d" % (name, _V2_WIDTH[i]))
        ints.append(v)
    pattern = _v2(p, "pattern")
    if pattern not in PATTERNS:
        raise ProtocolError("profile pattern: want one of %s" % ", ".join(PATTERNS))
    ack = _v2(p, "acknowledge")
    if ack is not True and ack is not False:
        raise ProtocolError("profile acknowledge: want true or false")
    warnings = _v2(p, "warnings")
    if not isinstance(warnings, list) or len(warnings) > 255:
        raise ProtocolError("profile warnings: want a list")
    out = struct.pack(_V2, ints[0], ints[1], ints[2], ints[3], PATTERNS.index(pattern),
                      ints[4], ints[5], ints[6], _ACK_FLAG if ack else 0, len(warnings))
    for w in warnings:
        if not isinstance(w, dict) or w.get("code") not in WARNING_CODES[1:]:
            raise ProtocolError("profile warnings: want {\"code\": one of %s, \"text\": "
                                "...} each" % ", ".join(WARNING_CODES[1:]))
        text = w.get("text")
        if not isinstance(text, str) or len(text.encode()) > 255:
            raise ProtocolError("profile warnings: want a str text")
        raw = text.encode()
        out += bytes((WARNING_CODES.index(w["code"]), len(raw))) + raw
    return out


def decode_tail(data, at, p):
    """Adds to p the course, pattern and warnings of data from offset at, its end."""
    n = len(data)
    if n < at + _V2_LEN:
        raise ProtocolError("profile: truncated, %d bytes" % n)
    f = struct.unpack_from(_V2, data, at)
    for i in range(4):
        p[_V2_INTS[i]] = f[i]
    if f[4] >= len(PATTERNS):
        raise ProtocolError("profile pattern: code %d" % f[4])
    p["pattern"] = PATTERNS[f[4]]
    p["bolus_ul"] = f[5]
    p["period_s"] = f[6]
    p["ramp_s"] = f[7]
    if f[8] & ~_ACK_FLAG:
        raise ProtocolError("profile flags: 0x%02x" % f[8])
    p["acknowledge"] = bool(f[8] & _ACK_FLAG)
    at += _V2_LEN
    warnings = []
    for _ in range(f[9]):
        if at + 2 > n or not 0 < data[at] < len(WARNING_CODES):
            raise ProtocolError("profile warnings: truncated or unknown code")
        end = at + 2 + data[at + 1]
        if end > n:
            raise ProtocolError("profile warnings: truncated")
        warnings.append({"code": WARNING_CODES[data[at]],
                         "text": _text(data, at + 2, end, "warning")})
        at = end
    if at != n:
        raise ProtocolError("profile: %d bytes after the warnings" % (n - at))
    p["warnings"] = warnings
    p["format"] = FORMAT_V2


def problem(p):
    """The v2 field p gets wrong (its v1 fields fit), or None."""
    for name in _V2_INTS:
        v = _v2(p, name)
        lo, hi = ENVELOPE[name]
        if name in ("min_spacing_s", "maintenance_spacing_s", "bolus_ul", "period_s",
                    "ramp_s"):
            lo = 0       # 0 is checked below: where the pattern or the course allows it
        if not isinstance(v, int) or isinstance(v, bool) or v < lo or v > hi:
            return name
    spacing = _v2(p, "min_spacing_s")
    if _v2(p, "recommended_spacing_s") < spacing:
        return "recommended_spacing_s"
    upkeep = _v2(p, "maintenance_spacing_s")
    if upkeep and upkeep < spacing:
        return "maintenance_spacing_s"
    pattern = _v2(p, "pattern")
    if pattern not in PATTERNS:
        return "pattern"
    bolus = _v2(p, "bolus_ul")
    period = _v2(p, "period_s")
    ramp = _v2(p, "ramp_s")
    if pattern == "pulsed":
        if bolus < 1 or bolus > p["max_session_ul"]:
            return "bolus_ul"
        if (period < ENVELOPE["period_s"][0] or period > p["session_s"]
                or bolus * 60 > p["dose_rate_ul_min"] * period):
            return "period_s"
    elif bolus:
        return "bolus_ul"
    elif period:
        return "period_s"
    if pattern == "ramped":
        if ramp < 1 or ramp > p["session_s"]:
            return "ramp_s"
    elif ramp:
        return "ramp_s"
    warnings = _v2(p, "warnings")
    if not isinstance(warnings, list) or len(warnings) > WARNINGS_MAX:
        return "warnings"
    for w in warnings:
        if (not isinstance(w, dict) or w.get("code") not in WARNING_CODES[1:]
                or not _text_ok(w.get("text"), WARNING_TEXT_MAX)):
            return "warnings"
    ack = _v2(p, "acknowledge")
    if (ack is not True and ack is not False) or (ack and not warnings):
        return "acknowledge"
    return None
