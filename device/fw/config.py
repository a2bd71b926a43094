"""The appliance's hard limits and its calibrated heat model, shared by all boards.

Temperatures are milli-degrees C (_mc), durations in control steps of PERIOD_MS unless
the name says otherwise. Change a limit here and nowhere else.
"""
from micropython import const

PERIOD_MS = const(100)
STEPS_PER_S = const(10)

# Hard limits: the supervisor cuts the heater the step a reading passes them.
BOILER_LIMIT_MC = const(130000)
OUTLET_LIMIT_MC = const(60000)
# Profiles may ask for an outlet target up to this; the envelope lives in podproto.
OUTLET_TARGET_MAX_MC = const(55000)
# Water boils at 100 C; a boiler reading past this means the element runs dry.
DRY_BOIL_MC = const(110000)
# A latched fault may be acknowledged only once the boiler is below this.
SAFE_ACK_MC = const(50000)

# Preheat: PID toward BOIL_HOLD_MC; ready once the boiler reads READY_MC.
BOIL_HOLD_MC = const(99000)
READY_MC = const(97000)
READY_HOLD_STEPS = const(10)
# The boiler may already boil when its lagging sensor reads this (2 s of lag, +25 %, at
# the fastest heat-up, ~4 K/s): from here the outlet's controller may hold the heater back.
STEAM_WATCH_MC = const(88000)
# While a start waits for its podlet's signature check the boiler heats already, to at
# most this (a thermostat, off above it: no steam, nowhere near READY_MC even on the
# fastest heat-up's lagging sensor); the session, its dose and the rest of the heat-up
# start once the check has passed.
EARLY_HEAT_MC = const(80000)
# Cooldown ends (idle) once the boiler stops making steam.
COOLDOWN_END_MC = const(95000)
# Dosing starts once the outlet is this close to its target, or after the timeout.
DOSE_START_BAND_MC = const(500)
DOSE_CONFIRM_BAND_MC = const(1500)     # ... and its lagging reading this close
DOSE_START_TIMEOUT_STEPS = const(900)

# Calibrated appliance model used for feed-forward (not for safety decisions): the
# defaults a unit starts from. HEATER_W is the element's rating where a board does not
# give its own (board.heater.rated_w); the mains it runs on is not known.
HEATER_W = const(400)
BOILER_LOSS_MW_PER_K = const(400)       # boiler to ambient, mW per kelvin
NOZZLE_HALF_W = const(430)              # steam power at which the outlet is halfway to 100 C
NOZZLE_BODY_PM = const(40)              # outlet warmed by the hot body: permille of its excess
NOZZLE_TAU_MS = const(4000)             # the steam path's thermal lag
OUTLET_SENSOR_TAU_MS = const(1500)      # the outlet NTC's lag behind the steam path
LIQUID_MJ_PER_UL = const(2583)          # warm 1 ul of podlet liquid to 100 C and evaporate it

# Sensors: raw ADC counts that mean open or shorted wiring, and plausible ranges.
RAW_OPEN = const(4070)
RAW_SHORT = const(20)
BOILER_MIN_MC = const(-5000)
BOILER_MAX_MC = const(150000)
OUTLET_MIN_MC = const(-5000)
OUTLET_MAX_MC = const(100000)

# Board watchdog timeout; the heater driver's own timeout is 300 ms.
WATCHDOG_MS = const(1000)
