"""Deploys a built firmware to a board over its serial port with mpremote, and verifies it.

    steamer dev flash --port /dev/ttyACM0 --board esp32c3      # build, copy, verify, soft reset
    steamer dev flash --port /dev/pts/5 --board esp32c3 --no-build --build-dir build/esp32c3 --json

The files of the build folder (`steamer dev build`, already in the device's layout) go to
the same paths on the board. One mpremote invocation copies them all (commands chained
with `+`); its "cp" lines give the per-file progress. mpremote skips a file whose hash on
the board already matches ("Up to date"). Then every file is hashed on the board
(`fs sha256sum`, or a hashlib script for an mpremote without it) and compared with the
local SHA-256, and the board is soft-reset. Files on the board that the build does not have
are left alone.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from steamer.inputs import InputTooLarge, read_input
from steamer_dev.build import BOARDS_SPEC, BUILD_MARK, BuildError, build_board
from steamer_dev.paths import ROOT
from steamer_mfg import usb
from steamer.terminal import fail, json_out, os_error_text

# No file of a build is larger than a board's whole flash (4 MiB on the ESP32-C3).
FILE_MAX_BYTES = 4 << 20


class FlashError(usb.UsbError):
    """A deployment step failed; the message is one line naming the step (and the file)."""


@dataclass
class FlashFile:
    """One file of the build and where it goes on the board."""
    device_path: str            # e.g. "lib/fw/app.mpy", relative to the board's root
    local: Path
    size_bytes: int
    sha256: str
    copied: bool = False        # False when mpremote found it up to date on the board
    verified: bool = False


@dataclass
class FlashResult:
    port: str
    board: str
    build_dir: str
    files: list[FlashFile] = field(default_factory=list)
    total_bytes: int = 0
    copied: int = 0
    up_to_date: int = 0
    verified: bool = False
    seconds: float = 0.0
    error: str | None = None

    def to_json(self) -> dict:
        d = asdict(self)
        for f in d["files"]:
            f["local"] = str(f["local"])
        return d


Progress = Callable[[str], None]


def plan(build_dir: Path) -> list[FlashFile]:
    """The files of a build folder with their paths on the board, directories first in
    the order they must be created (sorted, so parents come before children)."""
    build_dir = Path(build_dir)
    if not build_dir.is_dir():
        raise FlashError("build folder %s %s" % (build_dir, "is not a folder" if
                                                   build_dir.exists() else "does not exist"))
    files = []
    for p in sorted(build_dir.rglob("*")):
        if p.is_file() and p.name != BUILD_MARK and "__pycache__" not in p.parts:
            try:
                data = read_input(p, FILE_MAX_BYTES, "a file on a board")
            except InputTooLarge as e:
                raise FlashError(str(e)) from None
            files.append(FlashFile(p.relative_to(build_dir).as_posix(), p, len(data),
                                   hashlib.sha256(data).hexdigest()))
    if not files:
        raise FlashError("build folder %s holds no files" % build_dir)
    return files


def check_build(build_dir: Path, board: str) -> None:
    """Raises FlashError when build_dir holds another board's build (its build mark says
    which; an older, empty mark is taken on trust)."""
    try:
        built_for = (build_dir / BUILD_MARK).read_text().strip()
    except OSError:
        return
    if built_for and built_for != board:
        raise FlashError("%s holds a %s build, not %s (--board): build it with `steamer dev "
                         "build --board %s`" % (build_dir, built_for, board, board))


def check_board(port: str, board: str, timeout_s: float = 60.0) -> str:
    """The machine the board on `port` reports (os.uname().machine); FlashError when it
    is another known board than `board`, as esptool refuses another chip. A machine that
    is no known board (a virtual board) is accepted."""
    rc, out = usb.mpremote(port, ["exec", "import os; print('machine:', os.uname().machine)"],
                        timeout_s)
    machine = next((l.split("machine:", 1)[1].strip() for l in out.splitlines()
                    if l.startswith("machine:")), None)
    if rc != 0 or machine is None:
        raise FlashError("cannot read the board's type: %s" % usb.last_error_line(out))
    want = BOARDS_SPEC[board].machine_has
    if want and want in machine:
        return machine
    for other, spec in BOARDS_SPEC.items():
        if other != board and spec.machine_has and spec.machine_has in machine:
            raise FlashError("the board on %s is %s: a %s, not %s (--board)"
                             % (port, machine, other, board))
    return machine


def copy_files(port: str, files: list[FlashFile], progress: Progress | None = None,
               timeout_s: float = 300.0) -> None:
    """Creates the folders and copies every file in one mpremote invocation. Sets each
    file's `copied`. Raises FlashError naming the file that failed."""
    dirs = sorted({p.as_posix() for f in files for p in Path(f.device_path).parents} - {"."},
                  key=lambda d: (d.count("/"), d))
    mkdirs = ("import os\nfor d in %r:\n try:\n  os.mkdir(d)\n except OSError:\n  pass"
              % (dirs,))
    args = ["exec", mkdirs]
    for f in files:
        args += ["+", "fs", "cp", str(f.local), ":" + f.device_path]
    by_dest = {":" + f.device_path: f for f in files}
    by_path = {f.device_path: f for f in files}
    total = sum(f.size_bytes for f in files)
    state = {"i": 0, "done_bytes": 0, "current": None}

    def on_line(line: str) -> None:
        # mpremote prints "cp SRC :DEST" before copying and "Up to date: DEST" when skipping.
        f: FlashFile | None = None
        if line.startswith("cp "):
            f = by_dest.get(line.rsplit(" ", 1)[-1])
            if f is not None:
                f.copied = True
        elif line.startswith("Up to date: "):
            f = by_path.get(line[len("Up to date: "):])
            if f is not None:
                f.copied = False
                if progress:
                    progress("  up to date %s" % f.device_path)
            return
        if f is None:
            return
        state["current"] = f
        state["i"] += 1
        state["done_bytes"] += f.size_bytes
        if progress:
            progress("[%d/%d] %s (%d bytes, %d/%d)" % (state["i"], len(files), f.device_path,
                                                      f.size_bytes, state["done_bytes"], total))

    rc, out = usb.mpremote(port, args, timeout_s, on_line)
    if rc != 0:
        cur = state["current"]
        where = " copying %s" % cur.device_path if cur is not None else ""
        raise FlashError("mpremote failed%s: %s" % (where, usb.last_error_line(out)))


def verify(port: str, files: list[FlashFile], timeout_s: float = 120.0) -> list[str]:
    """Hashes every file on the board and compares it with the local SHA-256. Sets each
    file's `verified`; returns the device paths that differ (empty when all match)."""
    got = usb.device_hashes(port, [f.device_path for f in files], timeout_s)
    bad = []
    for f in files:
        f.verified = got.get(f.device_path) == f.sha256
        if not f.verified:
            bad.append(f.device_path)
    return bad


def soft_reset(port: str, timeout_s: float = 60.0) -> None:
    rc, out = usb.mpremote(port, ["soft-reset"], timeout_s)
    if rc != 0:
        raise FlashError("soft reset failed: %s" % usb.last_error_line(out))


def flash(port: str, board: str, build_dir: Path | None = None, build: bool = True,
          progress: Progress | None = None, timeout_s: float = 300.0,
          after_copy: Callable[[], None] | None = None, wait_s: float = 60.0) -> FlashResult:
    """Builds (unless build is False), waits up to wait_s for a board running the steamer
    firmware to be started in its maintenance boot (steamer_mfg.usb.wait_for_maintenance:
    its watchdog would reset it mid-copy), copies, verifies and soft-resets. Returns the
    result; a failed step raises FlashError (the result so far is on the exception as
    .result). after_copy runs between the copy and the verification (tests use it to
    tamper)."""
    t0 = time.monotonic()
    out = Path(build_dir) if build_dir is not None else ROOT / "build" / board
    result = FlashResult(port=port, board=board, build_dir=str(out))

    def say(msg: str) -> None:
        if progress:
            progress(msg)

    try:
        usb.check_port(port)
        if build:
            say("building %s into %s" % (board, out))
            try:
                build_board(board, out)
            except BuildError as exc:
                raise FlashError("build failed: %s" % str(exc).splitlines()[0])
            except OSError as exc:      # the build folder, or mpy-cross missing
                raise FlashError("build failed: %s" % os_error_text(exc))
        try:
            result.files = plan(out)
        except OSError as exc:          # a build folder that cannot be read
            raise FlashError("build folder %s" % os_error_text(exc))
        check_build(out, board)
        usb.wait_for_maintenance(port, wait_s, say)
        say("board: %s" % check_board(port, board))
        result.total_bytes = sum(f.size_bytes for f in result.files)
        say("copying %d files, %d bytes, to %s" % (len(result.files), result.total_bytes, port))
        copy_files(port, result.files, progress, timeout_s)
        result.copied = sum(f.copied for f in result.files)
        result.up_to_date = len(result.files) - result.copied
        if after_copy is not None:
            after_copy()
        say("verifying %d files by SHA-256" % len(result.files))
        bad = verify(port, result.files, timeout_s)
        if bad:
            raise FlashError("verification failed: %s on the board: %s"
                             % ("1 file differs" if len(bad) == 1 else "%d files differ" % len(bad),
                                ", ".join(bad)))
        result.verified = True
        say("soft reset")
        soft_reset(port)
    except usb.UsbError as exc:         # mpremote's steps (usb) raise UsbError
        error = exc if isinstance(exc, FlashError) else FlashError(str(exc))
        result.error = str(error)
        result.seconds = round(time.monotonic() - t0, 3)
        error.result = result   # type: ignore[attr-defined]
        raise error
    result.seconds = round(time.monotonic() - t0, 3)
    return result


# ---- command line ------------------------------------------------------------------------

def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `flash` to the `steamer dev` group."""
    p = subparsers.add_parser(
        "flash", help="deploy the built firmware to a board with mpremote and verify it",
        description="Build the firmware of BOARD (unless --no-build), copy every file to its "
                    "path on the board with mpremote, verify each by SHA-256 and soft-reset "
                    "the board. A board running the steamer firmware (whose watchdog would "
                    "reset it mid-copy) is asked for its maintenance boot first: power it on "
                    "holding the button from 0.5 s to 1.5 s after. Exits 1 with a one-line "
                    "error when a step fails.",
        epilog="Examples:\n  steamer dev flash --port /dev/ttyACM0 --board esp32c3\n"
               "  steamer dev virtual-board &    # prints its port, e.g. /dev/pts/5\n"
               "  steamer dev flash --port /dev/pts/5 --board esp32c3 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", required=True, help="serial port of the board, e.g. /dev/ttyACM0")
    p.add_argument("--board", required=True, choices=sorted(BOARDS_SPEC))
    p.add_argument("--build-dir", type=Path, default=None,
                   help="build folder (default build/BOARD)")
    p.add_argument("--no-build", action="store_true", help="deploy the build folder as it is")
    p.add_argument("--timeout", type=float, default=300.0, metavar="S",
                   help="seconds each mpremote step may take (default 300)")
    p.add_argument("--wait", type=float, default=60.0, metavar="S",
                   help="seconds to wait for the maintenance boot when the board is running "
                        "the steamer firmware (default 60)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(func=_cmd_flash)


def _cmd_flash(args: argparse.Namespace) -> int:
    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        result = flash(args.port, args.board, args.build_dir, build=not args.no_build,
                       progress=progress, timeout_s=args.timeout, wait_s=args.wait)
        code = 0
    except FlashError as exc:
        result = getattr(exc, "result", None)
        code = fail("dev flash", str(exc))
    except OSError as exc:     # mpremote missing
        result = None
        code = fail("dev flash", os_error_text(exc))
    if args.json and result is not None:
        json_out(result.to_json(), indent=2, ensure_ascii=True)
    elif result is not None and code == 0:
        print("flashed %s: %d files, %d bytes (%d copied, %d up to date), verified, in %.1f s"
              % (result.port, len(result.files), result.total_bytes, result.copied,
                 result.up_to_date, result.seconds))
    return code
