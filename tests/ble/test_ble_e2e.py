"""End to end: the host library, through bleak and the simulated-air backend, to the
firmware's GATT server running on micropython with boards/sim, and with each real board's
code (boards/<board>/board.py and boards/common/realboard.py on the port models of
boards/portsim, `steamer sim serve --board`): the steamer these tests share and the
session through a lost link run on all three (BOARDS); the radio is the sim's
`bluetooth` with the board's port model (NimBLE on the C3, BTstack on the Pico W)."""
from __future__ import annotations

import asyncio

import pytest

import podproto
from podproto import gatt
from steamer.client import KEEPALIVE_S, KeyRing, Steamer, SteamerError, find, scan

from asyncio import run
from steamer_harness.ble import served_and_paired
from steamer_harness.ble import button_held, pair, serve
from steamer_sim.backend import sim_radio


BOARDS = ["sim", "picow", "esp32c3"]
# The link's timeouts (fw.ble: AUTH_TIMEOUT_S 10 s to authenticate, IDLE_TIMEOUT_S 120 s
# without a frame) run on time.ticks_ms: on the sim board the host's clock, on a real
# board its own, which the port models pace at the served speed. So a real board's code
# is served slowly enough that a host's own timing (a connect, then its first read or
# its authentication) still fits them, and a long session keeps its link with a
# keep-alive as much shorter than the host's (KEEPALIVE_S) as the run is faster.
SPEED = {"sim": 10, "picow": 2, "esp32c3": 2}
SESSION_SPEED = {"sim": 10, "picow": 5, "esp32c3": 5}


@pytest.fixture(scope="module", params=BOARDS)
def steamer(air, tmp_path_factory, request):
    board = request.param
    s = serve(air, tmp_path_factory.mktemp("ble"), f"e2e-{board}", board=board,
              speed=SPEED[board])
    yield s
    s.stop()
    assert s.crashes() == []


@pytest.fixture(scope="module")
def keys(steamer, tmp_path_factory):
    """This host paired with the steamer while its pairing window is open."""
    ring = KeyRing(tmp_path_factory.mktemp("keys") / "keys.json")
    host_id = run(pair(steamer.addr, steamer.air.address, ring))
    # Stored in the key ring's file, and found again by a new KeyRing on it.
    assert KeyRing(ring.path).get(steamer.addr) == ring.get(steamer.addr)
    assert ring.get(steamer.addr)[0] == host_id
    return ring


def test_scan_finds_the_served_steamer_with_status_in_its_advertisement(steamer):
    found = run(scan(1.0, backend=sim_radio(steamer.air.address).scanner))
    mine = [f for f in found if f.name == steamer.name]
    assert mine and mine[0].state in ("idle", "off")


def test_unpaired_host_reads_status_and_nothing_more(steamer):
    async def go():
        async with Steamer(steamer.addr, KeyRing(),
                           **sim_radio(steamer.air.address).steamer_kw()) as st:
            status = await st.status()
            assert status["type"] == "status" and status["state"] == 1
            assert st.info["rx_credits"] >= 1 and st.info["max_pdu"] == 244
            with pytest.raises(SteamerError) as e:
                await st.start_session()
            assert e.value.code == "auth_required"
            with pytest.raises(SteamerError) as e:
                await st.request({"type": "log_read", "from_seq": 1, "max_records": 5,
                                  "journal_id": st.info["journal_id"]},
                                 ["log_records"])
            assert e.value.code == "auth_required"
            # Still serving.
            assert (await st.status())["type"] == "status"
    run(go())


@pytest.mark.parametrize("mtu", [23, 247])
def test_status_follows_at_any_mtu(steamer, mtu):
    """status_stream: State notifications where a status frame fits one (ATT MTU 45 and
    up), reads of State below that; either way a status about once a second."""
    import asyncio

    async def go():
        async with Steamer(steamer.addr, KeyRing(), **sim_radio(steamer.air.address).steamer_kw(),
                           mtu=mtu) as st:
            got: list[dict] = []
            stop = await st.status_stream(got.append, interval_s=0.1)
            for _ in range(100):
                if len(got) >= 3:
                    break
                await asyncio.sleep(0.05)
            await stop()
            assert len(got) >= 3 and all(s["type"] == "status" for s in got)
            assert (st.client.mtu_size >= gatt.STATE_NOTIFY_MIN_MTU) == (mtu == 247)
    run(go())


def test_authenticated_commands_reach_the_firmware(steamer, keys):
    async def go():
        async with Steamer(steamer.addr, keys, **sim_radio(steamer.air.address).steamer_kw()) as st:
            await st.authenticate()
            await st.set_clock(1_790_000_000)
            status = await st.status()
            assert status["clock_s"] >= 1_790_000_000 or status["clock_s"] == 0
            # No podlet in: the firmware refuses, and the refusal comes back as such.
            with pytest.raises(SteamerError) as e:
                await st.start_session()
            assert e.value.code == "bad_state" and "no_podlet" in str(e.value)
    run(go())


def test_a_flood_of_commands_waits_for_the_flash_and_loses_nothing(steamer, keys):
    """150 session starts as fast as the credits let them go, each refused (no podlet)
    and so a record: on a real board the records' flash writes wait in App.flash_q, a
    few drained a period (FLASH_BUDGET_MS), and before fw.ble held the host's frames
    while that queue is long (FLASH_BACKLOG_HIGH) the queue grew until the heap ran out:
    MemoryError and the link reset after ~150 on both boards' code. Now every start is
    answered, the link stays, and syncs bring every record once: the last few a moment
    after their answers, once their writes have had their periods."""
    from steamer.client import MemoryLogSink
    from steamer_harness.ble import check_records, make_records

    async def go():
        sink = MemoryLogSink()
        async with Steamer(steamer.addr, keys, **sim_radio(steamer.air.address).steamer_kw()) as st:
            await st.authenticate()
            first = st.info["log_next"]
            await make_records(st, 150)
            assert st.connected
            refused: list[dict] = []
            for _ in range(20):
                await st.sync_logs(sink)
                refused = [r for r in sink.records
                           if r["seq"] >= first and r["kind"] == "session_refused"]
                if len(refused) >= 150:
                    break
                await asyncio.sleep(0.25)
        check_records(sink)
        assert len(refused) >= 150
    run(go())
    assert "link_reset" not in steamer.log.read_text()


def test_pairing_is_refused_once_the_button_is_let_go(air, tmp_path):
    """Held 5 s: the window opens 3 s into the hold and closes 1 s after the release
    (the advertisement says so both times); a pair request then is refused."""
    s = serve(air, tmp_path, "short-hold", {"contract": 1, "duration_s": 3600, "events": [
        {"t_s": 1, "do": "press_button", "ms": 5000}]}, speed=5)

    async def go():
        def mine(f) -> bool:
            return f.name == "short-hold"
        assert await find(lambda f: mine(f) and f.pairing_open, timeout_s=10,
                          backend=sim_radio(air.address).scanner)
        assert await find(lambda f: mine(f) and not f.pairing_open, timeout_s=10,
                          backend=sim_radio(air.address).scanner)
        async with Steamer(s.addr, KeyRing(), **sim_radio(air.address).steamer_kw()) as st:
            with pytest.raises(SteamerError) as e:
                await st.pair()
            assert e.value.code == "bad_state" and "hold the button" in str(e.value)
    try:
        run(go())
    finally:
        s.stop()
    assert s.crashes() == []


def test_a_wrong_key_is_refused(steamer, keys):
    async def go():
        bad = KeyRing()
        host_id, key = keys.get(steamer.addr)
        bad.put(steamer.addr, host_id, bytes(32))
        async with Steamer(steamer.addr, bad, **sim_radio(steamer.air.address).steamer_kw()) as st:
            with pytest.raises(SteamerError) as e:
                await st.authenticate()
            assert e.value.code == "auth_failed"
            with pytest.raises(SteamerError) as e:
                await st.stop_session()
            assert e.value.code == "auth_required"
    run(go())


SESSION_SCENARIO = {
    "contract": 1, "duration_s": 86400, "seed": 3,
    "profiles": [{"podlet_type": 3, "version": 1, "name": "short", "outlet_target_c": 45.0,
                  "session_s": 20, "dose_rate_ul_min": 300, "max_session_ul": 2500,
                  "max_day_ul": 5000, "min_interval_s": 0, "sign": "ok"}],
    "events": button_held(1, 600) + [
               {"t_s": 0.5, "do": "insert_podlet",
                "podlet": {"serial": "0000c0ffee07", "podlet_type": 3, "capacity_ul": 3000,
                           "expiry": "2030-06-30", "lot": "L1", "sign": "ok"}}],
}


async def _wait_state(st: Steamer, states: tuple[int, ...], timeout_s: float) -> dict:
    """The steamer's status once its state is one of `states` (polling State)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        status = await st.status()
        if status["state"] in states or asyncio.get_running_loop().time() > deadline:
            return status
        await asyncio.sleep(0.05)


async def _until_unlinked(st: Steamer, timeout_s: float) -> float:
    """Seconds until the host learns that the link went."""
    t0 = asyncio.get_running_loop().time()
    while st.connected and asyncio.get_running_loop().time() - t0 < timeout_s:
        await asyncio.sleep(0.01)
    return asyncio.get_running_loop().time() - t0


# Both cuts on the sim board; one each on the real boards' code, whose runs are paced
# at half the sim's speed (SESSION_SPEED): ~40 s each.
@pytest.mark.parametrize("how, board", [("drop", "sim"), ("lose", "sim"),
                                        ("drop", "picow"), ("lose", "esp32c3")])
def test_a_session_runs_to_its_end_through_a_link_lost_mid_session(air, tmp_path, how, board):
    """The link goes while the session heats and again while it doses, either dropped
    (both ends told at once) or lost (silent until the supervision timeout): the session
    goes on with no host, ends completed with the profile's dose (300 ul/min for 20 s),
    and no limit is passed."""
    from steamer.client import MemoryLogSink
    events = sorted(SESSION_SCENARIO["events"], key=lambda e: e["t_s"])
    speed = SESSION_SPEED[board]
    s = serve(air, tmp_path, f"session-{how}-{board}", dict(SESSION_SCENARIO, events=events),
              speed=speed, board=board)
    ring = KeyRing()
    cut = getattr(air, how)

    async def go():
        await pair(s.addr, air.address, ring)
        st = Steamer(s.addr, ring, **sim_radio(air.address).steamer_kw(),
                     keepalive_s=KEEPALIVE_S if board == "sim" else KEEPALIVE_S / speed)
        await st.connect()
        await st.authenticate()
        await st.set_clock()
        await st.start_session(3)
        assert (await _wait_state(st, (2,), 5))["state"] == 2             # preheat
        assert air.call(cut, s.addr) == 1 and await _until_unlinked(st, 3) < 3
        # The session did not notice: still heating, with its limits.
        await st.reconnect()
        status = await _wait_state(st, (4,), 60)                            # steaming
        assert status["state"] == 4 and status["limit_ul"] == 2500 and status["limit_s"] == 20
        assert air.call(cut, s.addr) == 1 and await _until_unlinked(st, 3) < 3
        await st.reconnect()
        status = await _wait_state(st, (1, 5), 30)                          # cooldown, idle
        assert status["state"] in (1, 5) and status["fault"] == 0
        await st.authenticate()
        sink = MemoryLogSink()
        await st.sync_logs(sink)
        await st.close()
        return sink
    try:
        sink = run(go())
    finally:
        s.stop()
    assert s.crashes() == []
    names = [r["kind"] for r in sink.records]
    assert names.count("session_started") == 1 and names.count("session_ended") == 1
    assert "fault_latched" not in names and "watchdog_reset" not in names
    started = [r["payload"] for r in sink.records if r["kind"] == "session_started"][0]
    ended = [r["payload"] for r in sink.records if r["kind"] == "session_ended"][0]
    assert len(started["podlet"]) == 12 and started["target_c"] == 45.0
    assert started["limit_ul"] == 2500
    # Ended by its 20 s of dosing at 300 ul/min, not by the link; the dose is what the
    # encoder counted (100 nl a pulse), the rate trimmed to it.
    assert ended["reason"] == "completed" and abs(ended["session_ul"] - 100.0) <= 0.2
    assert ended["dose_s"] == 20
    # What the history needs of a session arrives with it, and no sample passed a limit.
    steaming = [r["payload"] for r in sink.records
                if r["kind"] == "sample" and r["payload"]["state"] == "steaming"]
    assert steaming and all(p["boiler_c"] > 90 and p["heater_pct"] > 0 for p in steaming)
    assert max(p["session_ul"] for p in steaming) <= 100.2
    assert all(p["outlet_c"] < 60 and p["boiler_c"] < 130 for p in steaming)


@pytest.mark.parametrize("mtu", [23, 247])
def test_writes_appended_before_the_firmware_reads_them_are_all_served(tmp_path, mtu):
    """The steamer's stack appends three writes before the firmware's IRQ handler runs
    (LinkParams.coalesce_writes, as scheduled IRQs do on a real stack): every command
    of a pipelined burst is answered, a profile in 16-byte chunks installs, and no
    write is refused."""
    from steamer_sim.air import Air, LinkParams
    from steamer_harness.ble import make_records, signed_test_profile
    air = Air(LinkParams(coalesce_writes=3))
    air.start_thread()
    s, ring = served_and_paired(air, tmp_path, f"coalesce-{mtu}", speed=10)

    async def go():
        async with Steamer(s.addr, ring, **sim_radio(air.address).steamer_kw(), mtu=mtu) as st:
            await st.authenticate()
            ids = [await st.send({"type": "profile_list_get"}) for _ in range(40)]
            for mid in ids:
                await st.receive(["profile_list"], mid)
            await make_records(st, 20)
            await st.push_profile(signed_test_profile(1), chunk=16)
            assert any(p["version"] == 1 for p in await st.profiles())
            assert st.rx_errors == 0
    try:
        run(go())
    finally:
        s.stop()
    assert s.crashes() == []


def test_a_dead_radio_leaves_the_steamer_running(tmp_path):
    """The air goes away under a running steamer (`sim serve` refuses to start without
    one): its radio hears nothing more, and the steamer runs its scenario to the end
    all the same, with no crash and no reset."""
    import json
    import os
    import socket
    import subprocess
    import sys
    import time
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    air = subprocess.Popen([sys.executable, "-m", "steamer_sim.air", "--port", str(port)])
    try:
        addr = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the air never listened"
                time.sleep(0.1)
        scen = tmp_path / "s.json"
        scen.write_text(json.dumps({"contract": 1, "duration_s": 120}))
        env = dict(os.environ, STEAMER_AIR=addr)
        serve = subprocess.Popen(
            [sys.executable, "-m", "steamer.cli.main", "sim", "serve", "--name", "dead",
             "--scenario", str(scen), "--speed", "20"], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2.0)                 # the steamer is up and on the air (40 s virtual)
        assert serve.poll() is None
        air.kill()
        out, err = serve.communicate(timeout=120)
    finally:
        air.kill()
        air.wait()
    assert serve.returncode == 0, err[-2000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["loop"]["steps"] >= 1170 and summary["loop"]["crashes"] == 0
    assert summary["resets"] == []
    assert "Traceback" not in err
