"""No sequence of events breaks the dosing limits: the hypothesis state machine of
steamer_harness.limits_machine (invariants listed there) drives the firmware's own ledger
and limit code on the micropython interpreter, one process for every sequence.

STEAMER_LIMITS_EXAMPLES sets the number of sequences (default 600; `make soak` runs
10,000); the benchmark
(`steamer dev bench --parts limits`) runs 100,000 of the same machine.
"""
from __future__ import annotations

import pytest

from steamer_harness import limits_machine


@pytest.fixture(scope="module")
def device():
    dev = limits_machine.Device()
    yield dev
    dev.close()


def test_no_sequence_breaks_the_limits(device):
    examples = limits_machine.examples_from_env(600)
    stats = limits_machine.run(examples, device)
    assert stats.sequences >= examples
    # The sequences reach the limits, not only the refusals before them.
    assert stats.sessions >= examples // 4, vars(stats)
    assert stats.doses_ul > 40 * examples, vars(stats)


def test_a_sequence_by_hand_reaches_each_limit_exactly(device):
    """The machine's counts on a known sequence: a session stops at max_session_ul to
    the nl, a start 119.9 s after the last is refused (120 s apart it is not), and the
    next session stops at the podlet's capacity."""
    limits_machine.Limits.dev = device
    m = limits_machine.Limits()
    unit = limits_machine.UNIT_PER_UL
    m.boot(clock=True, profile=0, podlet=0)          # 1200 ul/min; podlet of 500 ul
    m.session(0, 300)
    assert m.per_session == {1: limits_machine.MAX_SESSION_UL * unit}
    m.session_near("start", 1, 119_900, 300)
    assert len(m.starts) == 1
    m.session_near("start", 1, 121_000, 300)
    assert len(m.starts) == 2 and m.starts[1] - m.starts[0] >= 120_000
    # The first session was charged 301 ul (its 300 and the pulse its encoder may not
    # have counted, rounded up: fw.session _end), so the podlet gave 499 of its 500.
    assert m.per_podlet == {"00000000a001": 499 * unit}
    for name in ("podlet_capacity", "session_max", "day_max", "min_interval", "pattern_rate",
                 "genuine_only"):
        getattr(m, name)()


def _holds(m):
    for name in ("podlet_capacity", "session_max", "day_max", "min_interval", "pattern_rate",
                 "genuine_only"):
        getattr(m, name)()


# Sequences that broke a limit once (the firmware is fixed; see fw/app.py): each must hold.

def test_start_120_s_after_one_at_a_tenth_of_a_second(device):
    """Found by the machine: the limit clock's whole seconds made 119.9 s read as 120."""
    limits_machine.Limits.dev = device
    m = limits_machine.Limits()
    m.boot(clock=True, profile=0, podlet=0)
    m.session_near("start", 1, 119_500, 1)
    m.session_near("start", 1, 119_900, 1)
    _holds(m)


def test_last_step_to_a_podlets_capacity_with_a_carried_remainder(device):
    """Found by the machine: at 2000 ul/min the last step pumped what was left plus the
    fraction of a nl already carried, 0.5 nl past the podlet's 250 ul."""
    limits_machine.Limits.dev = device
    m = limits_machine.Limits()
    m.boot(clock=True, profile=0, podlet=2)
    m.install(3)
    m.session(0, 150)
    _holds(m)
    # Counted by the encoder: the podlet's 250 ul to within a pulse (1000 tenths of a nl).
    [(serial, got)] = m.per_podlet.items()
    assert serial == "00000000a003"
    assert 0 <= got - 250 * limits_machine.UNIT_PER_UL <= limits_machine.OVER_UNITS, got


def test_a_day_later_after_a_slow_session(device):
    """The day counted a session as of its last reservation, 15 s before its last dose at
    300 ul/min: a day later a fast session could fill the day while those doses were
    still inside the 24 h."""
    limits_machine.Limits.dev = device
    m = limits_machine.Limits()
    m.boot(clock=True, profile=2, podlet=0)           # 300 ul/min; podlet A
    m.session(0, 600)                                 # 300 ul
    m.session_near("start", 1, 121_000, 600)          # 200 ul: A is empty
    m.podlet(1)
    m.install(3)                                      # 2000 ul/min
    m.session_near("start", 1, 121_000, 600)          # 300 ul: the day's 800
    m.podlet(3)
    m.session_near("last_dose", 3, limits_machine.DAY_MS - 14_000, 300)
    _holds(m)


def test_a_day_later_after_a_slow_session_cut_short(device):
    """As above, the session cut by a power failure after the clock was set (a floor
    commit later than its last reservation): after the boot the limit clock resumed past
    the session's day entry."""
    limits_machine.Limits.dev = device
    m = limits_machine.Limits()
    m.boot(clock=True, profile=2, podlet=0)
    m.session(0, 590)
    m.set_clock(3600)
    m.power_cut(0)
    m.session_near("start", 1, 121_000, 600)
    m.podlet(1)
    m.install(3)
    m.session_near("start", 1, 121_000, 600)
    m.podlet(3)
    m.session_near("start", 3, limits_machine.DAY_MS + 46_000, 300)
    _holds(m)


_LAST_DAY = 6      # limits_machine.PODLETS: the podlet whose last day is the driver's first


def _expiry_holds(m):
    _holds(m)
    m.expiry()
    m.expired_stays_expired()


def test_a_podlet_left_in_past_its_expiry(device):
    """Accepted on its last day; a day later, still in, it starts no session."""
    limits_machine.Limits.dev = device
    m = limits_machine.Limits()
    m.boot(clock=True, profile=0, podlet=None)
    m.podlet(_LAST_DAY)
    m.advance(863_990)                               # 23 h 59 m 59 s: the next day
    m.session(0, 50)
    _expiry_holds(m)
    assert m.starts == [] and "00000000a005" in m.expired


def test_an_expiry_seen_on_the_devices_clock_then_a_power_cut_and_the_clock_set_back(device):
    """Refused as expired on the device's own clock (a day after the host set it), then a
    power cut and the host's clock set back into the podlet's last day: still refused."""
    limits_machine.Limits.dev = device
    m = limits_machine.Limits()
    m.boot(clock=True, profile=0, podlet=None)
    m.podlet(_LAST_DAY)
    m.advance(863_990)
    m.podlet(_LAST_DAY)                              # out and in: refused, expired
    assert "00000000a005" in m.expired
    m.power_cut(0)
    m.set_clock(-90_000)                             # 25 h back: the podlet's last day
    m.podlet(_LAST_DAY)
    m.session(0, 50)
    _expiry_holds(m)
    assert m.starts == []


def test_a_far_future_set_then_the_owners_way_back(device):
    """The issue's lock-out: a set 10 years ahead is not taken on a device that was set
    (a podlet good until 2030 stays usable); on one never set it is, and the owner's
    confirmed set takes it back; the podlet refused as expired meanwhile is usable again,
    and the limits hold throughout."""
    limits_machine.Limits.dev = device
    ten_years = 10 * 365 * 86_400
    m = limits_machine.Limits()
    m.boot(clock=True, profile=0, podlet=0)
    m.set_clock(ten_years)
    m.session(0, 50)
    assert len(m.starts) == 1, m.starts
    m = limits_machine.Limits()
    m.boot(clock=False, profile=0, podlet=None)
    m.set_clock(ten_years)                           # nothing to vouch for: taken
    m.podlet(0)
    m.session(0, 1)
    assert not m.starts and "00000000a001" in m.expired
    m.confirm_clock(0)
    assert not m.expired
    m.podlet(None)
    m.podlet(0)
    m.session(0, 50)
    assert len(m.starts) == 1, m.starts
    _holds(m)
    m.expiry()
    m.expired_stays_expired()


def test_the_lag_of_two_sessions_does_not_add_up_past_a_podlets_capacity(device):
    """Found by the machine: each session's end left the pulse its encoder had not counted
    out of the ledger, so two sessions on one podlet (a pump 5 % fast) passed its 500 ul by
    2698 tenths of a nl, more than a pulse and a period (2666)."""
    limits_machine.Limits.dev = device
    m = limits_machine.Limits()
    m.boot(clock=True, profile=0, podlet=0, cal_pm=1050)
    m.advance(1)
    m.session(0, 1)
    m.advance(36_000)
    m.power_cut(0)
    m.session(0, 150)
    assert len(m.starts) == 2
    _holds(m)


def test_patterned_sessions_keep_to_their_pattern_and_the_check_sees_one_that_does_not(device):
    """A pulsed (7 ul every 3 s) and a ramped (over 20 s) session on the firmware hold
    every invariant, pattern_rate among them; the same check, given a bolus half as big
    again or a ramp's full rate in its first second, reports them."""
    limits_machine.Limits.dev = device
    m = limits_machine.Limits()
    m.boot(clock=True, profile=4, podlet=0)           # PROFILES[4]: pulsed, version 6
    m.session(0, 150)
    assert len(m.starts) == 1 and m.session_spec[1]["pattern"] == "pulsed"
    # 15 s of dosing at most: five boluses or so, not the 300 ul a continuous one gives.
    assert 0 < m.per_session[1] <= 6 * 7 * limits_machine.UNIT_PER_UL, m.per_session
    _holds(m)
    m.install(5)                                      # ramped, version 7
    m.session_near("start", 1, 121_000, 300)
    assert len(m.starts) == 2 and m.session_spec[2]["pattern"] == "ramped"
    _holds(m)
    # The check itself: a bolus of 10.5 ul (six periods of 17,500 tenths of a nl, each
    # within the rate).
    t = m.now_ms + 1_000_000
    m.session_spec[99] = limits_machine.SPECS[6]
    m.pattern_check(99, t, 6, 17_500)
    assert m.pattern_breaks and m.pattern_breaks[0][1] == "pulsed window", m.pattern_breaks
    m.pattern_breaks.clear()
    m.session_spec[98] = limits_machine.SPECS[7]
    m.pattern_check(98, t, 1, 16_666)               # the full 1000 ul/min at once
    assert m.pattern_breaks and m.pattern_breaks[0][1] == "ramped", m.pattern_breaks
