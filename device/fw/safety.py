"""The safety supervisor: watches sensors and the controller's output from outside.

It runs after the controller in every step, sees what the controller wants to command,
and either lets it through or latches a fault. It never trusts the controller, the host
or the clock: only the sensors, the commanded outputs and its own history, which it
reads from one Readings object the app fills each step. Its checks run in a fixed
order (Supervisor.check), each a small method with its own thresholds returning a
fault code or 0. All checks are integer and allocation-free; thresholds are named with
their units.
"""
from array import array

from micropython import const

from fw import config
from fw import codes

# Consecutive steps a condition must hold before it latches (debounce).
_SENSOR_STEPS = const(2)        # open / short / range / over-temperature readings
_WATER_STEPS = const(5)         # float switch sloshes
_TILT_STEPS = const(3)
# Sensor frozen: the raw count identical for this many steps while the heater works.
_FROZEN_STEPS = const(40)
# Heater stuck on: once 0 % has been commanded for _OFF_SETTLE_STEPS (most of the sensors'
# lag has passed), the boiler may not rise by more than _STUCK_RISE_MC over _WINDOW_STEPS;
# while boiling, the outlet must fall.
_OFF_SETTLE_STEPS = const(30)
_WINDOW_STEPS = const(20)
_STUCK_RISE_MC = const(400)
# ... and only while the rise keeps its pace: the lag of a sensor behind a boiler that has
# stopped heating (2 s, ~4 K at full power with 16 ml left) lets the reading go on rising
# after the settling, but each window by about e^-1 of the one before, where a heater
# that is still on keeps the rate. So the rise must be at least 6/10 of the previous
# window's to count.
_STUCK_KEEP_TENTHS = const(6)
# Steam stops the moment the heat does, so the outlet's answer is quicker and larger.
_BOILING_MC = const(99000)
_STEAM_SETTLE_STEPS = const(15)
_STEAM_WINDOW_STEPS = const(10)
_STUCK_OUTLET_ABOVE_MC = const(10000)   # above the coolest outlet reading seen
_STUCK_OUTLET_FALL_MC = const(400)
# Heater not heating: at >= 90 % for _HEAT_WINDOW_STEPS below 95 C, the boiler must rise
# at least _HEAT_RISE_MC; while boiling at >= 80 % the outlet may not fall _COLD_FALL_MC.
_HEAT_WINDOW_STEPS = const(60)
_HEAT_WINDOW_S = const(6)
_HEAT_ON_PM = const(900)
_HEAT_BELOW_MC = const(95000)
_HEAT_RISE_MC = const(250)
# ... and once this session's heat capacity is measured (fw.calib, early in the heat-up),
# below _HEAT_MODEL_BELOW_MC (where the boiler's lagging reading still rises as the water
# does, even at the fastest heat-up), at least 1/_HEAT_MODEL_DIV of the rise the model
# expects at 90 %: a unit's own heater, however weak, is what its model measured.
_HEAT_MODEL_BELOW_MC = const(85000)
_HEAT_MODEL_DIV = const(3)
_STEAM_ON_PM = const(800)
_COLD_WINDOW_STEPS = const(40)
_COLD_FALL_MC = const(3000)
# Pump stall: this much commanded volume without one encoder pulse.
_STALL_PULSES = const(10)
# Pump overrun: over the last _OVERRUN_STEPS, the encoder may count at most what was
# commanded plus _OVERRUN_NL (a pulse of quantization, a little lag) and 1/16 of it
# (2**-_OVERRUN_SHIFT: calibration, which fw.session trims the rate for; the sim's pump
# is within 5 %).
_OVERRUN_STEPS = const(10)
_OVERRUN_NL = const(300)
_OVERRUN_SHIFT = const(4)
# A step's encoder count is capped at this before it is scaled: any more trips anyway,
# and the window's sums stay small ints.
_OVERRUN_MAX_PULSES = const(16384)
_PULSE_MASK = const(0xFFFFFF)   # pump.pulses() wraps modulo 2**24

_RING = const(64)               # history length, a power of two
_RING_MASK = const(63)
# A check's answer that no later check applies this step, and no fault.
_SKIP_REST = const(-1)


class Readings:
    """One step's readings and the outputs commanded in the step before: preallocated
    once (Supervisor.readings), filled by the app each step before Supervisor.check()."""

    def __init__(self):
        self.boiler_raw = 0         # ADC counts
        self.outlet_raw = 0
        self.boiler_mc = 0
        self.outlet_mc = 0
        self.water_low = 0
        self.tilted = 0
        self.heating_state = 0      # a session heats (this step's state)
        self.heater_pm = 0          # commanded in the step before
        self.pump_nl_s = 0          # commanded in the step before
        self.pump_pulses = 0        # the encoder's count now
        self.pump_held = 0          # the board stopped the pump in the period before
        self.pump_nl_per_pulse = 0
        self.pump_may_miss = 1      # the encoder may miss edges (realboard.Pump says)
        self.dose_commanded_nl = 0  # the session's dose commanded so far (fw.session)
        # This session's measured heat model (fw.calib sets it; 0: not measured yet).
        self.heat_j_per_k = 0
        self.heater_w = config.HEATER_W
        self.loss_mw_per_k = config.BOILER_LOSS_MW_PER_K


class Supervisor:
    def __init__(self):
        self.readings = Readings()
        self.boiler_hist = array("i", [0] * _RING)
        self.outlet_hist = array("i", [0] * _RING)
        # Per step of the overrun window: nl the encoder counted, nl commanded.
        self.ov_got = array("i", [0] * _OVERRUN_STEPS)
        self.ov_cmd = array("i", [0] * _OVERRUN_STEPS)
        self.reset()

    def reset(self):
        """Forget history (boot, or a fault acknowledged)."""
        self.n = 0                  # steps seen, saturating at _RING
        self.pos = 0
        self.now_pos = 0            # where this step's history went
        self.boiler_ema = 0
        self.outlet_ema = 0
        self.outlet_min = 1 << 29   # coolest outlet seen: what the room allows
        self.b_open = self.b_short = self.b_range = 0
        self.o_open = self.o_short = self.o_range = 0
        self.b_hot = self.o_hot = self.dry = 0
        self.water = self.tilt = 0
        self.b_same = self.o_same = 0
        self.b_last_raw = self.o_last_raw = -1
        self.off_run = 0
        self.on_run = 0
        self.steam_run = 0
        self.pump_nl = 0
        self.pump_last = -1
        self.ov_pulses = -1         # encoder count at the last step (-1: none yet)
        self.ov_pos = 0
        self.ov_got_nl = 0          # sums over the window
        self.ov_cmd_nl = 0
        for i in range(_OVERRUN_STEPS):
            self.ov_got[i] = 0
            self.ov_cmd[i] = 0
        self.inhibit = False        # cut the outputs this step without latching
        # Details of the fault just found, read by the app when it latches.
        self.sensor = codes.S_NONE
        self.raw = 0
        self.value = 0
        self.limit = 0

    def external(self, code):
        """A fault found outside the step (fw.main: service() raised): no reading to
        record with it."""
        return self._found(code, codes.S_NONE, 0, 0, 0)

    def _found(self, code, sensor, raw, value, limit):
        self.sensor = sensor
        self.raw = raw
        self.value = value
        self.limit = limit
        return code

    def check(self):
        """Returns a fault code (codes.F_*) or codes.F_NONE for this step's readings
        (self.readings), judged against the outputs commanded in the steps before. Called
        once per step, after the controller and before actuation, so a fault cuts this
        step's output."""
        # The smoothed temperatures into the history ring, then the checks.
        r = self.readings
        if self.n == 0:
            self.boiler_ema = r.boiler_mc
            self.outlet_ema = r.outlet_mc
        self.boiler_ema += (r.boiler_mc - self.boiler_ema) >> 2
        self.outlet_ema += (r.outlet_mc - self.outlet_ema) >> 2
        if self.outlet_ema < self.outlet_min:
            self.outlet_min = self.outlet_ema
        pos = self.pos
        self.now_pos = pos
        self.boiler_hist[pos] = self.boiler_ema
        self.outlet_hist[pos] = self.outlet_ema
        self.pos = (pos + 1) & _RING_MASK
        if self.n < _RING:
            self.n += 1
        # The checks, in the order they run: the first to return a fault code latches it
        # (each called as a method, which makes no bound method: nothing allocates).
        code = (self._check_overrun() or self._check_wiring() or self._check_overtemp()
                or self._check_range() or self._check_dry_boil() or self._check_frozen()
                or self._check_stuck_on() or self._check_not_heating()
                or self._check_water() or self._check_tilt() or self._check_pump_stall())
        return code if code > 0 else codes.F_NONE

    def _check_overrun(self):
        """Pump overrun: over the last _OVERRUN_STEPS, the encoder counted more than was
        commanded in the steps before (readings.pump_nl_s is still the last step's
        command: what the pump was told to deliver until now) by more than the margin.
        First, as its window must see every step's command and count."""
        r = self.readings
        pulses = r.pump_pulses
        last = self.ov_pulses
        self.ov_pulses = pulses
        if last < 0:
            return 0
        got = (pulses - last) & _PULSE_MASK
        if got > _OVERRUN_MAX_PULSES:
            got = _OVERRUN_MAX_PULSES
        got *= r.pump_nl_per_pulse
        cmd = r.pump_nl_s // config.STEPS_PER_S
        pos = self.ov_pos
        self.ov_got_nl += got - self.ov_got[pos]
        self.ov_cmd_nl += cmd - self.ov_cmd[pos]
        self.ov_got[pos] = got
        self.ov_cmd[pos] = cmd
        pos += 1
        self.ov_pos = 0 if pos == _OVERRUN_STEPS else pos
        limit = _OVERRUN_NL + (self.ov_cmd_nl >> _OVERRUN_SHIFT)
        if self.ov_got_nl > self.ov_cmd_nl + limit:
            return self._found(codes.F_PUMP_OVERRUN, codes.S_PUMP, pulses,
                               self.ov_got_nl - self.ov_cmd_nl, limit)
        return 0

    def _check_wiring(self):
        """Wiring: a sensor open or shorted. A reading in the open or short band is
        wiring, not temperature: it cuts the heater this step (inhibit) and latches as
        open or short on the next; no check after this one judges it."""
        r = self.readings
        braw = r.boiler_raw
        oraw = r.outlet_raw
        self.b_open = self.b_open + 1 if braw >= config.RAW_OPEN else 0
        if self.b_open >= _SENSOR_STEPS:
            return self._found(codes.F_BOILER_NTC_OPEN, codes.S_BOILER, braw, braw, config.RAW_OPEN)
        self.b_short = self.b_short + 1 if braw <= config.RAW_SHORT else 0
        if self.b_short >= _SENSOR_STEPS:
            return self._found(codes.F_BOILER_NTC_SHORT, codes.S_BOILER, braw, braw, config.RAW_SHORT)
        self.o_open = self.o_open + 1 if oraw >= config.RAW_OPEN else 0
        if self.o_open >= _SENSOR_STEPS:
            return self._found(codes.F_OUTLET_NTC_OPEN, codes.S_OUTLET, oraw, oraw, config.RAW_OPEN)
        self.o_short = self.o_short + 1 if oraw <= config.RAW_SHORT else 0
        if self.o_short >= _SENSOR_STEPS:
            return self._found(codes.F_OUTLET_NTC_SHORT, codes.S_OUTLET, oraw, oraw, config.RAW_SHORT)
        self.inhibit = (braw >= config.RAW_OPEN or braw <= config.RAW_SHORT
                        or oraw >= config.RAW_OPEN or oraw <= config.RAW_SHORT)
        return _SKIP_REST if self.inhibit else 0

    def _check_overtemp(self):
        """Over-temperature: the hard limits, before anything subtler."""
        r = self.readings
        bmc = r.boiler_mc
        self.b_hot = self.b_hot + 1 if bmc > config.BOILER_LIMIT_MC else 0
        if self.b_hot >= 1:
            return self._found(codes.F_OVERTEMP_BOILER, codes.S_BOILER, r.boiler_raw, bmc,
                               config.BOILER_LIMIT_MC)
        omc = r.outlet_mc
        self.o_hot = self.o_hot + 1 if omc > config.OUTLET_LIMIT_MC else 0
        if self.o_hot >= 1:
            return self._found(codes.F_OVERTEMP_OUTLET, codes.S_OUTLET, r.outlet_raw, omc,
                               config.OUTLET_LIMIT_MC)
        return 0

    def _check_range(self):
        """A temperature no sensor in working order reads."""
        r = self.readings
        bmc = r.boiler_mc
        if bmc < config.BOILER_MIN_MC or bmc > config.BOILER_MAX_MC:
            self.b_range += 1
        else:
            self.b_range = 0
        if self.b_range >= _SENSOR_STEPS:
            return self._found(codes.F_BOILER_NTC_RANGE, codes.S_BOILER, r.boiler_raw, bmc,
                               config.BOILER_MAX_MC if bmc > 0 else config.BOILER_MIN_MC)
        omc = r.outlet_mc
        if omc < config.OUTLET_MIN_MC or omc > config.OUTLET_MAX_MC:
            self.o_range += 1
        else:
            self.o_range = 0
        if self.o_range >= _SENSOR_STEPS:
            return self._found(codes.F_OUTLET_NTC_RANGE, codes.S_OUTLET, r.outlet_raw, omc,
                               config.OUTLET_MAX_MC if omc > 0 else config.OUTLET_MIN_MC)
        return 0

    def _check_dry_boil(self):
        """Dry boil: water cannot be hotter than it boils."""
        r = self.readings
        self.dry = self.dry + 1 if r.boiler_mc > config.DRY_BOIL_MC else 0
        if self.dry >= _SENSOR_STEPS:
            return self._found(codes.F_DRY_BOIL, codes.S_BOILER, r.boiler_raw, r.boiler_mc,
                               config.DRY_BOIL_MC)
        return 0

    def _check_frozen(self):
        """Frozen sensors: real readings always carry some noise."""
        r = self.readings
        braw = r.boiler_raw
        oraw = r.outlet_raw
        heating = r.heater_pm > 0
        self.b_same = self.b_same + 1 if (heating and braw == self.b_last_raw) else 0
        self.o_same = self.o_same + 1 if (heating and oraw == self.o_last_raw) else 0
        self.b_last_raw = braw
        self.o_last_raw = oraw
        if self.b_same >= _FROZEN_STEPS:
            return self._found(codes.F_BOILER_NTC_FROZEN, codes.S_BOILER, braw, self.b_same,
                               _FROZEN_STEPS)
        if self.o_same >= _FROZEN_STEPS:
            return self._found(codes.F_OUTLET_NTC_FROZEN, codes.S_OUTLET, oraw, self.o_same,
                               _FROZEN_STEPS)
        return 0

    def _check_stuck_on(self):
        """Heater stuck on: the boiler heating, or the outlet still steaming, with
        nothing commanded. First the heater output's history (what was commanded in the
        steps before this one), which the heater checks judge by."""
        r = self.readings
        heater_pm = r.heater_pm
        if heater_pm == 0:
            self.off_run += 1
            self.on_run = 0
        else:
            self.off_run = 0
            self.on_run = self.on_run + 1 if heater_pm >= _HEAT_ON_PM else 0
        self.steam_run = self.steam_run + 1 if heater_pm >= _STEAM_ON_PM else 0
        if self.off_run >= _OFF_SETTLE_STEPS + _WINDOW_STEPS and self.n > 2 * _WINDOW_STEPS:
            then = (self.now_pos - _WINDOW_STEPS) & _RING_MASK
            rise = self.boiler_ema - self.boiler_hist[then]
            earlier = (then - _WINDOW_STEPS) & _RING_MASK
            before = self.boiler_hist[then] - self.boiler_hist[earlier]
            if rise > _STUCK_RISE_MC and rise * 10 > before * _STUCK_KEEP_TENTHS:
                return self._found(codes.F_HEATER_STUCK_ON, codes.S_HEATER, r.boiler_raw,
                                   rise, _STUCK_RISE_MC)
        if (self.off_run >= _STEAM_SETTLE_STEPS + _STEAM_WINDOW_STEPS
                and self.n > _STEAM_WINDOW_STEPS):
            then = (self.now_pos - _STEAM_WINDOW_STEPS) & _RING_MASK
            fall = self.outlet_hist[then] - self.outlet_ema
            # A reading still rising on its sensor's lag after a steam burst that
            # stopped, slowing fast: not (yet) a heater still on, which keeps its pace.
            earlier = (then - _STEAM_WINDOW_STEPS) & _RING_MASK
            before = self.outlet_hist[then] - self.outlet_hist[earlier]
            lagging = (before > _STUCK_OUTLET_FALL_MC
                       and -fall * 10 <= before * _STUCK_KEEP_TENTHS)
            if (self.boiler_ema >= _BOILING_MC and not lagging
                    and self.outlet_ema > self.outlet_min + _STUCK_OUTLET_ABOVE_MC
                    and fall < _STUCK_OUTLET_FALL_MC):
                return self._found(codes.F_HEATER_STUCK_ON, codes.S_OUTLET, r.outlet_raw,
                                   fall, _STUCK_OUTLET_FALL_MC)
        return 0

    def _check_not_heating(self):
        """Not heating as the plant should (a dead element, a deep mains sag): the boiler
        below boiling does not rise at near full power, or boiling at high power the
        outlet cools."""
        if (self.on_run >= _HEAT_WINDOW_STEPS and self.boiler_ema < _HEAT_BELOW_MC
                and self.n >= _RING):
            then = (self.now_pos - _HEAT_WINDOW_STEPS) & _RING_MASK
            rise = self.boiler_ema - self.boiler_hist[then]
            need_mc = _HEAT_RISE_MC
            r = self.readings
            if r.heat_j_per_k > 0 and self.boiler_ema < _HEAT_MODEL_BELOW_MC:
                # The room is the coolest outlet seen.
                excess_k = (self.boiler_ema - self.outlet_min) // 1000
                expect = ((r.heater_w * _HEAT_ON_PM - r.loss_mw_per_k * excess_k)
                          * _HEAT_WINDOW_S // r.heat_j_per_k)
                if expect // _HEAT_MODEL_DIV > need_mc:
                    need_mc = expect // _HEAT_MODEL_DIV
            if rise < need_mc:
                return self._found(codes.F_HEATER_NOT_HEATING, codes.S_BOILER,
                                   r.boiler_raw, rise, need_mc)
        if self.steam_run >= _COLD_WINDOW_STEPS and self.boiler_ema >= _BOILING_MC:
            then = (self.now_pos - _COLD_WINDOW_STEPS) & _RING_MASK
            fall = self.outlet_hist[then] - self.outlet_ema
            if fall > _COLD_FALL_MC:
                return self._found(codes.F_HEATER_NOT_HEATING, codes.S_OUTLET,
                                   self.readings.outlet_raw, fall, _COLD_FALL_MC)
        return 0

    def _check_water(self):
        """Out of water, in a session."""
        r = self.readings
        self.water = self.water + 1 if r.water_low else 0
        if self.water >= _WATER_STEPS and r.heating_state:
            return self._found(codes.F_WATER_EMPTY, codes.S_WATER, 1, self.water, _WATER_STEPS)
        return 0

    def _check_tilt(self):
        """Tipped over."""
        self.tilt = self.tilt + 1 if self.readings.tilted else 0
        if self.tilt >= _TILT_STEPS:
            return self._found(codes.F_TIP_OVER, codes.S_TILT, 1, self.tilt, _TILT_STEPS)
        return 0

    def _check_pump_stall(self):
        """Pump stall: commanded volume with no encoder movement."""
        r = self.readings
        pulses = r.pump_pulses
        if r.pump_nl_s > 0 and pulses == self.pump_last:
            # A period the board stopped the pump in (a flash operation: pump.held())
            # was not all asked of it: it counts toward no stall.
            if not r.pump_held:
                self.pump_nl += r.pump_nl_s // config.STEPS_PER_S
                if self.pump_nl >= _STALL_PULSES * r.pump_nl_per_pulse:
                    return self._found(codes.F_PUMP_STALL, codes.S_PUMP, pulses,
                                       self.pump_nl, _STALL_PULSES * r.pump_nl_per_pulse)
        else:
            self.pump_nl = 0
        self.pump_last = pulses
        return 0
