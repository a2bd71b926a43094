"""Runs firmware tests (tests/**/mpt_*.py) on the real MicroPython interpreter.

Each `def test_x():` at the start of a line in an mpt_*.py file is one pytest item
(`tests/device/mpt_ntc.py::test_x`). The first item of a file to run starts ONE
micropython process for the file (tests/mprunner.py) that runs the file's selected
tests in definition order (after the module's setup(), if any, once); the other
items read their outcome from it. Under
pytest-xdist the workers share that one run (a lock file per mpt file).

    .venv/bin/pytest tests/device                      # everything in a folder
    .venv/bin/pytest tests/device/mpt_ntc.py::test_x   # runs only test_x on the board
    .venv/bin/pytest --mpt-timeout 60 tests            # per-file limit (default 300 s)

MICROPYPATH is device/, protocol/, boards/sim, the test file's folder, then tests/.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import linecache
import os
import re
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

from steamer_dev.paths import ROOT, SIM_HEAP, micropython_env, micropython_exe

_RUNNER = ROOT / "tests" / "mprunner.py"
_MARK = "@mpt {"
_TEST_DEF = re.compile(r"^def (test_\w*)\s*\(", re.MULTILINE)
_TB_FILE = re.compile(r'^(\s*)File "([^"]+)", line (\d+)')
_DEFAULT_TIMEOUT_S = 300.0
_STDERR_TAIL = 40


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--mpt-timeout", type=float, default=None, metavar="S",
                     help=f"seconds one mpt_*.py file may run on micropython "
                          f"(default: ini mpt_timeout or {_DEFAULT_TIMEOUT_S:g})")
    parser.addini("mpt_timeout", f"default for --mpt-timeout (seconds, {_DEFAULT_TIMEOUT_S:g})",
                  default=str(_DEFAULT_TIMEOUT_S))


def _is_mpt(path: Path) -> bool:
    return path.suffix == ".py" and path.name.startswith("mpt_")


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if _is_mpt(file_path):
        return MptFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector):
    # pytest imports any .py file named on the command line as a test module; an mpt
    # file is MicroPython's alone.
    module = yield
    return None if _is_mpt(module_path) else module


@dataclass
class _Outcome:
    ok: bool
    error: str = ""
    output: str = ""  # what the test printed on stdout
    ms: int = 0


@dataclass
class _FileRun:
    outcomes: dict[str, _Outcome] = field(default_factory=dict)
    problem: str = ""  # why tests without an outcome have none (crash, timeout)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> _FileRun:
        raw = json.loads(text)
        return cls({k: _Outcome(**v) for k, v in raw["outcomes"].items()}, raw["problem"])


def _share_dir(config: pytest.Config) -> Path | None:
    """A folder all xdist workers of this run share (None when not under xdist)."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        return None
    factory = getattr(config, "_tmp_path_factory", None)
    # Each worker's basetemp is <the controller's basetemp>/gwN.
    base = factory.getbasetemp().parent if factory is not None else Path(tempfile.gettempdir())
    share = base / f"mpt-{workerinput.get('testrunuid', 'run')}"
    share.mkdir(parents=True, exist_ok=True)
    return share


class MptFileFailure(Exception):
    pass


class MptFile(pytest.File):
    """One mpt_*.py file: collected by reading its text, never imported by CPython."""

    _run: _FileRun | None = None

    def collect(self):
        for name, lineno in _test_defs(self.path):
            item = MptItem.from_parent(self, name=name)
            item.lineno = lineno
            yield item

    def outcome(self, name: str) -> _Outcome:
        if self._run is None:
            self._run = self._shared_run()
        found = self._run.outcomes.get(name)
        if found is None:
            return _Outcome(False, self._run.problem or "micropython reported nothing for this test")
        return found

    def _selected(self) -> list[str]:
        # Only what this session selected (-k, node ids); xdist workers hold every item.
        items = getattr(self.session, "items", None) or []
        names = [i.name for i in items if isinstance(i, MptItem) and i.parent is self]
        return names or [name for name, _ in _test_defs(self.path)]

    def _timeout_s(self) -> float:
        opt = self.config.getoption("mpt_timeout")
        return float(opt if opt is not None else self.config.getini("mpt_timeout"))

    def _shared_run(self) -> _FileRun:
        """Under xdist the workers holding items of this file share one run: the first to
        take the file's lock runs it, the others wait and read its outcomes. A worker that
        dies while holding the lock releases it and leaves no outcomes, so the next runs."""
        names = self._selected()
        share = _share_dir(self.config)
        if share is None:
            return self._run_file(names)
        key = hashlib.sha1("\0".join([str(self.path), *names]).encode()).hexdigest()[:16]
        done = share / f"{key}.json"
        with open(share / f"{key}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if done.exists():
                return _FileRun.from_json(done.read_text(encoding="utf-8"))
            run = self._run_file(names)
            part = done.with_suffix(".part")
            part.write_text(run.to_json(), encoding="utf-8")
            part.replace(done)
            return run

    def _run_file(self, names: list[str]) -> _FileRun:
        env = micropython_env("sim")
        env["MICROPYPATH"] = os.pathsep.join([env["MICROPYPATH"], str(self.path.parent),
                                              str(ROOT / "tests")])
        cmd = [micropython_exe(), "-X", f"heapsize={SIM_HEAP}", str(_RUNNER),
               str(self.path), *names]
        timeout_s = self._timeout_s()
        try:
            proc = subprocess.run(cmd, env=env, cwd=str(ROOT), capture_output=True,
                                  timeout=timeout_s, stdin=subprocess.DEVNULL)
            stdout, stderr, code = proc.stdout, proc.stderr, proc.returncode
            timed_out = False
        except subprocess.TimeoutExpired as e:
            stdout, stderr, code = e.stdout or b"", e.stderr or b"", None
            timed_out = True
        run = _parse(stdout.decode("utf-8", "replace"))
        stderr_text = stderr.decode("utf-8", "replace")
        if timed_out:
            why = f"{self.path.name} timed out after {timeout_s:g} s on micropython (--mpt-timeout)"
        elif code != 0 or not run.done:
            why = f"micropython crashed: exit code {code}{_signal(code)}" + (
                "" if run.done else ", before reporting this test")
        else:
            return run.result
        if run.running is not None and run.running not in run.result.outcomes:
            run.result.outcomes[run.running] = _Outcome(
                False, f"{why} while running {run.running}\n{_tail(stderr_text)}", run.output)
        run.result.problem = (f"{why}" + (f" (during {run.running})" if run.running else "")
                              + f"\n{_tail(stderr_text)}")
        return run.result


class MptItem(pytest.Item):
    lineno = 0

    def runtest(self) -> None:
        assert isinstance(self.parent, MptFile)
        outcome = self.parent.outcome(self.name)
        if outcome.output:
            self.add_report_section("call", "micropython stdout", outcome.output)
        if not outcome.ok:
            raise MptFileFailure(outcome.error)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, MptFileFailure):
            return _with_source(str(excinfo.value))
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, self.lineno, f"{self.name} [micropython]"


def _test_defs(path: Path) -> list[tuple[str, int]]:
    """(name, 0-based line) of each module-level test function, in definition order;
    a name defined twice counts once, where it first appears."""
    text = path.read_text(encoding="utf-8")
    found: dict[str, int] = {}
    for m in _TEST_DEF.finditer(text):
        found.setdefault(m.group(1), text.count("\n", 0, m.start()))
    return list(found.items())


@dataclass
class _Parsed:
    result: _FileRun
    done: bool
    running: str | None
    output: str


def _parse(stdout: str) -> _Parsed:
    run = _FileRun()
    done = False
    running = None
    output: list[str] = []
    for line in stdout.splitlines(keepends=True):
        at = line.find(_MARK)
        if at < 0:
            output.append(line)
            continue
        if at:
            output.append(line[:at] + "\n")
        try:
            rec = json.loads(line[at + len(_MARK) - 1:])
        except ValueError:
            output.append(line)
            continue
        if "start" in rec:
            running = rec["start"]
            output = []
        elif "name" in rec:
            run.outcomes[rec["name"]] = _Outcome(bool(rec["ok"]), rec.get("error") or "",
                                                 "".join(output), rec.get("ms", 0))
            running = None
            output = []
        elif rec.get("done"):
            done = True
    return _Parsed(run, done, running, "".join(output))


def _with_source(traceback_text: str) -> str:
    """MicroPython's traceback names file and line only; add the source line under each
    frame, as CPython does, so a bare `assert a == b` says which assert. The first line
    sums it up for pytest's short summary."""
    out = []
    src = ""
    for line in traceback_text.splitlines():
        m = _TB_FILE.match(line)
        if m and Path(m.group(2)).name == _RUNNER.name:
            continue  # the runner's own frame
        out.append(line)
        if m:
            src = linecache.getline(m.group(2), int(m.group(3))).strip()
            if src:
                out.append(f"{m.group(1)}  {src}")
    last = out[-1].strip() if out else ""
    if "Traceback" not in traceback_text:
        return "\n".join(out)
    if last.endswith(":") or last == "AssertionError":
        last = f"{last.rstrip(':')}: {src}" if src else last
    return "\n".join([last, ""] + out)


def _tail(text: str) -> str:
    lines = text.rstrip().splitlines()
    if not lines:
        return "(micropython wrote nothing on stderr)"
    return "micropython stderr (last lines):\n" + "\n".join(lines[-_STDERR_TAIL:])


def _signal(code: int | None) -> str:
    if code is None or code >= 0:
        return ""
    import signal
    try:
        return f" ({signal.Signals(-code).name})"
    except ValueError:
        return ""
