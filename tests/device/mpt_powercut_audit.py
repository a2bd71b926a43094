"""The hash-chained audit log under a power cut at every flash write: after the boot the
flash mounts, every line left chains to the one before it, nothing appended before the
cut is lost (but what the log's own rotation drops), at most the line being written is
missing, and appending goes on from the right sequence number and hash."""
import gc
import json
import os

from fw import audit
import powercut

_PATH = powercut.MOUNT + "/audit"
_OLD = _PATH + ".1"


def _record(seq):
    """The record appended as number seq (every run appends the same ones)."""
    return {"event": "test", "seq": seq, "pad": "p" * (seq % 50)}


def _lines():
    out = []
    for path in (_OLD, _PATH):
        try:
            f = open(path)
        except OSError:
            continue
        with f:
            for line in f:
                assert line.endswith("\n"), line     # no torn line is ever visible
                out.append(line)
    return out


def _verified():
    """The sequence numbers in the log, after checking every link and every record."""
    lines = _lines()
    if not lines:
        return []
    if lines[0].startswith("1 "):
        audit.verify(lines)
    else:
        # Rotation dropped the lines before: the first one left starts the chain.
        audit.verify(lines[1:], lines[0].rstrip("\n").rpartition(" ")[2])
    seqs = []
    for line in lines:
        body = line.rstrip("\n").rpartition(" ")[0]
        seq, _, rec = body.partition(" ")
        seq = int(seq)
        assert json.loads(rec) == _record(seq), line
        seqs.append(seq)
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    return seqs


def _rotations():
    """How many times the log has rotated: 0, 1, or 2 for two or more."""
    try:
        with open(_OLD) as f:
            first = int(f.readline().partition(" ")[0])
    except OSError:
        return 0
    return 1 if first == 1 else 2


def _first_seq():
    with open(_PATH) as f:
        return int(f.readline().partition(" ")[0])


class _Log:
    """A log prefilled (without cuts) until full(a), saved as the flash each cut starts
    from. `kept`: the first sequence number no cut may lose (when the sequence rotates
    the log for the second time, the oldest file goes: that is the log's policy)."""

    def __init__(self, rig, full):
        a = audit.Audit(powercut.MOUNT)
        while not full(a):
            a.append(_record(a.seq + 1))
        self.lines = a.seq
        self.rotations = _rotations()
        self.kept = _first_seq() if self.rotations else 1
        rig.save()

    def steps(self, appends):
        def boot(s):
            s.log = audit.Audit(s.dir)
            assert s.log.seq == self.lines

        def append(s):
            seq = s.log.seq + 1
            assert s.log.append(_record(seq)) == seq
        return [boot] + [append] * appends

    def check(self, rig):
        def check(s, done, seen):
            appended = self.lines + done - 1        # the boot step appends nothing
            seqs = _verified()
            last = seqs[-1] if seqs else 0
            # Nothing completed is lost, at most the append cut is there too.
            assert last in (appended, appended + 1), (s.k, last, appended)
            assert not seqs or seqs[0] <= self.kept, (s.k, seqs[0], self.kept)
            # After the boot the log goes on where the flash says it ended.
            log = audit.Audit(powercut.MOUNT)
            assert log.seq == last, (s.k, log.seq, last)
            assert log.append(_record(last + 1)) == last + 1
            rig.boot()
            assert _verified()[-1] == last + 1
        return check


def _run(full, appends, rotates):
    gc.collect()
    rig = powercut.Rig(blocks=40)
    log = _Log(rig, full)
    steps = log.steps(appends)
    per_step, _ = powercut.count_writes(rig, steps)
    assert all(per_step[1:]), per_step
    # The uncut run rotated the log as the test says.
    assert _rotations() == min(2, log.rotations + rotates), (_rotations(), log.rotations)
    assert _verified()[-1] == log.lines + appends
    n = powercut.every_cut(rig, steps, log.check(rig))
    rig.close()
    return n


def _near_full(rotations):
    """Prefilled until, after that many rotations, the file is within 200 bytes (about a
    line and a half) of FILE_MAX: the sequence's second or third append rotates it."""
    def full(a):
        return a.size >= audit.FILE_MAX - 200 and _rotations() == rotations
    return full


def test_cut_at_every_write_of_a_new_log():
    n = _run(lambda a: True, 8, 0)
    print("audit, new log: %d writes cut" % n)


def test_cut_at_every_write_across_the_first_rotation():
    n = _run(_near_full(0), 4, 1)
    print("audit, first rotation: %d writes cut" % n)


def test_cut_at_every_write_across_a_rotation_that_drops_the_oldest():
    n = _run(_near_full(1), 4, 1)
    print("audit, second rotation: %d writes cut" % n)
