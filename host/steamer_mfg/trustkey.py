"""Provisions a real board with the manufacturer public key, over its USB serial port with
mpremote: the file the firmware's trust (fw.trust) reads at boot, data/mfg.pub.

    steamer mfg provision-key --port /dev/ttyACM0 --key keys/mfg.pem

    from steamer_mfg import trustkey as devicekey
    public = devicekey.public_key_from(pub=None, key="keys/mfg.pem")
    result = devicekey.provision("/dev/ttyACM0", public)     # result.action, .verified

Only the 32-byte public key travels, on the USB cable and never over BLE (the firmware's
BLE commands cannot write it). A private key file given with --key is read here and only
its public half is sent. The write is atomic: data/mfg.pub.new is written, its SHA-256 on
the board is checked against the key's, it is renamed over data/mfg.pub (littlefs renames
atomically), and the result is hashed again. A board that already holds a different key
is refused unless `force`; one that holds this key is left as it is. The simulator's
development keys (steamer_mfg.devkeys) are refused: no real steamer may trust them.

The mpremote plumbing (running it, hashing files on the board) is steamer_mfg.usb's.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from podproto import signing
from steamer.inputs import InputTooLarge, read_input
from steamer_mfg import usb
from steamer_mfg.devkeys import DEV_PUBLIC, OTHER_PUBLIC
from steamer_mfg.keys import MfgError, load_key

# fw.trust.KEY_FILE in the real boards' data_dir, relative to the root (usb.DATA_DIR).
DEVICE_KEY_PATH = usb.DATA_DIR + "/mfg.pub"
_NEW = DEVICE_KEY_PATH + ".new"
_HEX64 = re.compile(rb"[0-9a-fA-F]{64}\Z")
# A public key file (hex, raw or PEM) is under 200 bytes.
PUB_FILE_MAX_BYTES = 16 << 10

Progress = Callable[[str], None]


class ProvisionError(Exception):
    """A step on the board failed or was refused; the message is one line."""


@dataclasses.dataclass
class KeyResult:
    """What provision() did. action: "written" (the board had no key), "replaced" (it
    had another, and force was given) or "unchanged" (it had this one)."""
    port: str
    path: str
    public_hex: str
    sha256: str
    action: str = ""
    previous_hex: str | None = None
    verified: bool = False
    seconds: float = 0.0

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


# ---- the key to provision ----------------------------------------------------------------

def public_key_from(pub: str | None = None, key: str | Path | None = None) -> bytes:
    """The 32-byte public key to provision: `pub` is 64 hex digits or a file holding them
    (as `steamer mfg pubkey` prints), 32 raw bytes or a PEM public key; `key` is a
    manufacturer key file, of which only the public half is used. MfgError names the
    option and what is wrong."""
    if pub is not None and key is None:
        public = _read_pub(pub)
    elif key is not None and pub is None:
        public = signing.public_key(load_key(Path(key)))
    else:
        raise MfgError("give the key with --pub or --key (one of them)")
    if public in (DEV_PUBLIC, OTHER_PUBLIC):
        raise MfgError(f"{'--pub' if pub is not None else '--key'}: that is the simulator's "
                       "development key, which anybody can sign with: no real steamer may "
                       "trust it (make the production key with steamer mfg keygen)")
    return public


def _read_pub(arg: str) -> bytes:
    if _HEX64.match(arg.strip().encode()):
        return bytes.fromhex(arg.strip())
    path = Path(arg)
    try:
        data = read_input(path, PUB_FILE_MAX_BYTES, "a public key file")
    except InputTooLarge as e:
        raise MfgError(f"--pub: '{path}': {e.reason}") from None
    except FileNotFoundError:
        raise MfgError(f"--pub: '{arg}' is neither 64 hex digits nor an existing file") from None
    except OSError as e:
        raise MfgError(f"--pub: '{path}': {e.strerror}") from None
    where = f"--pub: '{path}'"
    if b"PRIVATE KEY" in data[:200]:
        raise MfgError(f"{where} holds a private key: give it with --key (only its public "
                       "half goes to the device)")
    if data.lstrip().startswith(b"-----BEGIN PUBLIC KEY"):
        try:
            loaded = serialization.load_pem_public_key(data)
        except ValueError:
            raise MfgError(f"{where}: not a readable PEM public key") from None
        if not isinstance(loaded, Ed25519PublicKey):
            raise MfgError(f"{where}: not an Ed25519 public key")
        return loaded.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if _HEX64.match(data.strip()):
        return bytes.fromhex(data.strip().decode())
    if len(data) == 32 and not re.fullmatch(rb"[0-9a-fA-F]+", data):
        return data                     # the raw key
    raise MfgError(f"{where}: want 64 hex digits (as steamer mfg pubkey prints), the 32 raw "
                   f"bytes or a PEM public key; it holds {len(data)} bytes that are none of these")


# ---- the board -----------------------------------------------------------------------------

_READ_SCRIPT = """try:
 f = open(%r, 'rb')
 b = f.read()
 f.close()
 print('KEY', ''.join('%%02x' %% x for x in b))
except OSError:
 print('KEY -')
"""

_WRITE_SCRIPT = """import os
try:
 os.mkdir(%r)
except OSError:
 pass
f = open(%r, 'wb')
f.write(%r)
f.close()
"""

_REMOVE_SCRIPT = """import os
try:
 os.remove(%r)
except OSError:
 pass
"""


def _exec(port: str, script: str, what: str, timeout_s: float, resume: bool = True) -> str:
    try:
        return usb.run_script(port, script, what, timeout_s, resume)
    except usb.UsbError as e:
        raise ProvisionError(str(e)) from None


def device_key(port: str, timeout_s: float = 60.0, resume: bool = False) -> bytes | None:
    """The bytes of data/mfg.pub on the board, None when it has none."""
    out = _exec(port, _READ_SCRIPT % DEVICE_KEY_PATH, "reading %s" % DEVICE_KEY_PATH,
                timeout_s, resume)
    for line in out.splitlines():
        if line.startswith("KEY "):
            value = line[4:].strip()
            return None if value == "-" else bytes.fromhex(value)
    raise ProvisionError("reading %s: no answer from the board" % DEVICE_KEY_PATH)


def provision(port: str, public: bytes, force: bool = False, progress: Progress | None = None,
              timeout_s: float = 60.0, after_write: Callable[[], None] | None = None,
              wait_s: float = 60.0) -> KeyResult:
    """Provisions the board on `port` with `public` (see the module's doc). Raises
    ProvisionError (one line) when a step fails or the board holds another key and not
    force. after_write runs between the write and its verification (tests use it to
    tamper with the new file). A board running the steamer firmware is first waited for,
    up to wait_s, to be started in its maintenance boot (usb.wait_for_maintenance)."""
    if len(public) != 32:
        raise MfgError("a public key is 32 bytes, not %d" % len(public))
    t0 = time.monotonic()
    digest = hashlib.sha256(public).hexdigest()
    result = KeyResult(port, DEVICE_KEY_PATH, public.hex(), digest)

    def say(msg: str) -> None:
        if progress:
            progress(msg)

    try:
        usb.check_port(port)
        usb.wait_for_maintenance(port, wait_s, say)
    except usb.UsbError as e:
        raise ProvisionError(str(e)) from None
    say("reading %s on %s" % (DEVICE_KEY_PATH, port))
    old = device_key(port, timeout_s)
    result.previous_hex = old.hex() if old is not None else None
    if old == public:
        result.action = "unchanged"
        result.verified = True
        result.seconds = round(time.monotonic() - t0, 3)
        return result
    if old is not None and not force:
        what = ("another key, %s" % old.hex() if len(old) == 32
                else "a %d-byte %s that is no key" % (len(old), DEVICE_KEY_PATH))
        raise ProvisionError("the board already holds %s: refusing to replace it (--force "
                             "does, and the board then refuses whatever the old key signed)"
                             % what)
    say("writing %s (%d bytes)" % (_NEW, len(public)))
    _exec(port, _WRITE_SCRIPT % (DEVICE_KEY_PATH.rsplit("/", 1)[0], _NEW, public),
          "writing %s" % _NEW, timeout_s)
    if after_write is not None:
        after_write()
    say("verifying %s by SHA-256" % _NEW)
    got = usb.device_hashes(port, [_NEW], timeout_s)[_NEW]
    if got != digest:
        _exec(port, _REMOVE_SCRIPT % _NEW, "removing %s" % _NEW, timeout_s)
        raise ProvisionError("verification failed: %s on the board has SHA-256 %s, want %s; "
                             "%s left as it was" % (_NEW, got, digest, DEVICE_KEY_PATH))
    say("renaming %s to %s" % (_NEW, DEVICE_KEY_PATH))
    _exec(port, "import os\nos.rename(%r, %r)\n" % (_NEW, DEVICE_KEY_PATH),
          "renaming %s" % _NEW, timeout_s)
    if usb.device_hashes(port, [DEVICE_KEY_PATH], timeout_s)[DEVICE_KEY_PATH] != digest:
        raise ProvisionError("verification failed: %s on the board does not hold the key "
                             "after the rename" % DEVICE_KEY_PATH)
    result.action = "written" if old is None else "replaced"
    result.verified = True
    result.seconds = round(time.monotonic() - t0, 3)
    return result
