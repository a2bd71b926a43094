"""The `units` part of `steamer dev bench`: randomized nominal sessions on units the
firmware's model is wrong about (issue 15): each unit's hidden parameters (nozzle
half-power, boiler losses, metal heat capacity, sensor and nozzle lags) drawn within
+-25 % of the defaults the firmware starts from, and its element giving within +-10 % of
its rating (a weak one among them: the sim board's rating is the plant's heater_w, so the
element's own error is drawn as mains, whose square the power follows, as
tests/sim/test_weak_element.py makes a weak one). Counted: false trips and allocation errors (the
supervisor judges the heat-up by the model the unit measured: fw.calib, fw.safety), and
how far the model the unit kept after its first session (fw.calib, in rated watts) is
from the truth, against how far the defaults were.

    from steamer_bench.units import run
    figures = run(1000)         # ~5 minutes on 2 cores
"""
from __future__ import annotations

import math
import random
import re
import statistics

from steamer_dev.paths import DEVICE
from steamer_harness import nominal
from steamer_sim.driver import run_many
from steamer_sim.scenario import HIDDEN_PLANT_DEFAULTS, PLANT_RANGES, load_scenario

MODEL_SPREAD = 0.25          # hidden parameters: default x (1 +- this)
ELEMENT_SPREAD = 0.10        # the element: its rating x (1 +- this)
_WATER_J_PER_MLK = 4.186


def unit_scenario(seed: int) -> dict:
    """nominal.nominal_scenario(seed) on a unit drawn off the model (see the module)."""
    scen = nominal.nominal_scenario(seed)
    rnd = random.Random(seed ^ 0x5EED)
    plant = dict(scen["plant"])
    for key, default in HIDDEN_PLANT_DEFAULTS.items():
        plant[key] = round(default * rnd.uniform(1 - MODEL_SPREAD, 1 + MODEL_SPREAD), 4)
    element = rnd.uniform(1 - ELEMENT_SPREAD, 1 + ELEMENT_SPREAD)
    lo, hi = PLANT_RANGES["mains_pct"]
    plant["mains_pct"] = round(min(hi, max(lo, plant["mains_pct"] * math.sqrt(element))), 2)
    scen["plant"] = plant
    return load_scenario(scen)


def _fw_const(path: str, name: str) -> int:
    """A `NAME = const(N)` of device/fw/PATH: the firmware's own figure, not a copy."""
    text = (DEVICE / "fw" / path).read_text()
    m = re.search(r"^%s = const\((\d+)\)" % re.escape(name), text, re.M)
    if m is None:
        raise RuntimeError(f"no {name} = const(...) in device/fw/{path}")
    return int(m.group(1))


def _defaults() -> dict:
    """The model a unit holds before its first session (fw.calib: fw.config's losses and
    nozzle, its own heat capacity)."""
    return {"loss_mw_per_k": _fw_const("config.py", "BOILER_LOSS_MW_PER_K"),
            "nozzle_half_w": _fw_const("config.py", "NOZZLE_HALF_W"),
            "heat_j_per_k": _fw_const("calib.py", "_HEAT_J_PER_K")}


def _truth(plant: dict) -> dict:
    """What fw.calib should measure of this plant: its values are in rated watts (the sim
    board's rating is heater_w), so an element delivering p W against its rating reads
    rated/p of the truth: 1 over the mains squared."""
    k = 1.0 / (plant["mains_pct"] / 100.0) ** 2
    return {"heat_j_per_k": (plant["water_ml"] * _WATER_J_PER_MLK + plant["metal_j_per_k"]) * k,
            "loss_mw_per_k": plant["loss_w_per_k"] * 1000.0 * k,
            "nozzle_half_w": plant["nozzle_half_w"] * k}


def _spread(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    v = sorted(values)
    return {"n": len(v), "p50_pct": round(statistics.median(v), 2),
            "p95_pct": round(v[min(len(v) - 1, int(len(v) * 0.95))], 2),
            "max_pct": round(v[-1], 2)}


def run(sessions: int = 1000, first_seed: int = 0) -> dict:
    """The figures over `sessions` units (seeds first_seed...)."""
    defaults = _defaults()
    scenarios = [unit_scenario(first_seed + i) for i in range(sessions)]
    summaries = run_many(scenarios)
    trips = []
    errors: dict[str, dict[str, list[float]]] = {
        k: {"kept": [], "default": []} for k in ("heat_j_per_k", "loss_mw_per_k", "nozzle_half_w")}
    for scen, summary in zip(scenarios, summaries):
        problems = nominal.false_trips(summary)
        if problems:
            trips.append({"seed": scen["seed"], "plant": scen["plant"], "problems": problems})
        calib = summary.get("calib")
        if not calib or not calib.get("sessions"):
            continue
        truth = _truth(scen["plant"])
        for key, got in errors.items():
            kept = calib[key]
            if key != "heat_j_per_k":
                # Losses and nozzle move halfway to a measurement (fw.calib.update):
                # unchanged means this session did not measure it.
                if kept == defaults[key]:
                    continue
            got["kept"].append(100.0 * abs(kept - truth[key]) / truth[key])
            got["default"].append(100.0 * abs(defaults[key] - truth[key]) / truth[key])
    return {
        "sessions": sessions,
        "model_spread_pct": round(MODEL_SPREAD * 100),
        "element_spread_pct": round(ELEMENT_SPREAD * 100),
        "false_trips": len(trips),
        "trips": trips[:20],
        "alloc_errors": sum(s["loop"]["alloc_errors"] for s in summaries),
        "calibrated": sum(1 for s in summaries if (s.get("calib") or {}).get("sessions")),
        "defaults": defaults,
        # |model - truth| / truth after the unit's first session, and of the defaults.
        "model_error": {k: {"kept": _spread(v["kept"]), "default": _spread(v["default"])}
                        for k, v in errors.items()},
    }
