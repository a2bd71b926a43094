"""`steamer sim serve` as a person runs it: the simulated air it joins (checked before the
steamer starts) or starts as its own process, private to the user, which outlives the
serve; the address it prints for clients; what it leaves behind when stopped; and the
events (`sim press/insert/remove/refill/fault`) a running steamer takes from outside."""
from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from steamer_sim.air import ENV

STEAMER = [sys.executable, "-m", "steamer.cli.main"]


def serve_cmd(name: str, *extra: str) -> list[str]:
    return [*STEAMER, "sim", "serve", "--name", name, "--speed", "4", *extra]


def steamer(env: dict, *args: str, code: int = 0, timeout: float = 90) -> subprocess.CompletedProcess:
    p = subprocess.run([*STEAMER, *args], env=env, text=True, capture_output=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode == code, f"exit {p.returncode}: {p.stdout}{p.stderr}"
    return p


def one_line(p: subprocess.CompletedProcess) -> str:
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    return lines[0]


def until(check: Callable[[], bool], timeout_s: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def scan(env: dict) -> set[str]:
    """The names on the air; none while no air answers yet (a serve is starting it)."""
    p = subprocess.run([*STEAMER, "scan", "--sim", "--timeout", "1", "--json"], env=env,
                       text=True, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    if p.returncode == 1 and "is not reachable" in p.stderr:
        return set()
    assert p.returncode == 0, p.stderr
    return {row["name"] for row in json.loads(p.stdout)}


@pytest.fixture
def served(own_air, tmp_path: Path) -> Iterator[Callable[..., tuple[subprocess.Popen, Path]]]:
    """Starts `sim serve` on the test's own air; its stderr goes to a file (returned)."""
    procs: list[subprocess.Popen] = []

    def start(name: str, *extra: str, env: dict | None = None) -> tuple[subprocess.Popen, Path]:
        log = tmp_path / f"serve-{name}.err"
        with open(log, "w") as err:
            proc = subprocess.Popen(serve_cmd(name, *extra), env=env or own_air, text=True,
                                    stdout=subprocess.DEVNULL, stderr=err,
                                    stdin=subprocess.DEVNULL)
        procs.append(proc)
        return proc, log

    try:
        yield start
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def test_an_unreachable_or_malformed_air_fails_at_once() -> None:
    for addr, why in (("127.0.0.1:1", "the simulated air at 127.0.0.1:1 is not reachable "
                                      "(Connection refused): start one"),
                      ("/nonexistent/air.sock", "the simulated air at /nonexistent/air.sock "
                                                "is not reachable (No such file or directory)"),
                      ("nowhere", "$STEAMER_AIR is 'nowhere': not HOST:PORT")):
        env = dict(os.environ, **{ENV: addr})
        p = subprocess.run(serve_cmd("x"), env=env, text=True, capture_output=True,
                           timeout=30, stdin=subprocess.DEVNULL)
        assert p.returncode == 1 and p.stdout == "", p.stderr
        (line,) = p.stderr.splitlines()
        assert line.startswith(f"steamer sim serve: {why}"), line


def test_serve_prints_its_air_and_cleans_up_on_sigterm(own_air, tmp_path: Path,
                                                       processes_naming) -> None:
    """Without $STEAMER_AIR, serve starts the user's own air (a socket in their runtime
    folder), prints it, and a client finds the steamer there. SIGTERM stops the serve:
    no MicroPython child, no temporary folder left; the air stays for the next one."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = dict(own_air, TMPDIR=str(tmp))
    proc = subprocess.Popen(serve_cmd("serve-x"), env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        sock = f"{own_air['XDG_RUNTIME_DIR']}/steamer/air.sock"
        assert first == (f"steamer sim serve: serve-x on the simulated air at {sock} "
                         f"(clients: STEAMER_AIR={sock} steamer scan --sim)\n"), first
        until(lambda: "serve-x" in scan(own_air), what="serve-x on the air")
        assert processes_naming(str(tmp)), "the steamer runs in a temporary folder"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert list(tmp.iterdir()) == []
    assert processes_naming(str(tmp)) == []
    until(lambda: scan(own_air) == set(), what="serve-x gone from the air")


def test_the_air_outlives_a_serve_and_a_new_serve_joins_it(served, own_air,
                                                           processes_naming) -> None:
    a, _ = served("first")
    until(lambda: "first" in scan(own_air), what="first on the air")
    served("second")
    until(lambda: scan(own_air) == {"first", "second"}, what="both on the air")
    a.send_signal(signal.SIGTERM)
    a.wait(20)
    # Only the steamer of the serve that exited goes; the other is still reachable.
    until(lambda: scan(own_air) == {"second"}, what="first gone, second still there")
    served("third")
    until(lambda: scan(own_air) == {"second", "third"}, what="third on the same air")
    airs = [c for c in processes_naming(own_air["XDG_RUNTIME_DIR"]) if " sim air " in c]
    assert len(airs) == 1, airs


def test_the_default_air_is_private_to_the_user(served, own_air, tmp_path: Path) -> None:
    """Each user's air is in a folder only they can enter (their $XDG_RUNTIME_DIR, else
    steamer-UID in the temp folder): another user's steamers are on another air. A folder
    there that others could enter is refused, not used."""
    _, log = served("mine")
    until(lambda: "mine" in scan(own_air), what="mine on the air")
    sock = Path(own_air["XDG_RUNTIME_DIR"]) / "steamer" / "air.sock"
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    # Someone with another runtime folder (another user) has another air: mine is not on it.
    other = tmp_path / "other-run"
    other.mkdir(mode=0o700)
    (other / "steamer").mkdir(mode=0o755)
    env = dict(own_air, XDG_RUNTIME_DIR=str(other))
    line = one_line(steamer(env, "sim", "serve", "--name", "x", code=1))
    assert line == (f"steamer sim serve: cannot start a simulated air: {other}/steamer is "
                    f"not a private folder of this user (owner uid {os.getuid()}, mode "
                    "0755): remove it"), line
    (other / "steamer").rmdir()
    line = one_line(steamer(env, "scan", "--sim", code=1))
    assert f"the simulated air at {other}/steamer/air.sock is not reachable" in line, line
    # Without a runtime folder: the temp folder, under this user's id.
    bare = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", ENV)}
    p = subprocess.run([sys.executable, "-c", "from steamer_sim.air import default_address;"
                        "print(default_address())"], env=dict(bare, TMPDIR=str(tmp_path)),
                       text=True, capture_output=True, check=True)
    assert p.stdout.strip() == f"{tmp_path}/steamer-{os.getuid()}/air.sock"


def test_a_plain_serve_pairs_once_sim_press_holds_its_button(served, own_air) -> None:
    """The top-level help's own example: a plain `sim serve`, its button held from outside
    with `sim press`, then `steamer pair`. Without the press the window never opens."""
    _, log = served("plain")
    until(lambda: "plain" in scan(own_air), what="plain on the air")
    p = steamer(own_air, "pair", "plain", "--sim", "--timeout", "3", code=1)
    assert "pairing window" in p.stderr or "button" in p.stderr, p.stderr
    steamer(own_air, "sim", "press", "plain", "--ms", "30000")
    p = steamer(own_air, "pair", "plain", "--sim", "--timeout", "30")
    assert "paired with plain" in p.stdout + p.stderr
    text = log.read_text()
    m = re.search(r"\[ *([0-9.]+)s\] injected press_button$", text, re.MULTILINE)
    assert m, text
    # Taken at a control period's start, as a scenario's event due then would be.
    assert round(float(m.group(1)) * 10) == float(m.group(1)) * 10


def test_injected_events_reach_the_steamer(served, own_air) -> None:
    _, log = served("busy")
    until(lambda: "busy" in scan(own_air), what="busy on the air")
    podlet = {"serial": "0000c0ffee07", "podlet_type": 3, "capacity_ul": 30000,
              "expiry": "2030-06-30", "lot": "L1"}
    steamer(own_air, "sim", "insert", "busy", "--podlet", json.dumps(podlet))
    steamer(own_air, "sim", "refill", "busy", "--ml", "20")
    steamer(own_air, "sim", "remove", "busy")
    steamer(own_air, "sim", "fault", "busy", "tip_over")
    until(lambda: re.search(r"fault_latched .*code=tip_over", log.read_text()) is not None,
          what="the fault latched")
    text = log.read_text()
    for line in ("injected insert_podlet", "injected refill_water",
                 "injected remove_podlet", "injected fault"):
        assert line in text, text
    steamer(own_air, "sim", "fault", "busy", "tip_over", "--clear")
    until(lambda: "injected clear_fault" in log.read_text(),
          what="the fault cleared")


def test_event_commands_say_what_is_wrong_in_one_line(served, own_air) -> None:
    # Checked by the scenario's own validator before anything is sent.
    for args, want in ((["press", "x", "--ms", "0"], "--ms: 0 is out of range 1..600000"),
                       (["fault", "x", "water_emtpy"],
                        "KIND: unknown fault 'water_emtpy' (did you mean 'water_empty'?)"),
                       (["refill", "x", "--ml", "400"], "--ml: 400.0 is out of range 0..300"),
                       (["insert", "x", "--podlet", '{"serial": "xyz"}'],
                        "--podlet serial: \"xyz\" is not 12 hex digits (a 48-bit serial)"),
                       (["insert", "x", "--image", "/nonexistent.bin"],
                        "--image: cannot read '/nonexistent.bin': No such file or directory")):
        line = one_line(steamer(own_air, "sim", *args, code=2))
        assert line == f"steamer sim {args[0]}: {want}", line
    # No air yet: one line, exit 1.
    line = one_line(steamer(own_air, "sim", "press", "x", code=1))
    assert "is not reachable" in line and "steamer sim serve" in line, line
    served("kitchen")
    until(lambda: "kitchen" in scan(own_air), what="kitchen on the air")
    line = one_line(steamer(own_air, "sim", "press", "kitchn", code=1))
    assert line.startswith("steamer sim press: no simulated steamer named 'kitchn' is on "
                           "the simulated air at ") and line.endswith(
                               "(did you mean 'kitchen'?)"), line


def test_a_steamer_served_with_trust_takes_what_your_own_key_signed(served, own_air,
                                                                     tmp_path: Path) -> None:
    """A manufacturer's round trip on the simulator: keygen, sign-profile, podlet-image,
    `sim serve --trust`, provision the profile over the air, insert the podlet, start a
    session. A steamer that trusts only the development key refuses the same profile."""
    key = tmp_path / "mfg.pem"
    public = steamer(own_air, "mfg", "keygen", "--out", str(key)).stdout.strip()
    (tmp_path / "mfg.pub").write_text(public + "\n")
    (tmp_path / "profiles").mkdir()
    (tmp_path / "calm.json").write_text(json.dumps(
        {"podlet_type": 3, "version": 1, "name": "calm", "outlet_target_c": 40.0,
         "session_s": 60, "dose_rate_ul_min": 300, "max_session_ul": 2500,
         "max_day_ul": 50000, "min_interval_s": 0}))
    steamer(own_air, "mfg", "sign-profile", str(tmp_path / "calm.json"), "--key", str(key),
            "-o", str(tmp_path / "profiles" / "calm.bin"))
    image = tmp_path / "podlet.bin"
    steamer(own_air, "mfg", "podlet-image", "--serial", "0000c0ffee07", "--type", "3",
            "--capacity-ul", "30000", "--expiry", "2030-06-30", "--lot", "L1",
            "--key", str(key), "-o", str(image))
    _, log = served("factory", "--trust", str(tmp_path / "mfg.pub"))
    served("stock")
    until(lambda: scan(own_air) == {"factory", "stock"}, what="both on the air")
    for name in ("factory", "stock"):
        steamer(own_air, "sim", "press", name, "--ms", "60000")
    p = steamer(own_air, "mfg", "provision", "factory", "stock", "--profiles",
                str(tmp_path / "profiles"), "--sim", "--json", code=1, timeout=120)
    results = {r["device"]: r for r in json.loads(p.stdout)}
    assert results["factory"]["ok"], results
    assert not results["stock"]["ok"], results
    steamer(own_air, "sim", "insert", "factory", "--image", str(image))
    until(lambda: "injected insert_podlet" in log.read_text(), what="the podlet in")
    steamer(own_air, "session", "start", "factory", "--sim", "--detach", timeout=120)
    until(lambda: "session_started" in log.read_text(), what="the session started")


def test_a_served_scenario_of_1500_events_runs_and_its_steamer_answers(
        served, own_air, tmp_path: Path) -> None:
    """Item 15 of issue 11 for `sim serve`: a valid scenario of 1,500 events (read as the
    run reaches them, as `sim run` reads them) runs without MemoryError, and its steamer
    pairs and answers on the air while they are applied."""
    events = [{"t_s": 1, "do": "press_button", "ms": 60000}]
    events += [{"t_s": round(2 + i * 0.1, 1), "do": "refill_water", "ml": 1}
               for i in range(1500)]
    scen = tmp_path / "big.json"
    scen.write_text(json.dumps({"contract": 1, "duration_s": 600, "events": events}))
    proc, log = served("big", "--scenario", str(scen))
    until(lambda: "big" in scan(own_air), what="big on the air")
    p = steamer(own_air, "pair", "big", "--sim", "--timeout", "40")
    assert "paired with big" in p.stdout + p.stderr
    p = steamer(own_air, "status", "big", "--sim", "--json")
    assert json.loads(p.stdout)["state"] == "idle", p.stdout
    assert proc.poll() is None, log.read_text()
    assert "MemoryError" not in log.read_text()
