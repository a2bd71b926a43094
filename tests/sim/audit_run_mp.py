"""Runs on micropython, for test_audit_log.py: a scenario through boards/sim/simrun.py
as `steamer sim run` runs it, but with the board's flash kept in FLASH_PATH; then prints
the device's audit log, read off that flash, a line `@audit <line>` per log line.

    micropython -X heapsize=384k audit_run_mp.py SIMRUN_PY SCENARIO.json TRACE FLASH_PATH
"""
import sys
import vfs

import board as simboard
from flash import FileFlash

_simrun, _scenario, _trace, _flash = sys.argv[1:5]
_make = simboard.make


def _make_keeping_flash(*args, **kw):
    kw["flash_path"] = _flash
    return _make(*args, **kw)


simboard.make = _make_keeping_flash
while sys.argv:                 # simrun reads its arguments there (which is read-only)
    sys.argv.pop()
sys.argv.extend((_simrun, _scenario, _trace, "--quiet"))
__import__("simrun")            # runs the scenario, prints the summary

vfs.mount(vfs.VfsLfs2(FileFlash(_flash)), "/kept")
for _name in ("audit.1", "audit"):
    try:
        _f = open("/kept/" + _name, "rb")
    except OSError:
        continue
    with _f:
        for _line in _f:
            sys.stdout.write("@audit " + _line.decode())
vfs.umount("/kept")
