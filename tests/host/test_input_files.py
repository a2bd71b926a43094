"""The files people hand to commands: a key file of the wrong shape, and every file
input against a file too large for it and against /dev/zero: one line, exit 2, no more
read than the limit; SIGTERM ends a read that never finishes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from steamer.cli import main
from steamer.devices import load_keys

HOST_ID, KEY = "ab" * 8, "cd" * 32


@pytest.fixture(autouse=True)
def own_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing of the person's running the tests is read or made (database, keys)."""
    monkeypatch.setenv("STEAMER_DB", str(tmp_path / "home" / "s.db"))
    monkeypatch.setenv("STEAMER_KEYS", str(tmp_path / "home" / "keys.json"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home" / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / "config"))


def steamer(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(code: int, out: str, err: str, want_code: int, *fragments: str) -> None:
    assert (code, out) == (want_code, ""), err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in err, err


@pytest.mark.parametrize("content, what", [
    ([], "not the object"),
    ("5E:7A:00:00:00:01", "not the object"),
    (None, "not the object"),
    ({"5E:7A:00:00:00:01": "x"}, "5E:7A:00:00:00:01"),
    ({"5E:7A:00:00:00:01": {"host_id": HOST_ID}}, "5E:7A:00:00:00:01"),
    ({"5E:7A:00:00:00:01": {"host_id": "zz" * 8, "key": KEY}}, "host_id"),
    ({"5E:7A:00:00:00:01": {"host_id": HOST_ID, "key": 42}}, "key"),
    ({"5E:7A:00:00:00:01": {"host_id": HOST_ID, "key": KEY[:-2]}}, "key"),
])
def test_a_key_file_of_the_wrong_shape_is_one_line(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path, content, what: str) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(content))
    for argv in (["sync", "bathroom"], ["status", "bathroom"], ["pair", "bathroom"],
                 ["session", "start", "bathroom"], ["profile", "list", "bathroom"]):
        one_line(*steamer(capsys, *argv, "--sim", "--keys", str(keys)), 2,
                 f"the key file {keys}", what, "pair again")


def test_a_good_key_file_loads(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"5E:7A:00:00:00:01": {"host_id": HOST_ID, "key": KEY}}))
    ring = load_keys(keys)
    assert ring.get("5E:7A:00:00:00:01") == (bytes.fromhex(HOST_ID), bytes.fromhex(KEY))
    assert load_keys(tmp_path / "none.json").get("5E:7A:00:00:00:01") is None
