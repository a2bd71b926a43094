"""The dosing limits on the real boards' modules (boards/esp32c3, boards/picow with
boards/common/realboard.py) over the port models, wired to the plant (issue 14: "the
limits ... run on each real board module"): one long day of session starts every
minute, five power cuts, a podlet used up and another put in, and the clock set a day
ahead, ten years ahead and two days back. The ledger here is realboard's, on littlefs
on the timed flash, and the dose is the encoder's as each port counts it (a PWM slice on
the rp2, pin IRQs on the C3).

The day runs twice on each board: with its five power cuts at set times (between
control periods), and with power cuts inside flash writes instead (steamer_sim.portsim's
cut_writes: the k-th boot's during its n-th program or erase, half of it landed), so
that littlefs and the ledger's commits on it are torn mid-write, several mid-dose.

And a genuine podlet swapped mid-dose for a fake one (unsigned, expired, another type),
in one instant or removed and inserted in the same period, read through each board's
1-Wire on the port model: the session ends within a second and the fake doses nothing.

Those are scenarios; the last tests run the hypothesis state machine of
tests/device/test_limits_stateful.py (steamer_harness.limits_machine, its invariants
listed there) on each real board module as well: any sequence of podlets, sessions,
power cuts (between periods and inside flash writes), clock sets, profiles and faults,
with the doses the pump's step PWM really put out (limits_mp.PortRig).
$STEAMER_LIMITS_PORT_EXAMPLES sets the sequences per board (default 60; `make soak`
runs 2,000)."""
from __future__ import annotations

import os

from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest

from steamer_harness import limits_machine
from steamer_sim.portsim import run_on_board

CLOCK_S = 1795000000
PROFILE = {"podlet_type": 3, "version": 1, "name": "day", "outlet_target_c": 45.0,
           "session_s": 300, "dose_rate_ul_min": 1200, "max_session_ul": 2500,
           "max_day_ul": 5000, "min_interval_s": 0}
FIRST = {"serial": "0000c0ffee01", "podlet_type": 3, "capacity_ul": 3000,
         "expiry": "2027-06-30", "lot": "L2611"}
SECOND = dict(FIRST, serial="0000c0ffee02")
CUTS_S = (170, 430, 777, 1111, 1500)
# The k-th boot's cut, in programs and erases from that boot, per board: chosen so that
# some land in a preheat (the journal) and at least two mid-dose (the ledger's commits),
# which the second test checks. The C3 reaches a count sooner (its littlefs takes the
# esp32 port's defaults, the rp2's progsize 256: portrun.Wiring.mount), hence larger.
CUT_WRITES = {"picow": (400, 700, 1000, 1300, 555, 880, 150, 90),
              "esp32c3": (1500, 2500, 3500, 2000, 3000, 1200)}
DAY_S = 2400                    # the whole run is well inside one day of true time
# One encoder pulse (100 nl) and one period of the pump at its rate 5 % fast: what the
# plant may get past a limit the firmware counts (tools/steamer_harness/limits_machine.py's
# OVER_UNITS, in ul).
OVER_UL = 0.1 + 2.0 * 1.05
BOARDS = ("picow", "esp32c3")
# tests/sim/test_podlet_swap.py's fake: unsigned, expired, a type without a profile.
FAKE = {"serial": "0000bad0fa4e", "podlet_type": 9, "capacity_ul": 100,
        "expiry": "2020-01-01", "lot": "FAKE", "sign": "none"}
SWAP_S = 200                    # mid-dose of the session started at 3 s
SWAPS = {"swap_podlet": [{"t_s": SWAP_S, "do": "swap_podlet", "podlet": FAKE}],
         "remove_insert": [{"t_s": SWAP_S, "do": "remove_podlet"},
                           {"t_s": SWAP_S, "do": "insert_podlet", "podlet": FAKE}]}


def _day(timed_cuts: bool = True) -> dict:
    events = [{"t_s": 0.5, "do": "set_clock", "epoch_s": CLOCK_S},
              {"t_s": 1, "do": "insert_podlet", "podlet": FIRST},
              {"t_s": 900, "do": "set_clock", "epoch_s": CLOCK_S + 86400 + 3600},
              {"t_s": 1000, "do": "remove_podlet"},
              {"t_s": 1001, "do": "insert_podlet", "podlet": SECOND},
              {"t_s": 1300, "do": "set_clock", "epoch_s": CLOCK_S + 3650 * 86400},
              {"t_s": 1700, "do": "set_clock", "epoch_s": CLOCK_S - 2 * 86400}]
    events += [{"t_s": t, "do": "start_session"} for t in range(3, DAY_S - 100, 60)]
    if timed_cuts:
        events += [{"t_s": t, "do": "power_cut", "off_s": 5} for t in CUTS_S]
    events.sort(key=lambda e: e["t_s"])
    return {"contract": 1, "duration_s": DAY_S, "seed": 4, "plant": {"water_ml": 300},
            "profiles": [PROFILE], "events": events}


def _swap(how: str) -> dict:
    events = [{"t_s": 0.5, "do": "set_clock", "epoch_s": CLOCK_S},
              {"t_s": 1, "do": "insert_podlet", "podlet": FIRST},
              {"t_s": 3, "do": "start_session"}, *SWAPS[how],
              {"t_s": SWAP_S + 15, "do": "start_session"},
              {"t_s": SWAP_S + 25, "do": "start_session"}]
    return {"contract": 1, "duration_s": SWAP_S + 40, "seed": 4, "plant": {"water_ml": 60},
            "profiles": [PROFILE], "events": events}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """The boards' .mpy builds, shared by this file's runs."""
    return tmp_path_factory.mktemp("portsim-limits-mpy")


@pytest.fixture(scope="module")
def days(cache) -> dict:
    for board in BOARDS:        # built one at a time, then run two at a time
        run_on_board(board, {"contract": 1, "duration_s": 1}, mpy_cache=cache)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {}
        for b in BOARDS:
            futures["timed", b] = pool.submit(run_on_board, b, _day(), mpy_cache=cache,
                                              timeout_s=300)
            futures["in_writes", b] = pool.submit(run_on_board, b, _day(timed_cuts=False),
                                                  mpy_cache=cache, timeout_s=300,
                                                  cut_writes=CUT_WRITES[b])
            for how in SWAPS:
                futures[how, b] = pool.submit(run_on_board, b, _swap(how), mpy_cache=cache)
        return {k: f.result() for k, f in futures.items()}


KINDS = [(k, b) for k in ("timed", "in_writes") for b in BOARDS]


@pytest.mark.parametrize("kind, board", KINDS)
def test_no_limit_is_passed_across_cuts_podlets_and_clock_sets(kind, board, days):
    s = days[kind, board]
    assert s["loop"]["alloc_errors"] == 0 and s["loop"]["crashes"] == 0
    assert s["latched"] == []
    cuts = [r["t_ms"] for r in s["resets"]]
    assert all(r["cause"] == "power_on" for r in s["resets"]), s["resets"]
    if kind == "timed":
        assert cuts == [t * 1000 for t in CUTS_S]
    else:
        assert len(cuts) >= 5, s["resets"]
    sessions = s["sessions"]
    by_podlet: dict[str, float] = defaultdict(float)
    for x in sessions:
        # Never more than a session's limit, and the ledger never counts less than the
        # plant got (a cut may cost a reservation the pump never used: the safe side).
        assert x["plant_pumped_ul"] <= PROFILE["max_session_ul"] + OVER_UL, x
        assert x["plant_pumped_ul"] <= x["session_ul"] + OVER_UL, x
        by_podlet[x["podlet"]] += x["plant_pumped_ul"]
    for serial, ul in by_podlet.items():
        assert ul <= FIRST["capacity_ul"] + OVER_UL, (serial, ul)
    total = sum(by_podlet.values())
    assert total <= PROFILE["max_day_ul"] + OVER_UL, total


@pytest.mark.parametrize("kind, board", KINDS)
def test_the_limits_that_bound_the_day_are_the_podlets_and_the_days(kind, board, days):
    """Not a day that never came near a limit: the first podlet is used up (or all but
    what a cut's lost reservations hold back), and the day ends on max_day with the
    second; no clock set after that (ten years ahead, two days back) opens the day
    again, and none of the cuts left the ledger behind. Cut inside writes, at least two
    sessions were cut mid-dose."""
    sessions = days[kind, board]["sessions"]
    reasons = [x["reason"] for x in sessions]
    assert reasons.count("power_loss") >= 1, reasons
    assert reasons[-1] == "max_day", reasons
    if kind == "in_writes":
        mid_dose = [x for x in sessions if x["reason"] == "power_loss"
                    and x["plant_pumped_ul"] > 0]
        assert len(mid_dose) >= 2, sessions
    # Counted to within a few ul of each (a session ends once less than a period's dose
    # is left, and each session's limit is whole ul).
    firsts = [x for x in sessions if x["podlet"] == FIRST["serial"]]
    assert sum(x["session_ul"] for x in firsts) >= FIRST["capacity_ul"] - 10
    assert sum(x["session_ul"] for x in sessions) >= PROFILE["max_day_ul"] - 10
    assert all(x["start_ms"] < 1300 * 1000 for x in sessions), sessions  # none after them


@pytest.mark.parametrize("how", list(SWAPS))
@pytest.mark.parametrize("board", BOARDS)
def test_a_podlet_swapped_mid_dose_ends_the_session_and_the_fake_doses_nothing(
        board, how, days):
    s = days[how, board]
    assert s["latched"] == [] and s["resets"] == []
    [session] = s["sessions"]           # the starts after the swap are refused
    assert session["reason"] == "podlet_changed" and session["podlet"] == FIRST["serial"]
    assert SWAP_S * 1000 <= session["end_ms"] <= SWAP_S * 1000 + 1000, session
    # All the plant ever got is that session's (to a pulse): nothing after it.
    assert s["port"]["plant_pumped_ul"] <= session["plant_pumped_ul"] + 0.1 + OVER_UL
    assert session["plant_pumped_ul"] > 1000        # it was dosing when swapped


@pytest.fixture(scope="module", params=BOARDS)
def device(request, cache):
    """The limits machine's device on a real board module (limits_machine.Device)."""
    dev = limits_machine.Device(request.param, cache)
    yield dev
    dev.close()


def test_a_session_by_hand_on_a_real_board_stops_at_its_limits(device):
    """What the step PWM moved, counted outside the firmware: a session stops at
    max_session_ul (past it by less than a pulse, a fast period and a step), a start
    119.9 s after it is refused, and the next session stops at the podlet's capacity."""
    m = limits_machine.Limits()
    limits_machine.Limits.dev = device
    unit = limits_machine.UNIT_PER_UL
    most = limits_machine.OVER_UNITS + device.quantum
    assert device.quantum > 0                   # whole steps: not the sim's command
    # A new unit, the C3 calibrated at the factory first (limits_mp.PortRig): its boot
    # trusts every record it keeps.
    booted = device.call("reset", 1000)
    assert booted["events"] and not [e for e in booted["events"] if e[0] == "record_doubt"]
    m.boot(clock=True, profile=0, podlet=0)     # 1200 ul/min; podlet of 500 ul
    m.session(0, 300)
    [first] = m.per_session.values()
    assert limits_machine.MAX_SESSION_UL * unit - most <= first
    assert first <= limits_machine.MAX_SESSION_UL * unit + most
    m.session_near("start", 1, 119_900, 300)
    assert len(m.starts) == 1
    m.session_near("start", 1, 121_000, 300)
    assert len(m.starts) == 2
    [podlet] = m.per_podlet.values()
    assert 495 * unit <= podlet <= 500 * unit + most, m.per_podlet
    _holds(m)


def test_no_sequence_breaks_the_limits_on_a_real_board(device):
    examples = limits_machine.examples_from_env(60, limits_machine.PORT_EXAMPLES_ENV)
    # `make test`'s 60 are the same every run (37 sessions, 2,079 ul on either board
    # when this was written): drawn anew, 60 dosed 280-10,500 ul in 2-58 sessions over
    # ~25 runs, so a floor on them would fail now and then. The soak (the variable set)
    # draws new ones.
    soak = limits_machine.PORT_EXAMPLES_ENV in os.environ
    stats = limits_machine.run(examples, device, derandomize=not soak)
    assert stats.sequences >= examples
    # The sequences reach the limits (fewer sequences than the sim test's, so looser).
    assert stats.sessions >= examples // 8, vars(stats)
    assert stats.doses_ul > 4 * examples, vars(stats)
    assert stats.cuts > 0, vars(stats)


def test_a_hung_firmware_is_caught_by_the_boards_watchdog(device):
    """The rig runs the board's own watchdog (machine.WDT, 1 s): the firmware stopped
    for 0.7 s runs on; stopped for 1.2 s, the period after fails the sequence, as the
    board resets there. The device boots anew after."""
    device.call("reset", 1000)
    device.call("hang", 700)
    with pytest.raises(limits_machine.DriverError, match="the watchdog bit: unfed for 1"):
        device.call("hang", 1200)
    assert device.call("reset", 1000)["ok"]


def _holds(m):
    for name in ("podlet_capacity", "session_max", "day_max", "min_interval", "pattern_rate",
                 "genuine_only", "expiry", "expired_stays_expired"):
        getattr(m, name)()
