"""Heat controllers: BoilerRush for preheat and OutletMpc for steaming; fw.app picks
one of each (the boiler PID and ramped outlet PI they replaced are in git history).

Each is a small object with reset() and update(); a different algorithm is a different
class. Integer fixed point throughout (temperatures in mC, outputs in permille of full
heater power), no allocation in update().
"""
from array import array

from micropython import const

from fw import config

_PM_MAX = const(1000)
_BOIL_MC = const(100000)
# OutletMpc: the outlet's slope over this many steps (a power of two is not needed).
_SLOPE_STEPS = const(4)
# Steam power at most this many times the nozzle's half power (the outlet's model has
# no finite inverse at 100 C): far more than any element gives.
_RATIO_MAX_PM = const(15000)
# The outlet rising this fast (mC/s) is steam: the hot body alone warms it ~20 times
# slower.
_STEAM_MC_S = const(400)
# The outlet's reading has stopped moving (mC/s).
_STILL_MC_S = const(150)


def _clamp(x, lo, hi):
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


class BoilerRush:
    """Preheat at full power: water cannot pass its boiling point, so nothing is gained
    by slowing down before it (the boiler PID's last 3 K took ~20 s). Once the boiler
    reads target_mc, only what the boiler loses at the boil, so the ready hold makes
    little steam before the outlet controller takes over."""

    def __init__(self, heater_w=config.HEATER_W):
        self.heater_w = heater_w
        self.target_mc = 0
        self.loss_mw_per_k = config.BOILER_LOSS_MW_PER_K    # fw.calib's, at a start
        self.hold = 1           # 0: nothing at all once at the target (a thermostat)

    def reset(self, measured_mc):
        pass

    def update(self, measured_mc):
        if measured_mc < self.target_mc:
            return _PM_MAX
        if not self.hold:
            return 0
        # Losses at the boil from a room at ~20 C.
        return _clamp(self.loss_mw_per_k * 80 // self.heater_w, 0, _PM_MAX)


class OutletMpc:
    """Outlet control from a model of the steam path, in the manner of Marlin's MPC.

    The steam path is a first-order lag (NOZZLE_TAU_MS) toward an equilibrium set by the
    steam power, and the outlet sensor a first-order lag behind it; so the nozzle's own
    temperature is estimated as the reading plus its lag times its slope. The controller
    asks the nozzle for an equilibrium of the target plus gain_tenths/10 of its distance
    from it (a first-order approach gain_tenths/10 + 1 times faster than the nozzle's
    own, which cannot overshoot a first-order plant), plus an integral of the reading's
    error once it has first reached the target; the model's inverse turns that into
    steam power, and the feed-forward adds the boiler's losses and what the pumped
    liquid takes. Far below the target that asks for more than the element has: full
    power until the switch point, time-optimal. heater_w is the element's rating."""

    def __init__(self, heater_w=config.HEATER_W, gain_tenths=40, ti_steps=15,
                 band_mc=1500, i_limit_mc=8000, cut_mc=2000):
        self.heater_w = heater_w
        self.cut_mc = cut_mc
        self.k_tenths = gain_tenths
        self.ti_steps = ti_steps
        self.band_mc = band_mc
        self.i_limit = i_limit_mc * ti_steps
        self.target_mc = 0
        self.ambient_mc = 22000
        self.pump_nl_s = 0
        # The model's measured part (fw.calib's, set at a session's start).
        self.loss_mw_per_k = config.BOILER_LOSS_MW_PER_K
        self.nozzle_half_w = config.NOZZLE_HALF_W
        self.hist = array("i", [0] * _SLOPE_STEPS)
        self.pos = 0
        self.slope = 0              # the reading's slope, mC/s, smoothed
        self.nozzle_mc = 0          # the steam path's estimated temperature
        self.i_acc = 0              # integral of the reading's error, mC x steps
        self.settled = 0            # the reading has reached the target once
        self.steam_seen = 0         # the outlet has risen as only steam makes it
        self.ff_pm = 0
        self.reset(22000)

    def reset(self, outlet_mc):
        h = self.hist
        for i in range(_SLOPE_STEPS):
            h[i] = outlet_mc
        self.pos = 0
        self.slope = 0
        self.nozzle_mc = outlet_mc
        self.i_acc = 0
        self.settled = 0
        self.steam_seen = 0

    def _estimate(self, outlet_mc):
        h = self.hist
        pos = self.pos
        old = h[pos]
        h[pos] = outlet_mc
        pos += 1
        self.pos = 0 if pos == _SLOPE_STEPS else pos
        slope = (outlet_mc - old) * config.STEPS_PER_S // _SLOPE_STEPS
        self.slope += (slope - self.slope) >> 1
        if self.slope > _STEAM_MC_S:
            self.steam_seen = 1
        self.nozzle_mc = outlet_mc + self.slope * config.OUTLET_SENSOR_TAU_MS // 1000
        return self.nozzle_mc

    def power_pm(self, eq_mc):
        """Heater permille for a nozzle equilibrium of eq_mc while boiling."""
        amb = self.ambient_mc
        span = _BOIL_MC - amb
        x = eq_mc - amb - config.NOZZLE_BODY_PM * span // 1000
        steam_mw = 0
        if x > 0:
            if x >= span:
                return _PM_MAX
            ratio_pm = x * 1000 // (span - x)
            if ratio_pm > _RATIO_MAX_PM:
                return _PM_MAX
            steam_mw = self.nozzle_half_w * ratio_pm
        loss_mw = self.loss_mw_per_k * span // 1000
        pump_mw = self.pump_nl_s * config.LIQUID_MJ_PER_UL // 1000
        return _clamp((steam_mw + loss_mw + pump_mw) // self.heater_w, 0, _PM_MAX)

    def update(self, outlet_mc):
        nozzle = self._estimate(outlet_mc)
        target = self.target_mc
        err_s = target - nozzle
        if not self.settled and (err_s <= 300 or (
                err_s < self.band_mc and -_STILL_MC_S < self.slope < _STILL_MC_S)):
            # At the target, or stopped short of it: from now the model's error is
            # what the integral learns.
            self.settled = 1
        eq = target + (target - nozzle) * self.k_tenths // 10 + self.i_acc // self.ti_steps
        out = self.power_pm(eq)
        self.ff_pm = out
        # The integral only near the target and once it was reached (on the way up it
        # would learn the lag, not the model's error), never into a saturated output.
        if (self.settled and -self.band_mc < err_s < self.band_mc
                and not (out >= _PM_MAX and err_s > 0) and not (out <= 0 and err_s < 0)):
            self.i_acc = _clamp(self.i_acc + err_s, -self.i_limit, self.i_limit)
        if outlet_mc > target + self.cut_mc:
            # Far above the target no trimming helps: no heat at all, which is also
            # what the supervisor's stuck-heater check waits for.
            return 0
        return out
