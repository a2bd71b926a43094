"""Physical model of the steamer: boiler, steam path, pump and sensors, in virtual time.

An energy balance on the boiler (water plus its metal body, heater power scaling with the
square of mains voltage, losses to ambient, boiling at 100 C with latent heat producing
steam, dry boil once the water is gone), a steam path whose outlet temperature follows
the steam power with thermal lag, a metering pump with a calibration tolerance and an
encoder, and NTC sensors with lag, noise and 12-bit quantization. Floats are fine here:
this is the world, not the firmware. Every parameter is in PARAMS with its unit.
"""
import math

# Parameters a scenario's "plant" object may set (validated by steamer_sim.scenario).
SCENARIO_DEFAULTS = {
    "ambient_c": 22.0,      # room temperature
    "water_ml": 150.0,      # water in the boiler at start
    "heater_w": 400.0,      # element power at 100 % mains
    "mains_pct": 100.0,     # mains voltage; power scales with its square
    "noise_pct": 100.0,     # scale of the sensors' electrical noise
}

# Hidden parameters a scenario's "plant" may set (optional; -50 %..+50 % of these), what
# the firmware's model assumes: the unit the model is wrong about.
HIDDEN_DEFAULTS = {
    "nozzle_half_w": 430.0,         # steam power that brings the outlet halfway to 100 C
    "loss_w_per_k": 0.40,           # boiler to ambient
    "metal_j_per_k": 100.0,         # boiler body and element
    "boiler_sensor_tau_s": 2.0,     # NTC on the boiler wall
    "outlet_sensor_tau_s": 1.5,
    "nozzle_tau_s": 4.0,            # thermal mass of the steam path
}

# Fixed parameters of the appliance model (Plant.p adds the hidden ones).
PARAMS = {
    "water_j_per_gk": 4.186,
    "latent_j_per_g": 2257.0,
    "boil_c": 100.0,
    "nozzle_body_coupling": 0.04,   # outlet warmed by the hot body without steam
    "pump_cal_tol_pct": 5.0,        # pump calibration error, drawn per seed within +-this
    "pump_nl_per_pulse": 100,
    "pump_max_nl_s": 40000,         # the pump's fastest (a real board's 20 kHz step limit)
    "noise_lsb": 1.2,               # ADC noise sigma at noise_pct 100 (plus a 0.4 floor)
    "float_switch_ml": 15.0,        # float switch reads empty below this
    "leak_ml_s": 5.0,               # how fast water_empty drains the reservoir
    "heater_timeout_ms": 300,       # driver switches off if not re-commanded
    "pump_timeout_ms": 100,         # the board stops the pump a period after its last set
    "r25_ohm": 10000.0,
    "beta": 3950.0,
    "boiler_pullup_ohm": 1000.0,
    "outlet_pullup_ohm": 10000.0,
}


class Rng:
    """xorshift32: the same seed gives the same numbers on every runtime."""

    def __init__(self, seed):
        self.s = ((seed * 2654435761) ^ 0x5DEECE66) & 0xFFFFFFFF or 1

    def u32(self):
        x = self.s
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.s = x
        return x

    def uniform(self):
        return self.u32() / 4294967296.0

    def gauss(self):
        # Irwin-Hall with 4 terms: mean 0, sigma 1, bounded; plenty for sensor noise.
        return (self.uniform() + self.uniform() + self.uniform() + self.uniform() - 2.0) * 1.7320508


def ntc_raw(temp_c, pullup_ohm):
    """Ideal ADC reading (float counts) of an NTC divider at temp_c."""
    p = PARAMS
    r = p["r25_ohm"] * math.exp(p["beta"] * (1.0 / (temp_c + 273.15) - 1.0 / 298.15))
    return 4095.0 * r / (r + pullup_ohm)


class Plant:
    def __init__(self, cfg, seed):
        self.cfg = cfg
        self.rng = Rng(seed)
        # The fixed parameters with this unit's hidden ones.
        self.p = p = dict(PARAMS)
        for key in HIDDEN_DEFAULTS:
            p[key] = float(cfg.get(key, HIDDEN_DEFAULTS[key]))
        self.ambient_c = cfg["ambient_c"]
        self.water_g = cfg["water_ml"]
        self.boiler_c = self.ambient_c
        self.boiler_sensor_c = self.ambient_c
        self.nozzle_c = self.ambient_c
        self.outlet_sensor_c = self.ambient_c
        self.heater_full_w = cfg["heater_w"] * (cfg["mains_pct"] / 100.0) ** 2
        self.pump_cal = 1.0 + (self.rng.uniform() * 2.0 - 1.0) * p["pump_cal_tol_pct"] / 100.0
        self.noise = p["noise_lsb"] * cfg["noise_pct"] / 100.0 + 0.4
        # Actuator state as the firmware last commanded it.
        self.heater_pm = 0
        self.heater_cmd_ms = -10 ** 9
        self.cutoff_open = False
        self.pump_nl_s = 0
        self.pump_cmd_ms = -10 ** 9
        self.powered = True
        # Outputs.
        self.heater_w = 0.0
        self.steam_mg_s = 0.0
        self.pumped_nl = 0.0
        self.pump_flow_nl_s = 0.0
        # Injected faults: name -> value captured at injection (or True).
        self.faults = {}
        self.boiler_raw = 0
        self.outlet_raw = 0
        self.sample_sensors()

    # ---- actuators ------------------------------------------------------------------
    def command_heater(self, permille, now_ms):
        self.heater_pm = permille
        self.heater_cmd_ms = now_ms

    def power(self, on):
        """Mains present or not: without it nothing heats or pumps."""
        self.powered = on
        if not on:
            self.heater_pm = 0
            self.pump_nl_s = 0
            self.cutoff_open = False  # the cut-off relay recloses when power is cycled

    # ---- physics ----------------------------------------------------------------------
    def advance(self, dt_s, now_ms):
        p = self.p
        f = self.faults
        amb = self.ambient_c
        # Heater power: what the driver delivers, unless a fault overrides it.
        duty = self.heater_pm / 1000.0
        if now_ms - self.heater_cmd_ms > p["heater_timeout_ms"]:
            duty = 0.0
        if "heater_stuck_on" in f:
            duty = 1.0
        if "heater_open" in f or self.cutoff_open or not self.powered:
            duty = 0.0
        power_w = self.heater_full_w * duty
        self.heater_w = power_w

        if "water_empty" in f:
            self.water_g = max(0.0, self.water_g - p["leak_ml_s"] * dt_s)
        heat_cap = self.water_g * p["water_j_per_gk"] + p["metal_j_per_k"]
        loss_w = p["loss_w_per_k"] * (self.boiler_c - amb)
        net_j = (power_w - loss_w) * dt_s
        steam_g = 0.0
        boil = p["boil_c"]
        if self.water_g > 0.0 and self.boiler_c >= boil - 1e-9 and net_j > 0.0:
            steam_g = min(self.water_g, net_j / p["latent_j_per_g"])
            self.water_g -= steam_g
            self.boiler_c = boil
        else:
            self.boiler_c += net_j / heat_cap
            if self.water_g > 0.0 and self.boiler_c > boil:
                steam_g = min(self.water_g, (self.boiler_c - boil) * heat_cap / p["latent_j_per_g"])
                self.water_g -= steam_g
                self.boiler_c = boil
        self.steam_mg_s = steam_g * 1000.0 / dt_s

        # Pump: commanded rate times its calibration until the keep-alive runs out, its
        # fastest when it runs away (a driver that steps whatever it is told), nothing
        # when stalled or unpowered.
        flow = self.pump_nl_s * self.pump_cal
        if now_ms - self.pump_cmd_ms > p["pump_timeout_ms"]:
            flow = 0.0
        if "pump_runaway" in f:
            flow = p["pump_max_nl_s"] * self.pump_cal
        if "pump_stall" in f or not self.powered:
            flow = 0.0
        self.pump_flow_nl_s = flow
        self.pumped_nl += flow * dt_s

        # Steam path: steam power, less what the pumped liquid takes to evaporate.
        steam_w = steam_g * p["latent_j_per_g"] / dt_s
        liquid_w = flow * 1e-6 * (p["water_j_per_gk"] * (boil - amb) + p["latent_j_per_g"])
        eff_w = max(0.0, steam_w - liquid_w)
        eq = amb + (boil - amb) * eff_w / (eff_w + p["nozzle_half_w"]) \
            + p["nozzle_body_coupling"] * (self.boiler_c - amb)
        self.nozzle_c += (eq - self.nozzle_c) * (1.0 - math.exp(-dt_s / p["nozzle_tau_s"]))
        self.outlet_sensor_c += (self.nozzle_c - self.outlet_sensor_c) * \
            (1.0 - math.exp(-dt_s / p["outlet_sensor_tau_s"]))
        self.boiler_sensor_c += (self.boiler_c - self.boiler_sensor_c) * \
            (1.0 - math.exp(-dt_s / p["boiler_sensor_tau_s"]))
        self.sample_sensors()

    def _adc(self, temp_c, pullup_ohm, prefix):
        f = self.faults
        if prefix + "_ntc_open" in f:
            return 4095
        if prefix + "_ntc_short" in f:
            return int(self.rng.uniform() * 3)
        if prefix + "_ntc_frozen" in f:
            return f[prefix + "_ntc_frozen"]
        raw = int(ntc_raw(temp_c, pullup_ohm) + self.rng.gauss() * self.noise + 0.5)
        return 0 if raw < 0 else (4095 if raw > 4095 else raw)

    def sample_sensors(self):
        p = self.p
        self.boiler_raw = self._adc(self.boiler_sensor_c, p["boiler_pullup_ohm"], "boiler")
        self.outlet_raw = self._adc(self.outlet_sensor_c, p["outlet_pullup_ohm"], "outlet")

    # ---- switches and faults -----------------------------------------------------------
    def water_low(self):
        return 1 if self.water_g < PARAMS["float_switch_ml"] else 0

    def tilted(self):
        return 1 if "tip_over" in self.faults else 0

    def pump_pulses(self):
        return int(self.pumped_nl / PARAMS["pump_nl_per_pulse"]) & 0xFFFFFF

    def inject(self, name):
        if name == "boiler_ntc_frozen":
            self.faults[name] = self.boiler_raw
        elif name == "outlet_ntc_frozen":
            self.faults[name] = self.outlet_raw
        else:
            self.faults[name] = True

    def clear(self, name):
        self.faults.pop(name, None)

    def refill(self, ml):
        self.water_g += ml

    def snapshot(self):
        """Ground truth for the trace."""
        return {"boiler_c": round(self.boiler_c, 2), "outlet_c": round(self.outlet_sensor_c, 2),
                "heater_w": round(self.heater_w, 1), "water_ml": round(self.water_g, 2),
                "steam_mg_s": round(self.steam_mg_s, 1), "pumped_ul": round(self.pumped_nl / 1000.0, 3)}
