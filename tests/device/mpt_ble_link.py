"""The link's two sides on a stand-in stack that runs the IRQ handler the link registers
(as the stack does) and a service() as the loop does. Receive: a read that
holds several writes the stack appended (a scheduled IRQ handler run late) is split
into its PDUs by their lengths, each takes a credit, and the frames they carry are all
answered; what cannot be split is refused whole, and the link goes on. Send:
notifications go at the link's pace, a refusal for want of buffers keeps
them queued whole, and any other error ends the connection rather than a frame."""
import errno
import gc
import time

import podproto
from podproto import link as plink

import simkit                           # the firmware's app first, as fw.main boots
gc.collect()                            # and collects before the link, as it does
from fw import ble                      # noqa: E402

_CONN = 7
_H_INFO, _H_CMD, _H_EVENT, _H_STATE = 14, 11, 12, 13


class _Radio:
    """A stand-in stack: what fw.ble.Link registers and calls, and fire(), which runs the
    IRQ handler the link registered as the stack would. A Command write's bytes wait in
    `value` for the handler's read; `sent` holds the Event notifications."""

    def __init__(self):
        self.value = b""
        self.sent = []
        self.sent_to = []       # the connection each of `sent` was addressed to
        self.fail = []          # errno to raise at each next notify (0: take it)
        self.disconnected = []
        self.adv = []           # gap_advertise's interval at each call (None: stop)
        self.adv_fail = 0       # errno to raise at advertising calls (0: take them)
        self.handler = None
        self.mtu_asked = []     # connections gattc_exchange_mtu was called for

    def active(self, on):
        pass

    def config(self, *args, **kw):
        if args == ("mac",):
            return 0, bytes(6)

    def gatts_register_services(self, services):
        return (_H_INFO, _H_CMD, _H_EVENT, _H_STATE), (21, 22, 23, 24, 25)

    def gatts_set_buffer(self, handle, size, append):
        pass

    def irq(self, handler):
        self.handler = handler

    def fire(self, event, data):
        self.handler(event, data)

    def gatts_read(self, handle):
        v = bytes(memoryview(self.value))    # a new object, as modbluetooth.c's is
        self.value = b""
        return v

    def gatts_notify(self, conn, handle, data):
        if self.fail:
            e = self.fail.pop(0)
            if e:
                raise OSError(e)
        if handle == _H_EVENT:
            self.sent.append(bytes(data))
            self.sent_to.append(conn)

    def gap_disconnect(self, conn):
        self.disconnected.append(conn)

    def gap_advertise(self, interval_us, *args, **kw):
        if self.adv_fail and interval_us is not None:
            raise OSError(self.adv_fail)
        self.adv.append(interval_us)

    def gatts_write(self, handle, data):
        pass

    def gattc_exchange_mtu(self, conn):
        self.mtu_asked.append(conn)


_app = []


def _link():
    """A Link on a stand-in stack, connected at MTU 247; one board and app for all."""
    gc.collect()
    if not _app:
        _app.append(simkit.app_mod.App(simkit.board(simkit.scenario())))
    app = _app[0]
    link = ble.Link(app, _Radio())
    app.link = link
    link.radio.fire(1, (_CONN, 0, b""))     # connected
    link.radio.fire(21, (_CONN, 247))       # MTU
    link.service()
    return link


def _answers(link):
    r = plink.Reassembler()
    out = []
    for pdu in link.radio.sent:
        n = r.feed(pdu)
        if n:
            out.append(r.message(n))
    return out


def test_appended_writes_are_split_into_pdus_and_each_is_answered():
    link = _link()
    frag = plink.Fragmenter(244)
    pdus = []
    for i in range(3):
        pdus.extend(frag.split(podproto.encode({"type": "status_get", "id": i})))
    # The handler only records; service() reads all three writes at once.
    link.radio.value = b"".join(pdus)
    for _ in range(3):
        link.radio.fire(3, (_CONN, link.h_cmd))
    assert link.rx_pending and link.ring_count == 0 and link.radio.value
    link.service()
    assert link.overruns == 0 and link.radio.value == b""
    got = _answers(link)
    assert [m["type"] for m in got] == ["status"] * 3, got
    assert link.errors == 0


def test_a_long_frame_in_small_pdus_appended_reassembles():
    link = _link()
    frag = plink.Fragmenter(20)
    frame = podproto.encode({"type": "hello", "id": 1, "proto": 1, "caps": 0, "max_pdu": 20,
                             "app": "x" * 60})
    pdus = frag.split(frame)
    assert len(pdus) >= 4
    link.radio.value = b"".join(pdus[:2])
    link.radio.fire(3, (_CONN, link.h_cmd))
    link.radio.value += b"".join(pdus[2:])      # appended, as the stack does
    link.radio.fire(3, (_CONN, link.h_cmd))
    link.service()
    assert [m["type"] for m in _answers(link)] == ["auth_challenge"]


def test_what_cannot_be_split_is_refused_and_the_next_write_is_served():
    link = _link()
    frag = plink.Fragmenter(244)
    good = frag.split(podproto.encode({"type": "status_get", "id": 1}))[0]
    # A length running past the read's end: the rest goes on whole, and is refused.
    link.radio.value = good + bytes([1, 0x80, 200, 1, 2])
    link.radio.fire(3, (_CONN, link.h_cmd))
    link.service()
    frag.seq = 2                          # the broken PDU spent seq 1
    link.radio.value = frag.split(podproto.encode({"type": "status_get", "id": 2}))[0]
    link.radio.fire(3, (_CONN, link.h_cmd))
    link.service()
    got = _answers(link)
    assert [m["type"] for m in got] == ["status", "error", "status"], got


def test_the_irq_handler_records_only_and_allocates_nothing():
    """Issue 13 item 1: on the Pico W, BTstack's IRQs run as scheduled tasks at any
    bytecode branch, inside heap_lock() too (ports/rp2/mpbthciport.c schedules
    mp_bluetooth_hci_poll; py/scheduler.c runs it at the next branch). The handler
    records; the Command buffer is read by service()."""
    import micropython
    link = _link()
    frag = plink.Fragmenter(244)
    link.radio.value = frag.split(podproto.encode({"type": "status_get", "id": 1}))[0]
    events = ((3, (_CONN, link.h_cmd)), (27, (_CONN, 40, 0, 40, 0)), (2, (_CONN, 0, b"")),
              (1, (_CONN, 0, b"")), (21, (_CONN, 247)))
    fire = link.radio.fire
    micropython.heap_lock()
    try:
        for ev in events:
            fire(ev[0], ev[1])
    finally:
        micropython.heap_unlock()
    assert link.irq_errors == 0 and link.conn == _CONN
    link.service()
    # The write came before the reconnect: the old connection's, dropped unread.
    assert link.radio.value == b"" and _answers(link) == [] and link.errors == 0
    frag = plink.Fragmenter(244)           # the new connection's PDUs
    link.radio.value = frag.split(podproto.encode({"type": "status_get", "id": 2}))[0]
    link.radio.fire(3, (_CONN, link.h_cmd))
    link.service()
    assert [m["type"] for m in _answers(link)] == ["status"], (_answers(link), link.errors)


def test_an_exception_in_the_irq_handler_resets_the_link_instead_of_deafening_it():
    """Issue 13 item 3: an exception escaping the handler would be printed and the handler
    disabled for good (modbluetooth.c invoke_irq_handler_run_protected): the handler
    keeps it, and service() resets the link (a link_reset, the connection dropped)."""
    link = _link()
    link.radio.fire(3, ())              # malformed event data: IndexError in the handler
    assert link.irq_errors == 1
    link.service()
    assert link.failures == 1 and link.conn == -1 and link.radio.disconnected == [_CONN]
    assert "IRQ handler" in link.last_failure and link.irq_errors == 0
    _connect(link)
    assert link.conn == _CONN and link.failures == 1


def test_the_interval_is_the_boards_at_each_connect_until_the_central_changes_it():
    """Issue 13 item 4: the stacks report the interval only when the central updates it
    (modbluetooth_nimble.c: BLE_GAP_EVENT_CONN_UPDATE, not BLE_GAP_EVENT_CONNECT), so a
    connection's interval must not carry over to the next."""
    link = _link()
    default_ms = link.interval_ms
    link.radio.fire(27, (_CONN, 40, 0, 40, 0))          # 50 ms
    assert link.interval_ms == 50
    link.radio.fire(2, (_CONN, 0, b""))
    link.service()
    _connect(link)
    assert link.interval_ms == default_ms


def _queue_frames(link, n):
    """n status frames queued (3 PDUs each at MTU 23)."""
    link.frag = plink.Fragmenter(20)
    for _ in range(n):
        link.send(link.status())


def _elapse(link, ms):
    link.tx_t_ms = time.ticks_add(link.tx_t_ms, -ms)


def test_notifications_go_at_the_link_pace():
    link = _link()
    link.pdus_per_event, link.interval_ms = 4, 30
    link.tx_tokens = 0
    _queue_frames(link, 10)
    link.service()
    assert len(link.radio.sent) == 0
    _elapse(link, 30)                   # one connection event's worth
    link.service()
    assert len(link.radio.sent) == 4
    _elapse(link, 1000)                 # long idle: two events' worth ahead, no more
    link.service()
    assert len(link.radio.sent) == 12
    # The interval the stack reports (in 1.25 ms units) sets the pace.
    link.radio.fire(27, (_CONN, 6, 0, 40, 0))
    assert link.interval_ms == 7


def test_a_stack_out_of_buffers_keeps_the_frames_whole_and_counts_it():
    link = _link()
    _queue_frames(link, 3)
    link.radio.fail = [0, errno.ENOMEM]
    link.service()
    assert link.enomem == 1 and len(link.radio.sent) == 1 and len(link.tx) == 8
    _elapse(link, 1000)
    link.service()
    assert link.tx == [] and [m["type"] for m in _answers(link)] == ["status"] * 3


def test_enomem_brings_the_pacing_down_to_what_the_link_carried():
    """Issue 13 item 5: no API reports PDUs per event (NimBLE refuses with ENOMEM,
    modbluetooth_nimble.c mp_bluetooth_gatts_notify_indicate): the PDUs the stack took
    between two refusals over the time between them set the pace; taken cleanly for a
    while, it goes back up one step at a time, never past the board's figure."""
    link = _link()
    assert link.pdus_per_event == link.pdus_default == 6     # the sim board's figure
    _queue_frames(link, 10)
    link.radio.fail = [errno.ENOMEM]
    link.service()
    assert link.enomem == 1 and link.pdus_per_event == 6     # one refusal: no rate yet
    # 20 PDUs taken in the 300 ms (ten 30 ms events) to the next refusal: 2 per event.
    link.tx_taken = 20
    link.enomem_t_ms = time.ticks_add(time.ticks_ms(), -300)
    _elapse(link, 1000)
    link.radio.fail = [errno.ENOMEM]
    link.service()
    assert link.enomem == 2 and link.pdus_per_event == 2, link.pdus_per_event
    while link.tx:
        _elapse(link, 1000)
        link.service()
    _queue_frames(link, 30)
    while link.tx:
        _elapse(link, 1000)
        link.service()
    assert 2 < link.pdus_per_event <= 6, link.pdus_per_event
    # A new connection starts again from the board's figure.
    link.radio.fire(2, (_CONN, 0, b""))
    link.service()
    _connect(link)
    assert link.pdus_per_event == 6


def _held_back_window(taken, clean=0):
    """A link at a pace of 4 PDUs per event whose window between two refusals, 300 ms
    (ten 30 ms events) long, the pace held a notification back in and the stack took
    `taken` PDUs in; `clean`: PDUs taken cleanly before the second refusal. Returns the
    link just after that refusal."""
    link = _link()
    _queue_frames(link, 10)
    link.radio.fail = [errno.ENOMEM]
    link.service()                      # the first refusal opens the window
    link.pdus_per_event = 4
    link.tx_tokens = 0                  # the pace is spent and no time passes:
    link.tx_t_ms = time.ticks_ms()
    link.service()                      # a notification waits on it
    assert link.tx and link.enomem == 1
    link.tx_clean = clean
    link.tx_taken = taken
    link.enomem_t_ms = time.ticks_add(time.ticks_ms(), -300)
    _elapse(link, 1000)
    link.radio.fail = [errno.ENOMEM]
    link.service()
    assert link.enomem == 2
    return link


def test_a_window_the_pace_held_back_in_raises_the_rate_but_never_lowers_it():
    """Issue 13 item 5: between two refusals the stack took what the link carried only
    if the firmware kept it fed. When the pace itself held notifications back (no tokens
    left), the stack ran short of them, not the link of room, and what it took is a floor
    of the link's rate: taken as the rate, it read 3 PDUs per event on a 4-PDU link, the
    lower pace fed the stack less, and the sync held near 0.75 of the link (NimBLE model,
    MTU 247). Such a window may raise the pace, never lower it; a window the pace did not
    hold back sets it (test_enomem_brings_the_pacing_down_to_what_the_link_carried)."""
    assert (_held_back_window(30).pdus_per_event, _held_back_window(50).pdus_per_event) == (4, 5)


def test_a_refusal_after_a_window_the_pace_held_back_in_lets_the_probe_go_on():
    """Issue 13 item 5: the pace climbs one PDU per event after _PROBE_EVENTS events'
    worth taken cleanly. A refusal that ends a window the pace held back says the stack
    was full for a moment, not that the pace is over the link, so the climb goes on
    (reset there, the NimBLE model's sync at MTU 247 and 6 PDUs per event stayed at
    0.61-0.68 of the link, 0.68-0.69 with this). A refusal after a window the pace did
    not hold back still starts the climb again
    (test_enomem_brings_the_pacing_down_to_what_the_link_carried)."""
    # _PROBE_EVENTS (4) events' worth at 4 PDUs per event, one clean PDU short of the climb.
    link = _held_back_window(30, clean=4 * 4 - 1)
    assert link.pdus_per_event == 4, link.pdus_per_event     # refused: pace kept
    _elapse(link, 1000)
    link.service()                      # the next PDUs go, the first of them the 32nd
    assert link.pdus_per_event == 5, link.pdus_per_event


def _climb(refuses, every=0):
    """The pace after a long run of sends from the board's figure (6), on a board whose
    stack refuses what it cannot hold (refuses) or takes everything; every: the stack
    refuses one in that many (0: none)."""
    link = _link()
    board = link.app.board
    board.BLE_REFUSES_WHEN_FULL = refuses
    try:
        link = ble.Link(link.app, _Radio())
        link.app.link = link
        link.radio.fire(1, (_CONN, 0, b""))
        link.radio.fire(21, (_CONN, 247))
        link.service()
        for _ in range(4):              # 120 PDUs: the climb is one per 24-36 clean
            _queue_frames(link, 10)
            if every:
                link.radio.fail = ([0] * (every - 1) + [errno.ENOMEM]) * 40
            for _ in range(100):
                if not link.tx:
                    break
                link.drop_at_ms = time.ticks_add(time.ticks_ms(), 60000)   # not idle
                _elapse(link, 1000)
                link.service()
            assert not link.tx
        return link.pdus_per_event
    finally:
        del board.BLE_REFUSES_WHEN_FULL


def test_the_probe_climbs_past_the_boards_figure_only_where_the_stack_refuses_when_full():
    """Issue 13, a link faster than the firmware assumes: no API reports PDUs per event,
    and the interval only when the central changes it, so a 15 ms link read as 30 ms
    held the pace at the board's 6 per "event", and a sync at 0.72-0.76 of the link, on
    both models. Where the stack refuses what it cannot hold (NimBLE: ENOMEM,
    modbluetooth_nimble.c mp_bluetooth_gatts_notify_indicate), the probe climbs past the
    board's figure (up to 4 times it) and a refusal brings it back; where it takes
    everything (BTstack copies onto the heap, modbluetooth_btstack.c), the pace is the
    heap's only bound and stays at the figure."""
    assert _climb(False) == 6
    climbed = _climb(True)
    assert 6 < climbed <= 24, climbed
    # Past the figure only while the stack refuses nothing: a link at the figure, whose
    # bursts fill NimBLE's buffers now and then, keeps it (a climb there met a refusal
    # at each step: 0.88-0.91 of the link at 6 PDUs per event and MTU 247, 0.91-0.93
    # with this).
    assert _climb(True, every=10) == 6


def test_any_other_stack_error_ends_the_connection_not_a_frame():
    link = _link()
    _queue_frames(link, 3)
    link.radio.fail = [0, errno.EIO]
    link.service()                      # service() flushes; the error ends the link
    assert link.radio.disconnected == [_CONN] and link.conn == -1 and link.failures == 1
    assert link.tx == [] and len(link.radio.sent) == 1
    # Disconnected mid-frame (ENOTCONN): the rest is dropped quietly, nothing reset.
    link = _link()
    _queue_frames(link, 2)
    link.radio.fail = [0, errno.ENOTCONN]
    link.service()
    assert link.tx == [] and link.failures == 0


# ---- timeouts: a connection that does not authenticate, or goes quiet, is dropped ------

def _left_ms(link):
    """What is left of the connection's time (the link's clock, time.ticks_ms)."""
    return time.ticks_diff(link.drop_at_ms, time.ticks_ms())


def _later(link, ms):
    """ms pass on the link's clock, as _elapse does for the pacing."""
    link.drop_at_ms = time.ticks_add(link.drop_at_ms, -ms)


def _connect(link):
    """A central connects (MTU 247); service() sees it."""
    link.radio.fire(1, (_CONN, 0, b""))
    link.radio.fire(21, (_CONN, 247))
    link.service()


def _write(link, frag, msg, conn=_CONN):
    link.radio.value = b"".join(frag.split(podproto.encode(msg)))
    link.radio.fire(3, (conn, link.h_cmd))


def _authenticate(link, frag, conn=_CONN):
    """A paired host authenticates; its session pads, for the commands it sends next."""
    from podproto import pairing
    host_id, key = b"\x42" * 8, b"\x24" * 32
    link.keys.put(host_id, key)
    _write(link, frag, {"type": "hello", "id": 1, "proto": 1, "caps": 0, "max_pdu": 244,
                        "app": "t"}, conn)
    link.service()
    nonce = bytes(16)
    _write(link, frag, {"type": "auth_response", "id": 2, "host_id": host_id, "nonce": nonce,
                        "mac": pairing.auth_mac(key, link.dev_nonce, nonce, host_id)}, conn)
    dev_nonce = link.dev_nonce
    link.service()
    assert link.authed == host_id
    return pairing.session_pads(key, dev_nonce, nonce, host_id)


def _near(ms, want_ms):
    assert want_ms - 500 <= ms <= want_ms, (ms, want_ms)


def test_a_central_that_never_authenticates_is_dropped_after_10_s():
    link = _link()
    _connect(link)                            # and says nothing
    assert ble.AUTH_TIMEOUT_S == 10
    _near(_left_ms(link), 10000)
    _later(link, 9700)
    link.service()
    assert link.conn == _CONN
    _later(link, 400)
    link.service()
    assert link.conn < 0 and link.radio.disconnected == [_CONN] and link.timeouts == 1
    # Status reads and hellos are not authentication: they do not give it more time.
    link = _link()
    _connect(link)
    frag = plink.Fragmenter(244)
    _later(link, 6000)
    _write(link, frag, {"type": "status_get", "id": 1})
    _write(link, frag, {"type": "hello", "id": 2, "proto": 1, "caps": 0, "max_pdu": 244,
                        "app": "t"})
    link.service()
    assert link.conn == _CONN and _left_ms(link) <= 4000
    _later(link, 4100)
    link.service()
    assert link.conn < 0


def test_an_authenticated_host_is_dropped_after_120_s_of_silence_only():
    from podproto import pairing
    link = _link()
    _connect(link)
    frag = plink.Fragmenter(244)
    session = _authenticate(link, frag)
    assert ble.IDLE_TIMEOUT_S == 120
    _near(_left_ms(link), 120000)
    # A command every 100 s keeps it.
    ctr = pairing.FIRST_CTR
    for _ in range(3):
        _later(link, 100000)
        link.service()
        assert link.conn == _CONN
        link.radio.value = b"".join(frag.split(pairing.seal(
            {"type": "profile_list_get", "id": ctr}, session, ctr)))
        link.radio.fire(3, (_CONN, link.h_cmd))
        link.service()
        ctr += 1
        _near(_left_ms(link), 120000)
    assert link.cmd_ctr == ctr
    _later(link, 119700)
    link.service()
    assert link.conn == _CONN
    _later(link, 400)
    link.service()
    assert link.conn < 0 and link.radio.disconnected == [_CONN]


def test_a_pairing_under_way_is_not_cut_and_the_host_then_has_10_s():
    from podproto import pairing
    link = _link()
    app = link.app
    slices = app.check_slices
    app.pairing_open = lambda: True           # the button held
    app.check_slices = 1                      # a board's pace: ~94 periods of work
    try:
        _connect(link)
        _later(link, 8000)
        _, pub = pairing.keypair()
        _write(link, plink.Fragmenter(244), {"type": "pair_request", "id": 1,
                                             "host_pub": pub, "host_nonce": bytes(16)})
        link.service()
        assert link.pairing is not None
        periods = 0
        while link.pairing is not None:       # each period as if 10 s had passed
            _later(link, 10000)
            link.service()
            periods += 1
            assert link.conn == _CONN, periods
        assert periods > 10 and link.pending_key is not None
        _near(_left_ms(link), 10000)
        _later(link, 10100)
        link.service()
        assert link.conn < 0 and link.timeouts == 1
        # The pairing was never proved: no key was kept.
        assert link.keys.get(pairing.host_id_of(pub)) is None
    finally:
        del app.pairing_open
        app.check_slices = slices


def test_a_central_past_one_that_has_not_authenticated_takes_the_link():
    link = _link()
    _connect(link)                            # says nothing
    radio = link.radio
    # Still advertising (re-started: the stack stopped when the central connected).
    assert radio.adv and radio.adv[-1] is not None
    _later(link, 6000)
    link.radio.fire(1, (_CONN + 1, 0, b""))         # a paired host connects
    link.radio.fire(21, (_CONN + 1, 247))
    assert link.conn == _CONN + 1
    link.service()
    assert radio.disconnected == [_CONN] and link.kicked == 1 and link.timeouts == 0
    _near(_left_ms(link), 10000)              # the newcomer's own 10 s
    link.radio.fire(2, (_CONN, 0, b""))             # the silent one's disconnect: not ours
    assert link.conn == _CONN + 1 and link.conn_event == 0
    # The newcomer authenticates: advertising stops, and a central that connects now is
    # dropped at once, the host's connection untouched.
    host = _CONN + 1
    frag = plink.Fragmenter(244)
    _authenticate(link, frag, host)
    assert radio.adv[-1] is None
    n_adv = len(radio.adv)
    link.radio.fire(1, (host + 1, 0, b""))
    link.service()
    assert link.conn == host and link.authed is not None
    assert radio.disconnected == [_CONN, host + 1] and link.kicked == 2
    assert len(radio.adv) == n_adv            # not advertising again
    _write(link, frag, {"type": "status_get", "id": 9}, host)
    link.service()
    assert _answers(link)[-1]["type"] == "status"


def test_advertising_refused_while_connected_keeps_the_connection():
    link = _link()
    link.radio.adv_fail = errno.ENOMEM        # every connection taken
    _connect(link)
    link.service()
    assert link.conn == _CONN and link.failures == 0
    assert link.adv_key == -1                 # tried again at each service()
    link.radio.adv_fail = 0                   # a connection ended: room again
    link.service()
    assert link.radio.adv[-1] is not None and link.conn == _CONN
    _later(link, 10100)
    link.service()                            # its timeout still ends it
    assert link.conn < 0 and link.timeouts == 1


# ---- status: the podlet's state and refusal -----------------------------------------------

def test_status_names_the_podlets_state_and_why_it_was_refused():
    from podproto.names import PODLET_REASONS, PODLET_STATES
    import signed
    link = _link()
    app, b = link.app, link.app.board

    def podlet():
        s = link.status()
        return PODLET_STATES[s["podlet_state"]], PODLET_REASONS[s["podlet_reason"]]

    def insert():
        b.podlet.info = dict(simkit.PODLET, image_hex=signed.PODLET_OK_HEX)
        b.podlet.v = 1
    assert podlet() == ("none", None)
    b.set_clock_s(0)
    insert()
    app.step()                            # the step sees it; service() has not read it yet
    assert podlet() == ("checking", None)
    app.service()
    assert podlet() == ("checking", None) # its signature check runs a slice a period
    n = 0
    while podlet()[0] == "checking":
        simkit.tick(b, app)
        n += 1
        assert n < 200
    assert podlet() == ("refused", "clock_unset") and link.status()["podlet_type"] == 0
    b.podlet.v = 0
    simkit.tick(b, app)
    assert podlet() == ("none", None)
    app.set_clock(1795000000)
    insert()
    simkit.tick(b, app, 100)
    assert podlet() == ("accepted", None)
    assert link.status()["podlet_type"] == simkit.PODLET["podlet_type"]
    b.podlet.v = 0
    simkit.tick(b, app)
    assert podlet() == ("none", None)


def test_the_link_asks_for_the_mtu_exchange_and_later_frames_use_the_new_size():
    """Not every central starts the MTU exchange: service() asks once a connection is
    up (gattc_exchange_mtu), and an exchange that completes after frames went out cuts
    the next frames to the new size, the PDU counter running on."""
    gc.collect()
    link = ble.Link(_app[0] if _app else simkit.app_mod.App(simkit.board(simkit.scenario())),
                    _Radio())
    link.app.link = link
    link.radio.fire(1, (_CONN, 0, b""))
    link.service()
    assert link.radio.mtu_asked == [_CONN] and link.frag.max_pdu == 20
    link.send(link.status())
    link.service()
    small = len(link.radio.sent)
    assert small > 1 and max(len(p) for p in link.radio.sent) <= 20
    link.radio.fire(21, (_CONN, 247))
    link.service()
    assert link.frag.max_pdu == 244 and link.radio.mtu_asked == [_CONN]
    link.send(link.status())
    link.service()
    assert len(link.radio.sent) == small + 1 and len(link.radio.sent[-1]) > 20
    got = _answers(link)
    assert [m["type"] for m in got] == ["status", "status"], got


# ---- the stack's thread: IRQs at any point of service() (NimBLE, issue 13 item 2) ------

def _race_at(link, obj, name, new_conn):
    """At the next call of obj.name, what NimBLE's task may run there on the esp32
    (modbluetooth.c invoke_irq_handler, from the stack's own FreeRTOS task, taking the
    GIL between any two bytecodes of the main thread): the old central's disconnect and
    a new one's connect and MTU exchange. In a notification, just after the stack took
    it. link.radio.race_at: how many Event notifications had gone by then."""
    orig = getattr(obj, name)

    def hooked(*args):
        setattr(obj, name, orig)
        after = name == "gatts_notify"
        got = orig(*args) if after else None
        link.radio.race_at = len(link.radio.sent)
        link.radio.fire(2, (_CONN, 0, b""))
        link.radio.fire(1, (new_conn, 0, b""))
        link.radio.fire(21, (new_conn, 247))
        return got if after else orig(*args)
    setattr(obj, name, hooked)


def test_a_connection_change_at_any_point_of_service_leaves_the_link_sound():
    """A central goes and the next connects while service() is in the middle of the old
    one's commands: between the ring's test and its credit (item 2's point, where a
    handler that reset the ring left ring_count negative and raised ProtocolError
    outside the try), in the stack read, in the reassembler, in a notification; the new
    connection on another handle, and on the same one (NimBLE hands a freed handle out
    again). Each time: nothing fails, the ring and credits stay in range, nothing the
    old central asked for is notified after the change (on the same handle it would
    reach the new central, which may be a stranger: a reply to an authenticated host is
    not its to read), and the new central is answered."""
    points = (("rx", "consumed"), ("radio", "gatts_read"), ("reasm", "feed"),
              ("radio", "gatts_notify"))
    for i, (where, name) in enumerate(points):
        for new in (_CONN + 10 + i, _CONN):
            link = _link()
            frag = plink.Fragmenter(244)
            obj = {"rx": link.rx, "radio": link.radio, "reasm": link.reasm}[where]
            # The old central asks three times; the change comes while service()
            # answers it (in a notification: the second, once the first has gone).
            pdus = []
            for n in range(3):
                pdus.extend(frag.split(podproto.encode({"type": "status_get", "id": n})))
            link.radio.value = b"".join(pdus)
            link.radio.fire(3, (_CONN, link.h_cmd))
            if name == "gatts_notify":
                link.tx_tokens = 1000       # one PDU's pace: the first answer only
                link.tx_t_ms = time.ticks_ms()
                link.service()
                assert len(link.radio.sent) == 1 and link.tx, (where, new)
                _elapse(link, 1000)
            _race_at(link, obj, name, new)
            link.service()
            link.service()
            late = link.radio.sent[link.radio.race_at:]
            assert late == [], (where, name, new, "the old central's answers went out after it")
            assert link.failures == 0, (where, name, new, link.last_failure)
            assert 0 <= link.ring_count <= ble.RX_SLOTS, (where, name, new, link.ring_count)
            assert link.rx.held >= 0 and link.rx.owed >= 0, (where, name, new)
            assert link.conn == new and link.conn_event == 0, (where, name, new, link.conn)
            link.radio.sent = []
            link.radio.sent_to = []
            _write(link, plink.Fragmenter(244), {"type": "status_get", "id": 1}, new)
            link.service()
            assert [m["type"] for m in _answers(link)] == ["status"], (where, name, new)
            assert set(link.radio.sent_to) == {new}, (where, name, new)
