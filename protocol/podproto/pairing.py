"""Pairing and per-connection authentication: X25519, HMAC-SHA-256 and the derivations
both ends use, for MicroPython (no hmac module, no X25519) and CPython alike.

Pairing (only while the steamer's button is held): host and device exchange X25519
public keys and nonces (pair_request / pair_challenge); both derive
    key = HMAC(X25519(priv, peer_pub), "steamer-pair" | host_nonce | dev_nonce)
    host_id = SHA-256(host_pub)[:8]
and the device proves it holds key with key_confirm(HMAC(key, "paired" | host_id)).
The device keeps key only once the host has proved it holds it too, by authenticating
under it on the same connection (below): a request replayed by someone who captured
it, who cannot, leaves the key the device held for host_id as it was.
The device's side is a few thousand field multiplications, a second or two on a
board, so it runs in bounded slices (respond_steps, gf25519.slices, as Ed25519 checks
do).

Authentication, once per connection: the device sends a fresh nonce (auth_challenge);
the host answers auth_response(host_id, host_nonce,
    HMAC(key, "auth" | dev_nonce | host_nonce | host_id));
the device answers key_confirm(HMAC(key, "device" | host_nonce | dev_nonce)). Both then
hold the connection's session key
    session = HMAC(key, "session" | dev_nonce | host_nonce | host_id)
and every later host frame but those in OPEN carries codec's FLAG_MAC trailer: a
command counter, 1 for the first command after authentication and one more for each
next, and the tag HMAC(session, the frame up to the tag)[:TAG_LEN]. The device runs a
command only if its tag is good and its counter is the next one, so a command runs at
most once, in the host's order, and only on the connection it was made for.
"""
import hashlib
import os

from podproto import codec
from podproto import gf25519
from podproto.gf25519 import P as _P, P2 as _P2, inv as _inv, mul as _mul

_A24 = 121665
_BLOCK = 64
_BASE = b"\x09" + bytes(31)
# Units of work (gf25519: field multiplications) of one Montgomery ladder step.
LADDER_STEP_MULS = 10

# What a host that has not authenticated may send; these never carry a tag.
OPEN = ("hello", "status_get", "pair_request", "auth_response")
TAG_LEN = codec.TAG_LEN
FIRST_CTR = 1


def hmac_sha256(key, msg):
    return hmac_pads(pads(key), msg)


def pads(key):
    """HMAC's inner and outer padded keys, made once per key (a session's every tag
    then costs two SHA-256 runs, nothing more)."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = bytes(key) + bytes(_BLOCK - len(key))
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def hmac_pads(kpads, msg):
    inner = hashlib.sha256(kpads[0])
    inner.update(msg)
    outer = hashlib.sha256(kpads[1])
    outer.update(inner.digest())
    return outer.digest()


def equal(a, b):
    """Constant-time comparison of two byte strings."""
    if len(a) != len(b):
        return False
    r = 0
    for i in range(len(a)):
        r |= a[i] ^ b[i]
    return r == 0


def _ladder(scalar, u_bytes):
    """RFC 7748 X25519 (Montgomery ladder) as gf25519.slices runs work: yields the units
    of each next piece, returns the 32-byte result. gf25519.mul keeps values below 2p,
    so a difference is taken as x + 2p - y. Not constant-time (Python's big ints are
    not): a device key pair serves one pairing, while its owner holds the button."""
    k = bytearray(scalar)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    k = int.from_bytes(k, "little")
    ub = bytearray(u_bytes)
    ub[31] &= 127
    x1 = int.from_bytes(ub, "little") % _P
    x2, z2, x3, z3 = 1, 0, x1, 1
    swap = 0
    for t in range(254, -1, -1):
        yield LADDER_STEP_MULS
        kt = (k >> t) & 1
        swap ^= kt
        if swap:
            x2, x3 = x3, x2
            z2, z3 = z3, z2
        swap = kt
        a = x2 + z2
        aa = _mul(a, a)
        b = x2 + _P2 - z2
        bb = _mul(b, b)
        e = aa + _P2 - bb
        c = x3 + z3
        d = x3 + _P2 - z3
        da = _mul(d, a)
        cb = _mul(c, b)
        s = da + cb
        x3 = _mul(s, s)
        s = da + _P2 - cb
        z3 = _mul(x1, _mul(s, s))
        x2 = _mul(aa, bb)
        z2 = _mul(e, aa + _mul(_A24, e))
    if swap:
        x2, z2 = x3, z3
    zi = yield from _inv(z2)
    yield 1
    return (_mul(x2, zi) % _P).to_bytes(32, "little")


def x25519_steps(scalar, u_bytes, slice_muls=gf25519.SLICE_MULS, log=None):
    """x25519() in slices of at most slice_muls units (gf25519.slices)."""
    return gf25519.slices(_ladder(scalar, u_bytes), slice_muls, log)


def x25519(scalar, u_bytes):
    return gf25519.run(x25519_steps(scalar, u_bytes))


def keypair():
    priv = os.urandom(32)
    return priv, x25519(priv, _BASE)


def _respond(host_pub, host_nonce, priv, dev_nonce):
    dev_pub = yield from _ladder(priv, _BASE)
    shared = yield from _ladder(priv, host_pub)
    if shared == bytes(32):
        return None               # a low-order point: no secret would be shared
    return dev_pub, pair_key(shared, host_nonce, dev_nonce)


def respond_steps(host_pub, host_nonce, dev_nonce, slice_muls=gf25519.SLICE_MULS, log=None,
                  priv=None):
    """The device's side of pairing in slices of at most slice_muls units: a fresh key
    pair, the shared secret and the pairing key. Returns (dev_pub, key), or None for a
    host key that shares no secret (all-zero X25519 output, RFC 7748 section 6.1)."""
    return gf25519.slices(_respond(host_pub, host_nonce, priv or os.urandom(32), dev_nonce),
                          slice_muls, log)


def host_id_of(host_pub):
    return hashlib.sha256(host_pub).digest()[:8]


def pair_key(shared, host_nonce, dev_nonce):
    return hmac_sha256(shared, b"steamer-pair" + host_nonce + dev_nonce)


def pair_confirm(key, host_id):
    return hmac_sha256(key, b"paired" + host_id)


def auth_mac(key, dev_nonce, host_nonce, host_id):
    return hmac_sha256(key, b"auth" + dev_nonce + host_nonce + host_id)


def device_mac(key, host_nonce, dev_nonce):
    return hmac_sha256(key, b"device" + host_nonce + dev_nonce)


def session_pads(key, dev_nonce, host_nonce, host_id):
    """The connection's session key, as pads() for command_tag()."""
    return pads(hmac_sha256(key, b"session" + dev_nonce + host_nonce + host_id))


def command_tag(session, signed):
    """The tag of a command frame: signed is the frame up to its tag (a bytes-like,
    a memoryview of the receive buffer on the device)."""
    return hmac_pads(session, signed)[:TAG_LEN]


def seal(message, session, ctr):
    """The frame of a host command with its counter and tag (codec's FLAG_MAC)."""
    from podproto import messages
    msg = dict(message)
    msg["flags"] = msg.get("flags", 0) | messages.FLAG_MAC
    msg["ctr"] = ctr
    msg["tag"] = bytes(TAG_LEN)
    frame = bytearray(codec.encode(msg))
    end = len(frame) - codec.CRC_LEN - TAG_LEN
    frame[end:end + TAG_LEN] = command_tag(session, memoryview(frame)[0:end])
    codec.put_crc(frame)
    return bytes(frame)


def tag_ok(session, frame, msg):
    """True when msg, decoded from frame (its bytes, whole), carries a good tag."""
    end = len(frame) - codec.CRC_LEN - TAG_LEN
    return equal(msg["tag"], command_tag(session, memoryview(frame)[0:end]))
