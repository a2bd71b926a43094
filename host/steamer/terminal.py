"""The command-line plumbing every face shares (`steamer`'s consumer and history
commands in steamer.cli, and steamer_mfg, steamer_sim, steamer_dev, steamer_bench):
exit codes, the `command` decorator that turns a command's expected failures into one
line on stderr and an exit code, `fail`, tables and JSON on stdout, argparse types, and
`run_parser`, which runs a parsed command under Ctrl-C, SIGTERM and a reader gone away.

A library: it imports no face and no product library.
"""
from __future__ import annotations

import argparse
import asyncio
import functools
import inspect
import json
import math
import os
import signal
import sqlite3
import sys
import threading
from typing import IO, Any, Callable, Sequence

# Exit codes: 0 done, FAILED the command could not be done (one line on stderr says
# why), BAD_INPUT a wrong input (argparse uses 2 as well), INTERRUPTED Ctrl-C,
# TERMINATED SIGTERM.
FAILED = 1
BAD_INPUT = 2
INTERRUPTED = 130
TERMINATED = 128 + signal.SIGTERM

# How an expected error reads: formatter(error, command name, parsed args) -> message.
Formatter = Callable[[BaseException, str, argparse.Namespace], str]
# (exception type(s), exit code, formatter or None for str(error)): the first row whose
# type matches decides.
ErrorRow = tuple["type[BaseException] | tuple[type[BaseException], ...]", int,
                 "Formatter | None"]


def os_error_text(e: BaseException, _name: str = "", _args: object = None) -> str:
    """"FILE: what went wrong" (or just what went wrong when no file is named)."""
    assert isinstance(e, OSError)
    where = f"{e.filename}: " if e.filename else ""
    return f"{where}{e.strerror or e}"


# The rows every command has, after its own: a database error and an OS error.
COMMON_ERRORS: tuple[ErrorRow, ...] = (
    (sqlite3.Error, FAILED, lambda e, _n, _a: f"database error: {e}"),
    (OSError, FAILED, os_error_text),
)


def fail(name: str, message: str, code: int = FAILED) -> int:
    """Says "steamer NAME: MESSAGE" on stderr; returns `code`."""
    print(f"steamer {name}: {message}", file=sys.stderr)
    return code


def reader_gone() -> int:
    """What a command does when its reader went away (`steamer status X | head -1`): says
    nothing more to it (not even at exit, when Python flushes stdout) and fails."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return FAILED


def command(name: str, errors: Sequence[ErrorRow] = ()
            ) -> Callable[[Callable[[argparse.Namespace], Any]],
                          Callable[[argparse.Namespace], int]]:
    """Runs a command (a function of the parsed args returning its exit code, or a
    coroutine function, run with asyncio.run). Its expected failures, `errors` rows
    first and then COMMON_ERRORS, become one line "steamer NAME: message" on stderr and
    the row's exit code. A reader gone away fails quietly (reader_gone); Ctrl-C returns
    INTERRUPTED after saying `args.on_interrupt` when the command set one."""
    table = tuple(errors) + COMMON_ERRORS

    def wrap(func: Callable[[argparse.Namespace], Any]) -> Callable[[argparse.Namespace], int]:
        is_async = inspect.iscoroutinefunction(func)

        @functools.wraps(func)
        def run(args: argparse.Namespace) -> int:
            try:
                return asyncio.run(func(args)) if is_async else func(args)
            except BrokenPipeError:
                return reader_gone()
            except KeyboardInterrupt:
                note = getattr(args, "on_interrupt", None)
                if note:
                    print(f"\n{note}", file=sys.stderr)
                return INTERRUPTED
            except Exception as e:
                for kinds, code, text in table:
                    if isinstance(e, kinds):
                        return fail(name, text(e, name, args) if text else str(e), code)
                raise
        return run
    return wrap


def print_table(rows: Sequence[Sequence[str]], out: IO[str] | None = None,
                right: Sequence[int] = ()) -> None:
    """Rows of text in columns two spaces apart (the columns numbered in `right`
    right-aligned), the first row usually the headings."""
    out = sys.stdout if out is None else out
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.rjust(w) if i in right else c.ljust(w)
                        for i, (c, w) in enumerate(zip(r, widths))).rstrip(), file=out)


def json_out(data: object) -> None:
    """`data` as indented JSON on stdout (non-ASCII text as it is)."""
    print(json.dumps(data, indent=1, ensure_ascii=False))


def positive_s(text: str) -> float:
    """argparse type: a number of seconds, greater than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text} must be a number of seconds greater than 0")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number, 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be 1 or more")
    return value


def run_parser(make_parser: Callable[[], argparse.ArgumentParser],
               argv: list[str] | None = None) -> int:
    """Builds the parser, parses argv and runs the chosen command's func; its exit code.
    Ctrl-C (130) and SIGTERM (143) at any point, the parser's imports included, end it
    without a traceback, as does a reader that went away."""
    terminated = False

    def on_sigterm(_signum: int, _frame: object) -> None:
        # Handled as Ctrl-C is: every command's clean-up runs (child processes, temporary
        # folders), and a session on a steamer goes on.
        nonlocal terminated
        terminated = True
        raise KeyboardInterrupt

    main_thread = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, on_sigterm) if main_thread else None
    try:
        args = make_parser().parse_args(argv)
        code = int(args.func(args) or 0)
        sys.stdout.flush()      # a reader gone shows here, not in Python's exit
    except KeyboardInterrupt:
        code = INTERRUPTED
    except BrokenPipeError:
        code = reader_gone()
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, before)
    return TERMINATED if terminated else code
