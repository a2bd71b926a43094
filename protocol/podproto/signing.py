"""Host-side signing of profiles and podlets with `cryptography` (never on the device).

Keys are 32-byte Ed25519 seeds (private) and 32-byte raw public keys, as RFC 8032
writes them.
"""
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from podproto import podlet as _podlet
from podproto import profile as _profile


def public_key(seed: bytes) -> bytes:
    """The raw 32-byte public key of a 32-byte private seed."""
    key = Ed25519PrivateKey.from_private_bytes(bytes(seed)).public_key()
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def sign(seed: bytes, message: bytes) -> bytes:
    """The 64-byte Ed25519 signature of message."""
    return Ed25519PrivateKey.from_private_bytes(bytes(seed)).sign(bytes(message))


def sign_profile(seed: bytes, profile: dict) -> bytes:
    """A signed profile: canonical bytes + signature. The envelope is checked first."""
    _profile.check(profile)
    body = _profile.encode(profile)
    return body + sign(seed, body)


def sign_podlet(seed: bytes, podlet: dict) -> bytes:
    """The 136-byte ID-chip image of a podlet dict, signed."""
    _, signed = _podlet.data_bytes(podlet)
    return _podlet.encode(podlet, sign(seed, signed))
