"""The session log on the sim board's littlefs flash, including power cuts mid-write."""
import os

from flash import PowerCut
from fw import journal
import simkit


def _fresh():
    b = simkit.board(simkit.scenario())
    return b, journal.Journal(b.data_dir)


def test_append_read_and_numbering_survive_a_remount():
    b, j = _fresh()
    seqs = [j.append({"event": "sample", "i": i}) for i in range(10)]
    assert seqs == list(range(1, 11))
    assert [r["i"] for _, r in j.read(4, 3)] == [3, 4, 5]
    b.mount_flash()                       # a reboot: RAM gone, flash kept
    j2 = journal.Journal(b.data_dir)
    assert j2.next_seq() == 11
    assert [s for s, _ in j2.read(1, 100)] == seqs


def test_only_acknowledged_segments_are_compacted():
    b, j = _fresh()
    for i in range(600):                  # three segments of 256
        j.append({"i": i})
    assert len(j.segments) == 3
    j.ack(300)                            # into the second segment
    assert len(j.segments) == 2           # the first is wholly acknowledged
    assert j.read(1, 1)[0][0] == 257      # unacknowledged records are all still there
    assert j.first_seq() == 301
    b.mount_flash()
    j2 = journal.Journal(b.data_dir)
    assert j2.acked == 300 and j2.first_seq() == 301 and j2.next_seq() == 601


def test_full_journal_drops_oldest_and_says_so():
    b, j = _fresh()
    for i in range(journal.MAX_RECORDS + 5):
        j.append({"i": i})
    recs = j.read(1, 10)
    assert recs[0][0] == journal.SEG_RECORDS + 1   # the oldest segment went
    overflow = []
    seq = 1
    while True:
        chunk = j.read(seq, 64)           # as the host syncs: a bounded batch at a time
        if not chunk:
            break
        overflow += [r for _, r in chunk if r.get("event") == "journal_overflow"]
        seq = chunk[-1][0] + 1
    assert seq == j.next_seq()
    assert overflow == [{"event": "journal_overflow", "lost_from": 1,
                         "lost_to": journal.SEG_RECORDS}]


def test_power_cut_at_every_write_of_an_append_loses_nothing_committed():
    cut_at = 1
    while True:
        b, j = _fresh()
        committed = [j.append({"i": i}) for i in range(5)]
        b.flash.cut_at_write(cut_at)
        in_flight = None
        try:
            in_flight = j.next_seq()
            j.append({"i": 5})
            finished = True
        except PowerCut:
            finished = False
        b.flash.cut_at = 0                # an append shorter than the cut: disarm
        b.mount_flash()                   # must mount after any cut
        j2 = journal.Journal(b.data_dir)
        got = [s for s, _ in j2.read(1, 100)]
        assert got[:5] == committed, (cut_at, got)
        assert got[5:] in ([], [in_flight]), (cut_at, got)
        assert j2.next_seq() == got[-1] + 1
        # Numbering goes on after the last record that made it: no reuse, no gap.
        assert j2.append({"i": 6}) == got[-1] + 1
        if finished:
            break
        cut_at += 1
    assert cut_at > 1                     # some cut really landed inside the append


def test_the_journal_has_an_identity_made_with_it_and_kept_on_flash():
    b, j = _fresh()
    ident = j.journal_id
    assert isinstance(ident, bytes) and len(ident) == journal.ID_BYTES
    j.append({"i": 0})
    b.mount_flash()
    assert journal.Journal(b.data_dir).journal_id == ident       # a reboot keeps it
    # A journal written before identities were kept gets one, its records kept.
    os.remove(b.data_dir + "/journal/" + journal.ID_FILE)
    j3 = journal.Journal(b.data_dir)
    assert len(j3.journal_id) == journal.ID_BYTES and j3.journal_id != ident
    assert [s for s, _ in j3.read(1, 10)] == [1]
    assert journal.Journal(b.data_dir).journal_id == j3.journal_id
    # A new journal (another steamer, or this one's flash reformatted) has its own.
    assert _fresh()[1].journal_id not in (ident, j3.journal_id)


def test_a_power_cut_while_the_journal_is_made_leaves_one_identity():
    cut_at = 1
    while True:
        b = simkit.board(simkit.scenario())
        b.flash.cut_at_write(cut_at)
        try:
            journal.Journal(b.data_dir)
            finished = True
        except PowerCut:
            finished = False
        b.flash.cut_at = 0
        b.mount_flash()
        ident = journal.Journal(b.data_dir).journal_id
        assert len(ident) == journal.ID_BYTES, cut_at
        b.mount_flash()
        assert journal.Journal(b.data_dir).journal_id == ident, cut_at
        if finished:
            break
        cut_at += 1
    assert cut_at > 1
