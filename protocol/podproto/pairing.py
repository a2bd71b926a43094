"""Pairing and per-connection authentication: X25519, HMAC-SHA-256 and the derivations
both ends use, for MicroPython (no hmac module, no X25519) and CPython alike.

Pairing (only while the steamer's button-held window is open): host and device exchange
X25519 public keys and nonces (pair_request / pair_challenge); both derive
    key = HMAC(X25519(priv, peer_pub), "steamer-pair" | host_nonce | dev_nonce)
    host_id = SHA-256(host_pub)[:8]
and the device proves it holds key with key_confirm(HMAC(key, "paired" | host_id)).
Authentication, once per connection: the device sends a fresh nonce (auth_challenge);
the host answers auth_response(host_id, host_nonce,
    HMAC(key, "auth" | dev_nonce | host_nonce | host_id));
the device answers key_confirm(HMAC(key, "device" | host_nonce | dev_nonce)).
"""
import hashlib
import os

_P = 2 ** 255 - 19
_A24 = 121665
_BLOCK = 64


def hmac_sha256(key, msg):
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = bytes(key) + bytes(_BLOCK - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner.update(msg)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
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


def _le_int(b):
    n = 0
    for i in range(len(b) - 1, -1, -1):
        n = (n << 8) | b[i]
    return n


def _le_bytes(n):
    out = bytearray(32)
    for i in range(32):
        out[i] = n & 0xFF
        n >>= 8
    return bytes(out)


def x25519(scalar, u_bytes):
    """RFC 7748 X25519 (Montgomery ladder)."""
    k = bytearray(scalar)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    k = _le_int(k)
    ub = bytearray(u_bytes)
    ub[31] &= 127
    x1 = _le_int(ub) % _P
    x2, z2, x3, z3 = 1, 0, x1, 1
    swap = 0
    for t in range(254, -1, -1):
        kt = (k >> t) & 1
        swap ^= kt
        if swap:
            x2, x3 = x3, x2
            z2, z3 = z3, z2
        swap = kt
        a = (x2 + z2) % _P
        aa = a * a % _P
        b = (x2 - z2) % _P
        bb = b * b % _P
        e = (aa - bb) % _P
        c = (x3 + z3) % _P
        d = (x3 - z3) % _P
        da = d * a % _P
        cb = c * b % _P
        x3 = (da + cb) % _P
        x3 = x3 * x3 % _P
        z3 = (da - cb) % _P
        z3 = x1 * (z3 * z3 % _P) % _P
        x2 = aa * bb % _P
        z2 = e * ((aa + _A24 * e) % _P) % _P
    if swap:
        x2, x3 = x3, x2
        z2, z3 = z3, z2
    return _le_bytes(x2 * pow(z2, _P - 2, _P) % _P)


_BASE = b"\x09" + bytes(31)


def keypair():
    priv = os.urandom(32)
    return priv, x25519(priv, _BASE)


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
