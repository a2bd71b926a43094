"""Builds the sim board and the firmware's App by hand, for MicroPython unit tests that
drive the control step directly (no scenario runner, no subprocess)."""
import gc

import board as simboard
from fw import app as app_mod
import signed

PROFILE = {"podlet_type": 3, "version": 1, "name": "unit", "outlet_target_c": 45.0,
           "session_s": 600, "dose_rate_ul_min": 300, "max_session_ul": 2500,
           "max_day_ul": 5000, "min_interval_s": 0, "sign": "ok"}
PODLET = {"serial": "0000c0ffee01", "podlet_type": 3, "capacity_ul": 3000,
          "expiry": "2030-01-01", "lot": "U1", "sign": "ok"}


def scenario(duration_s=3600, seed=1, **plant):
    cfg = {"ambient_c": 22.0, "water_ml": 150.0, "heater_w": 400.0, "mains_pct": 100.0,
           "noise_pct": 100.0}
    cfg.update(plant)
    return {"contract": 1, "duration_s": duration_s, "seed": seed, "plant": cfg,
            "profiles": [dict(PROFILE, signed_hex=signed.PROFILE_OK_HEX)], "events": [],
            "mfg_public_hex": signed.MFG_PUBLIC_HEX}


_last = []


def board(scen):
    """A sim board for scen; the previous test's board is closed (flash file removed)."""
    while _last:
        _last.pop().close()
    gc.collect()
    b = simboard.make(scen, None, 0.0, False)
    _last.append(b)
    return b


def make(**plant):
    """A sim board and an App on it, profile installed, podlet in, before the first step."""
    b = board(scenario(**plant))
    app = app_mod.App(b)
    b.podlet.info = dict(PODLET, image_hex=signed.PODLET_OK_HEX)
    b.podlet.v = 1
    b.commands.append(("set_clock", 1795000000))
    tick(b, app)        # queues the checks of the scenario's profile and the podlet
    app.finish_checks()
    assert app.podlet is not None
    return b, app


def tick(b, app, n=1):
    """n control periods as fw.main.run does them, without the heap lock."""
    for _ in range(n):
        b.wait_tick()
        app.step()
        app.service()
        b.telemetry(app)


def until_pumping(b, app, max_steps=4000):
    """Periods until the session's pump runs (preheat, ready, the outlet at target)."""
    for _ in range(max_steps):
        tick(b, app)
        if app.dosing and app.pump_nl_s > 0:
            return
