"""Codes shared by the firmware and every board: reset causes, states, faults."""
from micropython import const

from podproto.names import FAULT_NAMES, FAULT_UNITS, STATE_NAMES  # noqa: F401  (for the firmware)

# Reset causes, as boards report them from reset_cause().
RESET_POWER = const(0)
RESET_WDT = const(1)
RESET_SOFT = const(2)
RESET_NAMES = ("power_on", "watchdog", "soft")

# Device states (index into STATE_NAMES, podproto.names).
ST_OFF = const(0)
ST_IDLE = const(1)
ST_PREHEAT = const(2)
ST_READY = const(3)
ST_STEAMING = const(4)
ST_COOLDOWN = const(5)
ST_FAULT = const(6)

# Fault codes (index into FAULT_NAMES, podproto.names); 0 means none.
F_NONE = const(0)
F_OVERTEMP_BOILER = const(1)
F_OVERTEMP_OUTLET = const(2)
F_BOILER_NTC_OPEN = const(3)
F_BOILER_NTC_SHORT = const(4)
F_BOILER_NTC_RANGE = const(5)
F_BOILER_NTC_FROZEN = const(6)
F_OUTLET_NTC_OPEN = const(7)
F_OUTLET_NTC_SHORT = const(8)
F_OUTLET_NTC_RANGE = const(9)
F_OUTLET_NTC_FROZEN = const(10)
F_HEATER_STUCK_ON = const(11)
F_HEATER_NOT_HEATING = const(12)
F_DRY_BOIL = const(13)
F_WATER_EMPTY = const(14)
F_TIP_OVER = const(15)
F_PUMP_STALL = const(16)
F_PUMP_OVERRUN = const(17)      # the encoder counted more than was commanded
F_SERVICE_ERROR = const(18)     # service() raised (fw.main): outputs off, session ended

# Which sensor a fault concerns (index into SENSOR_NAMES).
S_NONE = const(0)
S_BOILER = const(1)
S_OUTLET = const(2)
S_HEATER = const(3)
S_WATER = const(4)
S_TILT = const(5)
S_PUMP = const(6)
SENSOR_NAMES = ("none", "boiler", "outlet", "heater", "water", "tilt", "pump")
