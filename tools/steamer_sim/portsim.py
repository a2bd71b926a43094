"""Runs a scenario on a real board's code (boards/esp32c3, boards/picow with
boards/common) over the port models of boards/portsim, wired to the sim's plant, on the
unix port; the firmware and the board modules load from .mpy as on a board. Used by
tests/boards/test_portsim.py and the benchmark's `boards` part::

    from steamer_sim.portsim import run_on_board
    summary = run_on_board("picow", "scenarios/demo.json")
    summary["port"]     # the port figures: flash busy, scheduler losses, ...
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

from steamer_dev import build
from steamer_dev.paths import BOARDS, micropython_exe
from steamer_sim.driver import SimError, run_runner
from steamer_sim.scenario import load_scenario
from steamer_sim.signing import sign_for_sim

PORTSIM = BOARDS / "portsim"
PORT_OF = {"esp32c3": "esp32", "picow": "rp2"}
# What the models cost the heap that a board's C modules do not: machine, time and
# portclock take ~18.5 KB on the unix-64 port from .mpy (the stand-ins they replaced,
# ~6 KB), and their objects' attributes more. Measured on their own from .mpy (gc.mem_alloc
# around importing machine, time, portclock, rp2 or esp32, timedflash and unit): 27.4 KB
# (rp2) and 27.6 KB (esp32); 23.2/23.4 KB by the same measure when this was set to 26 (the
# unit's drawn parts, the rp2 PWM registers and the C3's ADC model came since). A board's
# budget on the models is BOARD_HEAP plus this, rounded up. Near its edge whether the smoke
# run fits moves by +-2k with fragmentation and with the length of the paths the run
# imports from (pytest-xdist's are longer), so the firmware is within about 2 KB of a
# board's 192k: a new firmware module must give heap back elsewhere (README, Heap).
MODELS_HEAP_K = 30
# The board's budget (BOARD_HEAP, 192k) plus the plant,
# world, trace and metrics, compiled from source in the same heap.
RUN_HEAP = "384k"
# A served run's: RUN_HEAP plus the link (fw.ble, its keys and buffers) and the sim's
# radio compiled from source (bluetooth.py, ~30 KB of it).
SERVE_HEAP = "512k"


def models_mpy(out_dir: Path) -> Path:
    """boards/portsim's models compiled for the unix port into out_dir (loaded from .mpy
    as the firmware is, so their bytecode costs the heap what a port's C modules cost a
    board: close to nothing). The runner, portrun.py, stays source."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for src in sorted(PORTSIM.glob("*.py")):
        if src.name == "portrun.py":
            continue
        err = build.compile_file(src, out_dir / (src.stem + ".mpy"), "x64")
        if err:
            raise build.BuildError(f"boards/portsim/{src.name}: {err}")
    return out_dir


def sim_parts(out_dir: Path) -> Path:
    """A folder of links to boards/sim's modules a port run uses (plant, world, the
    emulated ID chip, the flash file...), all but its `bluetooth`: a run without the
    air has no radio, so realboard's _radio() finds none, as on a build without one
    (with the sim's, every run booted fw.ble on the sim air and ran out of heap at
    boot); a served one adds it from radio_parts' folder."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for src in sorted((BOARDS / "sim").glob("*.py")):
        link = out_dir / src.name
        if src.name not in ("bluetooth.py", "board.py") and not link.exists():
            link.symlink_to(src)
    return out_dir


def radio_parts(out_dir: Path) -> Path:
    """A folder of links to the sim's radio (bluetooth.py and its central role), for a
    port run served on the simulated air (serve_on_board): MicroPython's `bluetooth` is a
    C module, so its stand-in is the sim's, with the board's port model."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("bluetooth.py", "blecentral.py"):
        link = out_dir / name
        if not link.exists():
            link.symlink_to(BOARDS / "sim" / name)
    return out_dir


def port_build(board: str, cache: Path) -> Path:
    """The folder of `board`'s firmware, board modules, port models and sim parts as .mpy
    for a port run, built into cache/<board> unless it is there already."""
    out = cache / board
    if not (out / "board.mpy").exists():
        build.build_for_unix_port(board, out)
        models_mpy(out / "portsim")
        sim_parts(out / "sim")
        radio_parts(out / "radio")
    return out


def port_env(board: str, mpy: Path, *, flash: str = "typical", chip_seed: int = 1,
             radio: bool = False, adc_cal: bool = False) -> dict:
    """The environment of a micropython process that runs `board`'s real code on the port
    models, from `mpy` (port_build's folder): its port, flash timing ("typical" or
    "worst": datasheet maxima), the C3 ADC chip drawn, whether the unit was calibrated
    at the factory before its first boot (`adc_cal`: hookup.calibrate, the C3 only),
    MICROPYPATH (with the sim's radio when `radio`)."""
    if flash not in ("typical", "worst"):
        raise ValueError(f"flash: 'typical' or 'worst', not {flash!r}")
    env = dict(os.environ, PORTSIM_PORT=PORT_OF[board], PORTSIM_FLASH=flash,
               PORTSIM_CHIP_SEED=str(chip_seed), PORTSIM_ADC_CAL="1" if adc_cal else "0")
    env["MICROPYPATH"] = os.pathsep.join(str(p) for p in (
        mpy / "portsim", mpy, mpy / "lib", mpy / "sim", *([mpy / "radio"] if radio else [])))
    return env


def serve_on_board(board: str, scenario: dict | str | Path, *, air: str, name: str,
                   speed: float, trust: bytes | None = None, flash: str = "typical") -> dict:
    """`steamer sim serve --board`: `scenario` run on `board`'s real code with a radio on
    `air` advertising as `name`, the virtual clock paced at `speed` virtual seconds a
    second, the unit calibrated at the factory as a shipped one is (the C3's ADC); the
    runner's output goes through to ours as it comes. Returns the summary when
    the scenario ends; raises SimError when the run fails."""
    if board not in PORT_OF:
        raise ValueError(f"board: one of {sorted(PORT_OF)}, not {board!r}")
    signed = sign_for_sim(load_scenario(scenario))
    if trust is not None:
        signed["mfg_public_hex"] = trust.hex()
    with tempfile.TemporaryDirectory(prefix="steamer-serve-") as tmp:
        work = Path(tmp)
        mpy = port_build(board, work)
        path = work / "scenario.json"
        path.write_text(json.dumps(signed), encoding="utf-8")
        env = port_env(board, mpy, flash=flash, radio=True, adc_cal=True)
        args = [micropython_exe(), "-X", f"heapsize={SERVE_HEAP}", str(PORTSIM / "portrun.py"),
                str(path), "", str(BOARDS / board / "board.py"),
                "--air", air, "--name", name, "--speed", repr(speed)]
        return run_runner(args, progress=True, live_stdout=True, env=env, cwd=work)


def run_on_board(board: str, scenario: dict | str | Path, *, flash: str = "typical",
                 chip_seed: int = 1, heap: str = RUN_HEAP, trace: str | None = None,
                 mpy_cache: Path | None = None, timeout_s: float = 120.0,
                 cut_writes: tuple[int, ...] = (), adc_cal: bool = False) -> dict:
    """The summary (steamer_sim.driver's, plus "port") of `scenario` run on `board`'s
    real code. flash: "typical" or "worst" (datasheet maxima); chip_seed: the C3 ADC
    chip drawn; adc_cal: the unit calibrated at the factory before its first boot (the
    C3's `steamer mfg adc-cal`; default: not, the unit as it leaves assembly);
    cut_writes: power cuts inside flash writes, the k-th boot's during the
    cut_writes[k]-th program or erase from that boot (half of it lands; 1 s off), until
    the list is spent. Raises SimError when the run fails."""
    if any(n < 1 for n in cut_writes):
        raise ValueError(f"cut_writes: each is a write count from 1, not {cut_writes}")
    signed = sign_for_sim(load_scenario(scenario))
    with tempfile.TemporaryDirectory(prefix="steamer-portsim-") as tmp:
        work = Path(tmp)
        mpy = port_build(board, mpy_cache or work)
        path = work / "scenario.json"
        path.write_text(json.dumps(signed), encoding="utf-8")
        env = port_env(board, mpy, flash=flash, chip_seed=chip_seed, adc_cal=adc_cal)
        env["PORTSIM_CUT_WRITES"] = ",".join(str(n) for n in cut_writes)
        proc = subprocess.run(
            [micropython_exe(), "-X", f"heapsize={heap}", str(PORTSIM / "portrun.py"),
             str(path), trace or "", str(BOARDS / board / "board.py"), "--quiet"],
            capture_output=True, text=True, env=env, cwd=work, timeout=timeout_s)
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith("{"):
                return json.loads(line)
        raise SimError(f"portsim {board}: exit {proc.returncode}, no summary",
                       (proc.stdout + proc.stderr).splitlines()[-15:])
