"""The manufacturer's key file (an Ed25519 seed as unencrypted PKCS#8 PEM, mode 0600):
making it, reading it (the one reader steamer_mfg uses), and public keys in hex; and
MfgError, the one-line error every steamer_mfg library raises. Used by steamer_mfg.cli,
steamer_mfg.images' callers and steamer_mfg.trustkey."""
from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from steamer.inputs import InputTooLarge, read_input

KEY_MODE = 0o600
# A PEM key is about 120 bytes.
KEY_FILE_MAX_BYTES = 16 << 10

_HEX = re.compile(r"[0-9a-fA-F]*\Z")

class MfgError(Exception):
    """Something `steamer mfg` refuses; str(err) is one line naming the field or file."""


# ---- keys ---------------------------------------------------------------------------------

def generate_key(path: Path, force: bool = False) -> bytes:
    """Writes a new Ed25519 private key to `path` (mode 0600) and returns its raw public
    key. Refuses an existing `path` unless `force` (which replaces it atomically)."""
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        raise MfgError(f"--out: directory '{parent}' does not exist")
    if path.is_dir():
        raise MfgError(f"--out: '{path}' is a directory")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    if force:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=parent)   # 0600 already
        try:
            _write_fd(fd, pem)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    else:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_MODE)
        except FileExistsError:
            raise MfgError(f"key file '{path}' exists: refusing to overwrite it (--force "
                           "replaces it, and the old key is then gone for good)") from None
        try:
            _write_fd(fd, pem)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    return _raw_public(key)


def _write_fd(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), KEY_MODE)   # whatever the umask made of it
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw,
                                         serialization.PublicFormat.Raw)


def load_key(path: Path) -> bytes:
    """The 32-byte private seed in key file `path`, after checking that only its owner can
    read it. MfgError says what is wrong without ever quoting the file's contents."""
    path = Path(path)
    what = f"key file '{path}'"
    try:
        st = path.stat()
    except FileNotFoundError:
        raise MfgError(f"{what}: not found (make one with: steamer mfg keygen --out {path})") from None
    except OSError as e:
        raise MfgError(f"{what}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise MfgError(f"{what}: not a regular file")
    try:
        data = read_input(path, KEY_FILE_MAX_BYTES, "a key file")
    except InputTooLarge as e:
        raise MfgError(f"{what}: {e.reason}") from None
    except OSError as e:
        raise MfgError(f"{what}: {e.strerror}") from None
    if b"PRIVATE KEY-----" not in data[:4096]:
        # Not a key at all (a public key, a profile): its mode says nothing about a key.
        raise MfgError(f"{what}: not a PEM private key (want an Ed25519 key as "
                       "`steamer mfg keygen` writes it)")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise MfgError(f"{what}: mode {mode:04o} lets other users at it; a key file must "
                       f"be 0600 (chmod 600 '{path}', and consider the key exposed)")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise MfgError(f"{what}: encrypted with a passphrase; steamer mfg reads unencrypted "
                       "PKCS#8 PEM keys protected by their file permissions") from None
    except (ValueError, UnsupportedAlgorithm):
        raise MfgError(f"{what}: not a PEM private key (want an Ed25519 key as "
                       "`steamer mfg keygen` writes it)") from None
    if not isinstance(key, Ed25519PrivateKey):
        kind = type(key).__name__.lstrip("_").replace("PrivateKey", "") or "another"
        raise MfgError(f"{what}: not an Ed25519 key (it holds {kind})")
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())


def parse_public_hex(text: str, option: str = "--pub") -> bytes:
    """A raw Ed25519 public key from 64 hex digits."""
    text = text.strip()
    if len(text) != 64 or not _HEX.match(text):
        raise MfgError(f"{option}: want 64 hex digits (a 32-byte Ed25519 public key), got "
                       f"{len(text)} characters")
    return bytes.fromhex(text)
