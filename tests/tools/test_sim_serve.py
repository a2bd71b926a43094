"""`steamer sim serve` as a person runs it: the simulated air it joins (checked before the
steamer starts), the address it prints for clients, and what it leaves behind when
stopped."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from steamer.ble.air import ENV


def serve_cmd(name: str) -> list[str]:
    return [sys.executable, "-m", "steamer.cli", "sim", "serve", "--name", name, "--speed", "4"]


def test_an_unreachable_or_malformed_air_fails_at_once() -> None:
    for addr, why in (("127.0.0.1:1", "the simulated air at 127.0.0.1:1 is not reachable "
                                      "(Connection refused): start one"),
                      ("nowhere", "$STEAMER_AIR is 'nowhere': not HOST:PORT")):
        env = dict(os.environ, **{ENV: addr})
        p = subprocess.run(serve_cmd("x"), env=env, text=True, capture_output=True,
                           timeout=30, stdin=subprocess.DEVNULL)
        assert p.returncode == 1 and p.stdout == "", p.stderr
        (line,) = p.stderr.splitlines()
        assert line.startswith(f"steamer sim serve: {why}"), line


def test_serve_prints_its_air_and_cleans_up_on_sigterm(tmp_path: Path,
                                                       processes_naming) -> None:
    """With the default port taken by something that is not an air, serve starts its own
    air on another port, prints it, and a client pointed there finds the steamer. SIGTERM
    stops it: no MicroPython child, no temporary folder left."""
    blocker = socket.socket()
    try:
        blocker.bind(("127.0.0.1", 47474))    # bound, not listening: no air answers there
    except OSError:
        blocker.close()
        pytest.skip("another simulated air has the default port")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))
    env.pop(ENV, None)
    proc = subprocess.Popen(serve_cmd("serve-x"), env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        m = re.fullmatch(r"steamer sim serve: serve-x on the simulated air at "
                         r"(127\.0\.0\.1:(\d+)) \(clients: STEAMER_AIR=\1 steamer scan "
                         r"--sim\)\n", first)
        assert m and m.group(2) != "47474", first
        client = dict(os.environ, **{ENV: m.group(1)})
        deadline = time.monotonic() + 30
        while True:
            p = subprocess.run([sys.executable, "-m", "steamer.cli", "scan", "--sim",
                                "--timeout", "1"], env=client, text=True,
                               capture_output=True, timeout=30)
            if "serve-x" in p.stdout or time.monotonic() > deadline:
                break
        assert "serve-x" in p.stdout, p.stdout + p.stderr
        assert processes_naming(str(tmp)), "the steamer runs in a temporary folder"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err
    finally:
        blocker.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert list(tmp.iterdir()) == []
    assert processes_naming(str(tmp)) == []
