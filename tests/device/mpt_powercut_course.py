"""The course record (fw.course: a course's last start per podlet type and the warnings
acknowledged) under a power cut at every flash write of a course's life: two sessions'
starts and an acknowledgement, then a third start. After each cut and a boot the device
never holds a start earlier than the last one that had returned (a course's spacing can
only get longer, never shorter), never an acknowledgement that had not been asked for,
and a record it cannot trust is taken as a start at the ledger's floor with nothing
acknowledged, which a later start or acknowledgement works over again."""
from fw import course
import powercut

_FLOOR_S = 5000          # the ledger's floor at the boot after the cut
_PROFILE = {"podlet_type": 3, "version": 2, "acknowledge": True, "min_spacing_s": 600}


def _boot(s):
    s.course = course.Course(s.dir, 0)


def _start(t_s):
    def step(s):
        s.course.started(3, t_s)
    return step


def _ack(version):
    def step(s):
        said = []
        s.course.acknowledge(dict(_PROFILE, version=version), (3, version, "host"),
                             said.append)
        assert said[0]["event"] == "warnings_acknowledged", said
    return step


_STEPS = [_boot, _start(1000), _ack(2), _start(2000), _ack(3), _start(3000)]


def _observe(s):
    c = getattr(s, "course", None)
    if c is None:
        return None, None
    return c.last_start_s(3), c.acks.get(3)


def _check(s, done, seen):
    after = course.Course(powercut.MOUNT, _FLOOR_S)
    last, ack = after.last_start_s(3), after.acks.get(3)
    returned_start, returned_ack = seen[done]
    if after.problem is not None:
        # Not trusted: every type waits from the floor, nothing acknowledged.
        assert last == _FLOOR_S and ack is None, (s.k, after.problem, last, ack)
    else:
        if returned_start is not None:
            assert last is not None and last >= returned_start, (s.k, done, last, seen)
        # An acknowledgement is the one that had returned, or the one being written.
        asked = seen[done + 1][1] if done + 1 < len(seen) else returned_ack
        assert ack in (returned_ack, asked), (s.k, done, ack, seen)
        # The start being written is kept or not; no other time appears.
        assert last in (None, 1000, 2000, 3000), (s.k, last)
    # Whatever the cut left, the course goes on: a start and an acknowledgement land.
    after.started(3, 4000)
    _ack(3)(type("S", (), {"course": after})())
    again = course.Course(powercut.MOUNT, 0)
    assert again.problem is None, again.problem
    assert again.last_start_s(3) == max(4000, _FLOOR_S if after.problem else 0)
    assert again.acks.get(3) == 3
    assert again.refusal(dict(_PROFILE, version=3), 4000 + 600) == "course_spacing"
    assert again.refusal(dict(_PROFILE, version=3), max(4000, _FLOOR_S) + 601) is None


def test_a_cut_at_every_write_of_a_course():
    rig = powercut.Rig()
    rig.save()
    try:
        per_step, seen = powercut.count_writes(rig, _STEPS, _observe)
        assert seen[-1] == (3000, 3), seen
        cuts = powercut.every_cut(rig, _STEPS, _check, _observe)
        assert cuts == sum(per_step) and cuts >= 10, (cuts, per_step)
    finally:
        rig.close()
