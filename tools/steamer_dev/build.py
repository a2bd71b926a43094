"""Cross-compiles the firmware for a real board and type-checks it against that board's stubs.

    steamer dev build --board esp32c3            # build/esp32c3/: lib/fw/*.mpy, board.mpy, main.py
    steamer dev build --board picow --json       # the size table as JSON
    steamer dev typecheck                        # pyright on every real board

The build mirrors the device's file system: device/ and protocol/ go to lib/ (on the
board's sys.path), the board's modules and those every real board shares (boards/common)
to the root as .mpy, and main.py stays source because MicroPython runs main.py from
source at boot. Each board's MicroPython stubs are
installed on first use into <venv>/stubs/<board>, one folder per board, because the
stubs of two ports define the same modules (machine, time, ...) differently.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from steamer_dev.paths import BOARDS, DEVICE, PROTOCOL, ROOT
from steamer_mfg.usb import find_command
from steamer.terminal import FAILED, fail, json_out, os_error_text

# The modules every real board shares (realboard.py); each board's board.py imports them.
COMMON = BOARDS / "common"


@dataclass(frozen=True)
class BoardSpec:
    march: str                  # mpy-cross -march for native code
    budget_bytes: int           # flash the firmware files may take
    stubs: tuple[str, ...]      # pinned stub distributions, installed with --no-deps
    # What the port's os.uname().machine says on this board (e.g. "ESP32C3 module with
    # ESP32C3"), as esptool reads the chip: `dev flash` checks it.
    machine_has: str = ""


# micropython-stdlib-stubs supplies the stdlib (builtins, time, array, json...) as MicroPython has it.
_STDLIB_STUBS = "micropython-stdlib-stubs==1.29.0.post2"

BOARDS_SPEC: dict[str, BoardSpec] = {
    "esp32c3": BoardSpec("rv32imc", 256 * 1024,
                         ("micropython-esp32-esp32-generic-c3-stubs==1.29.0.post1", _STDLIB_STUBS),
                         "ESP32C3"),
    "picow": BoardSpec("armv6m", 256 * 1024,
                       ("micropython-rp2-rpi-pico-w-stubs==1.29.0.post1", _STDLIB_STUBS),
                       "Pico W"),
}
EMITTERS = ("bytecode", "native")
# CPython-only modules inside the firmware's trees: never built, never checked against a port.
HOST_ONLY = ("protocol/podproto/signing.py",)   # needs `cryptography`

# Written into every build folder, so a rebuild may wipe the folder and nothing else; it
# holds the board's name, so `dev flash` refuses one board's build for another.
BUILD_MARK = ".steamer-build"


class BuildError(Exception):
    """One or more files failed to compile; the message names each file."""


def real_boards() -> list[str]:
    """The real boards whose folder exists (the sim board is not built)."""
    return [b for b in BOARDS_SPEC if (BOARDS / b / "board.py").exists()]


def mpy_cross_exe() -> str:
    """The `mpy-cross` command of this virtual environment (or PATH)."""
    return find_command("mpy-cross")


def sources(board: str) -> list[tuple[Path, str]]:
    """(source file, path on the device) for every file of the firmware of `board`."""
    out: list[tuple[Path, str]] = []
    for tree in (DEVICE, PROTOCOL):
        for src in sorted(tree.rglob("*.py")):
            if "__pycache__" not in src.parts and _rel(str(src)) not in HOST_ONLY:
                out.append((src, "lib/" + src.relative_to(tree).with_suffix(".mpy").as_posix()))
    for folder in board_dirs(board):
        for src in sorted(folder.glob("*.py")):
            dest = src.name if src.name == "main.py" else src.with_suffix(".mpy").name
            out.append((src, dest))
    names = [dest for _, dest in out]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise BuildError("two files would land at %s on the board" % ", ".join(clash))
    return out


def board_dirs(board: str, board_dir: Path | None = None) -> list[Path]:
    """The folders whose modules go to the root of `board`'s file system (and are on its
    import path in the tests): the board's own, then the shared one."""
    return [board_dir or BOARDS / board, COMMON]


def compile_file(src: Path, dest: Path, march: str, emit: str = "bytecode") -> str | None:
    """Compiles one file; returns mpy-cross's message on failure, None on success."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    source_name = src.relative_to(ROOT).as_posix() if src.is_relative_to(ROOT) else src.name
    proc = subprocess.run(
        [mpy_cross_exe(), "-march=" + march, "-X", "emit=" + emit, "-s", source_name,
         "-o", str(dest), str(src)],
        capture_output=True, text=True)
    if proc.returncode != 0:
        return (proc.stderr or proc.stdout).strip() or "mpy-cross exited %d" % proc.returncode
    return None


def build_board(board: str, out_dir: Path | None = None, emit: str = "bytecode") -> list[dict]:
    """Builds the firmware of `board` into out_dir (default build/<board>) and returns one
    row per file: {"file", "source", "bytes"}. Raises BuildError naming every file that
    did not compile."""
    spec = BOARDS_SPEC[board]
    out = Path(out_dir) if out_dir is not None else ROOT / "build" / board
    _fresh_dir(out)
    (out / BUILD_MARK).write_text(board + "\n")
    jobs = sources(board)

    def one(job: tuple[Path, str]) -> str | None:
        src, dest = job
        if dest.endswith(".py"):
            shutil.copyfile(src, out / dest)
            return None
        return compile_file(src, out / dest, spec.march, emit)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        errors = list(pool.map(one, jobs))
    failed = ["%s: %s" % (_rel(str(src)), err)
              for (src, _), err in zip(jobs, errors) if err is not None]
    if failed:
        raise BuildError("\n".join(failed))
    return [{"file": dest, "source": _rel(str(src)),
             "bytes": (out / dest).stat().st_size} for src, dest in jobs]


def build_for_unix_port(board: str, out_dir: Path) -> None:
    """The firmware of `board` compiled as `build_board` does, but for the unix port's
    VM (bytecode with an x64 header): what a test runs to load the firmware as a board
    does, from .mpy into RAM, rather than compiling its source in the heap. Modules land
    under out_dir/lib and out_dir as on the board; raises BuildError naming a file that
    does not compile."""
    for src, dest in sources(board):
        if dest == "main.py":
            continue
        err = compile_file(src, out_dir / dest, "x64")
        if err:
            raise BuildError("%s: %s" % (_rel(str(src)), err))


def _fresh_dir(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        if not (out / BUILD_MARK).exists():
            raise BuildError("%s is not empty and is not a build folder: refusing to wipe it" % out)
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / BUILD_MARK).touch()


# ---- type checking -----------------------------------------------------------------------

def stubs_dir(board: str) -> Path:
    """Installs the pinned stubs of `board` on first use (into <venv>/stubs/<board>)
    and returns that folder. Safe to call from parallel processes."""
    spec = BOARDS_SPEC[board]
    target = Path(sys.prefix) / "stubs" / board
    marker = target / ".installed"
    want = "\n".join(spec.stubs) + "\n"
    if marker.exists() and marker.read_text() == want:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / (".%s.lock" % board), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text() == want:
            return target
        tmp = Path(tempfile.mkdtemp(prefix=board + ".", dir=target.parent))
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 "--no-deps", "--no-compile", "--target", str(tmp), *spec.stubs],
                capture_output=True, text=True)
            if proc.returncode != 0:
                lines = [l for l in proc.stderr.splitlines() if l.strip()]
                raise RuntimeError("installing the %s stubs failed: %s"
                                   % (board, lines[-1].strip() if lines else
                                      "pip exited %d" % proc.returncode))
            tmp.chmod(0o755)
            (tmp / ".installed").write_text(want)
            if target.exists():
                shutil.rmtree(target)
            tmp.rename(target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
    return target


def pyright_config(board: str, where: Path, board_dir: Path | None = None) -> dict:
    """The pyright configuration for `board`, to be written into the folder `where`: its
    board.py and main.py with boards/common, device/ and protocol/, against its
    MicroPython stubs and nothing from the host's Python (an empty environment in
    `where`)."""
    stubs = stubs_dir(board)
    board_dir = board_dir or BOARDS / board

    def rel(path: Path) -> str:
        # pyright ignores absolute "include" entries; relative ones may climb with "..".
        return os.path.relpath(path, where)

    (where / "env" / "lib" / "python3.11" / "site-packages").mkdir(parents=True, exist_ok=True)
    return {
        "include": [rel(board_dir / "board.py"), rel(board_dir / "main.py"), rel(COMMON),
                    rel(DEVICE), rel(PROTOCOL)],
        "exclude": ["**/__pycache__"] + [rel(ROOT / p) for p in HOST_ONLY],
        "stubPath": str(stubs),
        "typeshedPath": str(stubs),
        "extraPaths": [str(d) for d in board_dirs(board, board_dir)] + [str(DEVICE),
                                                                          str(PROTOCOL)],
        "venvPath": str(where),
        "venv": "env",
        "pythonVersion": "3.11",
        "pythonPlatform": "Linux",
        "typeCheckingMode": "basic",
        # Stub-only modules have no source behind them: that is what a port looks like.
        "reportMissingModuleSource": "none",
    }


def run_pyright(board: str, board_dir: Path | None = None) -> dict:
    """Runs pyright for `board` and returns its JSON report."""
    with tempfile.TemporaryDirectory(prefix="steamer-pyright-") as tmp:
        where = Path(tmp)
        cfg = where / "pyrightconfig.json"
        cfg.write_text(json.dumps(pyright_config(board, where, board_dir), indent=2))
        # Without this the wrapper asks PyPI for a newer pyright on every run.
        env = dict(os.environ, PYRIGHT_PYTHON_IGNORE_WARNINGS="1")
        proc = subprocess.run([_pyright_exe(), "--outputjson", "--project", str(cfg)],
                              capture_output=True, text=True, env=env, cwd=tmp)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        lines = [l for l in (proc.stderr or proc.stdout).splitlines() if l.strip()]
        raise RuntimeError("pyright failed (exit %d)%s" % (
            proc.returncode, ": " + lines[-1].strip() if lines else ", with no report"))
    if not report.get("summary", {}).get("filesAnalyzed"):
        raise RuntimeError("pyright analyzed no files for %s" % board)
    return report


def typecheck(board: str, board_dir: Path | None = None, show: bool = False) -> int:
    """Number of pyright errors for `board`; with show, prints each diagnostic."""
    report = run_pyright(board, board_dir)
    diags = report.get("generalDiagnostics", [])
    if show:
        for d in diags:
            start = d["range"]["start"]
            print("%s:%d:%d: %s: %s" % (_rel(d.get("file", "?")), start["line"] + 1,
                                        start["character"] + 1, d["severity"], d["message"]))
    return sum(1 for d in diags if d["severity"] == "error")


def _rel(path: str) -> str:
    try:
        return Path(path).relative_to(ROOT).as_posix()
    except ValueError:
        return path


def _pyright_exe() -> str:
    """The `pyright` command of this virtual environment (or PATH)."""
    return find_command("pyright")


# ---- command line ------------------------------------------------------------------------

def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds `build` and `typecheck` to the `steamer dev` group."""
    p = subparsers.add_parser(
        "build", help="cross-compile the firmware of a board to .mpy",
        description="Cross-compile device/, protocol/, boards/BOARD and boards/common to .mpy "
                    "for the board's architecture, in the layout of the device's file system, "
                    "and check the size against the board's flash budget.",
        epilog="Examples:\n  steamer dev build --board esp32c3\n"
               "  steamer dev build --board picow --out /tmp/picow --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--board", required=True, choices=sorted(BOARDS_SPEC))
    p.add_argument("-o", "--out", type=Path, default=None, help="output folder (default build/BOARD)")
    p.add_argument("--emit", choices=EMITTERS, default="bytecode",
                   help="mpy-cross code emitter (default bytecode)")
    p.add_argument("--json", action="store_true", help="print the size table as JSON")
    p.set_defaults(func=_cmd_build)

    p = subparsers.add_parser(
        "typecheck", help="type-check the firmware against each board's MicroPython stubs",
        description="Run pyright on each real board's board.py and main.py together with "
                    "boards/common, device/ and protocol/, against that board's MicroPython "
                    "stubs.",
        epilog="Examples:\n  steamer dev typecheck\n  steamer dev typecheck --board esp32c3",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--board", action="append", choices=sorted(BOARDS_SPEC),
                   help="check only this board (repeatable; default every real board)")
    p.set_defaults(func=_cmd_typecheck)


def _cmd_build(args: argparse.Namespace) -> int:
    board = args.board
    budget = BOARDS_SPEC[board].budget_bytes
    try:
        rows = build_board(board, args.out, args.emit)
    except BuildError as exc:
        return fail("dev build", "%s: %s" % (board, exc))
    except OSError as exc:          # the output folder, or mpy-cross missing
        return fail("dev build", os_error_text(exc))
    total = sum(r["bytes"] for r in rows)
    over = total > budget
    out = Path(args.out) if args.out is not None else ROOT / "build" / board
    if args.json:
        json_out({"board": board, "out": str(out), "files": rows, "total_bytes": total,
                  "budget_bytes": budget, "over_budget": over}, indent=2, ensure_ascii=True)
    else:
        width = max(len(r["file"]) for r in rows)
        for r in rows:
            print("%-*s %8d" % (width, r["file"], r["bytes"]))
        print("%-*s %8d  of %d bytes (%.1f %%)" % (width, "total", total, budget,
                                                  100.0 * total / budget))
        print("wrote %d files for %s to %s" % (len(rows), board, out), file=sys.stderr)
    if over:
        return fail("dev build", "%s: the firmware is %d bytes, over its budget of %d"
                     % (board, total, budget))
    return 0


def _cmd_typecheck(args: argparse.Namespace) -> int:
    failed = 0
    for board in args.board or real_boards():
        t0 = time.monotonic()
        try:
            errors = typecheck(board, show=True)
        except RuntimeError as exc:     # the stubs or pyright itself failed
            return fail("dev typecheck", "%s: %s" % (board, exc))
        except OSError as exc:          # pyright missing
            return fail("dev typecheck", "%s: %s" % (board, os_error_text(exc)))
        print("%s: %d error%s (%.1f s)" % (board, errors, "" if errors == 1 else "s",
                                          time.monotonic() - t0))
        failed += errors > 0
    return FAILED if failed else 0
