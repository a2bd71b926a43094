"""podproto: the bytes on the air between the steamer and its host, for both runtimes.

Public surface: `encode(message) -> bytes`, `decode(data) -> message` and
`ProtocolError`, the only exception any decoder or reassembler raises. Submodules
(imported only where needed): `gatt` (UUIDs), `messages` (the message table),
`link` (fragmentation and reassembly), `flow` (credits), `profile`, `podlet`,
`gf25519` (the field both curves use), `ed25519`, `pairing`, `sha512`, `mpconst`
(the one `const` shim), and `signing` (host only: needs `cryptography`).
"""
from podproto.errors import ProtocolError
from podproto.codec import VERSION, decode, encode

__all__ = ("ProtocolError", "VERSION", "decode", "encode")
