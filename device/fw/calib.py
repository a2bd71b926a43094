"""The appliance's own heat model, measured during normal use and kept on flash: fw.app
feeds it each step (observe, allocation-free) and takes a session's measurements in
between (update); fw.session hands it to the controllers' feed-forward at a start and
the supervisor's not-heating check gets this session's heat capacity from it.

A unit knows its element's rating, not its mains nor the water in the boiler, so its
values are in rated watts: an element 10 % weak reads as losses and nozzle half-power
1/0.9 of the truth, which is what a feed-forward that divides by the rating needs.
- heat capacity, J/K (this session's): the heat-up slope at full duty, less the losses;
- boiler losses, mW/K: the cool-down after a session, with the heat capacity then (the
  session's, less the water its steam took: the heat put in while boiling);
- nozzle half-power, W: the steady steam while dosing (duty, outlet reading, pump).

One record of fw.copies (two hashed, counted copies), "loss_mw_per_k <int>",
"nozzle_half_w <int>", "heat_j_per_k <int>", "sessions <int>" a line each. An update
moves each stored value halfway to a measurement within its bounds; a record missing,
unreadable or out of bounds is fw.config's defaults (problem says why). Nothing of the
supervisor's hard limits depends on it.
"""
from array import array

from micropython import const

from fw import config
from fw import safety

# For the type checker only (the annotation below): nothing is imported on the device.
TYPE_CHECKING = const(0)
if TYPE_CHECKING:
    from fw.control import OutletMpc

# Bounds of a stored value (rated: the truth +-50 % at 81-121 % of the rated power).
LOSS_MW_PER_K_MIN = const(150)
LOSS_MW_PER_K_MAX = const(1000)
NOZZLE_HALF_W_MIN = const(150)
NOZZLE_HALF_W_MAX = const(1000)
HEAT_J_PER_K_MIN = const(150)
HEAT_J_PER_K_MAX = const(3000)
_HEAT_J_PER_K = const(728)      # the default: 150 ml and 100 J/K of metal

# Heat-up window: full duty this many steps (the boiler sensor's lag has settled), from
# the boiler this far above the room, over _HEAT_SPAN_MC or up to _HEAT_END_MC, a rise
# of at least _HEAT_RISE_MC: early, so the supervisor checks the rest of the heat-up by it.
_HEAT_SETTLE_STEPS = const(60)
_HEAT_FROM_ABOVE_MC = const(8000)
_HEAT_SPAN_MC = const(20000)
_HEAT_END_MC = const(85000)
_HEAT_RISE_MC = const(10000)
_BOIL_MC = const(99000)         # the boiler reads boiling: the heat goes to steam
# Nozzle window: dosing, the outlet this close to the controller's target for
# _NOZZLE_SETTLE_STEPS (the steam path's and its sensor's lags), then at least
# _NOZZLE_STEPS more.
_NOZZLE_BAND_MC = const(400)
_NOZZLE_SETTLE_STEPS = const(150)
_NOZZLE_STEPS = const(300)
# Cool-down window: the heater off _COOL_SETTLE_STEPS, then _COOL_STEPS from a boiler
# at least _COOL_FROM_MC (smoothed: its lag is the same at both ends).
_COOL_SETTLE_STEPS = const(60)
_COOL_STEPS = const(400)
_COOL_FROM_MC = const(90000)
_EMA_SHIFT = const(3)
# Water's heat capacity over its latent heat, per million: J/K the steam takes per J.
_WATER_PER_LATENT_PPM = const(1855)

# The windows' sums, in one array (index: what).
_RUN = const(0)         # steps at full duty (heat-up), in the band (nozzle)...
_HEAT_T0 = const(1)     # heat-up: first reading, mC
_HEAT_N = const(2)      # its steps
_HEAT_K = const(3)      # sum of (boiler - room), K steps
_HEAT = const(4)        # this session's heat capacity, J/K (0: not measured)
_BOIL_PM = const(5)     # duty while boiling, permille steps
_BOIL_N = const(6)
_NOZ_RUN = const(7)
_NOZ_PM = const(8)      # nozzle window: duty, outlet (10 mC), pump (10 nl/s) steps
_NOZ_OUT = const(9)
_NOZ_PUMP = const(10)
_NOZ_N = const(11)
_OFF = const(12)        # steps the heater has been off since the session
_COOL_EMA = const(13)
_COOL_T0 = const(14)
_COOL_N = const(15)
_COOL_K = const(16)     # sum of (boiler - room), 0.1 K steps
_PENDING = const(17)    # 1: a session was measured; 2: and its cool-down is done
_AMBIENT = const(18)
_FIELDS = const(19)

_NAMES = ("loss_mw_per_k", "nozzle_half_w", "heat_j_per_k", "sessions")


class Calib:
    """The measured model (its values are attributes) and the windows measuring it."""
    ctl: "OutletMpc | None"     # the outlet controller, set by fw.session at a start

    def __init__(self, data_dir, heater_w=config.HEATER_W, readings=None):
        self.data_dir = data_dir
        self.heater_w = heater_w
        self.w = array("i", [0] * _FIELDS)
        self.w[_AMBIENT] = 22000
        self.ctl = None          # the outlet controller (fw.app): its target, settled
        # The supervisor's (fw.safety.Readings): this session's model goes there.
        self.readings = readings if readings is not None else safety.Readings()
        self.problem = None      # why the record on flash was not taken
        self.copies = None
        self.defaults()
        try:
            self._load()
        except Exception as e:   # noqa: BLE001 - whatever is on flash, the defaults run
            self.problem = "calib: %s" % (e,)
            self.defaults()

    def defaults(self):
        self.loss_mw_per_k = config.BOILER_LOSS_MW_PER_K
        self.nozzle_half_w = config.NOZZLE_HALF_W
        self.heat_j_per_k = _HEAT_J_PER_K
        self.sessions = 0

    def _load(self):
        from fw import copies
        c = self.copies = copies.Copies(self.data_dir, "calib")
        i = c.newest()
        if i < 0:
            return
        got = {}
        for line in c.lines(i):
            key, value = line.split()
            got[key.decode()] = int(value)
        v = [got[k] for k in _NAMES]
        if not (LOSS_MW_PER_K_MIN <= v[0] <= LOSS_MW_PER_K_MAX
                and NOZZLE_HALF_W_MIN <= v[1] <= NOZZLE_HALF_W_MAX
                and HEAT_J_PER_K_MIN <= v[2] <= HEAT_J_PER_K_MAX):
            raise ValueError("out of bounds")
        self.loss_mw_per_k, self.nozzle_half_w, self.heat_j_per_k, self.sessions = v

    def save(self):
        """Writes the model as a new copy; nothing when the record could not be opened
        at load (its problem says why): the model measured still runs this boot."""
        c = self.copies
        if c is None:
            return
        with c.writer() as f:
            for k in _NAMES:
                f.write("%s %d\n" % (k, getattr(self, k)))

    def values(self):
        """The model as a dict (the sim's summary, tests)."""
        return {k: getattr(self, k) for k in _NAMES}

    def start(self, outlet_mc, boiler_mc):
        """A session starts, the outlet and boiler reading these: the last session's
        measurements are taken if its cool-down was cut short, then new windows. The
        room is the outlet less what a boiler still warm adds to it. Outside the step."""
        w = self.w
        if w[_PENDING]:
            self.update()
        for i in range(_FIELDS):
            w[i] = 0
        r = self.readings
        r.heat_j_per_k = 0
        r.heater_w = self.heater_w
        r.loss_mw_per_k = self.loss_mw_per_k
        pm = config.NOZZLE_BODY_PM
        w[_AMBIENT] = max(5000, min(40000, (outlet_mc * 1000 - pm * boiler_mc) // (1000 - pm)))

    def session_heat_j_per_k(self):
        """This session's heat capacity (J/K, rated) once its heat-up window is done, else 0."""
        return self.w[_HEAT]

    def ready(self):
        """A session's measurements wait for update() (fw.app's service)."""
        return self.w[_PENDING] == 2

    def observe(self, r):
        """One step's readings (fw.safety.Readings: heater_pm and pump_nl_s are what the
        step before commanded, what acted since). In the control step: allocation-free,
        small ints (each sum stays below 2**26 in any session)."""
        w = self.w
        pm = r.heater_pm
        boiler = r.boiler_mc
        if r.heating_state:
            w[_PENDING] = 1
            w[_OFF] = 0
            if boiler >= _BOIL_MC:
                w[_BOIL_PM] += pm
                w[_BOIL_N] += 1
            if not w[_HEAT]:
                if pm >= 1000:
                    self._heat(w, boiler)
                else:
                    # A window is one stretch at full duty.
                    w[_RUN] = w[_HEAT_N] = w[_HEAT_K] = 0
            ctl = self.ctl
            if (r.pump_nl_s > 0 and ctl is not None and ctl.settled
                    and -_NOZZLE_BAND_MC < r.outlet_mc - ctl.target_mc < _NOZZLE_BAND_MC):
                w[_NOZ_RUN] += 1
            else:
                w[_NOZ_RUN] = 0
            if w[_NOZ_RUN] > _NOZZLE_SETTLE_STEPS:
                w[_NOZ_PM] += pm
                w[_NOZ_OUT] += r.outlet_mc // 10
                w[_NOZ_PUMP] += r.pump_nl_s // 10
                w[_NOZ_N] += 1
        elif w[_PENDING] == 1:
            self._cool(w, pm, boiler)

    def _heat(self, w, boiler):
        w[_RUN] += 1
        if w[_RUN] < _HEAT_SETTLE_STEPS:
            return
        amb = w[_AMBIENT]
        if w[_HEAT_N] == 0:
            if boiler < amb + _HEAT_FROM_ABOVE_MC or boiler > _HEAT_END_MC - _HEAT_RISE_MC:
                return
            w[_HEAT_T0] = boiler
        w[_HEAT_N] += 1
        w[_HEAT_K] += (boiler - amb) // 1000
        if boiler >= _HEAT_END_MC or boiler - w[_HEAT_T0] >= _HEAT_SPAN_MC:
            # J: rated power less the losses over the window's steps (a tenth of a
            # second each), over the rise in K.
            j = (self.heater_w * w[_HEAT_N] - self.loss_mw_per_k * w[_HEAT_K] // 1000) // 10
            heat = max(1, j * 1000 // (boiler - w[_HEAT_T0]))
            w[_HEAT] = heat
            if HEAT_J_PER_K_MIN <= heat <= HEAT_J_PER_K_MAX:
                # The supervisor's not-heating check judges the rest of the heat-up by it.
                self.readings.heat_j_per_k = heat

    def _cool(self, w, pm, boiler):
        if pm != 0:
            w[_OFF] = w[_COOL_N] = w[_COOL_K] = 0
            return
        w[_OFF] += 1
        if w[_OFF] == 1:
            w[_COOL_EMA] = boiler
        w[_COOL_EMA] += (boiler - w[_COOL_EMA]) >> _EMA_SHIFT
        if w[_OFF] < _COOL_SETTLE_STEPS:
            return
        ema = w[_COOL_EMA]
        if w[_COOL_N] == 0:
            if ema < _COOL_FROM_MC:
                w[_PENDING] = 2     # too cool to measure: the rest is taken
                return
            w[_COOL_T0] = ema
        w[_COOL_K] += (ema - w[_AMBIENT]) // 100
        w[_COOL_N] += 1
        if w[_COOL_N] >= _COOL_STEPS:
            w[_PENDING] = 2

    def update(self):
        """Takes the measured session into the model and writes it to flash. Returns
        True if anything changed. Outside the step (it allocates)."""
        w = self.w
        w[_PENDING] = 0
        changed = False
        heat = w[_HEAT]
        if HEAT_J_PER_K_MIN <= heat <= HEAT_J_PER_K_MAX:
            self.heat_j_per_k = heat
            changed = True
        loss = self._loss_mw_per_k(w, heat)
        if LOSS_MW_PER_K_MIN <= loss <= LOSS_MW_PER_K_MAX:
            self.loss_mw_per_k = (self.loss_mw_per_k + loss + 1) // 2
            changed = True
        half = self._nozzle_half_w(w)
        if NOZZLE_HALF_W_MIN <= half <= NOZZLE_HALF_W_MAX:
            self.nozzle_half_w = (self.nozzle_half_w + half + 1) // 2
            changed = True
        if changed:
            self.sessions += 1
            self.save()
        return changed

    def _loss_mw_per_k(self, w, heat):
        """Losses from the cool-down window and the heat capacity then, or 0."""
        if heat <= 0 or w[_COOL_N] < _COOL_STEPS or w[_COOL_K] <= 0:
            return 0
        fall_mc = w[_COOL_T0] - w[_COOL_EMA]
        # What boiled off took its heat capacity: the heat put in while boiling (J).
        span_mc = 100000 - w[_AMBIENT]
        boil_j = (self.heater_w * w[_BOIL_PM] // 1000
                  - self.loss_mw_per_k * span_mc // 1000 * w[_BOIL_N] // 1000) // 10
        heat_end = heat - boil_j * _WATER_PER_LATENT_PPM // 1000000
        if heat_end <= 0 or fall_mc <= 0:
            return 0
        # mW/K = J/K x mK/s over K; the sum is 0.1 K steps, a step 0.1 s.
        return heat_end * fall_mc * 100 // w[_COOL_K]

    def _nozzle_half_w(self, w):
        """The steam power that brings the outlet halfway to boiling, from the steady
        steam while dosing, or 0."""
        n = w[_NOZ_N]
        if n < _NOZZLE_STEPS:
            return 0
        amb = w[_AMBIENT]
        span = 100000 - amb
        x = w[_NOZ_OUT] * 10 // n - amb - config.NOZZLE_BODY_PM * span // 1000
        steam_mw = (self.heater_w * w[_NOZ_PM] // n - self.loss_mw_per_k * span // 1000
                    - w[_NOZ_PUMP] * 10 // n * config.LIQUID_MJ_PER_UL // 1000)
        if x <= 0 or x >= span or steam_mw <= 0:
            return 0
        return steam_mw * (span - x) // x // 1000
