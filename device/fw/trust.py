"""What the device trusts: the manufacturer key it was provisioned with, the profiles
signed by it (kept on flash, never rolled back) and the podlets whose ID chips it signed.

A profile is installed whole or not at all: it is verified (signature, then envelope,
then this appliance's hard limits, then its version against the installed one), written
to a new file and renamed over the old one, which littlefs does atomically, and only
then used.

Never rolled back: the highest version ever installed per podlet type, with the SHA-256
of its bytes, is kept in its own record (VERSIONS_FILE, two hashed and counted copies:
fw.copies), written before the profile's rename. A profile that fails its check at boot (a corrupted file, a re-provisioned key)
is left out, but no version below that mark is ever installed again, and the mark's
version only as the very same bytes (a repair, or the install a power cut interrupted). Decisions come back as (value, reason): reason is a short snake_case word.
A signature check takes about a second on a board: profile_check() and podlet_check()
return it as a Check that the app runs a bounded slice at a time across its periods;
check_profile() and check_podlet() run one to its end at once.
"""
import binascii
import hashlib
import os

from podproto import ProtocolError
from podproto import podlet as podlet_fmt
from podproto import profile as profile_fmt

from fw import config
from fw import copies

KEY_FILE = "mfg.pub"
VERSIONS_FILE = "profile_versions"    # per podlet type: "<type> <version> <sha256 hex>"
_NO_DIGEST = "-"                      # a mark in doubt: its version only by a higher one
_UNIX_2000_S = 946684800


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
        self.versions_path = data_dir + "/" + VERSIONS_FILE    # before the copies
        self.marks = copies.Copies(data_dir, VERSIONS_FILE)
        self.marks_problem = None     # why the marks on flash were not all trusted
        self.blocked = set()          # types whose mark and profile were both lost
        self.versions = self._read_versions()   # podlet_type -> (version, sha256 hex)
        self._checked = None     # (blob, profile) the last profile_check() passed
        # Called between the slices of a check run to its end at once (check_profile,
        # check_podlet): at boot the app feeds the watchdog with it.
        self.on_slice = None

    def provisioned(self):
        return self.key is not None

    def key_hex(self):
        return _hexkey(self.key) if self.key else None

    # ---- profiles -----------------------------------------------------------------------
    def profile_check(self, blob):
        """The check of a signed profile as a Check: its result is (profile, None) for a
        profile this device may use, else (None, reason)."""
        if self.key is None:
            return Check(None, None, (None, "not_provisioned"))
        if not isinstance(blob, (bytes, bytearray)):
            return Check(None, None, (None, "malformed"))
        blob = bytes(blob)
        return Check(profile_fmt.verify_steps(self.key, blob), self._profile_ok, None, blob)

    def _profile_ok(self, check, prof):
        prof["outlet_target_mc"] = profile_fmt.target_mc(prof)
        # The envelope is podproto's; the hard limit is this appliance's own.
        if prof["outlet_target_mc"] > config.OUTLET_TARGET_MAX_MC:
            return None, "outlet_target_c"
        self._checked = (check.arg, prof)
        return prof, None

    def check_profile(self, blob):
        """(profile, None) for a signed profile this device may use, else (None, reason).
        The profile that a profile_check() just passed is not checked twice: install()
        right after it costs no second signature check."""
        done = self._checked
        self._checked = None
        if done is not None and done[0] == blob:
            return done[1], None
        result = self.profile_check(blob).run(self.on_slice)
        self._checked = None
        return result

    def install(self, blob):
        prof, reason = self.check_profile(blob)
        if prof is None:
            return None, reason
        ptype = prof["podlet_type"]
        version = prof["version"]
        if ptype in self.blocked:
            return None, "versions_lost"
        old = self.profiles.get(ptype)
        if old is not None and version <= old["version"]:
            return None, "stale_version"
        digest = _digest(blob)
        mark = self.versions.get(ptype)
        if mark is not None and (version < mark[0] or (version == mark[0] and digest != mark[1])):
            return None, "stale_version"
        if mark is None or version > mark[0]:
            # The mark first: a cut before the profile's rename leaves a mark that only
            # these bytes meet, so the install can be done again and nothing older.
            self.versions[ptype] = (version, digest)
            self._write_versions()
        path = "%s/%d" % (self.dir, ptype)
        with open(path + ".new", "wb") as f:
            f.write(blob)
        os.rename(path + ".new", path)
        prof["sha256"] = hashlib.sha256(blob).digest()    # what profile_list carries
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
                if self.marks_problem and int(name) not in self.versions:
                    # Neither its mark nor its profile can say which version it had.
                    self.blocked.add(int(name))
                continue
            ptype = prof["podlet_type"]
            prof["sha256"] = hashlib.sha256(blob).digest()
            self.profiles[ptype] = prof
            mark = self.versions.get(ptype)
            if mark is None or prof["version"] > mark[0]:
                # Installed before the marks were kept (or the mark file was lost).
                self.versions[ptype] = (prof["version"], _digest(blob))
                self._write_versions()
        return bad

    def _read_versions(self):
        """The marks of the newest valid copy, each raised to the other copy's if that
        one holds a higher (never the looser of two). In doubt (fw.copies) no mark's
        version is taken again, not even as the same bytes; with no valid copy load()
        restores them from the profiles that verify, and refuses every install of a
        type whose profile does not."""
        marks = {}
        c = self.marks
        try:
            i = c.newest()
        except copies.RecordError as e:
            self.marks_problem = str(e)
            return marks
        if i < 0:
            try:
                with open(self.versions_path) as f:
                    self._parse_marks(f, marks)
            except OSError:
                pass              # none yet
            except ValueError:
                self.marks_problem = "profile_versions unreadable"
            return marks
        for j in (i, 1 - i):
            if j == i or c.counters[j] > 0:
                got = {}
                try:
                    self._parse_marks(c.lines(j), got)
                except ValueError:
                    got = {}
                for ptype in got:
                    if ptype not in marks or got[ptype][0] > marks[ptype][0]:
                        marks[ptype] = got[ptype]
        if c.doubt:
            self.marks_problem = c.doubt
            for ptype in marks:
                marks[ptype] = (marks[ptype][0], _NO_DIGEST)
        return marks

    def _parse_marks(self, lines, marks):
        for line in lines:
            ptype, version, digest = line.split()
            if not isinstance(digest, str):
                digest = digest.decode()
            marks[int(ptype)] = (int(version), digest)

    def _write_versions(self):
        with self.marks.writer() as f:
            for ptype in self.versions:
                version, digest = self.versions[ptype]
                f.write("%d %d %s\n" % (ptype, version, digest))
        try:
            os.remove(self.versions_path)     # the file of before the copies
        except OSError:
            pass

    # ---- podlets ------------------------------------------------------------------------
    def podlet_check(self, image):
        """The check of a podlet's ID-chip image (ROM CRC, signature) as a Check: its
        result is (podlet, None) for a genuine image, else (None, reason). Whether it is
        expired is podlet_date() at the time it is used."""
        if image is None:
            return Check(None, None, (None, "unreadable"))
        if self.key is None:
            return Check(None, None, (None, "not_provisioned"))
        return Check(podlet_fmt.verify_steps(self.key, image), _genuine, None)

    def podlet_read_check(self, read_steps):
        """podlet_check() of the image read_steps (the board's podlet.read_steps())
        returns, as one Check: the read is sliced as the signature check is, a bus
        transaction a slice (issue 14 item 6)."""
        return Check(self._read_and_verify(read_steps), _genuine, None)

    def _read_and_verify(self, read_steps):
        image = yield from read_steps
        if image is None:
            raise ProtocolError("podlet ID chip unreadable", "unreadable")
        if self.key is None:
            raise ProtocolError("no manufacturer key", "not_provisioned")
        yield
        pod = yield from podlet_fmt.verify_steps(self.key, image)
        return pod

    def podlet_date(self, pod, wall_s):
        """None if a genuine podlet is not expired at wall_s, the newest wall-clock time
        the device can vouch for (0: none), else the reason."""
        if not wall_s:
            return "clock_unset"
        if (wall_s - _UNIX_2000_S) // 86400 > pod["expiry_day"]:
            return "expired"
        return None

    def check_podlet(self, image, wall_s):
        """(podlet, None) for a genuine, unexpired podlet image, else (None, reason).
        wall_s is the newest wall-clock time the device can vouch for (0: none)."""
        pod, reason = self.podlet_check(image).run(self.on_slice)
        if pod is None:
            return None, reason
        return pod, self.podlet_date(pod, wall_s)


def _digest(blob):
    return binascii.hexlify(hashlib.sha256(blob).digest()).decode()


def _genuine(check, pod):
    return pod, None


class Check:
    """A signature check done a slice at a time (podproto's verify_steps), so that no
    service() call holds the loop for long: step() does one slice of bounded work and
    returns True once `result`, (value, reason), is known."""

    def __init__(self, steps, finish, result, arg=None):
        self.steps = steps          # generator, or None when result is known at once
        self.finish = finish        # (check, the verified value) -> (value, reason)
        self.result = result
        self.arg = arg
        self.slices = 0

    def step(self):
        steps = self.steps
        if self.result is not None or steps is None:
            return True
        self.slices += 1
        try:
            next(steps)
            return False
        except StopIteration as done:
            self.result = self.finish(self, done.value)
        except ProtocolError as e:
            self.result = (None, e.code)
        self.steps = None
        return True

    def run(self, between=None):
        """The result, every slice done now; between() is called between slices."""
        while not self.step():
            if between is not None:
                between()
        return self.result
