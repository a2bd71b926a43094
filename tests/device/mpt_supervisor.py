"""The safety supervisor, driven through the real App on the sim board."""
import micropython

from fw import config
from fw import codes
import simkit


def _sense(b):
    """The plant's sensor readings on the board's inputs now, as its next period would."""
    b.boiler_ntc.raw = b.plant.boiler_raw
    b.outlet_ntc.raw = b.plant.outlet_raw


def _heat_to_steaming(b, app):
    app.start_session()
    for _ in range(4000):
        simkit.tick(b, app)
        if app.state == codes.ST_STEAMING and app.dosing:
            return
    raise AssertionError("never reached dosing, state %d" % app.state)


def test_boiler_over_limit_cuts_heater_in_the_same_step():
    b, app = simkit.make()
    _heat_to_steaming(b, app)
    assert app.heater_pm > 0
    # The boiler sensor reads past the hard limit (a runaway the model did not predict).
    b.plant.boiler_sensor_c = config.BOILER_LIMIT_MC / 1000 + 1.0
    b.plant.sample_sensors()
    _sense(b)
    app.step()
    assert app.heater_pm == 0
    assert app.state == codes.ST_FAULT
    assert app.fault == codes.F_OVERTEMP_BOILER
    assert b.heater_cutoff.is_open()


def test_outlet_over_limit_cuts_heater_in_the_same_step():
    b, app = simkit.make()
    _heat_to_steaming(b, app)
    b.plant.outlet_sensor_c = config.OUTLET_LIMIT_MC / 1000 + 0.5
    b.plant.sample_sensors()
    _sense(b)
    app.step()
    assert app.heater_pm == 0 and app.pump_nl_s == 0
    assert app.fault == codes.F_OVERTEMP_OUTLET


def test_fault_latches_and_clears_only_when_acknowledged_cool():
    b, app = simkit.make()
    _heat_to_steaming(b, app)
    b.plant.inject("tip_over")
    simkit.tick(b, app, 5)
    assert app.state == codes.ST_FAULT and app.fault == codes.F_TIP_OVER
    b.plant.clear("tip_over")
    simkit.tick(b, app, 20)
    assert app.state == codes.ST_FAULT          # latched: the cause going away clears nothing
    app.ack_faults()
    assert app.state == codes.ST_FAULT          # boiler still hot: refused
    b.plant.boiler_c = b.plant.boiler_sensor_c = 40.0
    b.plant.sample_sensors()
    simkit.tick(b, app, 2)
    app.ack_faults()
    assert app.state == codes.ST_IDLE and app.fault == codes.F_NONE


def test_fault_log_keeps_the_last_32():
    b, app = simkit.make()
    for i in range(40):
        app.sup.raw = i
        app.latch(codes.F_TIP_OVER)
        app.service()           # records the fault latched
    log = app.faults()
    assert len(log) == 32
    assert log[0]["raw"] == 8 and log[-1]["raw"] == 39


def test_heater_driver_switches_off_when_not_recommanded():
    b, app = simkit.make()
    _heat_to_steaming(b, app)
    assert b.plant.heater_w > 0
    # No more steps: the driver's own 300 ms timeout must cut the heat.
    for _ in range(4):
        b.now_ms += 100
        b.plant.advance(0.1, b.now_ms)
    assert b.plant.heater_w == 0.0


def test_main_loop_counts_a_step_that_allocates():
    from fw import main
    import board as simboard
    b = simkit.board(simkit.scenario(duration_s=2))
    real_boot = main.boot

    def boot(board):
        app = real_boot(board)
        step = app.step

        def allocating_step():
            step()
            app.junk = [app.steps()]          # allocates: must be caught and counted
        app.step = allocating_step
        return app
    main.boot = boot
    try:
        main.run(b)
    except simboard.SimEnd:
        pass
    finally:
        main.boot = real_boot
    assert b.app.alloc_errors == b.steps == 19


def test_real_step_allocates_nothing_through_a_session():
    b, app = simkit.make()
    app.start_session()
    failures = _locked_steps(b, app, 3000)
    assert app.session_nl > 0          # it got as far as dosing
    assert failures == 0


def _locked_steps(b, app, n):
    """n periods with the step under the heap lock, as fw.main.run runs them; the
    number of steps that tried to allocate."""
    failures = 0
    for _ in range(n):
        b.wait_tick()
        micropython.heap_lock()
        try:
            app.step()
        except MemoryError:
            failures += 1
        micropython.heap_unlock()
        app.service()
    return failures


def test_step_allocates_nothing_after_years_of_uptime():
    """Past 2**30 steps (3.4 years at 10 Hz) a step count would be a long int on the
    32-bit boards; the step keeps its uptime in small ints."""
    b, app = simkit.make()
    start = (2 ** 30 + 2 ** 29) // 10 * 10         # about 5 years, on a whole second
    app.set_steps(start)
    up_s = app.uptime_s()
    assert _locked_steps(b, app, 25) == 0
    assert app.uptime_s() == up_s + 2 and app.steps() == start + 25
    assert app.up_s < 2 ** 30 and app.tick < 10


def _dose_until_ended(b, app, max_steps=20000):
    app.start_session()
    for _ in range(max_steps):
        simkit.tick(b, app)
        if app.state in (codes.ST_COOLDOWN, codes.ST_IDLE, codes.ST_FAULT):
            return
    raise AssertionError("session never ended, state %d" % app.state)


def test_pump_runaway_latches_overrun_in_the_next_step():
    b, app = simkit.make()
    _heat_to_steaming(b, app)
    simkit.tick(b, app, 20)
    # 300 ul/min, trimmed to the encoder by at most an eighth.
    assert 4375 <= app.pump_nl_s <= 5630 and app.fault == codes.F_NONE
    counted_nl = app.session_nl
    b.plant.inject("pump_runaway")      # the plant's next period runs away
    simkit.tick(b, app)
    # One period at 40 ul/s (4 ul where 0.5 ul was commanded): latched by the step that
    # sees it, the pump commanded off in that same step.
    assert app.state == codes.ST_FAULT and app.fault == codes.F_PUMP_OVERRUN
    assert app.pump_nl_s == 0 and b.plant.pump_nl_s == 0
    # The dose counts what the encoder measured, the runaway's 4 ul too (the safe side).
    assert app.session_nl >= counted_nl + 3500
    sup = app.sup
    assert sup.sensor == codes.S_PUMP and sup.value > sup.limit >= 300
    assert app.faults()[-1]["code"] == "pump_overrun"


def test_pump_running_while_idle_latches_overrun():
    b, app = simkit.make()
    simkit.tick(b, app, 5)
    assert app.state == codes.ST_IDLE
    b.plant.inject("pump_runaway")
    simkit.tick(b, app, 2)
    assert app.state == codes.ST_FAULT and app.fault == codes.F_PUMP_OVERRUN


def test_pump_within_its_calibration_margin_never_trips_overrun():
    # 2 % over, at 300 ul/min, through a whole session to its limit.
    b, app = simkit.make()
    b.plant.pump_cal = 1.02
    _dose_until_ended(b, app)
    assert app.state == codes.ST_COOLDOWN and app.fault == codes.F_NONE
    assert app.session_nl == 2500 * 1000


def test_pump_well_over_its_calibration_trips_overrun():
    # 20 % over, the rate trimmed down by its most (an eighth): ~875 nl a second more
    # than commanded where at most 300 + 4375 / 16 nl are allowed (the sim's pumps are
    # within 5 %, which the 1/16 allows).
    b, app = simkit.make()
    b.plant.pump_cal = 1.20
    _dose_until_ended(b, app)
    assert app.state == codes.ST_FAULT and app.fault == codes.F_PUMP_OVERRUN
    assert app.session_nl < 20 * 1000        # caught within the first seconds of dosing


def test_overrun_check_allocates_nothing_when_it_trips():
    b, app = simkit.make()
    app.start_session()
    simkit.until_pumping(b, app)
    b.plant.inject("pump_runaway")
    assert _locked_steps(b, app, 30) == 0
    assert app.fault == codes.F_PUMP_OVERRUN


def test_no_stall_is_judged_on_periods_the_board_held_the_pump():
    """realboard.PumpSafeFlash stops the pump through each flash operation and says so
    (pump.held()): a flash backlog at 400 ms erases then holds it period after period,
    which is not a stalled pump. A stall in periods it was not held still trips."""
    b, app = simkit.make()
    _heat_to_steaming(b, app)
    b.plant.inject("pump_stall")
    held = [1]
    b.pump.held = lambda: held[0]      # as a real board's, through a flash backlog
    simkit.tick(b, app, 50)              # 5 s: ten stalls' worth of commanded volume
    assert app.state == codes.ST_STEAMING and app.fault == codes.F_NONE
    held[0] = 0
    simkit.tick(b, app, 30)
    assert app.fault == codes.F_PUMP_STALL


def _heat_until_modelled(b, app):
    """A session's heat-up until its heat capacity is measured (fw.calib)."""
    app.start_session()
    app.finish_checks()
    for _ in range(1500):
        simkit.tick(b, app)
        if app.readings.heat_j_per_k:
            return
    raise AssertionError("no heat capacity measured, state %d" % app.state)


def test_an_element_dropping_to_a_fifth_mid_heat_up_trips_by_the_measured_model():
    b, app = simkit.make()
    _heat_until_modelled(b, app)
    # 150 ml and 100 J/K of metal (and this 400 W element), within a few %.
    assert 700 <= app.readings.heat_j_per_k <= 760, app.readings.heat_j_per_k
    b.plant.heater_full_w *= 0.2
    for _ in range(200):
        simkit.tick(b, app)
        if app.state == codes.ST_FAULT:
            break
    assert app.fault == codes.F_HEATER_NOT_HEATING, app.fault
    # It still rose, by more than the fixed floor: only the model knew it was too little.
    value, limit = app.faults()[-1]["value"], app.faults()[-1]["limit"]
    assert 250 < value < limit, (value, limit)


def test_the_same_drop_without_a_measured_model_is_not_caught():
    b, app = simkit.make()
    _heat_until_modelled(b, app)
    app.readings.heat_j_per_k = 0       # as before this session's window ended
    b.plant.heater_full_w *= 0.2
    simkit.tick(b, app, 200)
    assert app.state == codes.ST_PREHEAT and app.fault == codes.F_NONE
