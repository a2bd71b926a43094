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

from steamer.cli.main import main
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


# ---- every file input, too large and endless ------------------------------------------

STEAMER = Path(sys.executable).with_name("steamer")
MAX_RSS_KB = 150 << 10      # a command starts in about 45 MB
PUB_HEX = "ab" * 32


# Runs argv[2:] and writes its peak RSS (KiB) to argv[1]. A process's ru_maxrss counts
# the memory of the process it was forked from, so the command is forked from this
# small one, not from pytest.
_PEAK_OF = """import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def measured(argv: list[str], env: dict[str, str], timeout_s: float = 30.0,
             ) -> tuple[int, str, str, int, float]:
    """(exit code, stdout, stderr, peak RSS in KiB, seconds) of a `steamer` process."""
    home = Path(env["HOME"])
    peak = home / "peak"
    peak.unlink(missing_ok=True)
    with open(os.devnull, "rb") as stdin, open(home / "out", "w+b") as out, \
            open(home / "err", "w+b") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-c", _PEAK_OF, str(peak), str(STEAMER),
                                 *argv], stdin=stdin, stdout=out, stderr=err, env=env,
                                start_new_session=True)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail(f"steamer {' '.join(argv)} still running after {timeout_s} s")
        seconds = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        return (proc.returncode, out.read().decode(), err.read().decode(),
                int(peak.read_text()), seconds)


@pytest.fixture
def inputs(tmp_path: Path) -> dict:
    """A person's good files (profile, key), the environment, and where bad ones go."""
    from steamer_mfg import cli as mfg
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    key = tmp_path / "mfg.pem"
    mfg.generate_key(key)
    profile = tmp_path / "p.json"
    profile.write_text(json.dumps({
        "podlet_type": 3, "version": 1, "name": "vitamin-c", "outlet_target_c": 45.0,
        "session_s": 600, "dose_rate_ul_min": 300, "max_session_ul": 2500,
        "max_day_ul": 5000, "min_interval_s": 14400}))
    env = dict(os.environ, HOME=str(home), STEAMER_DB=str(home / "s.db"),
               STEAMER_KEYS=str(home / "keys.json"), STEAMER_AIR="127.0.0.1:9",
               XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "config"))
    return {"key": str(key), "profile": str(profile), "env": env, "dir": tmp_path}


def file_commands(inputs: dict) -> list[tuple[list[str], int]]:
    """Every command that reads a file, F standing for the file, with its size limit."""
    from steamer import devices
    from steamer import store
    from steamer_mfg import trustkey as devicekey
    from steamer_mfg import cli as mfg
    from steamer_sim import scenario
    key, profile, db = inputs["key"], inputs["profile"], inputs["env"]["STEAMER_DB"]
    podlet = ["--serial", "0000c0ffee01", "--type", "3", "--capacity-ul", "3000",
              "--expiry", "2027-06-30", "--lot", "L1"]
    return [
        (["sessions", "import-trace", "F", "--db", db], store.TRACE_MAX_BYTES),
        (["profile", "push", "bathroom", "F", "--sim"], devices.PROFILE_MAX_BYTES),
        (["sync", "bathroom", "--sim", "--keys", "F", "--db", db], devices.KEYS_MAX_BYTES),
        (["pair", "bathroom", "--sim", "--keys", "F"], devices.KEYS_MAX_BYTES),
        (["mfg", "provision", "bathroom", "--profiles", "DIR", "--sim"],
         devices.PROFILE_MAX_BYTES),
        (["mfg", "sign-profile", "F", "--key", key, "-o", "x.bin"], mfg.PROFILE_JSON_MAX_BYTES),
        (["mfg", "sign-profile", profile, "--key", "F", "-o", "x.bin"], mfg.KEY_FILE_MAX_BYTES),
        (["mfg", "pubkey", "F"], mfg.KEY_FILE_MAX_BYTES),
        (["mfg", "podlet-image", *podlet, "--key", "F", "-o", "x.bin"], mfg.KEY_FILE_MAX_BYTES),
        (["mfg", "verify", "F", "--pub", PUB_HEX], mfg.VERIFY_MAX_BYTES),
        (["mfg", "verify", profile, "--key", "F"], mfg.KEY_FILE_MAX_BYTES),
        (["mfg", "provision-key", "--port", "/dev/null", "--pub", "F"],
         devicekey.PUB_FILE_MAX_BYTES),
        (["mfg", "provision-key", "--port", "/dev/null", "--key", "F"], mfg.KEY_FILE_MAX_BYTES),
        (["sim", "run", "F"], scenario.SCENARIO_MAX_BYTES),
        (["sim", "serve", "--scenario", "F"], scenario.SCENARIO_MAX_BYTES),
    ]


def with_file(argv: list[str], source: Path, inputs: dict) -> tuple[list[str], Path]:
    """argv with F as `source`; a DIR is a folder of profiles holding it as z.bin."""
    if "DIR" in argv:
        folder = inputs["dir"] / "profiles"
        folder.mkdir(exist_ok=True)
        named = folder / "z.bin"
        named.unlink(missing_ok=True)
        named.symlink_to(source)
        return [str(folder) if a == "DIR" else a for a in argv], named
    return [str(source) if a == "F" else a for a in argv], source


@pytest.mark.parametrize("source", ["too_large", "/dev/zero"])
def test_every_file_input_has_a_limit(inputs: dict, source: str) -> None:
    """One line naming the file, exit 2, within MAX_RSS_KB and seconds; a file larger
    than its limit is refused from its size (it is sparse: reading it would take long
    and the memory of its size)."""
    for argv, limit in file_commands(inputs):
        if source == "too_large":
            path = inputs["dir"] / f"big-{limit}"
            with open(path, "wb") as f:
                f.truncate(limit + 1)
            path.chmod(0o600)       # as a key file must be
        else:
            path = Path(source)
        full, named = with_file(argv, path, inputs)
        code, out, err, rss_kb, seconds = measured(full, inputs["env"])
        what = f"steamer {' '.join(full)}"
        assert (code, out) == (2, ""), (what, err)
        (line,) = err.splitlines()
        assert str(named) in line and "Traceback" not in line, (what, line)
        assert rss_kb < MAX_RSS_KB and seconds < 15, (what, rss_kb, seconds)
        if source == "too_large":
            assert "too large" in line, (what, line)


def has_open(pid: int, path: Path) -> bool:
    for fd in Path(f"/proc/{pid}/fd").glob("*"):
        try:
            if os.readlink(fd) == str(path):
                return True
        except OSError:         # closed meanwhile
            pass
    return False


@pytest.mark.parametrize("argv", [["sessions", "import-trace", "F", "--db", "D"],
                                  ["profile", "push", "bathroom", "F", "--sim"],
                                  ["sim", "run", "F"]])
def test_sigterm_ends_a_read_that_never_finishes(inputs: dict, argv: list[str]) -> None:
    """A pipe whose writer never writes: the command waits in its read until SIGTERM,
    which ends it (143) without a traceback."""
    fifo = inputs["dir"] / "pipe"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)     # open, silent
    try:
        full = [str(fifo) if a == "F" else inputs["env"]["STEAMER_DB"] if a == "D" else a
                for a in argv]
        proc = subprocess.Popen([str(STEAMER), *full], env=inputs["env"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while not has_open(proc.pid, fifo):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 143, err
        assert b"Traceback" not in err
    finally:
        os.close(writer)
