"""Ed25519 signature verification (RFC 8032, section 5.1.7) in plain Python.

Written from the RFC for the device, whose hashlib has no SHA-512; the host signs
with `cryptography` (podproto.signing) and both agree on the RFC's test vectors.
verify() is cofactorless ([S]B == R + [k]A, checked on R's encoding), rejects S >= L
and non-canonical point encodings, and never raises: it returns True or False.
Not constant-time, which verification does not need: it handles no secrets.
"""
from podproto.sha512 import sha512

_P = 2 ** 255 - 19
_L = 2 ** 252 + 27742317777372353535851937790883648493
_D = 0          # curve constant -121665/121666, computed on first use (0: not yet)
_SQRT_M1 = 0
_BASE = (0, 1, 1, 0)    # (X, Y, Z, T) of the base point, once _consts() has run


def _inv(x):
    return pow(x, _P - 2, _P)


def _consts():
    global _D, _SQRT_M1, _BASE
    if not _D:
        _D = -121665 * _inv(121666) % _P
        _SQRT_M1 = pow(2, (_P - 1) // 4, _P)
        y = 4 * _inv(5) % _P
        x = _recover_x(y, 0) or 0
        _BASE = (x, y, 1, x * y % _P)


def _recover_x(y, sign):
    """x for y on the curve with x's low bit == sign, or None (RFC 8032 5.1.3)."""
    if y >= _P:
        return None
    yy = y * y % _P
    x2 = (yy - 1) * _inv(_D * yy + 1) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P != 0:
        return None
    if (x & 1) != sign:
        x = _P - x
    return x


def _decode_point(b):
    v = int.from_bytes(b, "little")
    sign = v >> 255
    y = v & ((1 << 255) - 1)
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % _P)


def _encode_point(pt):
    zi = _inv(pt[2])
    x = pt[0] * zi % _P
    y = pt[1] * zi % _P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _add(p, q):
    # RFC 8032 5.1.4, extended coordinates (a = -1).
    a = (p[1] - p[0]) * (q[1] - q[0]) % _P
    b = (p[1] + p[0]) * (q[1] + q[0]) % _P
    c = 2 * p[3] * q[3] * _D % _P
    d = 2 * p[2] * q[2] % _P
    e = b - a
    f = d - c
    g = d + c
    h = b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _double(p):
    a = p[0] * p[0] % _P
    b = p[1] * p[1] % _P
    c = 2 * p[2] * p[2] % _P
    h = a + b
    s = p[0] + p[1]
    e = h - s * s % _P
    g = a - b
    f = c + g
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def verify(public_key, message, signature):
    """True if signature (64 bytes) is public_key's (32 bytes) Ed25519 signature of message."""
    try:
        if len(public_key) != 32 or len(signature) != 64:
            return False
        public_key = bytes(public_key)
        signature = bytes(signature)
        message = bytes(message)
    except (TypeError, ValueError):
        return False
    _consts()
    r_bytes = signature[:32]
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        return False
    a = _decode_point(public_key)
    if a is None:
        return False
    k = int.from_bytes(sha512(r_bytes + public_key + message), "little") % _L
    # [s]B - [k]A in one pass of double-and-add over both scalars (Shamir's trick).
    neg_a = ((_P - a[0]) % _P, a[1], a[2], (_P - a[3]) % _P)
    both = _add(_BASE, neg_a)
    q = (0, 1, 1, 0)
    for i in range(255, -1, -1):
        q = _double(q)
        bit_s = (s >> i) & 1
        bit_k = (k >> i) & 1
        if bit_s and bit_k:
            q = _add(q, both)
        elif bit_s:
            q = _add(q, _BASE)
        elif bit_k:
            q = _add(q, neg_a)
    return _encode_point(q) == r_bytes
