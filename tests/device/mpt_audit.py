"""The audit log's recovery at boot: a last line that fails its link (written over), that
states no hash, or that a power cut left without its newline is a break. The boot
neither crashes nor chains on blindly: the next line says `audit_break`, the chain goes
on from the hash the bad line states, and a verifier finds that line alone."""
import json
import os

from fw import audit
import powercut

_PATH = powercut.MOUNT + "/audit"


def _log(n):
    """A new log of n records (the rig of the test before is closed)."""
    rig = powercut.Rig()
    a = audit.Audit(powercut.MOUNT)
    for i in range(n):
        a.append({"event": "test", "i": i + 1})
    return rig


def _lines():
    with open(_PATH, "rb") as f:
        return f.read().decode().split("\n")[:-1]     # every line ends with its newline


def _rewrite_last(fn):
    lines = _lines()
    lines[-1] = fn(lines[-1])
    with open(_PATH, "w") as f:
        f.write("\n".join(lines) + "\n")


def _events(lines):
    out = []
    for line in lines:
        p = audit.parse(line + "\n")
        out.append(json.loads(p[1].partition(" ")[2])["event"] if p else None)
    return out


def _recovered(bad_line, seq_after):
    """Boots the log, appends one record; checks the break was said and is the only one."""
    a = audit.Audit(powercut.MOUNT)
    assert a.seq == seq_after, (a.seq, seq_after)
    a.append({"event": "after"})
    lines = _lines()
    breaks = []
    audit.verify(lines, audit.GENESIS, breaks)
    assert breaks == [bad_line], breaks
    assert _events(lines)[bad_line:] == ["audit_break", "after"], _events(lines)
    # Strictly: sound up to the bad line, and from it on.
    audit.verify(lines[:bad_line - 1])
    p = audit.parse(lines[bad_line - 1] + "\n")
    audit.verify(lines[bad_line:], p[2] if p else audit.parse(lines[bad_line - 2] + "\n")[2])
    # A boot now finds nothing to say.
    assert audit.Audit(powercut.MOUNT).seq == a.seq
    assert len(_lines()) == len(lines)


def test_a_clean_log_boots_without_a_word():
    rig = _log(5)
    a = audit.Audit(powercut.MOUNT)
    assert a.seq == 5 and len(_lines()) == 5
    assert a.head == audit.verify(_lines())
    rig.close()


def test_a_last_line_written_over_is_a_break():
    rig = _log(5)
    _rewrite_last(lambda line: line.replace('"i": 5', '"i": 9'))
    _recovered(5, 6)
    rig.close()


def test_a_last_line_with_its_hash_written_over_is_a_break():
    rig = _log(5)
    _rewrite_last(lambda line: line[:-64] + "f" * 64)
    _recovered(5, 6)
    rig.close()


def test_a_last_line_stating_no_hash_is_a_break_after_the_line_before():
    rig = _log(5)
    _rewrite_last(lambda line: line[:-70])
    _recovered(5, 5)
    rig.close()


def test_a_line_cut_short_is_closed_and_is_a_break():
    """littlefs shows an append whole or not at all; a line cut short all the same (a
    flash that broke its promise) must not glue the next line onto it."""
    rig = _log(5)
    with open(_PATH, "a") as f:
        f.write('6 {"event": "te')
    _recovered(6, 6)
    rig.close()


def test_a_first_line_of_a_new_log_written_over():
    rig = _log(1)
    _rewrite_last(lambda line: line.replace('"i": 1', '"i": 2'))
    _recovered(1, 2)
    rig.close()
