"""The consumer commands as a person runs them: `steamer scan/pair/status/session/sync/
profile` as subprocesses, against simulated steamers (the real firmware on micropython,
`steamer sim serve`) on a simulated air, with the session history in a real SQLite file."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_plot import colours

from steamer_sim.air import ENV, Air, LinkParams
from steamer_harness.ble import button_held, serve, signed_test_profile

SPEED = 40.0
PODLET = {"serial": "0000c0ffee07", "podlet_type": 3, "capacity_ul": 30000,
          "expiry": "2030-06-30", "lot": "L1", "sign": "ok"}
# 240 s of dosing at 300 µl/min: 1200 µl, about 6 s of wall time at SPEED (long enough
# for a session that heats in seconds from a hot boiler to be stopped while it runs).
PROFILE = {"podlet_type": 3, "version": 1, "name": "short", "outlet_target_c": 45.0,
           "session_s": 240, "dose_rate_ul_min": 300, "max_session_ul": 2500,
           "max_day_ul": 50000, "min_interval_s": 0, "sign": "ok"}


def scenario(pairable: bool = True) -> dict:
    """A steamer with a podlet in and its profile installed; with `pairable`, its button
    held for its first hour, so its pairing window is open (but for 3 s in every 600)
    from 4 s on."""
    events: list[dict] = [{"t_s": 0.5, "do": "insert_podlet", "podlet": PODLET}]
    if pairable:
        events += button_held(1, 3600)
    # A small fill and a strong heater: a short preheat, so a session takes seconds.
    return {"contract": 1, "duration_s": 86400, "seed": 3, "profiles": [PROFILE],
            "plant": {"water_ml": 80, "heater_w": 800},
            "events": sorted(events, key=lambda e: e["t_s"])}


@pytest.fixture(scope="module")
def air() -> Air:
    a = Air(LinkParams())
    a.start_thread()
    return a


@pytest.fixture
def env(air: Air, tmp_path: Path) -> dict[str, str]:
    """What a person's shell would hold: the simulated air, a key file, a database."""
    e = dict(os.environ, **{ENV: air.address, "STEAMER_SIM": "1",
                            "STEAMER_KEYS": str(tmp_path / "keys.json"),
                            "STEAMER_DB": str(tmp_path / "sessions.sqlite3")})
    e.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
    return e


def steamer(env: dict, *args: str, code: int | None = 0, timeout: float = 90) -> subprocess.CompletedProcess:
    """Runs `steamer ARGS`; checks the exit code and that no traceback got out."""
    p = subprocess.run([sys.executable, "-m", "steamer.cli.main", *args], env=env, text=True,
                       capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert "Traceback" not in p.stderr + p.stdout, p.stderr
    if code is not None:
        assert p.returncode == code, f"steamer {' '.join(args)}: exit {p.returncode}\n{p.stderr}"
    return p


def wait_for_state(env: dict, name: str, state: str, timeout_s: float = 30) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        st = json.loads(steamer(env, "status", name, "--json").stdout)
        if st["state"] == state or time.monotonic() > deadline:
            assert st["state"] == state, st
            return st
        time.sleep(0.2)


def one_line(p: subprocess.CompletedProcess) -> str:
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    return lines[0]


@pytest.fixture
def served(air: Air, tmp_path: Path):
    started = []

    def start(name: str, **kw):
        s = serve(air, tmp_path, name, scenario(**kw), speed=SPEED)
        started.append(s)
        return s
    yield start
    for s in started:
        s.stop()
    for s in started:
        assert s.crashes() == []


# ---- without a steamer -------------------------------------------------------------------

def _commands(parser, path=()):
    """Every parser under `parser` (groups too), with its words."""
    yield path, parser
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for word, child in action.choices.items():
                yield from _commands(child, path + (word,))


def test_every_command_has_help_with_an_example():
    from steamer.cli.main import build_parser
    found = {words: p for words, p in _commands(build_parser())}
    # Every command, the groups and the developers' and manufacturers' ones included.
    for words in ([], ["scan"], ["pair"], ["status"], ["session"], ["session", "start"],
                  ["session", "stop"], ["sync"], ["profile"], ["profile", "push"],
                  ["profile", "list"], ["sessions"], ["sessions", "show"],
                  ["sessions", "export"], ["sessions", "import-trace"], ["plot"],
                  ["sim"], ["sim", "run"], ["sim", "serve"],
                  ["dev"], ["dev", "build"], ["dev", "typecheck"], ["dev", "flash"],
                  ["dev", "virtual-board"], ["dev", "bench"],
                  ["mfg"], ["mfg", "keygen"], ["mfg", "pubkey"], ["mfg", "sign-profile"],
                  ["mfg", "podlet-image"], ["mfg", "verify"], ["mfg", "provision-key"],
                  ["mfg", "provision"]):
        assert tuple(words) in found, words
    for words, p in found.items():
        assert "Example" in (p.epilog or ""), words
        assert p.description, words
        # Each example runs this command (the top level's, a tour of the others).
        assert f"steamer {' '.join(words)}".rstrip() in p.epilog, words
        assert "issue " not in p.format_help(), words   # no references to our tracker
    # The top level's tour: the commands a person starts with.
    for cmd in ("scan", "pair", "session start", "sync", "sessions", "plot"):
        assert f"steamer {cmd} " in found[()].epilog, cmd


@pytest.mark.parametrize("words", [[], ["sim"], ["dev"], ["mfg"], ["dev", "bench"],
                                   ["dev", "flash"], ["sim", "serve"]])
def test_help_as_printed_shows_the_examples(words):
    p = subprocess.run([sys.executable, "-m", "steamer.cli.main", *words, "--help"], text=True,
                       capture_output=True, timeout=60)
    assert p.returncode == 0 and "Example" in p.stdout and p.stderr == ""
    assert "issue" not in p.stdout


def test_no_adapter_no_air_and_unknown_devices_are_one_line_each(env, tmp_path):
    # No Bluetooth: the system bus is not there (as in this container, or with no adapter).
    radio = dict(env, DBUS_SYSTEM_BUS_ADDRESS="unix:path=" + str(tmp_path / "no-bus"))
    radio.pop("STEAMER_SIM")
    assert "no Bluetooth adapter available" in one_line(steamer(radio, "scan", code=1))
    assert "--sim" in one_line(steamer(radio, "status", "kitchen", code=1))
    # --sim, but no simulated air at that address.
    nowhere = dict(radio, **{ENV: "127.0.0.1:1"})
    assert "simulated air" in one_line(steamer(nowhere, "scan", "--sim", code=1))
    # Nothing of that name on the air.
    line = one_line(steamer(env, "status", "kitchen", "--scan-timeout", "0.5", code=1))
    assert line.startswith("steamer status: unknown device kitchen: not found in a 0.5 s scan")
    # Wrong files are refused before any scan: exit 2, one line naming the file.
    (tmp_path / "p.json").write_text(json.dumps({k: v for k, v in PROFILE.items() if k != "sign"}))
    (tmp_path / "bad.json").write_text('{"podlet_type": 3,\n "version": }')
    (tmp_path / "junk.bin").write_bytes(b"\x07" * 100)
    for name, want in (("p.json", "unsigned profile"), ("bad.json", "not valid JSON (line 2"),
                       ("junk.bin", "not a signed profile"), ("none.bin", "No such file")):
        line = one_line(steamer(env, "profile", "push", "kitchen", str(tmp_path / name), code=2))
        assert name in line and want in line, line


def test_a_wrong_air_address_and_wrong_options_are_one_line_each(env):
    for addr in ("nonsense", "localhost:abc", "127.0.0.1:99999"):
        bad = dict(env, **{ENV: addr})
        line = one_line(steamer(bad, "scan", "--sim", code=1))
        assert line == (f"steamer scan: $STEAMER_AIR is '{addr}': not HOST:PORT nor a "
                        "socket path, the simulated air's address (what `steamer sim "
                        "serve` prints)"), line
        assert "not HOST:PORT" in one_line(steamer(bad, "status", "kitchen", code=1))
    nowhere = dict(env, **{ENV: "127.0.0.1:1"})
    line = one_line(steamer(nowhere, "scan", code=1))
    assert line.startswith("steamer scan: the simulated air at 127.0.0.1:1 is not reachable "
                           "(Connection refused): "), line
    assert line.count("127.0.0.1:1") == 1
    # Durations must be more than nothing: a follow at interval 0 would spin.
    for args in (["scan", "--timeout", "-1"], ["scan", "--timeout", "0"],
                 ["status", "kitchen", "--follow", "--interval", "0"],
                 ["status", "kitchen", "--scan-timeout", "nan"],
                 ["pair", "kitchen", "--timeout", "-5"],
                 ["mfg", "provision", "kitchen", "--profiles", ".", "--jobs", "0"]):
        p = steamer(env, *args, code=2)
        assert p.stderr.splitlines()[-1].startswith(f"steamer {args[0]}"), p.stderr
        assert "greater than 0" in p.stderr or "1 or more" in p.stderr, p.stderr


def test_ctrl_c_while_the_command_starts_is_exit_130():
    from steamer.terminal import run_parser

    def interrupted():
        raise KeyboardInterrupt
    assert run_parser(interrupted, ["scan"]) == 130


# ---- one steamer, from pairing to a session interrupted -----------------------------------

def test_pair_status_profiles_and_sessions(served, env, tmp_path):
    s = served("cli-a")
    found = json.loads(steamer(env, "scan", "--json", "--timeout", "1").stdout)
    me = next(f for f in found if f["name"] == "cli-a")
    assert me["address"] == s.addr and me["paired"] is False and me["state"] == "idle"

    # Status needs no pairing; anything that changes something does.
    st = json.loads(steamer(env, "status", "cli-a", "--json").stdout)
    assert st["state"] == "idle" and st["fault"] is None and 15 < st["boiler_c"] < 30
    assert st["limit_ul"] is None and st["dosing_left_s"] is None
    line = one_line(steamer(env, "session", "start", "cli-a", code=1))
    assert "not paired with cli-a: run `steamer pair cli-a` while holding" in line

    p = steamer(env, "pair", "cli-a", "--sim", "--timeout", "20")
    assert "Press and hold cli-a's button" in p.stderr and "paired with cli-a" in p.stdout
    keys = json.loads(Path(env["STEAMER_KEYS"]).read_text())
    assert list(keys) == [s.addr]
    assert json.loads(steamer(env, "scan", "--json", "--timeout", "1").stdout)[0]["paired"]

    profiles = json.loads(steamer(env, "profile", "list", "cli-a", "--json").stdout)
    assert [(p["podlet_type"], p["version"], p["name"]) for p in profiles] == [(3, 1, "short")]
    good = tmp_path / "calm.bin"
    good.write_bytes(signed_test_profile(2))
    assert "installed calm v2 (podlet type 7) on cli-a" in steamer(
        env, "profile", "push", "cli-a", str(good)).stdout
    line = one_line(steamer(env, "profile", "push", "cli-a", str(good), code=1))
    assert "already has this profile at the same or a newer version" in line
    other = tmp_path / "calm-other.bin"         # other bytes at the same version
    other.write_bytes(signed_test_profile(2, "calm-b"))
    line = one_line(steamer(env, "profile", "push", "cli-a", str(other), code=1))
    assert "already has this profile at the same or a newer version" in line
    assert "calm" in steamer(env, "profile", "list", "cli-a").stdout

    # A whole session: progress on stderr (not a tty: lines), the summary on stdout.
    p = steamer(env, "session", "start", "cli-a", "--json")
    result = json.loads(p.stdout)
    assert result["end_reason"] == "completed" and result["dose_ul"] == pytest.approx(1200, abs=0.2)
    assert result["profile"] == "short" and result["limit_ul"] == 2500
    assert "preheat: boiler" in p.stderr and "dose: " in p.stderr

    wait_for_state(env, "cli-a", "idle")      # after its cooldown

    # Ctrl-C stops the display; the steamer carries on with the session.
    proc = subprocess.Popen([sys.executable, "-m", "steamer.cli.main", "session", "start", "cli-a"],
                            env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    assert proc.stderr is not None
    first = proc.stderr.readline()
    assert first.startswith(("preheat", "steam", "dose")), first
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130 and "Traceback" not in err
    assert "the session goes on on cli-a" in err
    st = json.loads(steamer(env, "status", "cli-a", "--json").stdout)
    assert st["state"] in ("preheat", "ready", "steaming"), st
    assert st["profile"] == "short v1" and st["podlet_type"] == 3
    # The steamer's own limits for the session: the profile's dose and dosing time.
    assert 0 < st["limit_ul"] <= 2500 and st["remaining_ul"] == st["limit_ul"] - st["session_ul"]
    assert 0 < st["dosing_left_s"] <= 240
    line = one_line(steamer(env, "session", "start", "cli-a", code=1))
    assert "cli-a is busy: a session is already running" in line

    stop = json.loads(steamer(env, "session", "stop", "cli-a", "--json").stdout)
    assert stop["stopped"] and stop["state"] in ("cooldown", "idle")
    line = one_line(steamer(env, "session", "stop", "cli-a", code=1))
    assert "no session is running" in line

    follow = subprocess.Popen([sys.executable, "-m", "steamer.cli.main", "status", "cli-a",
                               "--follow", "--json", "--interval", "0.2"], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert follow.stdout is not None
    lines = [json.loads(follow.stdout.readline()) for _ in range(3)]
    follow.send_signal(signal.SIGINT)
    follow.communicate(timeout=20)
    assert follow.returncode == 130
    assert all(v["state"] in ("cooldown", "idle") for v in lines)


def test_follow_lines_name_the_steamer_and_a_reader_gone_ends_it_quietly(served, env):
    s = served("cli-pipe", pairable=False)
    follow = subprocess.Popen([sys.executable, "-m", "steamer.cli.main", "status", "cli-pipe",
                               "--follow", "--json", "--interval", "0.1"], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert follow.stdout is not None
    line = json.loads(follow.stdout.readline())
    assert (line["device"], line["address"], line["state"]) == ("cli-pipe", s.addr, "idle")
    follow.stdout.close()          # as `| head -1` does
    _, err = follow.communicate(timeout=20)
    assert follow.returncode == 1 and err == "", err


def test_pairing_times_out_with_a_clear_message(served, env):
    served("cli-shy", pairable=False)
    p = steamer(env, "pair", "cli-shy", "--timeout", "1.5", code=1)
    assert "Press and hold cli-shy's button, and keep holding it" in p.stderr
    assert p.stderr.strip().splitlines()[-1] == (
        "steamer pair: pairing with cli-shy timed out after 1.5 s: its pairing window did "
        "not open (press and hold its button, keep holding it, and run `steamer pair "
        "cli-shy` again)")
    assert not Path(env["STEAMER_KEYS"]).exists()


# ---- sync into the database --------------------------------------------------------------

def _db_seqs(db: Path) -> list[int]:
    c = sqlite3.connect(db)
    try:
        return [s for (s,) in c.execute("SELECT seq FROM log_records ORDER BY seq")]
    except sqlite3.OperationalError:   # the sync has not made its tables yet
        return []
    finally:
        c.close()


def test_sync_is_exactly_once_and_resumes_after_being_killed(served, env, air, tmp_path):
    served("cli-b")
    db = Path(env["STEAMER_DB"])
    steamer(env, "pair", "cli-b", "--timeout", "20")
    result = json.loads(steamer(env, "session", "start", "cli-b", "--json").stdout)
    assert result["end_reason"] == "completed"

    # A slow link (one PDU per 60 ms connection event), and the sync killed part way.
    air.call(lambda: air.set_params(pdus_per_event=1, interval_ms=60.0))
    try:
        proc = subprocess.Popen([sys.executable, "-m", "steamer.cli.main", "sync", "cli-b"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists() and len(_db_seqs(db)) >= 20:
                break
            time.sleep(0.02)
        proc.kill()
        proc.wait()
    finally:
        air.call(lambda: air.set_params(pdus_per_event=6, interval_ms=30.0))
    part = _db_seqs(db)
    assert part and part == list(range(1, len(part) + 1))   # whole batches, in order

    first = json.loads(steamer(env, "sync", "cli-b", "--json").stdout)
    seqs = _db_seqs(db)
    assert len(part) < len(seqs), "the sync was not cut short: nothing left to resume"
    assert seqs == list(range(1, len(seqs) + 1)) and first["last_seq"] == len(seqs)
    assert first["new_records"] == len(seqs) - len(part) and first["sessions"] == 1
    # Again: only what the steamer journaled since (its pairing window reopening) is new.
    again = json.loads(steamer(env, "sync", "--sim", "cli-b", "--json").stdout)
    after = _db_seqs(db)
    assert after[:len(seqs)] == seqs and after == list(range(1, len(after) + 1))
    assert again["new_records"] == len(after) - len(seqs) <= 3 and again["duplicates"] == 0

    # What sync brought in is what `sessions` and `plot` show.
    sessions = json.loads(steamer(env, "sessions", "--json").stdout)
    assert len(sessions) == 1
    s = sessions[0]
    assert s["end_reason"] == "completed" and s["dose_ul"] == pytest.approx(1200, abs=0.2)
    assert s["podlet"] == PODLET["serial"] and s["profile"] == "short"
    assert s["target_c"] == 45.0 and s["samples"] > 100 and s["start_utc"]
    shown = json.loads(steamer(env, "sessions", "show", str(s["id"]), "--json").stdout)
    series = shown["series"]
    assert series[-1]["dose_ul"] == pytest.approx(1200, abs=12)
    assert max(p["outlet_c"] for p in series) == pytest.approx(45, abs=2)
    # Every curve of the plot came over BLE: boiler, heater and pump as well as outlet.
    assert max(p["boiler_c"] for p in series) > 95 and max(p["heater_pct"] for p in series) > 50
    assert max(p["pump_ul_min"] for p in series) == pytest.approx(300, abs=5)
    png = tmp_path / "s.png"
    steamer(env, "plot", str(s["id"]), "-o", str(png))
    shape, distinct, non_white = colours(png)
    assert shape == (800, 1000) and distinct >= 6 and 0.03 < non_white < 0.6
    csv = steamer(env, "sessions", "export", "--csv").stdout.splitlines()
    assert len(csv) == 2 and "completed" in csv[1]


# ---- the session's limits and its progress, from the steamer's status -----------------

def status_of(state: str, session_ul: int = 0, session_s: int = 0, pump_ul_min: int = 0,
              boiler_c: float = 99.0, limit_ul: int = 2500, limit_s: int = 120) -> dict:
    from podproto.names import STATE_NAMES
    return {"state": STATE_NAMES.index(state), "fault": 0, "boiler_mc": int(boiler_c * 1000),
            "outlet_mc": 45000, "heater_pct": 50, "pump_ul_min": pump_ul_min,
            "session_ul": session_ul, "session_s": session_s, "podlet_type": 3,
            "clock_s": 0, "limit_ul": limit_ul, "limit_s": limit_s,
            "podlet_state": 2, "podlet_reason": 0}


def test_the_session_ends_at_its_first_limit():
    from steamer.session import session_limits, status_view
    # 300 µl/min for 120 s: the time ends it at 600 µl, long before the 2500 µl limit.
    lim = session_limits(status_of("steaming", 150, 30, pump_ul_min=300))
    assert (lim.limit_ul, lim.left_ul, lim.left_s, lim.exact) == (600, 450, 90, True)
    # The dose limit (a podlet nearly used up) ends it first: 100 µl left is 20 s.
    lim = session_limits(status_of("steaming", 150, 30, pump_ul_min=300, limit_ul=250))
    assert (lim.limit_ul, lim.left_ul, lim.left_s) == (250, 100, 20)
    # Before the pump has run, the rate is not known: the dose limit is an upper bound.
    lim = session_limits(status_of("preheat", boiler_c=40))
    assert (lim.limit_ul, lim.left_s, lim.exact) == (2500, 120, False)
    assert session_limits(status_of("idle", limit_ul=0, limit_s=0)) is None
    # A rate seen earlier counts when the pump is between doses.
    v = status_view(status_of("steaming", 600, 120, pump_ul_min=0), {}, rate_ul_min=300)
    assert (v["limit_ul"], v["remaining_ul"], v["dosing_left_s"]) == (600, 0, 0)


def test_the_terminal_bar_is_full_when_the_session_completes():
    import io
    from steamer.session import Progress
    out = io.StringIO()
    bar = Progress(out, 45.0, tty=True)
    bar.update(status_of("preheat", boiler_c=22))
    bar.update(status_of("preheat", boiler_c=60))
    for s in range(1, 121):        # 5 µl a second for 120 s: 600 µl, the time limit
        bar.update(status_of("steaming", 5 * s, s, pump_ul_min=300))
    frames = out.getvalue().split("\r")
    assert "dose: 300 µl of 600 µl, 1:00 left" in out.getvalue()
    assert frames[-1].startswith("[" + "#" * 24 + "] dose: 600 µl of 600 µl, 0:00 left")
    halfway = next(f for f in frames if "dose: 300 µl" in f)
    assert halfway.startswith("[" + "#" * 12 + " " * 12 + "]")
    # The steamer's last status before its cooldown may be short of the end: the end
    # record fills the bar.
    out = io.StringIO()
    bar = Progress(out, 45.0, tty=True)
    bar.update(status_of("steaming", 590, 118, pump_ul_min=300))
    bar.finish("completed", 600)
    assert out.getvalue().split("\r")[-1] == "[" + "#" * 24 + "] dose: 600 µl delivered\x1b[K\n"
    # A session stopped half way shows half a bar.
    out = io.StringIO()
    bar = Progress(out, 45.0, tty=True)
    bar.update(status_of("steaming", 290, 58, pump_ul_min=300))
    bar.finish("stopped", 300)
    assert out.getvalue().split("\r")[-1].startswith("[" + "#" * 12 + " " * 12 + "]")


def _journal_seqs(db: Path, device_id: str) -> list[int]:
    c = sqlite3.connect(db)
    try:
        return [s for (s,) in c.execute("SELECT seq FROM log_records WHERE device_id = ? "
                                        "ORDER BY seq", (device_id,))]
    finally:
        c.close()


def test_sync_takes_a_journal_new_at_a_known_address_from_its_start(air, env, tmp_path):
    """A steamer started again at the same address (as every new `sim serve` of a name is,
    and a real one after its flash is reformatted) numbers its records from 1 again: sync
    says its journal is new and stores all of them, under a cursor of their own."""
    db = Path(env["STEAMER_DB"])
    old = serve(air, tmp_path, "cli-j", scenario(), speed=SPEED)
    try:
        steamer(env, "pair", "cli-j", "--timeout", "20")
        steamer(env, "session", "start", "cli-j", "--json")   # a long first journal
        one = json.loads(steamer(env, "sync", "cli-j", "--json").stdout)
    finally:
        old.stop()
    assert old.crashes() == [] and one["last_seq"] > 100
    again = tmp_path / "again"
    again.mkdir()
    new = serve(air, again, "cli-j", scenario(), speed=SPEED)
    try:
        assert new.addr == old.addr
        steamer(env, "pair", "cli-j", "--timeout", "20")
        p = steamer(env, "sync", "cli-j", "--json")
        two = json.loads(p.stdout)
        assert one_line(p) == (f"steamer cli-j: its journal is new (was {one['journal_id']}, "
                               f"now {two['journal_id']}): syncing it from the start")
        assert two["journal_id"] != one["journal_id"] and two["device_id"] != one["device_id"]
        seqs = _journal_seqs(db, two["device_id"])
        assert two["new_records"] == two["last_seq"] == len(seqs) > 0
        assert seqs == list(range(1, len(seqs) + 1))
        assert _journal_seqs(db, one["device_id"]) == list(range(1, one["last_seq"] + 1))
        # Synced again: the same journal, no notice; only what it journaled since is new.
        p = steamer(env, "sync", "cli-j", "--json")
        three = json.loads(p.stdout)
        assert p.stderr == "" and three["device_id"] == two["device_id"]
        assert _journal_seqs(db, two["device_id"]) == list(range(1, three["last_seq"] + 1))
    finally:
        new.stop()
    assert new.crashes() == []


# ---- at the steamer's own speed ----------------------------------------------------------

# A short session: outlet target 30 °C (a short ramp), 10 s of dosing at 600 µl/min
# (100 µl, well under the profile's 2500 µl).
SHORT = dict(PROFILE, name="brief", outlet_target_c=30.0, session_s=10, dose_rate_ul_min=600)


def short_scenario() -> dict:
    return dict(scenario(), profiles=[SHORT])


def test_at_real_time_a_start_follows_the_new_session(air, env, tmp_path):
    """The steamer writes its status once a second: right after the start's ack it still
    says idle. `session start` waits for the session (it does not report it over at
    once), and `session stop` waits for the stop."""
    s = serve(air, tmp_path, "cli-rt", scenario(), speed=1.0)
    try:
        steamer(env, "pair", "cli-rt", "--timeout", "20")
        proc = subprocess.Popen([sys.executable, "-m", "steamer.cli.main", "session", "start",
                                 "cli-rt"], env=env, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert first.startswith("preheat: boiler"), first
        time.sleep(2)
        assert proc.poll() is None, "session start reported the session over at once"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 130 and out == "" and "Traceback" not in err
        stop = json.loads(steamer(env, "session", "stop", "cli-rt", "--json").stdout)
        assert stop["state"] in ("cooldown", "idle") and stop["end_reason"] == "stopped", stop
    finally:
        s.stop()
    assert s.crashes() == []


def test_back_to_back_sessions_at_low_speed(air, env, tmp_path):
    """Two short sessions at 4 times real time: each `session start` reports its own
    session, with its progress against the dose it ends at (rate x time, 100 µl, not
    the profile's 2500 µl); then sync into a new database and the history by name."""
    s = serve(air, tmp_path, "cli-lo", short_scenario(), speed=4.0)
    try:
        steamer(env, "pair", "cli-lo", "--timeout", "20")
        for n in (1, 2):
            p = steamer(env, "session", "start", "cli-lo", "--json", timeout=180)
            r = json.loads(p.stdout)
            # The dose the encoder counted: within two pulses of 100 ul.
            assert (r["end_reason"], r["profile"]) == ("completed", "brief"), r
            assert abs(r["dose_ul"] - 100) <= 0.2 + 1e-9, r
            lines = p.stderr.splitlines()
            assert lines[0].startswith("preheat: boiler"), (n, p.stderr)
            doses = [line for line in lines if line.startswith("dose: ") and "of" in line]
            # The limit the host shows comes from the pump's rate, which the steamer trims
            # to its encoder (the sim's pump is within 5 %): 95..105 µl.
            shown = [float(line.split(" of ")[1].split(" ")[0]) for line in doses]
            assert doses and all(95 <= v <= 105 for v in shown), p.stderr
            last = lines[-1]
            assert last.startswith("dose: ") and last.endswith(" µl delivered"), last
            assert abs(float(last.split()[1]) - 100) <= 0.2 + 1e-9, last
            wait_for_state(env, "cli-lo", "idle", 120)
        db = tmp_path / "new" / "folder" / "s.db"
        p = steamer(env, "sync", "cli-lo", "--db", str(db))
        assert p.stderr == f"created the session database {db}\n"
        assert ": 2 sessions of it in" in p.stdout
        sessions = json.loads(steamer(env, "sessions", "--db", str(db), "--json").stdout)
        assert [x["device"] for x in sessions] == ["cli-lo", "cli-lo"]
        assert [round(x["dose_ul"]) for x in sessions] == [100, 100]    # within a pulse or two
        table = steamer(env, "sessions", "--db", str(db)).stdout.splitlines()
        assert all(" cli-lo " in row for row in table[1:]) and len(table) == 3
        shown = steamer(env, "sessions", "show", str(sessions[0]["id"]), "--db", str(db)).stdout
        assert f"device    cli-lo ({s.addr})" in shown
        assert "completed (completed)" not in shown and ", completed" in shown
        csv = steamer(env, "sessions", "export", "--csv", "--db", str(db)).stdout.splitlines()
        assert csv[0].startswith("id,device_id,device,") and f",{s.addr},cli-lo," in csv[1]
    finally:
        s.stop()
    assert s.crashes() == []


# ---- the podlet's state in status, and a refused start ------------------------------------

def test_status_and_a_refused_start_say_why_the_podlet_was_refused(air, env, tmp_path):
    """README's pairable steamer before any clock is set: status says the podlet is
    refused for the clock (it used to say `podlet none`); a podlet past its expiry
    refuses the start, and the one line says so (not "no podlet is inserted")."""
    s = serve(air, tmp_path, "cli-pod", scenario(), speed=SPEED)
    old = dict(PODLET, serial="0000c0ffee08", expiry="2026-01-31")
    t = serve(air, tmp_path, "cli-old", dict(scenario(), events=[
        {"t_s": 0.5, "do": "insert_podlet", "podlet": old}] + button_held(1, 3600)),
        speed=SPEED)
    try:
        out = steamer(env, "status", "cli-pod").stdout
        assert ("  podlet   refused: the steamer's clock is not set (a session start sets "
                "it)") in out.splitlines(), out
        st = json.loads(steamer(env, "status", "cli-pod", "--json").stdout)
        assert (st["podlet_state"], st["podlet_refused"]) == ("refused", "clock_unset")
        assert st["podlet_type"] is None

        steamer(env, "pair", "cli-old", "--timeout", "20")
        line = one_line(steamer(env, "session", "start", "cli-old", code=1))
        assert line == ("steamer session start: cli-old refused to start a session: podlet "
                        "refused: it is past its expiry date (expired)"), line
        st = json.loads(steamer(env, "status", "cli-old", "--json").stdout)
        assert (st["podlet_state"], st["podlet_refused"]) == ("refused", "expired")
    finally:
        s.stop()
        t.stop()
    assert s.crashes() == [] and t.crashes() == []
