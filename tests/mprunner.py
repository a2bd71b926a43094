"""Runs the named test functions of one mpt_*.py file on MicroPython, for tests/conftest.py.

    micropython -X heapsize=416k tests/mprunner.py FILE TEST_NAME...

The file's folder must be on MICROPYPATH. Prints, on stdout, a line `@mpt {"start": NAME}`
before each test and `@mpt {"name", "ok", "error", "ms"}` after it, then `@mpt {"done": true}`;
anything else on stdout is the tests' own output. A module-level setup(), when present,
runs once before the first test; if it (or the import) fails, every test fails with it.
"""
import io
import json
import sys
import time

_MARK = "@mpt "


def _say(record):
    sys.stdout.write(_MARK + json.dumps(record) + "\n")


def _traceback(e):
    buf = io.StringIO()
    sys.print_exception(e, buf)
    return buf.getvalue()


def _main():
    path = sys.argv[1]
    names = sys.argv[2:]
    base = path.rsplit("/", 1)[-1]
    modname = base[:-3] if base.endswith(".py") else base
    broken = None
    try:
        mod = __import__(modname)
        setup = getattr(mod, "setup", None)
        if setup is not None:
            try:
                setup()
            except BaseException as e:  # noqa: B036 - SystemExit too: report, never die
                if isinstance(e, KeyboardInterrupt):
                    raise
                broken = "setup() failed:\n" + _traceback(e)
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):
            raise
        broken = "importing %s failed:\n%s" % (path, _traceback(e))
    for name in names:
        _say({"start": name})
        t0 = time.ticks_ms()
        if broken is not None:
            _say({"name": name, "ok": False, "error": broken, "ms": 0})
            continue
        fn = getattr(mod, name, None)
        if fn is None:
            _say({"name": name, "ok": False, "ms": 0,
                  "error": "%s has no module-level function %s" % (path, name)})
            continue
        error = None
        try:
            fn()
        except BaseException as e:
            if isinstance(e, KeyboardInterrupt):
                raise
            error = _traceback(e)
        _say({"name": name, "ok": error is None, "error": error,
              "ms": time.ticks_diff(time.ticks_ms(), t0)})
    _say({"done": True})


_main()
