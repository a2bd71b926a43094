"""What the state and fault codes of a `status` message (and the fault list) stand for:
the names firmware and host both use. A code is an index; new names go at the end."""
STATE_NAMES = ("off", "idle", "preheat", "ready", "steaming", "cooldown", "fault")
FAULT_NAMES = (
    None, "overtemp_boiler", "overtemp_outlet",
    "boiler_ntc_open", "boiler_ntc_short", "boiler_ntc_range", "boiler_ntc_frozen",
    "outlet_ntc_open", "outlet_ntc_short", "outlet_ntc_range", "outlet_ntc_frozen",
    "heater_stuck_on", "heater_not_heating", "dry_boil", "water_empty", "tip_over",
    "pump_stall", "pump_overrun", "service_error",
)
# The unit of a fault record's value and limit (the fault list's `unit`, an index into
# UNIT_NAMES): milli-degrees C, raw ADC counts, control steps (100 ms), nanolitres.
# FAULT_UNITS gives it by fault code, as fw.safety's checks measure (issue 14 item 8).
UNIT_NAMES = ("none", "mc", "counts", "steps", "nl")
FAULT_UNITS = (
    0, 1, 1,
    2, 2, 1, 3,
    2, 2, 1, 3,
    1, 1, 1, 3, 3,
    4, 4, 0,
)
# The inserted podlet in a `status` message: its state, and why it was refused (0 while
# it is not). Reasons are the firmware's podlet_rejected words; "other" stands for one
# this table does not name.
PODLET_STATES = ("none", "checking", "accepted", "refused")
PODLET_REASONS = (None, "other", "unreadable", "crc", "bad_signature", "malformed",
                  "not_provisioned", "clock_unset", "expired", "no_profile", "used_up",
                  "ledger_error")
# The states in which a session runs (STATE_NAMES' preheat, ready and steaming).
SESSION_STATES = ("preheat", "ready", "steaming")
# Why a session ended, as a session_ended record names it: END_NAMES by the firmware's
# end code (fw.app; 0 means it has not), RESET_END_NAMES by the cause of the reset that
# cut it short (codes.RESET_*).
END_NAMES = (None, "completed", "max_session", "stopped", "podlet_removed", "fault",
             "podlet_empty", "max_day", "podlet_changed", "podlet_unreadable")
RESET_END_NAMES = ("power_loss", "watchdog", "reset")
# The boiler temperature at which preheat ends (fw.config.READY_MC), in milli-degrees C.
READY_MC = 97000
# A profile's warnings (podproto.profile, format 2), by code: what the user must know of
# the podlet's ingredients before a session. New codes go at the end.
WARNING_CODES = (None, "pregnancy", "kidney", "sun_sensitivity", "allergy_test", "other")
