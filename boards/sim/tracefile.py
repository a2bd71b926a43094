"""The sim run's trace file: a JSON line per control period and per firmware event."""
import json

from fw import codes


class Trace:
    """Writes to path; with no path (None or "") every write is dropped."""

    def __init__(self, path):
        self.f = open(path, "w") if path else None

    def event(self, now_ms, record):
        """One firmware decision (board.emit's record), as it was made."""
        if self.f is not None:
            self.f.write('{"t_ms": %d, %s\n' % (now_ms, json.dumps(record)[1:]))

    def period(self, now_ms, app, plant, state_name=None):
        """One period: the firmware's view (app; none when off) beside the plant's truth."""
        f = self.f
        if f is None:
            return
        if state_name is None:
            state_name = codes.STATE_NAMES[app.state] if app is not None else "off"
        if app is not None and state_name != "off":
            fault = codes.FAULT_NAMES[app.fault]
            fw = ('{"boiler_c": %.2f, "outlet_c": %.2f, "heater_pct": %.1f, "pump_ul_min": %.1f, '
                  '"session_ul": %.1f, "fault": %s}') % (
                app.boiler_mc / 1000, app.outlet_mc / 1000, app.heater_pm / 10,
                app.pump_nl_s * 60 / 1000, app.session_nl / 1000,
                "null" if fault is None else '"%s"' % fault)
        else:
            fw = "null"
        f.write(
            '{"t_ms": %d, "state": "%s", "fw": %s, "plant": {"boiler_c": %.2f, "outlet_c": %.2f, '
            '"heater_w": %.1f, "water_ml": %.2f, "steam_mg_s": %.1f, "pumped_ul": %.3f}}\n' % (
                now_ms, state_name, fw, plant.boiler_c, plant.nozzle_c, plant.heater_w,
                plant.water_g, plant.steam_mg_s, plant.pumped_nl / 1000))

    def close(self):
        if self.f is not None:
            self.f.close()
            self.f = None
