"""A session a power cut or a watchdog reset cut short, in the host's history: its
end comes from the next boot (issue 11, item 7), through log sync's wire form."""
from __future__ import annotations

from pathlib import Path

import pytest

from podproto import logevents
from steamer.store import END_REASONS, Store

DEV = "c0ffee-01"


def synced(records: list[dict]) -> list[dict]:
    """The journal records as the host gets them over log sync."""
    return [logevents.from_wire(logevents.to_wire(seq, r))
            for seq, r in enumerate(records, start=1)]


def journal(reason: str) -> list[dict]:
    """What the firmware journals: a session, the cut, the boot's end of it (its t_ms on
    the new boot's uptime, its wall clock unset: the RTC has no battery)."""
    out = [{"event": "session_started", "podlet": "0000c0ffee01", "podlet_type": 3,
            "profile": "calm", "version": 1, "target_c": 45.0, "limit_ul": 2500,
            "t": 1795000003, "t_ms": 3000}]
    for i in range(20):
        out.append({"event": "sample", "state": "steaming", "boiler_c": 100.0,
                    "outlet_c": 45.0, "heater_pct": 50.0, "pump_ul_min": 1200.0,
                    "session_ul": 20.0 * i, "t": 1795000150 + i, "t_ms": 150000 + 1000 * i})
    out.append({"event": "boot", "reason": reason, "board": "sim", "t": None, "t_ms": 0})
    out.append({"event": "session_ended", "reason": reason.replace("power_on", "power_loss"),
                "session_ul": 419.0, "t": None, "t_ms": 0})
    return out


@pytest.mark.parametrize("boot, reason", [("power_on", "power_loss"),
                                          ("watchdog", "watchdog")])
def test_a_session_ended_at_the_next_boot_is_ended_with_its_reason_and_dose(
        tmp_path: Path, boot: str, reason: str) -> None:
    with Store.open(tmp_path / "s.db") as store:
        store.ingest(DEV, synced(journal(boot)))
        [s] = store.sessions()
    assert s.end_reason == reason
    assert s.dose_ul == 419.0
    # Its length is what its own boot's records show, not the next boot's uptime.
    assert s.duration_ms == 166000
    assert END_REASONS[reason] != reason          # a phrase for people


def test_the_podlet_end_reasons_have_phrases() -> None:
    for reason in ("podlet_changed", "podlet_unreadable", "reset"):
        assert reason in END_REASONS
