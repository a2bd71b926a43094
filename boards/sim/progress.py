"""The lines a sim run prints on stderr as it goes: events, state changes, a status a minute."""
import sys

from fw import codes


class Progress:
    """say() always prints (power cuts, injected events); event() and step() only when
    enabled (`--quiet` turns them off)."""

    def __init__(self, enabled):
        self.enabled = enabled
        self.last_state = -1
        self.last_minute = -1

    def say(self, now_ms, text):
        sys.stderr.write("[%7.1fs] %s\n" % (now_ms / 1000, text))

    def event(self, now_ms, record):
        if self.enabled and record["event"] != "boot":
            self.say(now_ms, "%s %s" % (record["event"], " ".join(
                "%s=%s" % kv for kv in record.items() if kv[0] != "event")))

    def step(self, now_ms, app):
        """After each period: the state when it changed, and a status line each minute."""
        if not self.enabled:
            return
        state = app.state
        if state != self.last_state:
            self.say(now_ms, "state %s  boiler %.1f °C  outlet %.1f °C" % (
                codes.STATE_NAMES[state], app.boiler_mc / 1000, app.outlet_mc / 1000))
            self.last_state = state
        if now_ms // 60000 != self.last_minute:
            self.last_minute = now_ms // 60000
            self.say(now_ms, "t=%ds state %s boiler %.1f °C outlet %.1f °C dose %.0f µl" % (
                now_ms // 1000, codes.STATE_NAMES[state], app.boiler_mc / 1000,
                app.outlet_mc / 1000, app.session_nl / 1000))

    def firmware_gone(self):
        self.last_state = -1
