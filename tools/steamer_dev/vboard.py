"""A virtual board: the firmware's runtime (the MicroPython unix port) behind a pseudo-terminal
that speaks a board's USB-serial REPL protocol, so mpremote and `steamer dev flash` work
without hardware.

    steamer dev virtual-board                      # prints /dev/pts/N, serves until Ctrl-C
    steamer dev virtual-board --root DIR --run-main
    mpremote connect /dev/pts/N fs ls

    with VirtualBoard(root=tmp) as vb:             # tests and other programs
        subprocess.run(["mpremote", "connect", vb.port, "exec", "print(6*7)"])

This process owns the pty master and does the REPL framing (friendly REPL, raw REPL,
raw-paste, soft reset); a persistent `micropython` child runs each code block in one
globals dict, in the board's root folder (its cwd), so mpremote's `fs` commands, which are
code blocks too, act on real files. A soft reset restarts the child (fresh heap and
modules, same files). boot.py and main.py run only with run_main, as on a board: boot.py on
every soft reset, main.py only when the reset comes from the friendly REPL (mpremote resets
from the raw REPL, so flashing never starts the firmware).

The watchdog is a board's: `machine.WDT(timeout=ms)` (the board's own `machine` is the
unix port's with WDT and reset_cause added, _MACHINE below) cannot be stopped, and a soft
reset does not stop it (it is the chip's: ports/esp32/machine_wdt.c and
ports/rp2/machine_wdt.c have no deinit, and a soft reset re-runs only the VM). Unfed
for its timeout, it resets the board: the block under way never answers (a command of
mpremote's in flight is left to its own timeout, as on a board whose serial line
outlives the reset), boot.py and main.py run again, and `machine.reset_cause()` is
WDT_RESET. A folder on `path` with its own machine.py (boards/portsim's port models)
takes the place of this one; its watchdog is the port model's, which bites only under
boards/portsim/portrun.py.
"""
from __future__ import annotations

import argparse
import os
import selectors
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

from steamer_dev.paths import BOARD_HEAP, BOARDS, micropython_exe
from steamer.terminal import fail, os_error_text

# Runs on the MicroPython child. Requests on fd IN: kind (1 byte: C code, S single, F file)
# and a 4-byte length, then the text. Replies on fd CTL: b"S" once the block starts (only
# then may Ctrl-C become SIGINT: before that the request may be half read), then b"D", a
# 4-byte length and the traceback text (empty when the block succeeded); and from the
# board's machine module (_MACHINE), b"W" and a 4-byte timeout in ms when a watchdog starts,
# b"F" at each feed. Output goes to fd 1/2 as it happens, as on a board.
_EXECUTOR = r'''
import sys, io
import os as _os
_inp = open('/dev/fd/' + sys.argv[1], 'rb')
_ctl = open('/dev/fd/' + sys.argv[2], 'wb')
sys.path[:] = ['', '.frozen', 'lib'] + sys.argv[3:]

class _Os:
    # A board's os.ilistdir gives the size as a 4th field (mpremote's `fs ls` shows it);
    # the unix port's does not, so `import os` gets this wrapper.
    def __getattr__(self, name):
        return getattr(_os, name)

    def ilistdir(self, path='.'):
        for e in _os.ilistdir(path):
            size = 0
            if e[1] == 0x8000:
                try:
                    size = _os.stat(e[0] if path in ('', '.') else path + '/' + e[0])[6]
                except OSError:
                    pass
            yield (e[0], e[1], e[2], size)

    def uname(self):
        # A board's port has it (dev flash reads .machine); the unix port does not. The
        # machine is the board this one stands in for, when the host says.
        return _Uname(_os.getenv('STEAMER_VBOARD_MACHINE') or sys.implementation._machine)

class _Uname:
    def __init__(self, machine):
        self.sysname = self.nodename = 'vboard'
        self.release = self.version = sys.implementation.name
        self.machine = machine

sys.modules['os'] = _Os()

def _read(n):
    b = b''
    while len(b) < n:
        c = _inp.read(n - len(b))
        if not c:
            raise SystemExit
        b += c
    return b

def _trace(e):
    s = io.StringIO()
    sys.print_exception(e, s)
    me = 'File "' + __file__ + '"'
    return '\n'.join([l for l in s.getvalue().split('\n') if me not in l]).encode()

def _serve(g):
    while True:
        h = _read(5)
        src = _read(int.from_bytes(h[1:], 'little')).decode()
        kind = h[0:1]
        err = b''
        try:
            _ctl.write(b'S')
            if kind == b'F':
                with open(src) as f:
                    code = compile(f.read(), src, 'exec')
            else:
                code = compile(src, '<stdin>', 'single' if kind == b'S' else 'exec')
            exec(code, g)
        except SystemExit:
            pass
        except BaseException as e:
            err = _trace(e)
        _ctl.write(b'D' + len(err).to_bytes(4, 'little') + err)

def _main():
    g = {'__name__': '__main__'}
    while True:
        try:
            _serve(g)
        except KeyboardInterrupt:
            # A late Ctrl-C, after the block ended: the host times out and resets.
            pass

_main()
'''

# The board's `machine`: the unix port's (umachine: the built-in, which a machine.py on the
# path extends) with what a board's has and the unix port's lacks for the firmware's boot:
# WDT, which tells the virtual board when it starts and each feed (on the executor's
# control pipe, whose fd is argv[2]), and reset_cause (extmod/modmachine.h's numbers, as
# ports/esp32/modmachine.c and ports/rp2/modmachine.c return them).
_MACHINE = r'''
import sys
from umachine import *

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5
_CAUSE = %(cause)d
_ctl = None


def reset_cause():
    return _CAUSE


def _tell(b):
    global _ctl
    if _ctl is None:
        _ctl = open('/dev/fd/' + sys.argv[2], 'wb')
    _ctl.write(b)


class WDT:
    """Started by its constructor, fed by feed(), never stopped: no deinit (nor on
    either board's port)."""

    def __init__(self, id=0, timeout=5000):
        if id != 0:
            raise ValueError("WDT(%%d) doesn't exist" %% id)
        if timeout <= 0:
            raise ValueError("WDT timeout too short")
        if %(rp2)d and timeout > 8388:       # ports/rp2/machine_wdt.c
            raise ValueError("timeout exceeds 8388")
        _tell(b'W' + timeout.to_bytes(4, 'little'))

    def feed(self):
        _tell(b'F')
'''
# machine.reset_cause() values the virtual board passes on (extmod/modmachine.h).
PWRON_RESET, WDT_RESET = 1, 3

_RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
_PASTE_WINDOW = 512
# Pending output beyond which the child's output is no longer read (back-pressure).
_OUT_HIGH_WATER = 1 << 16
_INTERRUPT_GRACE_S = 2.0


class VirtualBoardError(Exception):
    """The virtual board could not start or its runtime failed."""


def _cook(data: bytes) -> bytes:
    # A board's stdout turns "\n" into "\r\n" on the serial line.
    return data.replace(b"\n", b"\r\n")


class _Runtime:
    """The persistent `micropython` child that runs code blocks in the board's root."""

    def __init__(self, root: Path, executor: Path, extra_path: list[str],
                 machine: str | None = None, env: dict[str, str] | None = None,
                 rp2: bool = False) -> None:
        self.machine = machine
        self.env = env or {}
        self.root = root
        self.executor = executor
        # The board's machine.py (_MACHINE) goes in the executor's folder, last on the path.
        self.machine_dir = executor.parent
        self.extra_path = extra_path
        self.rp2 = rp2
        self.reset_cause = PWRON_RESET      # what machine.reset_cause() says after start()
        self.proc: subprocess.Popen[bytes] | None = None
        self.req_w = self.ctl_r = self.out_r = -1

    def start(self) -> None:
        (self.machine_dir / "machine.py").write_text(
            _MACHINE % {"cause": self.reset_cause, "rp2": int(self.rp2)})
        req_r, self.req_w = os.pipe()
        self.ctl_r, ctl_w = os.pipe()
        self.out_r, out_w = os.pipe()
        env = dict(os.environ)
        env.pop("MICROPYPATH", None)
        env.pop("STEAMER_VBOARD_MACHINE", None)
        if self.machine:
            env["STEAMER_VBOARD_MACHINE"] = self.machine
        env.update(self.env)
        try:
            self.proc = subprocess.Popen(
                [micropython_exe(), "-X", "heapsize=" + BOARD_HEAP, str(self.executor),
                 str(req_r), str(ctl_w), *self.extra_path, str(self.machine_dir)],
                cwd=self.root, env=env, stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w,
                pass_fds=(req_r, ctl_w), start_new_session=True)
        finally:
            for fd in (req_r, ctl_w, out_w):
                os.close(fd)
        for fd in (self.ctl_r, self.out_r):
            os.set_blocking(fd, False)

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None
        for fd in (self.req_w, self.ctl_r, self.out_r):
            if fd >= 0:
                os.close(fd)
        self.req_w = self.ctl_r = self.out_r = -1

    def send(self, kind: bytes, text: bytes) -> None:
        msg = kind + struct.pack("<I", len(text)) + text
        view = memoryview(msg)
        while view:
            view = view[os.write(self.req_w, view):]

    def interrupt(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)


class VirtualBoard:
    """A board on a pseudo-terminal: start() returns its port (e.g. /dev/pts/5)."""

    def __init__(self, root: Path | str | None = None, board: str = "sim",
                 run_main: bool = False, machine: str | None = None,
                 path: list[Path] | None = None, env: dict[str, str] | None = None) -> None:
        self.machine = machine      # what os.uname().machine says (default: the host's)
        # Folders importable after the board's (a real board's modules from source on
        # the port models, say), and what the runtime's environment adds ($PORTSIM_PORT).
        self.path = [str(p) for p in path or []]
        self.env = dict(env or {})
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="steamer-vboard-")
            root = self._tmp.name
        self.root = Path(root).resolve()
        self.board = board
        self.run_main = run_main
        self.port = ""
        self._master = self._slave = -1
        self._wake_r = self._wake_w = -1
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._exec_dir: tempfile.TemporaryDirectory[str] | None = None
        self._rt: _Runtime | None = None
        # REPL state, owned by the serving thread.
        self._mode = "friendly"             # friendly | raw | paste
        self._inbuf = bytearray()
        self._outbuf = bytearray()
        self._line = bytearray()            # friendly: current input line; raw/paste: the block
        self._stmt = b""                    # friendly: lines of a compound statement so far
        self._paste_got = 0
        self._busy: Callable[[bytes], None] | None = None   # on_done of the running block
        self._started = False
        self._interrupt_at = 0.0
        self._ctl = bytearray()
        self._gen = 0                       # counts runtime (re)starts
        self._child_eof = False
        # The watchdog: its timeout (0: not started since power-on) and last feed.
        self._wdt_s = 0.0
        self._wdt_fed = 0.0
        self.watchdog_resets = 0

    # ---- public API --------------------------------------------------------------------

    def start(self) -> str:
        """Starts the runtime and the pty; returns the port to give mpremote."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._exec_dir = tempfile.TemporaryDirectory(prefix="steamer-vboard-exec-")
        executor = Path(self._exec_dir.name) / "vboard_executor.py"
        executor.write_text(_EXECUTOR)
        extra = [str(BOARDS / self.board)] if (BOARDS / self.board / "board.py").exists() else []
        rp2 = self.board == "picow" or "RP2040" in (self.machine or "")
        self._rt = _Runtime(self.root, executor, extra + self.path, self.machine, self.env,
                            rp2=rp2)
        self._rt.start()
        self._master, self._slave = os.openpty()
        # Raw both ways: no echo, no CR/LF translation, as on a USB CDC port. Our own slave
        # fd keeps the pty alive while no client has it open (the master would read EIO).
        tty.setraw(self._slave, termios.TCSANOW)
        os.set_blocking(self._master, False)
        self.port = os.ttyname(self._slave)
        self._wake_r, self._wake_w = os.pipe()
        self._stopping = False
        self._enter_mode("friendly", banner=True)
        self._thread = threading.Thread(target=self._serve, name="vboard", daemon=True)
        self._thread.start()
        return self.port

    def boot_main(self) -> None:
        """Boots as a board does after a reset, running boot.py and main.py (a board made
        with run_main, at its friendly REPL): Ctrl-D typed at the REPL, as a terminal
        would. For tests of a board on which the firmware runs (a main.py that loops
        until interrupted)."""
        if not self.run_main:
            raise VirtualBoardError("this virtual board was made without run_main")
        fd = os.open(self.port, os.O_RDWR | os.O_NOCTTY)
        try:
            os.write(fd, b"\r\x04")
        finally:
            os.close(fd)

    def stop(self) -> None:
        """Stops the runtime and closes the pty (the root folder stays, unless temporary)."""
        self._stopping = True
        if self._wake_w >= 0:
            os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._rt is not None:
            self._rt.stop()
            self._rt = None
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = self._wake_r = self._wake_w = -1
        if self._exec_dir is not None:
            self._exec_dir.cleanup()
            self._exec_dir = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "VirtualBoard":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- serving loop ------------------------------------------------------------------

    def _serve(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        sel.register(self._master, selectors.EVENT_READ, "pty")
        watched: dict[int, str] = {}
        gen = -1
        while not self._stopping:
            rt = self._rt
            assert rt is not None
            want = {rt.ctl_r: "ctl"}
            if len(self._outbuf) <= _OUT_HIGH_WATER:
                want[rt.out_r] = "out"      # else leave it in the pipe: back-pressure
            if gen != self._gen:
                # A new child: its pipes may reuse the old fd numbers.
                for fd in watched:
                    sel.unregister(fd)
                watched = {}
                gen = self._gen
            for fd in [fd for fd in watched if fd not in want]:
                sel.unregister(fd)
                del watched[fd]
            for fd, tag in want.items():
                if fd not in watched:
                    sel.register(fd, selectors.EVENT_READ, tag)
                    watched[fd] = tag
            sel.modify(self._master, selectors.EVENT_READ |
                       (selectors.EVENT_WRITE if self._outbuf else 0), "pty")
            for key, events in sel.select(timeout=0.02 if self._wdt_s else 0.2):
                if key.data == "wake":
                    return
                if self._gen != gen:
                    break                   # the child was restarted: its fds are stale
                if key.data == "pty":
                    if events & selectors.EVENT_READ:
                        self._read_pty()
                    if events & selectors.EVENT_WRITE:
                        self._flush_out()
                elif key.data == "out":
                    self._read_child_out(rt)
                elif key.data == "ctl":
                    self._read_ctl(rt)
            if self._gen == gen:
                self._check_child(rt)
            if self._wdt_s and time.monotonic() - self._wdt_fed > self._wdt_s:
                self._watchdog_reset()
            if self._busy is None:
                self._process_input()
            self._flush_out()

    def _read_pty(self) -> None:
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, OSError):
            return
        if self._busy is not None and b"\x03" in data:
            # Ctrl-C while code runs: interrupt it; what was typed before it is dropped.
            data = data[data.rindex(b"\x03") + 1:]
            self._inbuf.clear()
            self._interrupt()
        self._inbuf += data

    def _flush_out(self) -> None:
        while self._outbuf:
            try:
                n = os.write(self._master, self._outbuf)
            except (BlockingIOError, OSError):
                return
            del self._outbuf[:n]

    def _out(self, data: bytes) -> None:
        self._outbuf += data

    def _read_child_out(self, rt: _Runtime) -> None:
        while True:
            try:
                data = os.read(rt.out_r, 65536)
            except BlockingIOError:
                return
            if not data:
                self._child_eof = True
                return
            self._out(_cook(data))
            if len(self._outbuf) > _OUT_HIGH_WATER:
                return

    def _read_ctl(self, rt: _Runtime) -> None:
        try:
            data = os.read(rt.ctl_r, 65536)
        except BlockingIOError:
            return
        self._ctl += data
        while self._ctl:
            if self._ctl[:1] == b"S":
                del self._ctl[:1]
                self._started = True
                if self._interrupt_at:
                    rt.interrupt()
            elif self._ctl[:1] == b"F":
                del self._ctl[:1]
                self._wdt_fed = time.monotonic()
            elif self._ctl[:1] == b"W" and len(self._ctl) >= 5:
                self._wdt_s = struct.unpack("<I", self._ctl[1:5])[0] / 1000
                self._wdt_fed = time.monotonic()
                del self._ctl[:5]
            elif self._ctl[:1] == b"D" and len(self._ctl) >= 5:
                n = struct.unpack("<I", self._ctl[1:5])[0]
                if len(self._ctl) < 5 + n:
                    return
                err = bytes(self._ctl[5:5 + n])
                del self._ctl[:5 + n]
                # Output written before the reply is already in the pipe: take all of it.
                self._drain_child_out(rt)
                self._finish(_cook(err))
            else:
                return

    def _drain_child_out(self, rt: _Runtime) -> None:
        while True:
            try:
                data = os.read(rt.out_r, 65536)
            except BlockingIOError:
                return
            if not data:
                return
            self._out(_cook(data))

    def _check_child(self, rt: _Runtime) -> None:
        if self._child_eof and rt.proc is not None:
            try:
                rt.proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        died = rt.proc is None or rt.proc.poll() is not None
        late = bool(self._interrupt_at) and \
            time.monotonic() - self._interrupt_at > _INTERRUPT_GRACE_S
        if not (died or late):
            return
        # The runtime crashed, or ignored Ctrl-C: a board would reset; so does this one.
        if died:
            self._drain_child_out(rt)
        why = b"KeyboardInterrupt: \r\n" if late and not died else \
            b"virtual board: the MicroPython runtime exited; restarted\r\n"
        self._restart_runtime()
        if self._busy is not None:
            self._finish(why)
        else:
            self._out(why)

    def _interrupt(self) -> None:
        if not self._interrupt_at:
            self._interrupt_at = time.monotonic()
            if self._started and self._rt is not None:
                self._rt.interrupt()

    def _run(self, kind: bytes, text: bytes, on_done: Callable[[bytes], None]) -> None:
        assert self._rt is not None
        self._busy = on_done
        self._started = False
        self._interrupt_at = 0.0
        try:
            self._rt.send(kind, text)
        except OSError:
            self._check_child(self._rt)     # it died: reset and report, as above

    def _finish(self, err: bytes) -> None:
        on_done, self._busy = self._busy, None
        self._started = False
        self._interrupt_at = 0.0
        if on_done is not None:
            on_done(err)

    def _watchdog_reset(self) -> None:
        """The watchdog bites: the chip resets (the block under way never answers), the
        watchdog stops with it, and the board boots as after power-on with
        reset_cause() WDT_RESET: boot.py, main.py, the friendly REPL."""
        self._wdt_s = 0.0
        self.watchdog_resets += 1
        self._busy = None
        self._started = False
        self._interrupt_at = 0.0
        self._inbuf.clear()
        assert self._rt is not None
        self._rt.reset_cause = WDT_RESET
        self._out(b"\r\n")
        self._restart_runtime()
        self._boot("friendly")

    def _restart_runtime(self) -> None:
        assert self._rt is not None
        self._rt.stop()
        self._ctl.clear()
        self._child_eof = False
        self._rt.start()
        self._gen += 1

    # ---- REPL protocol -----------------------------------------------------------------

    def _banner(self) -> bytes:
        # The shape of a board's banner; mpremote looks for "\nMicroPython " after a reset.
        return (b"MicroPython (unix port); steamer virtual board (%s) with unix\r\n"
                b"Type \"help()\" for more information.\r\n" % self.board.encode())

    def _enter_mode(self, mode: str, banner: bool = False) -> None:
        self._mode = mode
        self._line.clear()
        self._stmt = b""
        if mode == "raw":
            self._out(_RAW_BANNER + b">")
        else:
            self._out((self._banner() if banner else b"") + b">>> ")

    def _soft_reset(self, mode: str) -> None:
        self._out(b"MPY: soft reboot\r\n")
        self._restart_runtime()
        self._boot(mode)

    def _boot(self, mode: str) -> None:
        """The boot files a board runs (with run_main): boot.py, and main.py unless the
        reset came from the raw REPL; then the REPL in `mode`."""
        files = []
        if self.run_main:
            files = [f for f in ("boot.py", "main.py") if (self.root / f).is_file()
                     and (f == "boot.py" or mode == "friendly")]
        self._run_files(files, mode)

    def _run_files(self, files: list[str], mode: str) -> None:
        if not files:
            self._enter_mode(mode, banner=mode == "friendly")
            return

        def done(err: bytes) -> None:
            self._out(err)
            self._run_files(files[1:], mode)

        self._run(b"F", files[0].encode(), done)

    def _process_input(self) -> None:
        while self._inbuf and self._busy is None:
            c = self._inbuf[0]
            del self._inbuf[0]
            if self._mode == "paste":
                self._paste_char(c)
            elif self._mode == "raw":
                self._raw_char(c)
            else:
                self._friendly_char(c)

    def _raw_char(self, c: int) -> None:
        if c == 0x01:                                       # Ctrl-A
            if bytes(self._line) == b"\x05A":
                # Raw-paste: the host sends up to a window of bytes per b"\x01" we send.
                self._mode = "paste"
                self._line.clear()
                self._paste_got = 0
                self._out(b"R\x01" + struct.pack("<H", _PASTE_WINDOW))
            else:
                self._out(b"\r\n")
                self._enter_mode("raw")
        elif c == 0x02:                                     # Ctrl-B
            self._out(b"\r\n")
            self._enter_mode("friendly", banner=True)
        elif c == 0x03:                                     # Ctrl-C
            self._line.clear()
        elif c == 0x04:                                     # Ctrl-D: run the block
            self._out(b"OK")
            if not self._line:
                self._out(b"\r\n")
                self._soft_reset("raw")
                return
            code = bytes(self._line)
            self._line.clear()
            self._run(b"C", code, self._raw_done)
        else:
            self._line.append(c)

    def _raw_done(self, err: bytes) -> None:
        self._out(b"\x04" + err + b"\x04>")
        self._mode = "raw"

    def _paste_char(self, c: int) -> None:
        if c == 0x04:
            self._out(b"\x04")
            code = bytes(self._line)
            self._line.clear()
            self._run(b"C", code, self._raw_done)
            return
        self._line.append(c)
        self._paste_got += 1
        if self._paste_got % _PASTE_WINDOW == 0:
            self._out(b"\x01")

    def _friendly_char(self, c: int) -> None:
        if c == 0x01:
            self._out(b"\r\n")
            self._enter_mode("raw")
        elif c == 0x02:
            self._out(b"\r\n")
            self._enter_mode("friendly", banner=True)
        elif c == 0x03:
            self._out(b"\r\nKeyboardInterrupt\r\n" if self._stmt else b"\r\n")
            self._enter_mode("friendly")
        elif c == 0x04:
            if not self._line and not self._stmt:
                self._out(b"\r\n")
                self._soft_reset("friendly")
        elif c in (0x08, 0x7F):
            if self._line:
                self._line.pop()
                self._out(b"\x08 \x08")
        elif c == 0x0D:
            self._out(b"\r\n")
            self._friendly_line(bytes(self._line))
        elif c == 0x0A:
            pass
        elif c >= 0x20 or c == 0x09:
            self._line.append(c)
            self._out(bytes((c,)))

    def _friendly_line(self, line: bytes) -> None:
        self._line.clear()
        if self._stmt:
            if line.strip():
                self._stmt += b"\n" + line
                self._out(b"... ")
                return
            src, self._stmt = self._stmt + b"\n", b""
        elif line.rstrip().endswith(b":"):
            self._stmt = line
            self._out(b"... ")
            return
        else:
            src = line
        if not src.strip():
            self._out(b">>> ")
            return

        def done(err: bytes) -> None:
            self._out(err + b">>> ")

        self._run(b"S", src, done)


# ---- command line ------------------------------------------------------------------------

def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `virtual-board` to the `steamer dev` group."""
    boards = sorted(p.name for p in BOARDS.iterdir() if (p / "board.py").exists())
    p = subparsers.add_parser(
        "virtual-board", help="a MicroPython board on a pseudo-terminal, for mpremote",
        description="Run the MicroPython unix port behind a pseudo-terminal that speaks a "
                    "board's REPL protocol (friendly REPL, raw REPL, raw-paste, soft reset), "
                    "so mpremote and `steamer dev flash` work without hardware. Prints the "
                    "port, then serves until Ctrl-C. The board's file system is the folder "
                    "--root; boot.py and main.py run only with --run-main.",
        epilog="Example:\n  steamer dev virtual-board --root /tmp/vb &   # prints its port\n"
               "  mpremote connect /dev/pts/5 fs ls",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--board", default="sim", choices=boards,
                   help="board whose modules are importable after the root's (default sim)")
    p.add_argument("--root", type=Path, default=None,
                   help="the board's file system (default: a temporary folder, removed at exit)")
    p.add_argument("--run-main", action="store_true",
                   help="run boot.py at each soft reset and main.py at a reset from the "
                        "friendly REPL, as a board does")
    p.add_argument("--machine", metavar="TEXT",
                   help="what os.uname().machine says, e.g. 'ESP32C3 module with ESP32C3' "
                        "(default: the host's), for `dev flash`'s board check")
    p.set_defaults(func=_cmd_virtual_board)


def _cmd_virtual_board(args: argparse.Namespace) -> int:
    vb = VirtualBoard(root=args.root, board=args.board, run_main=args.run_main,
                      machine=args.machine)
    try:
        port = vb.start()
    except OSError as exc:
        vb.stop()
        return fail("dev virtual-board", os_error_text(exc))
    print(port, flush=True)
    print("virtual board on %s, root %s (Ctrl-C to stop)" % (port, vb.root), file=sys.stderr)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        vb.stop()
    return 0
