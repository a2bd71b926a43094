"""`steamer dev build/flash/bench/typecheck` as a developer runs them, when an output path
or a tool is wrong: one line naming the problem, a non-zero exit, never a traceback,
and never after a long run."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest


def steamer(*args: str, code: int = 1, timeout: float = 120,
            pre: str = "") -> subprocess.CompletedProcess:
    """Runs `steamer ARGS` (after the Python in `pre`, which may replace a tool)."""
    script = textwrap.dedent(pre) + textwrap.dedent("""
        import sys
        from steamer.cli.main import main
        sys.exit(main(sys.argv[1:]))
        """)
    p = subprocess.run([sys.executable, "-c", script, *args], text=True, capture_output=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    assert "Traceback" not in p.stderr + p.stdout, p.stderr
    assert p.returncode == code, f"exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def one_line(p: subprocess.CompletedProcess) -> str:
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    return lines[0]


@pytest.mark.parametrize("out, why", [("/proc/x", "/proc/x: No such file or directory"),
                                      ("/etc/hostname", "/etc/hostname: Not a directory")])
def test_build_to_a_path_that_is_no_folder(out: str, why: str) -> None:
    assert one_line(steamer("dev", "build", "--board", "esp32c3", "--out", out)) == \
        f"steamer dev build: {why}"


def test_flash_with_a_build_folder_that_cannot_be(tmp_path: Path) -> None:
    # The port exists (any device file passes the check before mpremote runs).
    p = steamer("dev", "flash", "--port", "/dev/null", "--board", "esp32c3", "--build-dir",
                "/proc/x")
    assert p.stderr.splitlines()[-1] == \
        "steamer dev flash: build failed: /proc/x: No such file or directory"
    line = one_line(steamer("dev", "flash", "--port", "/dev/null", "--board", "esp32c3",
                            "--build-dir", "/etc/hostname", "--no-build"))
    assert line == "steamer dev flash: build folder /etc/hostname is not a folder"


@pytest.mark.parametrize("out, why", [("/proc/x.json", "No such file or directory"),
                                      ("/tmp", "is a folder"),
                                      ("/nonexistent/dir/b.json", "No such file or directory")])
def test_bench_checks_its_output_before_running(out: str, why: str) -> None:
    t0 = time.monotonic()
    line = one_line(steamer("dev", "bench", "--out", out, "--parts", "control"))
    assert line == f"steamer dev bench: --out {out}: {why}"
    assert time.monotonic() - t0 < 20       # not after a run of the bench


def test_bench_out_leaves_no_file_when_checking(tmp_path: Path) -> None:
    from steamer.terminal import check_writable
    check_writable(tmp_path / "new.json")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "old.json").write_text("kept")
    check_writable(tmp_path / "old.json")
    assert (tmp_path / "old.json").read_text() == "kept"


@pytest.mark.parametrize("pyright, why", [
    ("/nonexistent/pyright", "esp32c3: /nonexistent/pyright: No such file or directory"),
    ("/bin/false", "esp32c3: pyright failed (exit 1), with no report")])
def test_typecheck_when_pyright_fails(pyright: str, why: str) -> None:
    pre = f"""
        import steamer_dev.build as build
        build._pyright_exe = lambda: {pyright!r}
        """
    line = one_line(steamer("dev", "typecheck", "--board", "esp32c3", pre=pre))
    assert line == f"steamer dev typecheck: {why}"


def test_build_says_where_it_wrote(tmp_path: Path) -> None:
    out = tmp_path / "c3"
    p = steamer("dev", "build", "--board", "esp32c3", "-o", str(out), code=0)
    n = sum(1 for f in out.rglob("*") if f.is_file() and f.name != ".steamer-build")
    assert p.stderr.strip().splitlines()[-1] == f"wrote {n} files for esp32c3 to {out}"
    import json
    p = steamer("dev", "build", "--board", "esp32c3", "--out", str(out), "--json", code=0)
    assert json.loads(p.stdout)["out"] == str(out)


def test_bench_writes_each_part_as_it_ends_and_keeps_them_when_interrupted(
        tmp_path: Path) -> None:
    import json
    import signal
    out = tmp_path / "bench.json"
    proc = subprocess.Popen([sys.executable, "-m", "steamer.cli.main", "dev", "bench", "--parts",
                             "control,limits", "--repeats", "1", "-o", str(out)],
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not out.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "no partial file"
            time.sleep(0.2)
        time.sleep(1)                   # well into the limits part
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert stdout == ""
    partial = json.loads(out.read_text())
    assert partial["complete"] is False and "control" in partial and "limits" not in partial
    assert partial["control"]["alloc_errors"] == 0 and partial["wall_s"]["control"] > 0
    assert "bench: part 1/2: control: nominal plant, 1 runs" in stderr
    assert "bench: part 2/2: limits: 100000 random sequences" in stderr
    assert f"bench: interrupted (the parts done so far are in {out})" in stderr


def first_part_line(*args: str) -> str:
    """The line `steamer dev bench ARGS` says its first part runs, then interrupted."""
    proc = subprocess.Popen([sys.executable, "-m", "steamer.cli.main", "dev", "bench", *args],
                            text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("bench: part 1/"):
                return line.rstrip("\n")
        raise AssertionError(f"no part started (exit {proc.wait()})")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_bench_has_a_size_option_per_part() -> None:
    assert first_part_line("--parts", "control", "--repeats", "2") == \
        "bench: part 1/1: control: nominal plant, 2 runs"
    assert "7 randomized" in first_part_line("--parts", "nominal", "--sessions", "7")
    assert first_part_line("--parts", "limits", "--limits-sequences", "30") == \
        "bench: part 1/1: limits: 30 random sequences"
    assert first_part_line("--parts", "ble", "--ble-records", "11,13", "--ble-sync-runs", "1",
                           "--ble-chaos-rounds", "5", "--ble-reconnects", "3") == \
        ("bench: part 1/1: ble: log sync 1 x 11 records at MTU 23 and 13 at 247, "
         "3 reconnects, 5 chaos rounds, heap")
    p = steamer("dev", "bench", "--ble-records", "0", code=2)
    assert "--ble-records" in p.stderr


def test_bench_units_counts_trips_and_the_model_the_units_measured(tmp_path: Path) -> None:
    """`--parts units`: sessions on units drawn off the firmware's model (issue 15); none
    trips, and the heat capacity each unit measured in its first session is nearer its
    truth than the default it started from."""
    out = tmp_path / "units.json"
    proc = subprocess.run([sys.executable, "-m", "steamer.cli.main", "dev", "bench",
                           "--parts", "units", "--sessions", "6", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    units = json.loads(out.read_text())["units"]
    assert units["sessions"] == 6 and units["false_trips"] == 0, units["trips"]
    assert units["alloc_errors"] == 0 and units["calibrated"] >= 5
    heat = units["model_error"]["heat_j_per_k"]
    assert heat["kept"]["n"] >= 5
    assert heat["kept"]["p50_pct"] < heat["default"]["p50_pct"] / 2, heat
    assert "bench: units: 0 false trips, 0 alloc errors over 6 units" in proc.stderr
