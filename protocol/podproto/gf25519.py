"""Arithmetic modulo p = 2**255 - 19, the field of Curve25519, for the two things built
on it: Ed25519 signatures (podproto.ed25519) and X25519 key agreement
(podproto.pairing). Written for MicroPython's big ints (mpz), with lazy reduction.

On a board a signature check or a key agreement is a second or two of this, so it runs
as work generators: each yields, before a piece of work, what it will cost in units (a
unit being one field multiplication), and slices() runs such a generator in slices of
at most SLICE_MULS units, one (or the few a board affords) per control period.
"""
P = 2 ** 255 - 19
P2 = 2 * P
LOW = 2 ** 255 - 1

# Work per slice. 64 units take ~0.1 ms on the unix port, an estimated 15 ms on an
# ESP32-C3 and 25 ms on an RP2040 (`steamer dev bench --parts protocol` measures and
# explains): a quarter of the 100 ms period on the slower board, which must also fit
# the control step, flash writes and the radio, and keep its period during a session,
# since a dose is counted per period.
SLICE_MULS = 64
_SQ_GROUP = 8           # squarings announced together


def mul(a, b):
    # Reduced below 2**255 + 2**19 when a and b are below 2**260 (not fully: callers % P
    # where it matters). So a result is always below 2 * P, and x + 2 * P - y stays
    # positive and, like every sum below, under 2**258.
    x = a * b
    x = (x & LOW) + 19 * (x >> 255)
    return (x & LOW) + 19 * (x >> 255)


def sqn(x, n):
    """x ** (2 ** n)."""
    while n > 0:
        k = _SQ_GROUP if n > _SQ_GROUP else n
        yield k
        for _ in range(k):
            x = mul(x, x)
        n -= k
    return x


def pow_2_250_1(z):
    """(z ** (2**250 - 1), z ** 11): the common part of inversion and square root.
    t_n below is z ** (2**n - 1), and t_(a+b) = t_a ** (2**b) * t_b."""
    yield 2
    z2 = mul(z, z)
    t2 = mul(z2, z)
    z8 = yield from sqn(z2, 2)
    t = yield from sqn(t2, 2)
    yield 4
    z11 = mul(z8, t2)
    t4 = mul(t, t2)
    t5 = mul(mul(t4, t4), z)
    t = yield from sqn(t5, 5)
    yield 1
    t10 = mul(t, t5)
    t = yield from sqn(t10, 10)
    yield 1
    t20 = mul(t, t10)
    t = yield from sqn(t20, 20)
    yield 1
    t40 = mul(t, t20)
    t = yield from sqn(t40, 10)
    yield 1
    t50 = mul(t, t10)
    t = yield from sqn(t50, 50)
    yield 1
    t100 = mul(t, t50)
    t = yield from sqn(t100, 100)
    yield 1
    t200 = mul(t, t100)
    t = yield from sqn(t200, 50)
    yield 1
    return mul(t, t50), z11


def inv(z):
    """1 / z, as z ** (p - 2) = z ** (2**255 - 21) = (z ** (2**250 - 1)) ** 32 * z ** 11."""
    t, z11 = yield from pow_2_250_1(z)
    t = yield from sqn(t, 5)
    yield 1
    return mul(t, z11)


def slices(work, slice_muls=SLICE_MULS, log=None):
    """Runs `work`, a generator that yields the units each next piece will cost, in
    slices of at most slice_muls units (below the largest piece: that piece): a
    generator yielding each slice's units and returning work's value. log, a list,
    gets each slice's units, the last one included."""
    spent = 0
    while True:
        try:
            cost = next(work)
        except StopIteration as done:
            if log is not None:
                log.append(spent)
            return done.value
        if spent and spent + cost > slice_muls:
            if log is not None:
                log.append(spent)
            yield spent
            spent = 0
        spent += cost


def run(steps):
    """The return value of a generator of slices (slices(), ed25519.verify_steps(),
    pairing.respond_steps() or one built on them), run to its end."""
    try:
        while True:
            next(steps)
    except StopIteration as done:
        return done.value
