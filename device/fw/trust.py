"""What the device trusts: the manufacturer key it was provisioned with, the profiles
signed by it (kept on flash, never rolled back) and the podlets whose ID chips it signed.

A profile is installed whole or not at all: it is verified (signature, then envelope,
then this appliance's hard limits, then its version against the installed one), written
to a new file and renamed over the old one, which littlefs does atomically, and only
then used. Decisions come back as (value, reason): reason is a short snake_case word.
"""
import os

from podproto import ProtocolError
from podproto import podlet as podlet_fmt
from podproto import profile as profile_fmt

from fw import config

KEY_FILE = "mfg.pub"
_UNIX_2000_S = 946684800


def _reason(err):
    msg = str(err)
    if "bad signature" in msg:
        return "bad_signature"
    if "signed profile: truncated" in msg:
        return "unsigned"
    if "crc" in msg:
        return "crc"
    if "outside the hardware envelope" in msg:
        return msg.split()[1].rstrip(":")
    return "malformed"


def _hexkey(b):
    return "".join("%02x" % x for x in b)


class Trust:
    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.dir = data_dir + "/profiles"
        try:
            os.mkdir(self.dir)
        except OSError:
            pass
        self.key = None
        try:
            with open(data_dir + "/" + KEY_FILE, "rb") as f:
                key = f.read()
            if len(key) == 32:
                self.key = key
        except OSError:
            pass
        self.profiles = {}       # podlet_type -> profile dict (with outlet_target_mc)

    def provisioned(self):
        return self.key is not None

    def key_hex(self):
        return _hexkey(self.key) if self.key else None

    # ---- profiles -----------------------------------------------------------------------
    def check_profile(self, blob):
        """(profile, None) for a signed profile this device may use, else (None, reason)."""
        if self.key is None:
            return None, "not_provisioned"
        if not isinstance(blob, (bytes, bytearray)):
            return None, "malformed"
        try:
            prof = profile_fmt.verify(self.key, blob)
        except ProtocolError as e:
            return None, _reason(e)
        prof["outlet_target_mc"] = profile_fmt.target_mc(prof)
        # The envelope is podproto's; the hard limit is this appliance's own.
        if prof["outlet_target_mc"] > config.OUTLET_TARGET_MAX_MC:
            return None, "outlet_target_c"
        return prof, None

    def install(self, blob):
        prof, reason = self.check_profile(blob)
        if prof is None:
            return None, reason
        old = self.profiles.get(prof["podlet_type"])
        if old is not None and prof["version"] <= old["version"]:
            return None, "stale_version"
        path = "%s/%d" % (self.dir, prof["podlet_type"])
        with open(path + ".new", "wb") as f:
            f.write(blob)
        os.rename(path + ".new", path)
        self.profiles[prof["podlet_type"]] = prof
        return prof, None

    def load(self):
        """Loads the installed profiles at boot, checking each again. Returns the names
        of files that no longer pass, with the reason."""
        bad = []
        for name in os.listdir(self.dir):
            if not name.isdigit():
                if name.endswith(".new"):
                    os.remove(self.dir + "/" + name)   # an install cut short
                continue
            with open(self.dir + "/" + name, "rb") as f:
                blob = f.read()
            prof, reason = self.check_profile(blob)
            if prof is None:
                bad.append((name, reason))
            else:
                self.profiles[prof["podlet_type"]] = prof
        return bad

    # ---- podlets ------------------------------------------------------------------------
    def check_podlet(self, image, wall_s):
        """(podlet, None) for a genuine, unexpired podlet image, else (None, reason).
        wall_s is the newest wall-clock time the device can vouch for (0: none)."""
        if image is None:
            return None, "unreadable"
        if self.key is None:
            return None, "not_provisioned"
        try:
            pod = podlet_fmt.verify(self.key, image)
        except ProtocolError as e:
            return None, _reason(e)
        if not wall_s:
            return pod, "clock_unset"
        if (wall_s - _UNIX_2000_S) // 86400 > pod["expiry_day"]:
            return pod, "expired"
        return pod, None
