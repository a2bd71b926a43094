"""`steamer dev flash` (steamer_dev.flash) deploying a real build to a virtual board with
the real mpremote, then checking what arrived in the board's file system."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from steamer_dev import flash
from steamer_dev.build import build_board
from steamer_dev.vboard import VirtualBoard
from steamer_harness.cli import run_registered

BOARD = "esp32c3"


def run_cli(argv: list[str]) -> int:
    """What `steamer dev ARGV` runs, through the module's register()."""
    return run_registered(flash.register, argv)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("build") / BOARD
    build_board(BOARD, out)
    return out


@pytest.fixture
def vb(tmp_path: Path) -> Iterator[VirtualBoard]:
    with VirtualBoard(root=tmp_path / "root") as board:
        yield board


def device_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_flash_cli_builds_and_deploys_byte_for_byte(vb: VirtualBoard, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    build_dir = tmp_path / "build"
    code = run_cli(["flash", "--port", vb.port, "--board", BOARD, "--build-dir", str(build_dir),
                    "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    want = {p.relative_to(build_dir).as_posix(): p.read_bytes()
            for p in sorted(build_dir.rglob("*")) if p.is_file() and p.name != ".steamer-build"}
    assert {"main.py", "board.mpy", "lib/fw/main.mpy", "lib/podproto/codec.mpy"} <= set(want)
    assert device_files(vb.root) == want
    assert result["verified"] is True and result["error"] is None
    assert result["copied"] == len(want) and result["total_bytes"] == sum(map(len, want.values()))
    # Per-file progress on stderr: [i/n] with the device path and bytes.
    assert "/%d] main.py (%d bytes" % (len(want), len(want["main.py"])) in err
    assert "[%d/%d] " % (len(want), len(want)) in err
    assert "verifying %d files by SHA-256" % len(want) in err


def test_reflash_skips_files_already_there(vb: VirtualBoard, built: Path) -> None:
    first = flash.flash(vb.port, BOARD, built, build=False)
    again = flash.flash(vb.port, BOARD, built, build=False)
    assert first.copied == len(first.files) and again.copied == 0
    assert again.up_to_date == len(again.files) and again.verified


def test_verify_detects_a_tampered_file(vb: VirtualBoard, built: Path) -> None:
    target = vb.root / "lib" / "fw" / "app.mpy"

    def tamper() -> None:
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0x01           # one flipped bit on the board's flash
        target.write_bytes(bytes(data))

    with pytest.raises(flash.FlashError) as exc:
        flash.flash(vb.port, BOARD, built, build=False, after_copy=tamper)
    assert str(exc.value) == "verification failed: 1 file differs on the board: lib/fw/app.mpy"
    result = exc.value.result                  # type: ignore[attr-defined]
    assert not result.verified
    assert [f.device_path for f in result.files if not f.verified] == ["lib/fw/app.mpy"]

    # verify() on its own, against a board with a file missing and one changed.
    files = flash.plan(built)
    (vb.root / "main.py").unlink()
    assert flash.verify(vb.port, files) == ["lib/fw/app.mpy", "main.py"]


def test_missing_port_is_one_line_error(tmp_path: Path, built: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli(["flash", "--port", "/dev/ttyNOPE0", "--board", BOARD, "--no-build",
                    "--build-dir", str(built)])
    _, err = capsys.readouterr()
    assert code == 1
    assert err == "steamer dev flash: port /dev/ttyNOPE0 does not exist (is the board plugged in?)\n"


def test_mpremote_failure_names_the_file(vb: VirtualBoard, built: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    (vb.root / "lib").write_text("a file where the lib folder should be")
    code = run_cli(["flash", "--port", vb.port, "--board", BOARD, "--no-build",
                    "--build-dir", str(built), "--json"])
    out, err = capsys.readouterr()
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("steamer dev flash: mpremote failed copying lib/fw/__init__.mpy: "), err
    assert json.loads(out)["error"] == last[len("steamer dev flash: "):]


def test_missing_build_folder(vb: VirtualBoard, tmp_path: Path) -> None:
    with pytest.raises(flash.FlashError, match="build folder .* does not exist"):
        flash.flash(vb.port, BOARD, tmp_path / "nothing", build=False)
    assert not os.listdir(vb.root)


def test_steamer_dev_flash_to_steamer_dev_virtual_board(tmp_path: Path, built: Path) -> None:
    """Both commands as a developer runs them: `steamer dev virtual-board` in one process,
    `steamer dev flash` (building on the way) in another; the files arrive byte for byte,
    mpremote's own hashes agree, and the board was soft-reset at the end."""
    import subprocess
    import sys
    steamer = [sys.executable, "-m", "steamer.cli.main", "dev"]
    mpremote = str(Path(sys.executable).with_name("mpremote"))
    root = tmp_path / "root"
    board = subprocess.Popen([*steamer, "virtual-board", "--root", str(root)], text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL)
    try:
        assert board.stdout is not None
        port = board.stdout.readline().strip()
        assert port.startswith("/dev/"), port
        build_dir = tmp_path / "build"
        p = subprocess.run([*steamer, "flash", "--port", port, "--board", BOARD,
                            "--build-dir", str(build_dir)], text=True, capture_output=True,
                           timeout=300, stdin=subprocess.DEVNULL)
        assert p.returncode == 0, p.stderr
        assert "Traceback" not in p.stderr and p.stdout.startswith(f"flashed {port}: ")
        assert p.stderr.splitlines()[-1] == "soft reset"
        want = {k: v for k, v in device_files(build_dir).items() if k != ".steamer-build"}
        assert want == {k: v for k, v in device_files(built).items() if k != ".steamer-build"}
        assert device_files(root) == want
        # The copy and the check leave their names in the board's globals (a flash
        # without the reset leaves 'd', 'h', 'os', ...); the soft reset at the end
        # cleared them. mpremote's `resume` does not reset.
        g = subprocess.run([mpremote, "connect", port, "resume", "exec",
                            "print(sorted(k for k in globals() if k[0] != '_'))"],
                           capture_output=True, text=True, timeout=60)
        assert g.stdout.strip() == "[]", g.stdout + g.stderr
        # The board's own view: mpremote lists the files and hashes one.
        ls = subprocess.run([mpremote, "connect", port, "resume", "fs", "ls", "lib/fw"],
                            capture_output=True, text=True, timeout=60)
        assert ls.returncode == 0 and "app.mpy" in ls.stdout, ls.stdout + ls.stderr
        code = ("import hashlib\nprint(''.join('%02x' % b for b in "
                "hashlib.sha256(open('main.py', 'rb').read()).digest()))")
        h = subprocess.run([mpremote, "connect", port, "resume", "exec", code],
                           capture_output=True, text=True, timeout=60)
        assert h.stdout.strip() == hashlib.sha256(want["main.py"]).hexdigest(), h.stderr
    finally:
        board.terminate()
        board.wait(timeout=10)


def test_a_build_file_too_large_for_a_board_is_refused_from_its_size(tmp_path: Path) -> None:
    built = tmp_path / "build"
    built.mkdir()
    (built / "main.py").write_text("import fw.main\n")
    with open(built / "huge.mpy", "wb") as f:       # sparse: refused before it is read
        f.truncate(flash.FILE_MAX_BYTES + 1)
    with pytest.raises(flash.FlashError, match=r"huge\.mpy: more than 4 MiB: too large for "
                                               r"a file on a board"):
        flash.plan(built)


def test_flash_refuses_another_boards_build(vb: VirtualBoard, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    picow = tmp_path / "picow"
    build_board("picow", picow)
    code = run_cli(["flash", "--port", vb.port, "--board", BOARD, "--no-build",
                    "--build-dir", str(picow)])
    _, err = capsys.readouterr()
    assert code == 1
    assert err.strip().splitlines()[-1] == (
        f"steamer dev flash: {picow} holds a picow build, not esp32c3 (--board): build it "
        "with `steamer dev build --board esp32c3`"), err
    assert device_files(vb.root) == {}


def test_flash_checks_the_board_type_as_esptool_checks_the_chip(
        built: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with VirtualBoard(root=tmp_path / "pico", machine="Raspberry Pi Pico W with RP2040") as pico:
        code = run_cli(["flash", "--port", pico.port, "--board", BOARD, "--no-build",
                        "--build-dir", str(built)])
        _, err = capsys.readouterr()
        assert code == 1
        assert err.strip().splitlines()[-1] == (
            f"steamer dev flash: the board on {pico.port} is Raspberry Pi Pico W with RP2040: "
            "a picow, not esp32c3 (--board)"), err
        assert device_files(pico.root) == {}
    with VirtualBoard(root=tmp_path / "c3", machine="ESP32C3 module with ESP32C3") as c3:
        assert run_cli(["flash", "--port", c3.port, "--board", BOARD, "--no-build",
                        "--build-dir", str(built)]) == 0
        assert "board: ESP32C3 module with ESP32C3" in capsys.readouterr().err


# ---- the maintenance boot (issue 14 item 7) ---------------------------------------------
# A board running the steamer firmware has a 1 s watchdog that nothing stops: mpremote's
# interruption leaves it to reset the board mid-copy. The boards' main.py says what the boot
# did in STEAMER_MODE, a global the REPL shares with main.py (MicroPython runs main.py in
# the REPL's __main__ globals: shared/runtime/pyexec.c pyexec_file, the same dict the
# raw REPL's exec uses); the virtual board's executor runs both in one globals dict too.

def _power_on(vb: VirtualBoard, main_py: str) -> None:
    """The board's main.py as given, run as at power-on."""
    (vb.root / "main.py").write_text(main_py)
    vb.boot_main()


def test_flash_waits_for_the_maintenance_boot_of_a_running_board(
        tmp_path: Path, built: Path, capsys: pytest.CaptureFixture[str],
        running_main: str) -> None:
    with VirtualBoard(root=tmp_path / "root", run_main=True) as vb:
        _power_on(vb, running_main)
        code = run_cli(["flash", "--port", vb.port, "--board", BOARD, "--no-build",
                        "--build-dir", str(built), "--wait", "3"])
        _, err = capsys.readouterr()
        assert code == 1
        assert "the board is running the steamer firmware: power the board off" in err, err
        last = err.strip().splitlines()[-1]
        assert last.startswith(f"steamer dev flash: the board at {vb.port} is running the "
                               "steamer firmware, whose watchdog would reset it"), err
        assert "(--wait S waits longer for it)" in last
        assert not (vb.root / "lib").exists()        # nothing was written
        # Each look interrupted the firmware, whose watchdog then reset the board, which
        # ran it again: the board is as it was, still running it.
        assert vb.watchdog_resets >= 1


def test_flash_goes_ahead_on_a_maintenance_boot(tmp_path: Path, built: Path) -> None:
    with VirtualBoard(root=tmp_path / "root", run_main=True) as vb:
        # What boards/*/main.py does when the gesture is made: decides, prints, starts nothing.
        _power_on(vb, "STEAMER_MODE = 'starting'\nSTEAMER_MODE = 'maintenance'\n"
                      "print('steamer: maintenance boot')\n")
        said: list[str] = []
        result = flash.flash(vb.port, BOARD, built, build=False, progress=said.append,
                             wait_s=3)
        assert result.verified and result.error is None
        assert not any("running the steamer firmware" in s for s in said), said
        assert (vb.root / "lib" / "fw" / "main.mpy").read_bytes() == \
            (built / "lib" / "fw" / "main.mpy").read_bytes()


def test_the_boards_main_says_its_mode_before_it_starts_anything() -> None:
    """What the host reads is set in the boards' own main.py: "running" before the
    firmware (and its watchdog) starts, "maintenance" on the gesture."""
    for board in ("esp32c3", "picow"):
        text = (Path(flash.ROOT) / "boards" / board / "main.py").read_text()
        running = text.index('STEAMER_MODE = "running"')
        assert running < text.index("main.run(board.make())"), board
        assert text.index('STEAMER_MODE = "maintenance"') < text.index("maintenance boot:")
