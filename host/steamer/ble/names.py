"""Names the steamer's codes stand for on the host (mirrors of device/fw/hal.py's)."""
STATE_NAMES = ("off", "idle", "preheat", "ready", "steaming", "cooldown", "fault")
