"""No hot-path module holds a constant that a frozen build would store as an mpz
(issue 14 item 3): with the firmware frozen, every sum with such a constant allocates,
and under heap_lock every control step fails.

Which constants those are, from MicroPython's sources: the parser folds a tuple whose
items are all constants (const() names included) into one constant object
(py/parse.c, MICROPY_COMP_CONST_TUPLE), and an int that does not fit the target's small
int (31 bits on the esp32 and rp2 ports) into an int object; tools/mpy-tool.py, freezing
them (freeze_constant_obj), writes an int as MP_ROM_INT only when mp_small_int_fits
(-0x2000..0x1FFF) and otherwise as a static mpz (MICROPY_LONGINT_IMPL_MPZ on both
ports). An int loaded inline by the bytecode (LOAD_CONST_SMALL_INT, as in a list literal
or an expression) is a small int at run time whatever its size below 2**30; an array
holds machine words. So: no constant tuple with an int outside +-8191, no int literal or
const() outside +-2**30, in the modules the control step runs.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from steamer_dev.paths import BOARDS, DEVICE

# The modules App.step (fw.app) and the board objects it calls run in.
HOT_PATH = [DEVICE / "fw" / f"{m}.py" for m in
            ("app", "safety", "control", "session", "ntc", "config", "codes", "main")] + [
    BOARDS / "common" / "realboard.py", BOARDS / "esp32c3" / "board.py",
    BOARDS / "picow" / "board.py"]
FROZEN_SMALL = range(-0x2000, 0x2000)       # tools/mpy-tool.py mp_small_int_fits
TARGET_SMALL = range(-(1 << 30), 1 << 30)   # 31-bit small ints on both ports
# Long ints the hot-path modules may hold, each off the control step's path.
ALLOWED = {
    ("realboard.py", 1704067200): "Board.clock_s (service and emit only): the wall "
                                  "clock's seconds are past 2**30 anyway",
    ("board.py", 0x40058018): "picow's watchdog SCRATCH3 address, only ever an index of "
                              "machine.mem32 (mp_obj_get_int_truncated: no allocation)",
    ("board.py", 0x40050000): "picow's PWM block address: PwmEdgeCounter makes its "
                              "registers' addresses from it in __init__; count() only "
                              "indexes machine.mem32 with the one kept",
}


def _consts(tree: ast.Module) -> dict[str, int]:
    """The module's `NAME = const(N)` values (the parser substitutes them)."""
    out = {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "id", "") == "const"):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value.args[0])
            except ValueError:
                pass
    return out


def _value(node: ast.AST, consts: dict[str, int]):
    """The folded value of a constant expression, or None when it is not one."""
    if isinstance(node, ast.Name) and node.id in consts:
        return consts[node.id]
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = _value(node.operand, consts)
        return -v if isinstance(v, int) else None
    if isinstance(node, ast.Tuple):
        items = [_value(e, consts) for e in node.elts]
        return None if any(i is None for i in items) else tuple(items)
    return None


def _ints(value) -> list[int]:
    if isinstance(value, tuple):
        return [i for v in value for i in _ints(v)]
    return [value] if type(value) is int else []


def frozen_mpz_constants(path: Path) -> list[str]:
    """What in the module at path a frozen build would keep as an mpz."""
    tree = ast.parse(path.read_text())
    consts = _consts(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple):
            value = _value(node, consts)
            big = [i for i in _ints(value) if i not in FROZEN_SMALL] if value else []
            if big:
                found.append(f"{path.name}:{node.lineno}: a constant tuple holds "
                             f"{len(big)} ints outside +-8191 (first {big[0]})")
        elif isinstance(node, ast.Constant) and type(node.value) is int \
                and node.value not in TARGET_SMALL and (path.name, node.value) not in ALLOWED:
            found.append(f"{path.name}:{node.lineno}: the int {node.value} is past 2**30")
    return sorted(found, key=lambda f: int(f.split(":")[1]))


@pytest.mark.parametrize("path", HOT_PATH, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_hot_path_constant_is_an_mpz_when_frozen(path):
    assert frozen_mpz_constants(path) == []


def test_the_check_finds_what_mpy_tool_would_freeze_as_mpz(tmp_path):
    # What main had (issue 14 item 3): the NTC tables as tuples; and a long address.
    src = tmp_path / "m.py"
    src.write_text("from micropython import const\n_A = const(9000)\n_ADDR = const(0x40058018)\n"
                   "T = (200000, 1, -3)\nU = (_A, 2)\nV = [200000, 1]\nW = (8191, -8192)\n"
                   "def f(x):\n    return x + _ADDR\n")
    assert frozen_mpz_constants(src) == [
        "m.py:3: the int 1074102296 is past 2**30",
        "m.py:4: a constant tuple holds 1 ints outside +-8191 (first 200000)",
        "m.py:5: a constant tuple holds 1 ints outside +-8191 (first 9000)"]
