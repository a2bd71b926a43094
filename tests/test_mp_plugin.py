"""The mpt_*.py plugin (tests/conftest.py): items, outcomes, crashes and timeouts, proven
on throwaway test files run by a nested pytest with the same conftest."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

_CONFTEST = Path(__file__).with_name("conftest.py")


@pytest.fixture
def mp(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(_CONFTEST.read_text(encoding="utf-8"))
    return pytester


def _write(pytester: pytest.Pytester, name: str, body: str) -> None:
    pytester.makepyfile(**{name: textwrap.dedent(body)})


_MIXED = """
    import sys

    ran = []

    def setup():
        ran.append("setup")

    def test_on_micropython():
        ran.append("mp")
        assert sys.implementation.name == "micropython"
        import micropython  # no such module on CPython
        micropython.mem_info

    def test_fails_with_its_assert():
        answer = 41
        assert answer == 42

    def helper():
        return 1

    def test_definition_order_and_one_setup():
        print("order", ran)
        assert ran == ["setup", "mp"], ran
"""


def test_pass_and_fail_are_reported_with_the_micropython_traceback(mp: pytest.Pytester) -> None:
    _write(mp, "mpt_mixed", _MIXED)
    result = mp.runpytest("-rA")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["PASSED mpt_mixed.py::test_on_micropython",
                                 "PASSED mpt_mixed.py::test_definition_order_and_one_setup"])
    result.stdout.fnmatch_lines(["FAILED mpt_mixed.py::test_fails_with_its_assert - "
                                 "AssertionError: assert answ*"])
    # The frame and source line come from MicroPython's traceback of the failing test.
    result.stdout.fnmatch_lines(['*File "*mpt_mixed.py", line 1?, in test_fails_with_its_assert',
                                 "*assert answer == 42"])
    out = result.stdout.str()
    assert "Captured micropython stdout" in out
    assert "order ['setup', 'mp']" in out


def test_each_test_function_is_one_item(mp: pytest.Pytester) -> None:
    _write(mp, "mpt_mixed", _MIXED)
    result = mp.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines([
        "mpt_mixed.py::test_on_micropython",
        "mpt_mixed.py::test_fails_with_its_assert",
        "mpt_mixed.py::test_definition_order_and_one_setup",
        "3 tests collected*",
    ])


def test_a_node_id_runs_only_that_test(mp: pytest.Pytester) -> None:
    _write(mp, "mpt_mixed", _MIXED)
    # Run alone, the order test sees no "mp": the other tests did not run on the board.
    result = mp.runpytest("mpt_mixed.py::test_definition_order_and_one_setup")
    result.assert_outcomes(failed=1)
    assert "AssertionError: ['setup']" in result.stdout.str()


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_file_runs_once_for_all_its_items(mp: pytest.Pytester, tmp_path: Path,
                                              xdist: list[str]) -> None:
    marker = tmp_path / "runs.txt"
    tests = "".join(f"def test_{i}():\n    pass\n\n" for i in range(12))
    mp.makepyfile(mpt_once=f"f = open({str(marker)!r}, 'a')\nf.write('run\\n')\nf.close()\n\n"
                  + tests)
    result = mp.runpytest(*xdist)
    result.assert_outcomes(passed=12)
    assert marker.read_text().splitlines() == ["run"]


def test_import_error_fails_every_test(mp: pytest.Pytester) -> None:
    _write(mp, "mpt_broken", """
        import no_such_module

        def test_one():
            pass

        def test_two():
            pass
    """)
    result = mp.runpytest()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*importing*mpt_broken.py failed*", "*ImportError*no_such_module*"])


def test_an_interpreter_crash_fails_the_rest_with_its_stderr(mp: pytest.Pytester) -> None:
    _write(mp, "mpt_crash", """
        import os
        import sys

        def test_before():
            pass

        def test_crashes():
            sys.stderr.write("last words\\n")
            os.system("kill -SEGV $PPID")  # the shell's parent is micropython

        def test_after():
            pass
    """)
    result = mp.runpytest("-rA")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "*micropython crashed: exit code -11 (SIGSEGV)*while running test_crashes*",
        "*last words*",
    ])
    result.stdout.fnmatch_lines(["*micropython crashed*(during test_crashes)*"])


def test_a_file_that_hangs_times_out(mp: pytest.Pytester) -> None:
    _write(mp, "mpt_hang", """
        def test_quick():
            pass

        def test_hangs():
            while True:
                pass
    """)
    result = mp.runpytest("--mpt-timeout", "1")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*mpt_hang.py timed out after 1 s*while running test_hangs*"])


def test_works_under_xdist(mp: pytest.Pytester) -> None:
    _write(mp, "mpt_mixed", _MIXED)
    _write(mp, "mpt_other", """
        def test_x():
            pass

        def test_y():
            assert 1 + 1 == 2
    """)
    result = mp.runpytest("-n", "2")
    # Under load distribution the order test may land on a worker without test_on_micropython
    # having run first in that worker's process: it still runs the whole file once.
    result.assert_outcomes(passed=4, failed=1)
