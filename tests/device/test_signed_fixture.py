"""tests/device/signed.py holds what the sim driver would sign for the MicroPython unit
tests (which cannot sign: only CPython has `cryptography`). This keeps it in step.

    .venv/bin/python tests/device/test_signed_fixture.py   # rewrites signed.py
"""
from __future__ import annotations

from pathlib import Path

from steamer_mfg.devkeys import DEV_PUBLIC, OTHER_PUBLIC
from steamer_sim.signing import podlet_image, signed_profile

HERE = Path(__file__).with_name("signed.py")
PROFILE = {"podlet_type": 3, "version": 1, "name": "unit", "outlet_target_c": 45.0,
           "session_s": 600, "dose_rate_ul_min": 300, "max_session_ul": 2500,
           "max_day_ul": 5000, "min_interval_s": 0}
# Format 2 (issue 17): a course of 4 sessions at least 6 days apart, whose warning must be
# acknowledged; a later version of it, acknowledged anew (mpt_course.py).
COURSE = dict(PROFILE, version=2, course_sessions=4, min_spacing_s=6 * 86400,
              recommended_spacing_s=7 * 86400, maintenance_spacing_s=180 * 86400,
              warnings=[{"code": "pregnancy", "text": "Not when pregnant or nursing."}],
              acknowledge=True)
PODLET = {"serial": "0000c0ffee01", "podlet_type": 3, "capacity_ul": 3000,
          "expiry": "2030-01-01", "lot": "U1"}


def render() -> str:
    lines = ['"""Signed by the sim driver\'s development key; made by test_signed_fixture.py."""',
             f"MFG_PUBLIC_HEX = {DEV_PUBLIC.hex()!r}",
             # The key wrong_key signs with: a device re-provisioned with it in tests.
             f"OTHER_PUBLIC_HEX = {OTHER_PUBLIC.hex()!r}"]
    for sign in ("ok", "none", "wrong_key", "tamper"):
        lines.append(f"PROFILE_{sign.upper()}_HEX = {signed_profile(PROFILE, sign).hex()!r}")
        lines.append(f"PODLET_{sign.upper()}_HEX = {podlet_image(PODLET, sign).hex()!r}")
    # A later version, for the tests of rollback (mpt_powercut_profile.py).
    lines.append(f"PROFILE_V3_HEX = {signed_profile(dict(PROFILE, version=3), 'ok').hex()!r}")
    lines.append(f"PROFILE_COURSE_HEX = {signed_profile(COURSE, 'ok').hex()!r}")
    lines.append(f"PROFILE_COURSE_V3_HEX = {signed_profile(dict(COURSE, version=3), 'ok').hex()!r}")
    return "\n".join(lines) + "\n"


def test_fixture_is_what_the_sim_driver_signs():
    assert HERE.read_text() == render()


if __name__ == "__main__":
    HERE.write_text(render())
