"""Heat controllers: a boiler PID for preheat and an outlet controller for steaming.

Each is a small object with reset() and update(); a different algorithm is a different
class. Integer fixed point throughout (temperatures in mC, outputs in permille of full
heater power), no allocation in update().
"""
from micropython import const

from fw import config

_PM_MAX = const(1000)


def _clamp(x, lo, hi):
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


class BoilerPid:
    """PID on the boiler temperature with clamped-integral anti-windup and a
    first-order-smoothed derivative on the measurement (no derivative kick)."""

    def __init__(self, kp_pm_per_c=500, ti_steps=300, td_steps=20, d_smooth_shift=3):
        self.kp = kp_pm_per_c
        self.ti_steps = ti_steps
        self.td_steps = td_steps
        self.d_shift = d_smooth_shift
        self.target_mc = 0
        self.reset(0)

    def reset(self, measured_mc):
        self.i_acc = 0            # integral term in permille x 1000
        self.d_mc = 0             # smoothed measured change per step, mC
        self.prev_mc = measured_mc

    def update(self, measured_mc):
        err = self.target_mc - measured_mc
        p = err * self.kp // 1000
        self.d_mc += (measured_mc - self.prev_mc - self.d_mc) >> self.d_shift
        self.prev_mc = measured_mc
        d = -(self.d_mc * self.kp * self.td_steps // 1000)
        i_next = self.i_acc + err * self.kp // self.ti_steps
        out = p + i_next // 1000 + d
        # Anti-windup: the integral moves only while the output is not saturated in the
        # direction it would push further.
        if not ((out > _PM_MAX and err > 0) or (out < 0 and err < 0)):
            self.i_acc = _clamp(i_next, 0, _PM_MAX * 1000)
        return _clamp(p + self.i_acc // 1000 + d, 0, _PM_MAX)


class OutletController:
    """Steam-rate control of the outlet temperature while the boiler boils.

    Feed-forward from the calibrated appliance model (steam power the nozzle needs for
    the setpoint, boiler losses, and the power the pumped liquid takes to evaporate), so
    that the pump starting does not dip the outlet; a PI loop trims what the model gets
    wrong (mains, ambient, the hot body). From cold the setpoint ramps up, never more
    than lead_mc ahead of the outlet, so the integral learns the model's error on the
    way up instead of overshooting at the top."""

    def __init__(self, kp_pm_per_c=60, ti_steps=40, ramp_mc_per_step=25, lead_mc=1500,
                 i_limit_pm=400, cut_mc=2000):
        self.kp = kp_pm_per_c
        self.cut_mc = cut_mc
        self.ti_steps = ti_steps
        self.ramp = ramp_mc_per_step
        self.lead = lead_mc
        self.i_limit = i_limit_pm * 1000
        self.target_mc = 0
        self.ambient_mc = 22000
        self.pump_nl_s = 0
        self.ff_pm = 0
        self.i_acc = 0
        self.sp_mc = 0

    def reset(self, outlet_mc):
        self.i_acc = 0
        self.sp_mc = outlet_mc

    def feed_forward_pm(self, sp_mc):
        amb = self.ambient_mc
        # Outlet equilibrium: T = amb + (100 C - amb) * H / (H + H_half), solved for H.
        ratio_pm = (sp_mc - amb) * 1000 // (100000 - sp_mc)
        if ratio_pm < 0:
            ratio_pm = 0
        steam_mw = config.NOZZLE_HALF_W * ratio_pm
        loss_mw = config.BOILER_LOSS_MW_PER_K * (100000 - amb) // 1000
        pump_mw = self.pump_nl_s * config.LIQUID_MJ_PER_UL // 1000
        return _clamp((steam_mw + loss_mw + pump_mw) // config.HEATER_W, 0, _PM_MAX)

    def update(self, outlet_mc):
        sp = self.sp_mc
        waiting = False
        if sp < self.target_mc:
            sp = min(sp + self.ramp, self.target_mc)
            if sp > outlet_mc + self.lead:
                # The outlet is not following yet (no steam until the boiler boils):
                # hold the ramp, and do not integrate an error the plant cannot answer.
                sp = max(self.sp_mc, outlet_mc + self.lead)
                waiting = True
        else:
            sp = self.target_mc
        self.sp_mc = sp
        err = sp - outlet_mc
        p = err * self.kp // 1000
        self.ff_pm = self.feed_forward_pm(sp)
        base = self.ff_pm + p
        i_next = _clamp(self.i_acc + err * self.kp // self.ti_steps,
                        -self.i_limit, self.i_limit)
        out = base + i_next // 1000
        # Anti-windup: no integrating further into a saturated output.
        if not (waiting or (out > _PM_MAX and err > 0) or (out < 0 and err < 0)):
            self.i_acc = i_next
        if err < -self.cut_mc:
            # Far above the setpoint no amount of trimming helps: stop the steam.
            return 0
        return _clamp(base + self.i_acc // 1000, 0, _PM_MAX)
