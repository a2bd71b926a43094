"""Ed25519 signature verification (RFC 8032, section 5.1.7) in plain Python.

Written from the RFC for the device, whose hashlib has no SHA-512; the host signs
with `cryptography` (podproto.signing) and both agree on the RFC's test vectors.
verify() is cofactorless ([S]B == R + [k]A, checked on R's encoding), rejects S >= L
and non-canonical point encodings, and never raises: it returns True or False.
Not constant-time, which verification does not need: it handles no secrets.

On a board MicroPython's big ints make one verify take about a second, ten control
periods, so the check is also a generator: verify_steps() yields between slices of at
most `slice_muls` units of work, a unit being one multiplication of field elements (a
SHA-512 round counts SHA_ROUND_MULS), and the firmware runs a slice per period (or the
few its board affords). verify() runs it to the end. A verify is 4,400 to 5,000 units,
most of them the 253 doubles and ~190 additions of the double scalar multiplication.
"""
from podproto.gf25519 import P as _P, P2 as _P2, LOW as _LOW, SLICE_MULS, run, slices
from podproto.gf25519 import inv as _inv, mul as _mul, pow_2_250_1 as _pow_2_250_1
from podproto.gf25519 import sqn as _sqn
from podproto.sha512 import sha512_steps

_L = 2 ** 252 + 27742317777372353535851937790883648493
# 2 * d, d = -121665/121666 the curve constant; sqrt(-1); the base point B (x, y).
_D = 37095705934669439343138083508754565189542113879843219016388785533085940283555
_D2 = 16295367250680780974490674513165176452449235426866156013048779062215315747161
_SQRT_M1 = 19681161376707505956807079304988542015446066515923890162744021073123829784752
_BX = 15112221349535400772501151409588531511454012693041857206046113283949847762202
_BY = 46316835694926478169428394003475163141307993866256225615783033603165251855960

# Work per slice: podproto.gf25519.SLICE_MULS (there with its figures).
# One SHA-512 round (or schedule word) costs 2-3 field multiplications on the unix
# port; rounded up, so a slice with hashing in it is no longer than the others.
SHA_ROUND_MULS = 3
_DOUBLE = 8             # multiplications in _double, _add
_ADD = 8
# The largest piece of work announced at once (a double and an add): the least
# slice_muls can be. SHA-512 pieces are ROUNDS_PER_STEP rounds, 15 units.
PIECE_MULS = _DOUBLE + _ADD


def _decode(b):
    """(x, y) of a canonical point encoding (RFC 8032 5.1.3), or None. The square root
    of u / v is u * v**3 * (u * v**7) ** ((p - 5) / 8), so no inversion is needed."""
    v = int.from_bytes(b, "little")
    sign = v >> 255
    y = v & _LOW
    if y >= _P:
        return None
    yield 6
    yy = _mul(y, y)
    u = yy + _P - 1
    v = _mul(_D, yy) + 1
    v3 = _mul(_mul(v, v), v)
    uv7 = _mul(u, _mul(_mul(v3, v3), v))
    t, _ = yield from _pow_2_250_1(uv7)
    t = yield from _sqn(t, 2)           # (u v**7) ** (2**252 - 3)
    yield 6
    x = _mul(_mul(u, v3), _mul(t, uv7))
    vxx = _mul(v, _mul(x, x)) % _P
    u = u % _P
    if vxx != u:
        if vxx != (_P - u) % _P:
            return None
        x = _mul(x, _SQRT_M1)
    x = x % _P
    if x == 0 and sign:
        return None
    if (x & 1) != sign:
        x = _P - x
    return x, y


def _cached(x, y, z, t):
    # A point as _add wants its second operand: (Y - X, Y + X, 2 d T, 2 Z).
    return (y + _P2 - x, y + x, _mul(_D2, t), 2 * z)


def _add(p, c):
    # RFC 8032 5.1.4 (a = -1), extended coordinates; c from _cached().
    a = _mul(p[1] + _P2 - p[0], c[0])
    b = _mul(p[1] + p[0], c[1])
    cc = _mul(p[3], c[2])
    d = _mul(p[2], c[3])
    e = b + _P2 - a
    f = d + _P2 - cc
    g = d + cc
    h = b + a
    return (_mul(e, f), _mul(g, h), _mul(f, g), _mul(e, h))


def _double(p):
    x = p[0]
    y = p[1]
    a = _mul(x, x)
    b = _mul(y, y)
    c = 2 * _mul(p[2], p[2])
    h = a + b
    s = x + y
    e = h + _P2 - _mul(s, s)
    g = a + _P2 - b
    f = c + g
    return (_mul(e, f), _mul(g, h), _mul(f, g), _mul(e, h))


def _hash(data):
    steps = sha512_steps(data)
    while True:
        try:
            rounds = next(steps)
        except StopIteration as done:
            return done.value
        yield rounds * SHA_ROUND_MULS


def _work(public_key, message, signature):
    """The verification, yielding before each piece of work what it will cost."""
    try:
        if len(public_key) != 32 or len(signature) != 64:
            return False
        public_key = bytes(public_key)
        signature = bytes(signature)
        message = bytes(message)
    except (TypeError, ValueError):
        return False
    r = signature[:32]
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        return False
    a = yield from _decode(public_key)
    if a is None:
        return False
    h = yield from _hash(r + public_key + message)
    yield 12
    k = int.from_bytes(h, "little") % _L
    # [s]B - [k]A in one pass of double-and-add over both scalars (Shamir's trick),
    # adding B, -A or B - A, each in _cached form.
    neg_x = _P - a[0]
    c_neg_a = _cached(neg_x, a[1], 1, _mul(neg_x, a[1]))
    c_b = _cached(_BX, _BY, 1, _mul(_BX, _BY))
    both = _add((_BX, _BY, 1, _mul(_BX, _BY)), c_neg_a)
    c_both = _cached(both[0], both[1], both[2], both[3])
    q = (0, 1, 1, 0)
    i = 252
    while i >= 0 and not ((s | k) >> i) & 1:
        i -= 1
    while i >= 0:
        bit_s = (s >> i) & 1
        bit_k = (k >> i) & 1
        yield _DOUBLE + _ADD if bit_s or bit_k else _DOUBLE
        q = _double(q)
        if bit_s and bit_k:
            q = _add(q, c_both)
        elif bit_s:
            q = _add(q, c_b)
        elif bit_k:
            q = _add(q, c_neg_a)
        i -= 1
    zi = yield from _inv(q[2])
    yield 2
    x = _mul(q[0], zi) % _P
    y = _mul(q[1], zi) % _P
    return (y | ((x & 1) << 255)).to_bytes(32, "little") == r


def verify_steps(public_key, message, signature, slice_muls=SLICE_MULS, log=None):
    """verify() as a generator: each next() does one slice of at most slice_muls units
    of work (see the module's doc); the return value (StopIteration.value) is the
    result. log, a list, gets each slice's units, the last one included. slice_muls
    below PIECE_MULS acts as PIECE_MULS."""
    return slices(_work(public_key, message, signature), slice_muls, log)


def verify(public_key, message, signature):
    """True if signature (64 bytes) is public_key's (32 bytes) Ed25519 signature of message."""
    return run(verify_steps(public_key, message, signature))
