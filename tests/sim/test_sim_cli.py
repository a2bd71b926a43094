"""The `steamer sim` wrapper (steamer_sim.driver) around the MicroPython runner, driven with
stand-in runners (STEAMER_SIMRUN) so that each way the runner can behave is pinned down."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from steamer_sim import driver as sim
from steamer_sim.air import ENV
from steamer_sim.scenario import ScenarioError

STEAMER = Path(sys.executable).with_name("steamer")

# Reports what it was given: the scenario file's contents, the trace path, extra args.
ECHO = """
    import json, sys, time
    sys.stderr.write("progress one\\n")
    print("a stray print")
    with open(sys.argv[1]) as f:
        scenario = json.load(f)
    if sys.argv[2]:
        with open(sys.argv[2], "w") as f:
            f.write("{}\\n")
    time.sleep(scenario["plant"]["noise_pct"] / 1000)
    sys.stderr.write("progress two\\n")
    print(json.dumps({"contract": 1, "scenario": scenario, "trace": sys.argv[2],
                      "args": sys.argv[3:]}))
"""

CRASH = """
    import sys
    for i in range(30):
        sys.stderr.write("line %d\\n" % i)
    raise ValueError("plant exploded")
"""

NO_SUMMARY = """
    print("done, I think")
"""


@pytest.fixture(scope="module")
def _air() -> str:
    from steamer_sim.air import Air
    return Air().start_thread()


@pytest.fixture(autouse=True)
def _served_on_a_test_air(_air: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # `sim serve` would otherwise start the user's own air, which outlives the test.
    monkeypatch.setenv(ENV, _air)


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def use(source: str) -> Path:
        path = tmp_path / "fake_simrun.py"
        path.write_text(textwrap.dedent(source))
        monkeypatch.setenv(sim.SIMRUN_ENV, str(path))
        return path
    return use


def scenario_file(tmp_path: Path, **top) -> Path:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(dict({"duration_s": 60, "seed": 4}, **top)))
    return path


def steamer(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(STEAMER), "sim", *args], capture_output=True, text=True,
                          cwd=cwd, env=dict(os.environ), timeout=60)


def test_run_relays_the_summary_alone_on_stdout(runner, tmp_path: Path) -> None:
    runner(ECHO)
    proc = steamer("run", str(scenario_file(tmp_path)), "--trace", "t.jsonl", "--seed", "9",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    # The runner got the normalized scenario, the override seed and an absolute trace path.
    assert summary["scenario"]["seed"] == 9
    assert summary["scenario"]["plant"]["ambient_c"] == 22.0
    assert summary["scenario"]["events"] == []
    assert summary["trace"] == str(tmp_path / "t.jsonl")
    assert (tmp_path / "t.jsonl").exists()
    assert summary["args"] == []
    # Stray stdout goes to stderr; the two streams interleave as the pipes deliver them.
    err = proc.stderr.splitlines()
    assert [line for line in err if line != "a stray print"] == ["progress one", "progress two"]
    assert "a stray print" in err


def test_run_quiet_tells_the_runner(runner, tmp_path: Path) -> None:
    runner(ECHO)
    proc = steamer("run", str(scenario_file(tmp_path)), "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["args"] == ["--quiet"]
    assert json.loads(proc.stdout)["trace"] == ""
    assert proc.stderr == ""


def test_runner_failure_exits_1_with_the_stderr_tail(runner, tmp_path: Path) -> None:
    runner(CRASH)
    proc = steamer("run", str(scenario_file(tmp_path)), cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout == ""
    err = proc.stderr.splitlines()
    first = err.index("steamer sim run: the simulator failed: micropython exited with code 1")
    tail = err[first + 1:]
    assert tail[0] == "last lines of the simulator's output:"
    assert tail[-1] == "  ValueError: plant exploded"
    assert "  line 29" in tail and "  line 0" not in tail
    assert "line 0" in err[:first]  # passed through live before that


def test_no_summary_exits_1(runner, tmp_path: Path) -> None:
    runner(NO_SUMMARY)
    proc = steamer("run", str(scenario_file(tmp_path)), cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert ("steamer sim run: the simulator printed no summary "
            "(last stdout line: 'done, I think')") in proc.stderr.splitlines()


def test_trace_into_a_missing_folder_is_refused(runner, tmp_path: Path) -> None:
    runner(ECHO)
    proc = steamer("run", str(scenario_file(tmp_path)), "--trace", "nowhere/t.jsonl", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert "--trace" in proc.stderr and "nowhere" in proc.stderr


def test_serve_passes_speed_and_name_and_defaults_to_idle(runner, tmp_path: Path) -> None:
    runner(ECHO)
    proc = steamer("serve", "--name", "bench-1", "--speed", "50", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "a stray print"  # serve passes the runner's stdout through
    summary = json.loads(lines[-1])
    assert summary["args"] == ["--speed", "50.0", "--name", "bench-1"]
    assert summary["scenario"]["duration_s"] == 86400 and summary["scenario"]["events"] == []


def test_serve_with_a_scenario_and_bad_speed(runner, tmp_path: Path) -> None:
    runner(ECHO)
    proc = steamer("serve", "--scenario", str(scenario_file(tmp_path, seed=5)), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.splitlines()[-1])
    assert summary["scenario"]["seed"] == 5
    assert summary["args"] == ["--speed", "1.0", "--name", "steamer-sim"]
    proc = steamer("serve", "--speed", "0", cwd=tmp_path)
    assert proc.returncode == 2 and "--speed" in proc.stderr


def test_help_has_examples(tmp_path: Path) -> None:
    for command in ("run", "serve", "air", "press", "insert", "remove", "refill", "fault"):
        proc = steamer(command, "--help", cwd=tmp_path)
        assert proc.returncode == 0
        example = proc.stdout[proc.stdout.index("Example"):]
        assert f"steamer sim {command} " in example, proc.stdout


def test_run_scenario_returns_the_summary(runner, tmp_path: Path) -> None:
    runner(ECHO)
    summary = sim.run_scenario({"duration_s": 30, "plant": {"water_ml": 99}}, None)
    assert summary["scenario"]["plant"]["water_ml"] == 99.0
    assert summary["args"] == ["--quiet"]
    with pytest.raises(ScenarioError, match=r"^duration_s: required$"):
        sim.run_scenario({}, None)


def test_run_scenario_raises_sim_error(runner) -> None:
    runner(CRASH)
    with pytest.raises(sim.SimError, match="exited with code 1") as info:
        sim.run_scenario({"duration_s": 30}, None)
    assert info.value.stderr_tail[-1] == "ValueError: plant exploded"


def test_run_many_keeps_order_and_runs_in_parallel(runner) -> None:
    runner(ECHO)
    # noise_pct / 1000 is how long the stand-in sleeps: 0.1 s .. 0.8 s, the longest first.
    scenarios = [{"duration_s": 10 + i, "plant": {"noise_pct": 80 - 10 * i}} for i in range(8)]
    t0 = time.monotonic()
    summaries = sim.run_many(scenarios, jobs=8)
    wall_s = time.monotonic() - t0
    assert [s["scenario"]["duration_s"] for s in summaries] == [10 + i for i in range(8)]
    assert wall_s < 3.6 * 0.75  # one at a time would take 3.6 s of sleeping alone


def test_run_many_names_the_failing_scenario(runner) -> None:
    runner(ECHO)
    with pytest.raises(ScenarioError, match=r"^scenarios\[1\]\.plant\.water_ml: "):
        sim.run_many([{"duration_s": 10}, {"duration_s": 10, "plant": {"water_ml": -1}}], jobs=2)
    runner(CRASH)
    with pytest.raises(sim.SimError, match=r"^scenarios\[0\]: the simulator failed"):
        sim.run_many([{"duration_s": 10}], jobs=1)


def test_the_real_runner_completes_a_short_scenario(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    summary = sim.run_scenario({"duration_s": 5, "seed": 2}, str(trace))
    assert summary["contract"] == 1 and summary["duration_s"] == 5
    assert summary["loop"]["steps"] >= 40
    assert sum(1 for _ in trace.open()) >= 50
