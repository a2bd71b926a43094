"""The virtual board (steamer_dev.vboard) driven by the real mpremote CLI, as a developer
would drive a board on USB serial."""
from __future__ import annotations

import hashlib
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from steamer_dev.vboard import VirtualBoard

MPREMOTE = str(Path(sys.executable).with_name("mpremote"))
TIMEOUT_S = 30


def mpremote(port: str, *args: str) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([MPREMOTE, "connect", port, *args], capture_output=True,
                       timeout=TIMEOUT_S)
    # Decoded by hand: text mode would turn the board's \r\n into \n.
    return subprocess.CompletedProcess(p.args, p.returncode, p.stdout.decode(),
                                       p.stderr.decode())


@pytest.fixture(scope="module")
def vb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtualBoard]:
    with VirtualBoard(root=tmp_path_factory.mktemp("root")) as board:
        yield board


class Tty:
    """A raw client of the pty, for the friendly REPL that mpremote does not script."""

    def __init__(self, port: str) -> None:
        self.fd = os.open(port, os.O_RDWR | os.O_NOCTTY)

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def expect(self, ending: bytes, timeout_s: float = 10) -> bytes:
        got = b""
        deadline = time.monotonic() + timeout_s
        while not got.endswith(ending):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise AssertionError("no %r from the board; got %r" % (ending, got))
            got += os.read(self.fd, 1)
        return got

    def drain(self, quiet_s: float = 0.3) -> None:
        """Drops what the board said before (e.g. to the last mpremote session)."""
        while select.select([self.fd], [], [], quiet_s)[0]:
            os.read(self.fd, 4096)

    def close(self) -> None:
        os.close(self.fd)


def test_exec_prints_like_a_board(vb: VirtualBoard) -> None:
    p = mpremote(vb.port, "exec", "print(6*7)")
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout == "42\r\n"          # a board's stdout turns \n into \r\n


def test_fs_roundtrip(vb: VirtualBoard, tmp_path: Path) -> None:
    blob = bytes(range(256)) * 5 + b"\x04\x03\x01 end"     # control bytes survive the link
    (tmp_path / "blob.bin").write_bytes(blob)
    (tmp_path / "hello.py").write_text("print('hello')\n")
    p = mpremote(vb.port, "fs", "mkdir", "data", "+", "fs", "cp", str(tmp_path / "blob.bin"),
                 ":data/blob.bin", "+", "fs", "cp", str(tmp_path / "hello.py"), ":hello.py")
    assert p.returncode == 0, p.stdout + p.stderr
    assert (vb.root / "data" / "blob.bin").read_bytes() == blob

    p = mpremote(vb.port, "fs", "ls", "data")
    assert p.returncode == 0 and "%12d blob.bin" % len(blob) in p.stdout, p.stdout
    p = mpremote(vb.port, "fs", "cat", "hello.py")
    assert "print('hello')" in p.stdout
    p = mpremote(vb.port, "fs", "sha256sum", "data/blob.bin")
    assert hashlib.sha256(blob).hexdigest() in p.stdout

    p = mpremote(vb.port, "fs", "cp", ":data/blob.bin", str(tmp_path / "back.bin"))
    assert p.returncode == 0 and (tmp_path / "back.bin").read_bytes() == blob
    p = mpremote(vb.port, "fs", "cp", str(tmp_path / "blob.bin"), ":data/blob.bin")
    assert "Up to date: data/blob.bin" in p.stdout           # mpremote hashed it on the board

    p = mpremote(vb.port, "fs", "rm", "data/blob.bin", "+", "fs", "rmdir", "data")
    assert p.returncode == 0, p.stdout + p.stderr
    assert not (vb.root / "data").exists()
    p = mpremote(vb.port, "fs", "rm", "data/blob.bin")
    assert p.returncode != 0 and "No such file" in p.stdout + p.stderr


def test_exception_reported_with_traceback(vb: VirtualBoard) -> None:
    p = mpremote(vb.port, "exec", "print('before')\ndef f():\n    1/0\nf()")
    assert p.returncode == 1
    assert p.stdout.startswith("before\r\nTraceback (most recent call last):\r\n")
    assert 'File "<stdin>", line 4, in <module>' in p.stdout
    assert 'File "<stdin>", line 3, in f' in p.stdout
    assert p.stdout.endswith("ZeroDivisionError: divide by zero\r\n")
    assert "vboard" not in p.stdout                          # no frame of the executor
    p = mpremote(vb.port, "exec", "def (:")
    assert p.returncode == 1 and "SyntaxError" in p.stdout


def test_soft_reset_clears_globals_keeps_files(vb: VirtualBoard) -> None:
    p = mpremote(vb.port, "exec", "x = 41\nopen('kept.txt', 'w').write('kept')",
                 "resume", "exec", "print(x + 1)")
    assert p.stdout == "42\r\n", p.stdout + p.stderr
    p = mpremote(vb.port, "resume", "exec", "print(x)")        # resume: no reset, x is there
    assert p.stdout == "41\r\n"
    p = mpremote(vb.port, "soft-reset", "resume", "exec", "print(open('kept.txt').read())\nx")
    assert p.returncode == 1
    assert p.stdout.startswith("kept\r\n") and "NameError" in p.stdout


def test_ctrl_c_interrupts_running_code(vb: VirtualBoard) -> None:
    p = mpremote(vb.port, "exec", "--no-follow", "import time\nwhile True:\n time.sleep_ms(5)")
    assert p.returncode == 0
    t0 = time.monotonic()
    # mpremote begins with Ctrl-C: the loop stops, and the board answers.
    p = mpremote(vb.port, "resume", "exec", "print('alive')")
    assert p.stdout.endswith("alive\r\n"), p.stdout + p.stderr
    assert time.monotonic() - t0 < 5


def test_friendly_repl(vb: VirtualBoard) -> None:
    tty = Tty(vb.port)
    try:
        tty.send(b"\r\x02")
        tty.drain()
        tty.send(b"6*7\r")
        assert tty.expect(b">>> ") == b"6*7\r\n42\r\n>>> "
        tty.send(b"for i in range(2):\r print(i)\r\r")
        assert tty.expect(b">>> ").endswith(b"\r\n0\r\n1\r\n>>> ")
        tty.send(b"1/0\r")
        assert b"ZeroDivisionError" in tty.expect(b">>> ")
        tty.send(b"\x04")
        assert b"MPY: soft reboot\r\n" in tty.expect(b">>> ")
    finally:
        tty.close()


def test_run_main_only_from_friendly_reset(tmp_path: Path) -> None:
    (tmp_path / "boot.py").write_text("print('boot ran')\n")
    (tmp_path / "main.py").write_text(textwrap.dedent("""\
        import sys
        print('main ran', 'board' in [m.split('/')[-1] for m in sys.path] or sys.path[-1])
        open('main.marker', 'w').close()
        """))
    with VirtualBoard(root=tmp_path, run_main=True) as board:
        # mpremote resets from the raw REPL: boot.py runs, main.py does not (as on a board).
        p = mpremote(board.port, "exec", "print('hi')")
        assert p.stdout == "hi\r\n" and not (tmp_path / "main.marker").exists()
        tty = Tty(board.port)
        try:
            tty.send(b"\r\x02")
            tty.drain()
            tty.send(b"\x04")
            out = tty.expect(b">>> ")
            assert b"MPY: soft reboot\r\nboot ran\r\nmain ran" in out, out
        finally:
            tty.close()
        assert (tmp_path / "main.marker").exists()


def test_cli_prints_port_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    # What `steamer dev virtual-board --root DIR` runs, through the module's register().
    script = textwrap.dedent("""\
        import argparse, sys
        from steamer_dev import vboard
        p = argparse.ArgumentParser()
        vboard.register(p.add_subparsers())
        a = p.parse_args(sys.argv[1:])
        sys.exit(a.func(a))
        """)
    proc = subprocess.Popen([sys.executable, "-c", script, "virtual-board", "--root",
                             str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        assert port.startswith("/dev/pts/")
        p = mpremote(port, "exec", "open('x.txt', 'w').write('from mpremote')")
        assert p.returncode == 0, p.stdout + p.stderr
        assert (tmp_path / "x.txt").read_text() == "from mpremote"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_steamer_dev_virtual_board_cleans_up_on_sigterm(tmp_path: Path,
                                                        processes_naming) -> None:
    """`steamer dev virtual-board` stopped by SIGTERM (a service manager, `kill`) leaves
    no temporary folder and no MicroPython child behind."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    proc = subprocess.Popen([sys.executable, "-m", "steamer.cli.main", "dev", "virtual-board"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        assert port.startswith("/dev/"), port
        assert mpremote(port, "exec", "print(6 * 7)").stdout.strip() == "42"
        made = sorted(p.name for p in tmp.iterdir())
        assert any(n.startswith("steamer-vboard-exec-") for n in made), made
        assert any(n.startswith("steamer-vboard-") and "exec" not in n for n in made), made
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert list(tmp.iterdir()) == []
    assert not processes_naming(str(tmp))


# ---- the watchdog (issue 14: "a watchdog that cannot be stopped and really resets") ----
# Each boot writes its reset cause to boots.txt, then runs as the firmware does
# (conftest's running_main).
BOOTS_LINE = ("import machine\n"
              "with open('boots.txt', 'a') as f:\n"
              "    f.write('%d\\n' % machine.reset_cause())\n")


def _boots(root: Path, n: int, wait_s: float = 10.0) -> list[str]:
    """boots.txt's lines once it has n (or what it has after wait_s)."""
    deadline = time.monotonic() + wait_s
    while True:
        path = root / "boots.txt"
        lines = path.read_text().split() if path.exists() else []
        if len(lines) >= n or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def _exec_for(port: str, code: str, kill_after_s: float) -> str:
    """`mpremote resume exec code`'s output, the process killed after kill_after_s: a
    board reset under it leaves mpremote waiting for an answer that never comes."""
    proc = subprocess.Popen([MPREMOTE, "connect", port, "resume", "exec", code],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=kill_after_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out.decode(errors="replace")


def test_a_firmware_interrupted_by_mpremote_is_reset_by_its_watchdog(
        tmp_path: Path, running_main: str) -> None:
    """mpremote's Ctrl-C stops the firmware's loop, and so its feeds: 1 s later the
    board resets under the command (which never ends), main.py runs again and
    reset_cause() says WDT_RESET (3). A command that feeds the watchdog itself outlives
    the timeout; a board that started none (the maintenance boot) runs any command."""
    (tmp_path / "main.py").write_text(BOOTS_LINE + running_main)
    with VirtualBoard(root=tmp_path, run_main=True) as vb:
        vb.boot_main()
        assert _boots(tmp_path, 1) == ["1"]                     # PWRON_RESET
        out = _exec_for(vb.port, "import time\nfor i in range(30):\n print('tick', i)\n"
                                 " time.sleep_ms(100)\nprint('done')", 6)
        assert "done" not in out and "tick 0" in out, out
        ticks = out.count("tick ")
        assert ticks < 25, out                  # cut near 1 s of 3, not at the end
        assert _boots(tmp_path, 2) == ["1", "3"]                # WDT_RESET
        assert vb.watchdog_resets == 1
        # Fed from the REPL (main.py's globals are the REPL's): 3 s pass, no reset.
        out = _exec_for(vb.port, "import time\nfor i in range(30):\n wdt.feed()\n"
                                 " time.sleep_ms(100)\nprint('done')", 20)
        assert "done" in out, out
        assert vb.watchdog_resets == 1
        # A soft reset does not stop the watchdog: mpremote's (without resume) and then
        # nothing feeds it.
        out = subprocess.run([MPREMOTE, "connect", vb.port, "exec", "print('soft')"],
                             capture_output=True, timeout=TIMEOUT_S).stdout.decode()
        assert "soft" in out
        assert _boots(tmp_path, 3) == ["1", "3", "3"]
    (tmp_path / "main.py").write_text("STEAMER_MODE = 'maintenance'\n")
    with VirtualBoard(root=tmp_path, run_main=True) as vb:
        vb.boot_main()
        out = _exec_for(vb.port, "import time\ntime.sleep(2)\nprint('done')", 20)
        assert "done" in out and vb.watchdog_resets == 0, out


def test_the_watchdog_takes_the_ports_arguments(tmp_path: Path) -> None:
    """WDT(id) other than 0 and a timeout of 0 are ValueError on both ports; the rp2's
    longest is 8388 ms (ports/rp2/machine_wdt.c)."""
    code = ("import machine\n"
            "for kw in ({'id': 1}, {'timeout': 0}, {'timeout': 9000}):\n"
            " try:\n"
            "  machine.WDT(**kw)\n"
            "  print(kw, 'ok')\n"
            " except ValueError as e:\n"
            "  print(kw, 'ValueError')\n")
    outs = {}
    for board in ("esp32c3", "picow"):
        with VirtualBoard(root=tmp_path / board, board=board) as vb:
            outs[board] = mpremote(vb.port, "exec", code).stdout
    for board, out in outs.items():
        assert "{'id': 1} ValueError" in out and "{'timeout': 0} ValueError" in out, out
    assert "{'timeout': 9000} ValueError" in outs["picow"]
    assert "{'timeout': 9000} ok" in outs["esp32c3"]
