"""The sim run's summary material: step times, sessions, faults, resets and the control metrics."""
from array import array

from fw import codes
from fw import config

_HIST_US = 1000  # step-time histogram: 1 us bins up to this, then one overflow bin


class Metrics:
    def __init__(self, scenario, plant):
        self.scenario = scenario
        self.plant = plant
        self.steps = 0
        self.alloc_errors = 0
        self.crashes = 0
        self.hist = array("I", bytes(4 * (_HIST_US + 2)))
        self.step_us_max = 0
        self.sessions = []
        self.faults = []
        self.latched = []
        self.resets = []
        self.last_state = -1
        self.session_start_ms = -1
        self.ready_ms = None
        self.target_c = None
        self.overshoot_c = None
        self.err_sum = 0.0
        self.err_n = 0
        self.err_max = 0.0
        self.dose_start_ms = -1
        self.start_cmd_ms = -1          # the first start_session the scenario gave
        self.first_dose_ms = None       # from it (else the session's start) to the first dose

    # ---- what the firmware reports ----------------------------------------------------
    def event(self, now, record):
        """One firmware decision (board.emit's record)."""
        event = record["event"]
        if event == "session_started":
            self.session_start_ms = now
            self.target_c = record.get("target_c")
            self.sessions.append({"podlet": record.get("podlet"), "start_ms": now,
                                  "end_ms": None, "reason": None, "session_ul": None,
                                  "plant_pumped_ul": None,
                                  "_pumped0": self.plant.pumped_nl})
        elif event == "session_ended" and self.sessions and self.sessions[-1]["reason"] is None:
            # (A second end of one session, the first cut short on its way to flash and
            # made again at the next boot, is in the trace; the summary keeps the first.)
            s = self.sessions[-1]
            s["end_ms"] = now
            s["reason"] = record["reason"]
            s["session_ul"] = record["session_ul"]
            s["plant_pumped_ul"] = round((self.plant.pumped_nl - s.pop("_pumped0")) / 1000.0, 3)
        elif event == "fault_latched":
            self.latched.append({"code": record["code"], "latched_ms": now})
            for f in self.faults:
                if f["latched_ms"] is None:
                    f["latched_ms"] = now
                    f["latched_code"] = record["code"]
                    break

    def step(self, now, app):
        """After each control period (board.telemetry)."""
        self.steps += 1
        us = app.step_us
        self.hist[us if us <= _HIST_US else _HIST_US + 1] += 1
        if us > self.step_us_max:
            self.step_us_max = us
        state = app.state
        if state != self.last_state:
            if state == codes.ST_READY and self.ready_ms is None and self.session_start_ms >= 0:
                self.ready_ms = now - self.session_start_ms
            self.last_state = state
        if state == codes.ST_STEAMING and self.target_c is not None:
            over = self.plant.nozzle_c - self.target_c
            if self.overshoot_c is None or over > self.overshoot_c:
                self.overshoot_c = over
            if app.dosing:
                if self.dose_start_ms < 0:
                    self.dose_start_ms = now
                if self.first_dose_ms is None:
                    t0 = self.start_cmd_ms if self.start_cmd_ms >= 0 else self.session_start_ms
                    self.first_dose_ms = now - t0
                if now - self.dose_start_ms >= 60000:
                    err = abs(over)
                    self.err_sum += err
                    self.err_n += 1
                    if err > self.err_max:
                        self.err_max = err
        elif self.dose_start_ms >= 0 and state != codes.ST_STEAMING:
            self.dose_start_ms = -1

    # ---- what the world does ----------------------------------------------------------
    def start_pressed(self, now):
        """The scenario's start_session was handed to the firmware."""
        if self.start_cmd_ms < 0:
            self.start_cmd_ms = now

    def fault_injected(self, now, name):
        self.faults.append({"code": name, "injected_ms": now, "latched_ms": None,
                            "latched_code": None})

    def stalled_heater_off(self, now):
        """A period of a stalled loop with the heater off: the stall's heater_off_ms."""
        for f in self.faults:
            if f["code"] == "loop_stall" and f.get("heater_off_ms") is None:
                f["heater_off_ms"] = now

    def firmware_gone(self, now, cause, app):
        """A reset (cause, fw.codes) of the firmware app (None when it never booted)."""
        if app is not None:
            self.alloc_errors += app.alloc_errors
        self.resets.append({"cause": codes.RESET_NAMES[cause], "t_ms": now})
        if cause == codes.RESET_WDT:
            for f in self.faults:
                if f["code"] == "loop_stall" and f.get("reset_ms") is None:
                    f["reset_ms"] = now
                    f["latched_ms"] = f["latched_ms"] or now
                    f["latched_code"] = f["latched_code"] or "watchdog_reset"

    def booted(self):
        self.last_state = -1

    def crashed(self):
        self.crashes += 1

    # ---- the summary ------------------------------------------------------------------
    def percentile(self, q):
        total = self.steps
        if not total:
            return 0
        want = q * total
        seen = 0
        for us in range(_HIST_US + 2):
            seen += self.hist[us]
            if seen >= want:
                return us
        return _HIST_US + 1

    def physical_ready_s(self):
        """m * c * dT / P: the time an ideal lossless heater needs to bring the boiler
        from ambient to the ready temperature, with this plant's parameters."""
        p = self.plant.p
        cfg = self.scenario["plant"]
        heat_cap = cfg["water_ml"] * p["water_j_per_gk"] + p["metal_j_per_k"]
        d_t = config.READY_MC / 1000 - cfg["ambient_c"]
        return heat_cap * d_t / self.plant.heater_full_w

    def physical_first_dose_s(self):
        """Issue 15's limit on start to first dose: water and metal from ambient to
        boiling at full power with no losses, plus 10 s for steam to warm the outlet path."""
        p = self.plant.p
        cfg = self.scenario["plant"]
        heat_cap = cfg["water_ml"] * p["water_j_per_gk"] + p["metal_j_per_k"]
        return heat_cap * (p["boil_c"] - cfg["ambient_c"]) / self.plant.heater_full_w + 10.0

    def summary(self, wall_s, app):
        """The run's summary (sim.md); app: the firmware still running at the end, or None."""
        if app is not None:
            self.alloc_errors += app.alloc_errors
        duration_s = self.scenario["duration_s"]
        plant_cfg = dict(self.scenario["plant"])
        plant_cfg.update(self.plant.p)
        plant_cfg["pump_cal"] = self.plant.pump_cal
        for s in self.sessions:
            s.pop("_pumped0", None)
        limit_s = self.physical_ready_s()
        metrics = {
            "ready_ms": self.ready_ms,
            "ready_limit_ms": int(limit_s * 1000),
            "ready_ratio": None if self.ready_ms is None else round(self.ready_ms / 1000 / limit_s, 4),
            "overshoot_c": None if self.overshoot_c is None else round(self.overshoot_c, 3),
            "steady_err_c": None if not self.err_n else round(self.err_sum / self.err_n, 3),
            "steady_err_max_c": None if not self.err_n else round(self.err_max, 3),
            "first_dose_ms": self.first_dose_ms,
            "first_dose_limit_ms": int(self.physical_first_dose_s() * 1000),
        }
        return {
            "contract": 1,
            "duration_s": duration_s,
            "seed": self.scenario["seed"],
            "wall_s": round(wall_s, 3),
            "realtime_factor": round(duration_s / wall_s, 1) if wall_s > 0 else None,
            "plant": plant_cfg,
            "loop": {"steps": self.steps, "period_ms": config.PERIOD_MS,
                     "alloc_errors": self.alloc_errors,
                     "step_us_p50": self.percentile(0.5), "step_us_p99": self.percentile(0.99),
                     "step_us_max": self.step_us_max, "crashes": self.crashes},
            "sessions": self.sessions,
            "faults": self.faults,
            "latched": self.latched,
            "resets": self.resets,
            "metrics": metrics,
            # The heat model the firmware measured and keeps (fw.calib), at the end.
            "calib": app.calib.values() if app is not None and app.calib is not None else None,
        }
