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
# The inserted podlet in a `status` message: its state, and why it was refused (0 while
# it is not). Reasons are the firmware's podlet_rejected words; "other" stands for one
# this table does not name.
PODLET_STATES = ("none", "checking", "accepted", "refused")
PODLET_REASONS = (None, "other", "unreadable", "crc", "bad_signature", "malformed",
                  "not_provisioned", "clock_unset", "expired", "no_profile", "used_up",
                  "ledger_error")
