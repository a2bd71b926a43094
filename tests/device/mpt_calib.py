"""The measured heat model on flash (fw.calib): written and read back, bounded, the
defaults when it is missing, corrupt or out of bounds (and the boot says so), and its
step-time part allocation-free."""
import micropython

from fw import calib
from fw import config
from fw import control
from fw import safety
import simkit

_DEFAULTS = {"loss_mw_per_k": config.BOILER_LOSS_MW_PER_K,
             "nozzle_half_w": config.NOZZLE_HALF_W}


def _model(c):
    return {"loss_mw_per_k": c.loss_mw_per_k, "nozzle_half_w": c.nozzle_half_w}


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def test_no_record_is_the_defaults_without_a_problem():
    b = simkit.board(simkit.scenario())
    c = calib.Calib(b.data_dir)
    assert _model(c) == _DEFAULTS and c.sessions == 0 and c.problem is None


def test_a_record_written_is_read_back():
    b = simkit.board(simkit.scenario())
    c = calib.Calib(b.data_dir)
    c.loss_mw_per_k, c.nozzle_half_w, c.heat_j_per_k, c.sessions = 444, 478, 836, 3
    c.save()
    again = calib.Calib(b.data_dir)
    assert again.problem is None
    assert (again.loss_mw_per_k, again.nozzle_half_w, again.heat_j_per_k,
            again.sessions) == (444, 478, 836, 3)


def test_a_corrupt_record_is_the_defaults_and_the_session_start_reports_it():
    b, app = simkit.make()
    c = calib.Calib(b.data_dir)
    c.loss_mw_per_k, c.nozzle_half_w = 600, 700
    c.save()
    path = c.copies.path(c.copies.slot)
    data = bytearray(_read(path))
    data[len(b"calib 1\nloss_mw_per_k ")] ^= 1      # a digit of the value
    _write(path, bytes(data))
    assert app.calib is None            # loaded at the first start
    said = [(r["event"], r.get("reason"))
            for r in app.collect(lambda _: app.start_session(), None) + app.finish_checks()]
    doubts = [why for ev, why in said if ev == "record_doubt"]
    assert len(doubts) == 1 and doubts[0].startswith("calib"), said
    assert ("session_started", None) in said, said
    assert _model(app.calib) == _DEFAULTS
    # The session's feed-forward runs on the defaults, not the 600 and 700 written.
    assert app.outlet_ctl.loss_mw_per_k == config.BOILER_LOSS_MW_PER_K
    assert app.boiler_pid.loss_mw_per_k == config.BOILER_LOSS_MW_PER_K
    assert app.outlet_ctl.nozzle_half_w == config.NOZZLE_HALF_W


def test_a_valid_record_feeds_the_session_forward():
    b, app = simkit.make()
    c = calib.Calib(b.data_dir)
    c.loss_mw_per_k, c.nozzle_half_w = 600, 700
    c.save()
    app.start_session()
    app.finish_checks()
    assert app.calib.problem is None
    assert (app.outlet_ctl.loss_mw_per_k, app.outlet_ctl.nozzle_half_w) == (600, 700)
    assert app.boiler_pid.loss_mw_per_k == 600


def test_a_record_out_of_bounds_is_the_defaults():
    b = simkit.board(simkit.scenario())
    c = calib.Calib(b.data_dir)
    c.loss_mw_per_k = calib.LOSS_MW_PER_K_MAX + 1      # as a bad update could leave it
    c.save()
    again = calib.Calib(b.data_dir)
    assert again.problem == "calib: out of bounds", again.problem
    assert _model(again) == _DEFAULTS


def test_a_measurement_out_of_bounds_moves_nothing():
    b = simkit.board(simkit.scenario())
    c = calib.Calib(b.data_dir, heater_w=4000)
    c.start(22000, 22000)
    # A nozzle window whose duty says 2 kW of steam at 45 C: no element gives that.
    r = safety.Readings()
    r.heating_state = r.heater_pm = 1
    r.pump_nl_s = 5000
    r.outlet_mc = 45000
    r.boiler_mc = 100000
    c.ctl = control.OutletMpc(4000)
    c.ctl.target_mc = 45000
    c.ctl.settled = 1
    r.heater_pm = 600
    for _ in range(600):
        c.observe(r)
    assert c.update() is False
    assert _model(c) == _DEFAULTS and c.sessions == 0


def test_observe_allocates_nothing():
    b = simkit.board(simkit.scenario())
    c = calib.Calib(b.data_dir)
    c.start(22000, 22000)
    r = safety.Readings()
    r.heating_state = 1
    r.heater_pm = 1000
    micropython.heap_lock()
    try:
        for k in range(2000):           # a heat-up past the window's end, then boiling
            r.boiler_mc = min(100000, 30000 + k * 50)
            c.observe(r)
        r.heating_state = 0
        r.heater_pm = 0
        for k in range(600):            # the cool-down window
            r.boiler_mc = 99000 - k * 5
            c.observe(r)
    finally:
        micropython.heap_unlock()
    assert c.session_heat_j_per_k() > 0 and c.ready()
    assert c.update() is True
    # 400 W into 50 mC a step (0.5 K/s): ~800 J/K less the losses.
    assert 700 <= c.heat_j_per_k <= 800, c.heat_j_per_k
