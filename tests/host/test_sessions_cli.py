"""`steamer sessions …` and `steamer plot`: through a parser built with the register
functions (as the top-level `steamer` builds it), and as a real process."""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from readonly_files import read_only
from steamer.cli.history import register_plot, register_sessions
from steamer.store import SCHEMA_VERSION, Store, import_trace

EPOCH_S = 1_795_000_000.0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="steamer")
    sub = p.add_subparsers(dest="group", required=True)
    register_sessions(sub)
    register_plot(sub)
    return p


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    args = parser().parse_args(argv)
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def db(tmp_path: Path, demo_trace: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("STEAMER_DB", raising=False)
    path = tmp_path / "s.db"
    with Store.open(path) as store:
        import_trace(store, "sim", demo_trace, start_epoch_s=EPOCH_S)
    return str(path)


def test_list(capsys: pytest.CaptureFixture[str], db: str) -> None:
    code, out, err = run(capsys, "sessions", "--db", db)
    assert code == 0 and err == ""
    head, row = out.splitlines()
    assert head.split() == ["ID", "DATE", "DEVICE", "PODLET", "PROFILE", "DURATION", "DOSE", "END"]
    assert "0000c0ffee01" in row and "vitamin-c v1" in row and "2500 µl" in row
    assert row.rstrip().endswith("full dose delivered")


def test_list_json(capsys: pytest.CaptureFixture[str], db: str) -> None:
    code, out, _ = run(capsys, "sessions", "--json", "--db", db)
    (s,) = json.loads(out)
    assert code == 0
    assert (s["end_reason"], s["dose_ul"], s["start_utc"]) == \
        ("max_session", 2500.0, "2026-11-18T11:06:43Z")


def test_show(capsys: pytest.CaptureFixture[str], db: str) -> None:
    code, out, _ = run(capsys, "sessions", "show", "1", "--db", db)
    assert code == 0
    assert out.startswith("session 1\n")
    assert "full dose delivered (max_session)" in out and "2500 µl" in out
    # --db and --json before the subcommand work as well as after it.
    code, out, _ = run(capsys, "sessions", "--db", db, "--json", "show", "1")
    data = json.loads(out)
    assert code == 0 and data["id"] == 1 and len(data["series"]) == data["samples"]
    # The last sample is the step before the one whose encoder count reached the limit:
    # within one step's dose (0.5 µl at 300 µl/min) below it.
    assert 2499.5 <= data["series"][-1]["dose_ul"] <= 2500.0


def test_export_csv(capsys: pytest.CaptureFixture[str], db: str, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "sessions", "export", "--csv", "--db", db)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 1 and rows[0]["end_reason"] == "max_session"
    target = tmp_path / "samples.csv"
    code, _, err = run(capsys, "sessions", "export", "--csv", "--session", "1",
                       "-o", str(target), "--db", db)
    rows = list(csv.DictReader(target.open()))
    assert code == 0 and "wrote" in err
    # The last sample: within one step's dose of the limit (see test_show).
    assert 2499.5 <= float(rows[-1]["dose_ul"]) <= 2500.0 and float(rows[1]["t_s"]) == 1.0


def test_import_trace(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                      demo_trace: Path) -> None:
    db = str(tmp_path / "new" / "s.db")
    code, out, _ = run(capsys, "sessions", "import-trace", str(demo_trace), "--db", db,
                       "--device", "bench")
    assert code == 0 and "1 session (id 1)" in out
    code, out, _ = run(capsys, "sessions", "import-trace", str(demo_trace), "--db", db,
                       "--device", "bench", "--json")
    assert code == 0 and json.loads(out)["already_imported"] is True


def one_line_error(code: int, out: str, err: str, expected_code: int, *fragments: str) -> None:
    assert code == expected_code
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for f in fragments:
        assert f in err, err


def test_errors(capsys: pytest.CaptureFixture[str], db: str, tmp_path: Path) -> None:
    one_line_error(*run(capsys, "sessions", "show", "42", "--db", db), 1,
                   "steamer sessions show: ", "no session 42")
    one_line_error(*run(capsys, "plot", "42", "-o", str(tmp_path / "x.png"), "--db", db), 1,
                   "steamer plot: no session 42")
    one_line_error(*run(capsys, "plot", "1", "-o", str(tmp_path / "no" / "x.png"), "--db", db),
                   1, "steamer plot: ", "x.png")
    one_line_error(*run(capsys, "sessions", "export", "--csv", "-o",
                        str(tmp_path / "no" / "x.csv"), "--db", db), 1, "x.csv")
    assert not list(tmp_path.glob("no*"))
    one_line_error(*run(capsys, "sessions", "--db", str(tmp_path / "typo.db")), 1,
                   "no database at")
    assert not (tmp_path / "typo.db").exists()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"t_ms": 0, "state": "idle", "fw": {}}\nnot json\n')
    one_line_error(*run(capsys, "sessions", "import-trace", str(bad), "--db", db), 2,
                   "bad.jsonl line 2: not valid JSON")


def test_plot_writes_the_format_its_suffix_names(capsys: pytest.CaptureFixture[str], db: str,
                                                tmp_path: Path) -> None:
    for name, magic in (("s.pdf", b"%PDF"), ("s.svg", b"<?xml"), ("S.PNG", b"\x89PNG")):
        code, _, err = run(capsys, "plot", "1", "-o", str(tmp_path / name), "--db", db)
        assert code == 0, err
        assert (tmp_path / name).read_bytes()[:len(magic)] == magic, name
    for name in ("s.foo", "s"):
        one_line_error(*run(capsys, "plot", "1", "-o", str(tmp_path / name), "--db", db), 2,
                       f"steamer plot: {tmp_path / name}: ", "not a format a plot can be",
                       ".pdf", ".png", ".svg")
        assert not (tmp_path / name).exists()


def test_show_says_why_it_ended_once(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        store.add_device("5E:7A:00:00:00:01", name="bathroom")
        store.ingest("5E:7A:00:00:00:01", [
            {"seq": 1, "kind": "session_started", "payload": {
                "podlet": "0000c0ffee01", "podlet_type": 3, "target_c": 45.0}},
            {"seq": 2, "kind": "session_ended", "payload": {"reason": "completed",
                                                            "session_ul": 600}}])
    code, out, _ = run(capsys, "sessions", "show", "1", "--db", str(tmp_path / "s.db"))
    assert code == 0
    assert "completed (completed)" not in out and ", completed\n" in out
    assert "  device    bathroom (5E:7A:00:00:00:01)\n" in out
    code, out, _ = run(capsys, "sessions", "--db", str(tmp_path / "s.db"))
    assert out.splitlines()[1].split()[:3] == ["1", "-", "bathroom"]


def test_a_new_database_is_announced(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                     demo_trace: Path) -> None:
    db = tmp_path / "new" / "s.db"
    code, _, err = run(capsys, "sessions", "import-trace", str(demo_trace), "--db", str(db))
    assert code == 0 and err == f"created the session database {db}\n"
    code, _, err = run(capsys, "sessions", "import-trace", str(demo_trace), "--db", str(db))
    assert code == 0 and err == ""


def test_newer_database(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    for argv in (["sessions"], ["sessions", "show", "1"], ["plot", "1", "-o", "x.png"],
                 ["sessions", "export", "--csv"]):
        one_line_error(*run(capsys, *argv, "--db", str(path)), 1, "newer than this program")


def test_help_has_examples() -> None:
    p = parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    for name in ("sessions", "plot"):
        assert "Example" in (sub.choices[name].epilog or "")
    group = sub.choices["sessions"]
    gsub = next(a for a in group._actions if isinstance(a, argparse._SubParsersAction))
    for name, child in gsub.choices.items():
        assert "Example" in (child.epilog or ""), name


def test_as_a_process(tmp_path: Path, demo_trace: Path) -> None:
    """The commands end to end in their own process, the database named by STEAMER_DB."""
    env = dict(os.environ, STEAMER_DB=str(tmp_path / "data" / "s.db"), HOME=str(tmp_path))

    def steamer(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "steamer.cli.history", *argv],
                              capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path)

    proc = steamer("sessions", "import-trace", str(demo_trace))
    assert proc.returncode == 0, proc.stderr
    proc = steamer("sessions", "--json")
    (s,) = json.loads(proc.stdout)
    assert (s["end_reason"], s["dose_ul"]) == ("max_session", 2500.0)
    proc = steamer("plot", str(s["id"]), "-o", "s.png")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    proc = steamer("sessions", "show", "99")
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == "steamer sessions show: no session 99 (`steamer sessions` lists them)\n"
    proc = steamer("sessions", "show", "not-a-number")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


READS = (["sessions"], ["sessions", "--json"], ["sessions", "show", "1"],
         ["sessions", "show", "1", "--json"], ["sessions", "export", "--csv"],
         ["sessions", "export", "--csv", "--session", "1"])


def test_a_read_writes_nothing_into_a_0_byte_file(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    for argv in [*READS, ["plot", "1", "-o", str(tmp_path / "p.png")]]:
        one_line_error(*run(capsys, *argv, "--db", str(path)), 1,
                       f"{path} is empty, not a session database")
        assert path.read_bytes() == b""


def test_a_read_of_no_default_database_is_an_empty_history_and_makes_none(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEAMER_DB", str(tmp_path / "data" / "s.db"))
    code, out, err = run(capsys, "sessions", "--json")
    assert (code, out, err) == (0, "[]\n", "")
    one_line_error(*run(capsys, "sessions", "show", "1"), 1, "no session 1")
    assert not (tmp_path / "data").exists()


def test_reads_work_on_a_read_only_database(capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path, demo_trace: Path) -> None:
    folder = tmp_path / "media"
    folder.mkdir()
    path = folder / "s.db"
    with Store.open(path) as store:
        import_trace(store, "sim", demo_trace, start_epoch_s=EPOCH_S)
    assert sorted(p.name for p in folder.iterdir()) == ["s.db"]   # no -wal, no -shm
    before = path.read_bytes()
    with read_only(path, folder):
        for argv in [*READS, ["plot", "1", "-o", str(tmp_path / "p.png")]]:
            code, out, err = run(capsys, *argv, "--db", str(path))
            assert code == 0 and "Traceback" not in err, (argv, err)
        code, out, _ = run(capsys, "sessions", "--json", "--db", str(path))
        assert json.loads(out)[0]["dose_ul"] == 2500.0
        # A command that writes says why it cannot.
        one_line_error(*run(capsys, "sessions", "import-trace", str(demo_trace), "--device",
                            "other", "--db", str(path)), 1, str(path))
    assert path.read_bytes() == before
