"""Treatment profiles: canonical bytes, the hardware envelope, and signed profiles.

Canonical encoding (little-endian, 31 + len(name) bytes):

    offset 0  u8  format (FORMAT)
           1  u8  podlet_type
           2  u16 version
           4  u32 outlet_target_mc   milli-degrees C (the dict's outlet_target_c * 1000)
           8  u32 session_s
          12  u32 dose_rate_ul_min
          16  u32 max_session_ul
          20  u32 max_day_ul
          24  u32 min_interval_s
          28  u8  name length, then the name (ASCII printable)
Format 2 (FORMAT_V2) is the same bytes with format 2, and after the name a course, a
delivery pattern and warnings (22 + the warnings' bytes; podproto.profile_v2):

           u8  course_sessions        sessions in the initial series
           u32 min_spacing_s          the device refuses a session of this podlet type
                                      sooner after the last one (on its limit clock)
           u32 recommended_spacing_s  advice: when the next one is due
           u32 maintenance_spacing_s  advice after the series (0: none)
           u8  pattern                PATTERNS: continuous, pulsed, ramped
           u16 bolus_ul, u16 period_s pulsed: bolus_ul at the dose rate every period_s
           u16 ramp_s                 ramped: the rate rises from 0 over the first ramp_s
           u8  flags                  bit 0: acknowledge (the user must, before the first
                                      session with this podlet type and version)
           u8  warnings, then each: u8 code (names.WARNING_CODES), u8 length, text
A dict is v2 when its "format" is 2 or it has any V2_FIELDS; encode() gives the fields
a v2 dict leaves out their defaults (profile_v2.DEFAULTS). A v1 profile's bytes and dict
are as they always were. At most profile_v2.SIGNED_MAX bytes signed.

A signed profile is those bytes followed by a 64-byte Ed25519 signature over them,
made with the manufacturer's key. A profile dict has the fields of shared/spec/sim.md;
decode() adds outlet_target_mc, which encode() prefers over outlet_target_c.
"""
import struct

from podproto.mpconst import const

from podproto.errors import ProtocolError

FORMAT = const(1)
FORMAT_V2 = const(2)
FORMATS = (1, 2)
SIG_LEN = const(64)
_FIXED = "<BBHIIIIIIB"
_FIXED_LEN = const(29)

# The hardware envelope a profile must fit: field -> (min, max), inclusive.
# max_day_ul must also be >= max_session_ul; name is 1..24 printable ASCII chars.
ENVELOPE = {
    "podlet_type": (0, 255),
    "version": (0, 65535),
    "outlet_target_mc": (30000, 55000),
    "session_s": (10, 3600),
    "dose_rate_ul_min": (1, 2000),
    "max_session_ul": (1, 20000),
    "max_day_ul": (1, 100000),
    "min_interval_s": (0, 86400),
}
NAME_MAX = const(24)
# What makes a dict format 2 (podproto.profile_v2 holds the rest of it).
V2_FIELDS = ("course_sessions", "min_spacing_s", "recommended_spacing_s",
             "maintenance_spacing_s", "pattern", "bolus_ul", "period_s", "ramp_s",
             "warnings", "acknowledge")
# Order of the fields in the encoding, after format.
FIELDS = ("podlet_type", "version", "outlet_target_mc", "session_s", "dose_rate_ul_min",
          "max_session_ul", "max_day_ul", "min_interval_s")
_WIDTH = (0xFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF,
          0xFFFFFFFF)


def target_mc(p):
    """The profile's outlet target in milli-degrees C, from either spelling."""
    if "outlet_target_mc" in p:
        v = p["outlet_target_mc"]
        if not isinstance(v, int):
            raise ProtocolError("profile outlet_target_mc: want an int")
        return v
    if "outlet_target_c" not in p:
        raise ProtocolError("profile outlet_target_c: missing")
    v = p["outlet_target_c"]
    if not isinstance(v, (int, float)) or v != v or v < 0 or v > 4e6:
        raise ProtocolError("profile outlet_target_c: want a number 0..4e6")
    return int(v * 1000 + 0.5)


def _name_ok(name):
    if not isinstance(name, str):
        return False
    raw = name.encode()
    if not 1 <= len(raw) <= NAME_MAX:
        return False
    for c in raw:
        if c < 0x20 or c > 0x7E:
            return False
    return True


def encode(p):
    """Canonical bytes of a profile dict; ProtocolError names a missing or malformed field.

    Encoding does not check the envelope (problem() does), so that out-of-envelope
    profiles can be built and shown to be rejected.
    """
    if not isinstance(p, dict):
        raise ProtocolError("profile: want a dict")
    values = []
    for i in range(len(FIELDS)):
        name = FIELDS[i]
        if name == "outlet_target_mc":
            v = target_mc(p)
        elif name not in p:
            raise ProtocolError("profile %s: missing" % name)
        else:
            v = p[name]
        if not isinstance(v, int) or v < 0 or v > _WIDTH[i]:
            raise ProtocolError("profile %s: want an int 0..%d" % (name, _WIDTH[i]))
        values.append(v)
    name = p.get("name")
    if name is None:
        raise ProtocolError("profile name: missing")
    if not isinstance(name, str) or len(name.encode()) > 255:
        raise ProtocolError("profile name: want a str")
    raw = name.encode()
    v2 = is_v2(p)
    return struct.pack(_FIXED, FORMAT_V2 if v2 else FORMAT, values[0], values[1],
                       values[2], values[3], values[4], values[5], values[6], values[7],
                       len(raw)) + raw + (_v2_module().encode_tail(p) if v2 else b"")


def _v2_module():
    # Imported only when a v2 profile is met: a device with v1 profiles never loads it.
    from podproto import profile_v2
    return profile_v2


def is_v2(p):
    """True for a dict of format 2: its "format" says so or it has a V2_FIELDS field."""
    f = p.get("format", 0)
    if f not in (0, FORMAT, FORMAT_V2) or isinstance(f, bool):
        raise ProtocolError("profile format: want 1 or 2")
    if f:
        return f == FORMAT_V2
    for name in V2_FIELDS:
        if name in p:
            return True
    return False


def decode(data):
    """The profile dict of canonical bytes (not checked against the envelope)."""
    try:
        n = len(data)
        if n < _FIXED_LEN:
            raise ProtocolError("profile: truncated, %d bytes" % n)
        f = struct.unpack_from(_FIXED, data, 0)
        if f[0] == FORMAT_V2:
            end = _FIXED_LEN + f[9]
            if n < end:
                raise ProtocolError("profile: truncated, %d bytes" % n)
        elif f[0] != FORMAT:
            raise ProtocolError("profile format: %d, expected %d or %d" % (
                f[0], FORMAT, FORMAT_V2))
        elif n != _FIXED_LEN + f[9]:
            raise ProtocolError("profile name: length %d but %d bytes follow" %
                                (f[9], n - _FIXED_LEN))
        else:
            end = n
        raw = bytes(data[_FIXED_LEN:end])
        for c in raw:
            if c < 0x20 or c > 0x7E:
                raise ProtocolError("profile name: not printable ASCII")
        p = {}
        for i in range(len(FIELDS)):
            p[FIELDS[i]] = f[i + 1]
        p["outlet_target_c"] = p["outlet_target_mc"] / 1000
        p["name"] = raw.decode()
        if f[0] == FORMAT_V2:
            _v2_module().decode_tail(data, end, p)
        return p
    except ProtocolError:
        raise
    except MemoryError:  # the heap, not the input
        raise
    except Exception as e:
        raise ProtocolError("profile: malformed (%s)" % type(e).__name__)


def problem(p):
    """The field a profile dict gets wrong against ENVELOPE (its name), or None."""
    if not isinstance(p, dict):
        return "profile"
    for name in FIELDS:
        if name == "outlet_target_mc":
            try:
                v = target_mc(p)
            except ProtocolError:
                return "outlet_target_c"
        else:
            v = p.get(name)
        lo, hi = ENVELOPE[name]
        if not isinstance(v, int) or v < lo or v > hi:
            return "outlet_target_c" if name == "outlet_target_mc" else name
    if p["max_day_ul"] < p["max_session_ul"]:
        return "max_day_ul"
    if not _name_ok(p.get("name")):
        return "name"
    try:
        if not is_v2(p):
            return None
    except ProtocolError:
        return "format"
    return _v2_module().problem(p)


def check(p):
    """p if it fits the envelope, else ProtocolError naming the field."""
    field = problem(p)
    if field is not None:
        raise ProtocolError("profile %s: outside the hardware envelope" % field, field)
    return p


def verify_steps(public_key, signed):
    """verify() as a generator of bounded slices of work (podproto.ed25519.verify_steps):
    its return value is the profile dict; ProtocolError as verify()."""
    from podproto import ed25519
    try:
        n = len(signed)
    except Exception:
        raise ProtocolError("signed profile: want bytes")
    if n < _FIXED_LEN + SIG_LEN:
        raise ProtocolError("signed profile: truncated, %d bytes" % n, "unsigned")
    body = bytes(signed[:n - SIG_LEN])
    ok = yield from ed25519.verify_steps(public_key, body, signed[n - SIG_LEN:])
    if not ok:
        raise ProtocolError("signed profile: bad signature", "bad_signature")
    return check(decode(body))


def verify(public_key, signed):
    """The profile dict of a signed profile that verifies and fits the envelope.

    Anything else raises ProtocolError; nothing is returned from a profile that fails
    any check, so a caller cannot apply part of it.
    """
    from podproto import ed25519
    return ed25519.run(verify_steps(public_key, signed))
