"""Podlet ID-chip image files as the manufacturer writes them (binary, or hex text with
`steamer mfg podlet-image --hex`). Used by steamer_mfg.cli and by the simulator's driver,
which presents such an image on the simulated board's chip."""
from __future__ import annotations


def as_bytes(data: bytes) -> bytes:
    """The file's bytes, or the bytes a hex-text file (podlet-image --hex) spells."""
    text = data.strip()
    if text and len(text) % 2 == 0 and all(c in b"0123456789abcdefABCDEF" for c in text):
        return bytes.fromhex(text.decode())
    return data
