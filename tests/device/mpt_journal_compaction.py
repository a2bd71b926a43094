"""Journal compaction when the flash budget is reached: a partly acknowledged oldest
segment is rewritten to its unacknowledged tail rather than dropped, only a journal full
of unacknowledged records overflows (and says which records it lost), and a power cut at
any flash write of either path leaves every unacknowledged record exactly once or named
lost by an overflow record on flash."""
import os

from flash import PowerCut
from fw import journal
import simkit

# Small journals for the power-cut sweeps: every write of a compaction is cut, and each
# case rebuilds the journal from an empty flash.
_SEG = 4
_MAX = 16


def _fresh(seg=journal.SEG_RECORDS, most=journal.MAX_RECORDS):
    b = simkit.board(simkit.scenario())
    return b, journal.Journal(b.data_dir, seg, most)


def _held(j):
    """(seqs readable after the acknowledged one, ranges named lost by overflow records),
    read as the host syncs: a bounded batch at a time, never the whole list at once for
    a full journal (ranges are few; seqs come back as (first, last, count) runs)."""
    runs = []
    lost = []
    seq = j.acked + 1
    while True:
        got = j.read(seq, 64)
        if not got:
            break
        for s, rec in got:
            if runs and s == runs[-1][1] + 1:
                runs[-1][1] = s
            else:
                runs.append([s, s])
            if rec.get("event") == "journal_overflow":
                lost.append((rec["lost_from"], rec["lost_to"]))
        seq = got[-1][0] + 1
    return runs, lost


def _assert_nothing_unannounced(j):
    """Invariant: every seq after the acknowledged one is on flash once, in order, or
    inside a range an overflow record on flash names; numbering goes on from the last."""
    runs, lost = _held(j)
    want = j.acked + 1
    for first, last in runs:
        if first != want:
            assert any(a <= want and first - 1 <= b for a, b in lost), (want, first, runs, lost)
        want = last + 1
    assert want == j.next_seq(), (want, j.next_seq(), runs)
    assert not [n for n in os.listdir(j.dir) if n.startswith("t")]
    return runs, lost


def test_a_partly_acknowledged_segment_is_rewritten_not_dropped():
    # The benchmark's MTU 247 run: 1,500 records synced and acknowledged (mid-segment),
    # then 3,900 more: 3,900 unacknowledged records fit in the 4,096-record budget.
    b, j = _fresh()
    for i in range(1500):
        j.append({"event": "session_refused", "reason": "no_podlet", "t_ms": i})
    j.ack(1500)
    for i in range(3900):
        j.append({"event": "session_refused", "reason": "no_podlet", "t_ms": i})
    runs, lost = _assert_nothing_unannounced(j)
    assert runs == [[1501, 5400]] and lost == []
    assert j.first_seq() == 1501 and j.segments[0] == 1501
    assert j.next_seq() - j.segments[0] <= journal.MAX_RECORDS
    b.mount_flash()
    j2 = journal.Journal(b.data_dir)
    assert j2.first_seq() == 1501 and j2.next_seq() == 5401
    assert _held(j2) == (runs, lost)


def test_only_a_journal_full_of_unacknowledged_records_overflows():
    b, j = _fresh(_SEG, _MAX)
    for i in range(10):
        j.append({"i": i})
    j.ack(6)
    # 14 unacknowledged (7..20) plus 2 acknowledged in the oldest segment: full.
    for i in range(10):
        j.append({"i": i})
    assert j.next_seq() - j.segments[0] == _MAX
    j.append({"i": "room"})               # the tail 7, 8 rewritten: no loss
    runs, lost = _assert_nothing_unannounced(j)
    assert runs == [[7, 21]] and lost == [] and j.segments[0] == 7
    j.append({"i": "full"})               # 16 unacknowledged: the next one overflows
    assert j.next_seq() - j.segments[0] == _MAX
    seq = j.append({"i": "over"})
    runs, lost = _assert_nothing_unannounced(j)
    assert lost == [(7, 8)]               # the oldest segment (the rewritten tail)
    assert runs == [[9, seq]]
    assert j.read(seq - 1, 1)[0][1]["event"] == "journal_overflow"
    # Acknowledged past the loss: the next overflow names only what followed.
    j.ack(seq)
    for i in range(_MAX):
        j.append({"i": i})
    assert _assert_nothing_unannounced(j)[1] == []
    for i in range(_SEG):
        j.append({"i": i})
    runs, lost = _assert_nothing_unannounced(j)
    # (Two overflows: the oldest segment was a short rewritten tail.)
    assert lost and all(a == seq + 1 for a, _ in lost), (seq, runs, lost)
    assert lost[-1][1] == runs[0][0] - 1


def test_overflow_ranges_cover_everything_since_the_acknowledgement():
    """Two overflows without an acknowledgement between them: the second record names
    the first's range too, so losing the first record loses nothing unannounced."""
    b, j = _fresh(_SEG, _MAX)
    for i in range(3 * _MAX):
        j.append({"i": i})
    runs, lost = _assert_nothing_unannounced(j)
    assert lost[-1][0] == 1 and lost[-1][1] == runs[0][0] - 1


def _sweep(prepare, act, check):
    """Cuts the power at every flash write of act(j), each time on a journal prepare(j)
    built from an empty flash; boots and calls check(j_before_cut_state, j_after_boot)."""
    cut_at = 1
    while True:
        b, j = _fresh(_SEG, _MAX)
        prepare(j)
        before = (j.acked, j.next_seq())
        b.flash.cut_at_write(cut_at)
        try:
            act(j)
            finished = True
        except PowerCut:
            finished = False
        b.flash.cut_at = 0
        b.mount_flash()
        j2 = journal.Journal(b.data_dir, _SEG, _MAX)
        check(before, j2, cut_at)
        # The journal goes on, numbering after the last record that made it (an overflow
        # cut before its delete makes room first, announcing the same range again).
        last = _held(j2)[0][-1][1]
        seq = j2.append({"i": "after"})
        assert seq > last and seq == j2.next_seq() - 1
        _assert_nothing_unannounced(j2)
        if finished:
            return cut_at
        cut_at += 1


def test_power_cut_at_every_write_of_a_tail_rewrite_loses_and_duplicates_nothing():
    def prepare(j):
        for i in range(10):
            j.append({"i": i})
        j.ack(6)
        for i in range(10):
            j.append({"i": i})
        assert j.next_seq() - j.segments[0] == _MAX   # the next append rewrites

    def check(before, j2, cut_at):
        acked, nxt = before
        runs, lost = _assert_nothing_unannounced(j2)
        assert lost == [] and j2.acked == acked, (cut_at, runs, lost)
        # 7..20 once each, and the record being appended only if it made it.
        assert runs in ([[7, nxt - 1]], [[7, nxt]]), (cut_at, runs)
        assert j2.first_seq() == 7

    writes = _sweep(prepare, lambda j: j.append({"i": "room"}), check)
    assert writes > 4                     # the tail, the delete, the rename, the append


def test_power_cut_at_every_write_of_an_overflow_announces_every_lost_record():
    def prepare(j):
        for i in range(_MAX):
            j.append({"i": i})

    def check(before, j2, cut_at):
        acked, nxt = before
        runs, lost = _assert_nothing_unannounced(j2)
        if runs[0][0] != 1:               # the oldest segment went: announced
            assert lost == [(1, _SEG)], (cut_at, runs, lost)

    writes = _sweep(prepare, lambda j: j.append({"i": "over"}), check)
    assert writes > 2


def test_a_journal_larger_than_the_flash_overflows_before_the_flash_fills():
    """Samples are ~170 bytes: 4,096 of them do not fit the sim board's 512 KB flash
    (the 2,626th append used to fail with ENOSPC, so every later record, and the service
    call logging it, failed). The journal counts low flash as full: it drops and
    announces its oldest, and leaves RESERVE_BLOCKS free for the ledger and the rest."""
    b, j = _fresh()
    rec = {"event": "sample", "state": "steaming", "boiler_c": 99.123, "outlet_c": 45.012,
           "heater_pct": 45.2, "pump_ul_min": 300.0, "session_ul": 1234.567,
           "t": 1790000000, "t_ms": 123456700}
    for i in range(4200):
        j.append(rec)
        rec["t_ms"] += 1000
    runs, lost = _assert_nothing_unannounced(j)
    assert lost and lost[0][0] == 1 and runs[-1][1] == j.next_seq() - 1
    st = os.statvfs(j.dir)
    assert journal.RESERVE_BLOCKS // 2 <= st[3] <= st[2], st
    # The rest of the firmware still finds room: a ledger-sized file can be written.
    with open(b.data_dir + "/probe", "wb") as f:
        f.write(bytes(16 * 1024))
    os.remove(b.data_dir + "/probe")
