"""`sessions import-trace` against traces no simulator writes: it refuses them (exit 2,
one line naming the line) or takes them, and whatever it took every read shows."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from steamer.cli.history import build_parser
from store_strategies import fuzzed_trace, start_epoch_arg


def steamer(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        args = build_parser().parse_args(argv)
        code = args.func(args)
    return code, out.getvalue(), err.getvalue()


def refused_or_readable(tmp: Path, trace_text: str, start: list[str]) -> int:
    """Imports the trace; asserts a refusal is one line naming the trace, and that an
    accepted import reads back with every read command. The import's exit code."""
    trace = tmp / "t.jsonl"
    trace.write_text(trace_text, encoding="utf-8", errors="surrogatepass")
    db = str(tmp / "s.db")
    code, out, err = steamer("sessions", "import-trace", str(trace), "--db", db, *start)
    assert code in (0, 2), err
    if code == 2:
        (line,) = err.splitlines()
        assert line.startswith(f"steamer sessions import-trace: {trace}"), line
        return code
    ids = json.loads(steamer("sessions", "import-trace", str(trace), "--db", db, "--json",
                             *start)[1])["session_ids"] or [1]
    code, out, _ = steamer("sessions", "--json", "--db", db)
    ids = [s["id"] for s in json.loads(out)]
    reads = [("sessions", "--db", db), ("sessions", "export", "--csv", "--db", db)]
    for i in ids:
        reads += [("sessions", "show", str(i), "--db", db),
                  ("sessions", "show", str(i), "--json", "--db", db),
                  ("sessions", "export", "--csv", "--session", str(i), "--db", db),
                  ("plot", str(i), "-o", str(tmp / "p.png"), "--db", db)]
    for argv in reads:
        code, out, err = steamer(*argv)
        assert code == 0 and err in ("", f"wrote {tmp / 'p.png'}\n"), (argv, err)
        out.encode("utf-8")
    return 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trace_text=fuzzed_trace(), start=start_epoch_arg())
def test_an_import_is_refused_or_every_read_shows_it(tmp_path_factory: pytest.TempPathFactory,
                                                    trace_text: str, start: list[str]) -> None:
    refused_or_readable(tmp_path_factory.mktemp("fuzz"), trace_text, start)


def demo_lines(demo_trace: Path) -> list[str]:
    return demo_trace.read_text().splitlines()


@pytest.mark.parametrize("which, change, start, match", [
    ("step", lambda r: r.update(t_ms=10**30), [], "t_ms 1000000000000000000000000000000 is "),
    ("step", lambda r: r.update(t_ms=-5), [], "t_ms -5 is out of range"),
    ("step", lambda r: r["fw"].update(session_ul=1e308), [], "session_ul must be a number"),
    ("start", lambda r: r.update(extra=[[[[[[[[[[1]]]]]]]]]]), [], "nested deeper than 8"),
    ("start", lambda r: r.update(podlet="\ud800"), [], "is not Unicode"),
    ("start", lambda r: r.update(event="\ud800"), [], "kind: text '\\ud800' is not Unicode"),
    ("start", lambda r: r.update(podlet_type=2**70), [], "out of range"),
    ("start", lambda r: None, ["--start-epoch-s", "1e15"], "outside its range"),
    ("start", lambda r: None, ["--start-epoch-s", "-10"], "outside its range"),
    ("start", lambda r: None, ["--start-epoch-s", "nan"], "outside its range"),
])
def test_out_of_range_values_are_refused_naming_the_line(tmp_path: Path, demo_trace: Path,
                                                         which, change, start, match) -> None:
    lines = demo_lines(demo_trace)
    at = next(i for i, line in enumerate(lines) if '"session_started"' in line)
    at += 1 if which == "step" else 0
    rec = json.loads(lines[at])
    change(rec)
    lines[at] = json.dumps(rec)
    trace = tmp_path / "t.jsonl"
    trace.write_text("\n".join(lines) + "\n")
    db = tmp_path / "s.db"
    code, out, err = steamer("sessions", "import-trace", str(trace), "--db", str(db), *start)
    assert (code, out) == (2, ""), err
    (line,) = err.splitlines()
    assert f"t.jsonl line {at + 1}: " in line and match in line, line
    assert not db.exists()      # refused before any database is made


@pytest.mark.parametrize("text, match", [
    ('{"t_ms": ' + "1" * 5000 + "}", "not valid JSON: Exceeds the limit"),
    ("[" * 5000 + "]" * 5000, "not valid JSON: nested too deeply"),
    ("[" * 70000, "longer than 64 KiB"),
    ('{"t_ms": 100, "state": "ready", "fw": {"boiler_c": NaN}}', "NaN is not a JSON number"),
    ('{"t_ms": 100, "state": "ready", "fw": {}, "x": Infinity}', "Infinity is not a JSON"),
])
def test_json_no_simulator_writes_is_refused_naming_the_line(tmp_path: Path, text: str,
                                                             match: str) -> None:
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"t_ms": 0, "state": "idle", "fw": {}}\n' + text + "\n")
    code, out, err = steamer("sessions", "import-trace", str(trace), "--db",
                             str(tmp_path / "s.db"))
    assert (code, out) == (2, ""), err
    (line,) = err.splitlines()
    assert "t.jsonl line 2: " in line and match in line, line
