"""Cross-compiling the firmware for every real board: each file compiles, lands where the
device looks for it, and carries the .mpy header that board's MicroPython accepts."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from steamer_dev import build
from steamer_dev.paths import BOARDS

BOARDS_REAL = build.real_boards()
MPY_VERSION = 6
SMALL_INT_BITS = 31         # the 32-bit boards' small ints
NATIVE_ARCH = {"rv32imc": 11, "armv6m": 4}   # MP_NATIVE_ARCH_* in the .mpy header


def header(path: Path) -> tuple[int, int, int, int]:
    data = path.read_bytes()
    assert len(data) > 4, path
    return data[0], data[1], data[2], data[3]


def test_every_real_board_is_known():
    assert set(BOARDS_REAL) == {"esp32c3", "picow"}


@pytest.mark.parametrize("board", BOARDS_REAL)
def test_bytecode_build_compiles_every_file(board, tmp_path):
    rows = build.build_board(board, tmp_path)
    built = {r["file"] for r in rows}
    assert {dest for _, dest in build.sources(board)} == built
    assert {"lib/fw/main.mpy", "lib/fw/app.mpy", "lib/fw/idchip.mpy", "board.mpy",
            "realboard.mpy", "main.py"} <= built
    assert any(f.startswith("lib/podproto/") for f in built)
    for row in rows:
        out = tmp_path / row["file"]
        assert out.stat().st_size == row["bytes"] > 0
        if row["file"] == "main.py":
            assert out.read_text() == (BOARDS / board / "main.py").read_text()
            continue
        magic, version, features, int_bits = header(out)
        assert (magic, version, int_bits) == (ord("M"), MPY_VERSION, SMALL_INT_BITS), row
        assert features >> 2 == 0, "bytecode-only .mpy must not name an arch: %s" % row


@pytest.mark.parametrize("board", BOARDS_REAL)
def test_native_code_names_the_board_arch(board, tmp_path):
    # The native emitter cannot compile everything (podproto's `raise ... from`), so the
    # arch is checked on the firmware's own modules, which are what would go native.
    march = build.BOARDS_SPEC[board].march
    for src, dest in build.sources(board):
        if dest.startswith("lib/fw/") or dest in ("board.mpy", "realboard.mpy"):
            out = tmp_path / dest
            assert build.compile_file(src, out, march, emit="native") is None, src
            magic, version, features, _ = header(out)
            assert (magic, version, features >> 2) == (ord("M"), MPY_VERSION, NATIVE_ARCH[march])


def test_failed_compile_names_file_and_message(tmp_path, monkeypatch):
    bad = tmp_path / "bad.py"
    bad.write_text("def f(:\n    pass\n")
    real = build.sources
    monkeypatch.setattr(build, "sources", lambda board: real(board) + [(bad, "lib/bad.mpy")])
    with pytest.raises(build.BuildError) as err:
        build.build_board("esp32c3", tmp_path / "out")
    assert "bad.py" in str(err.value) and "SyntaxError" in str(err.value)


def test_refuses_to_wipe_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "precious.txt").write_text("keep")
    with pytest.raises(build.BuildError):
        build.build_board("esp32c3", tmp_path)
    assert (tmp_path / "precious.txt").exists()


def _cli(argv):
    parser = argparse.ArgumentParser()
    build.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_build_json_table(tmp_path, capsys):
    assert _cli(["build", "--board", "picow", "--out", str(tmp_path), "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["total_bytes"] == sum(f["bytes"] for f in table["files"])
    assert table["budget_bytes"] == build.BOARDS_SPEC["picow"].budget_bytes
    assert table["over_budget"] is False


def test_cli_build_over_budget_fails(tmp_path, monkeypatch, capsys):
    spec = build.BOARDS_SPEC["esp32c3"]
    monkeypatch.setitem(build.BOARDS_SPEC, "esp32c3",
                        build.BoardSpec(spec.march, 1000, spec.stubs))
    assert _cli(["build", "--board", "esp32c3", "--out", str(tmp_path)]) == 1
    assert "over its budget" in capsys.readouterr().err

