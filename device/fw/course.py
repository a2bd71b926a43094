"""What the device keeps of courses (podproto profile format 2), for fw.session's start
refusals: per podlet type, when its last session started on the limit clock (fw.ledger),
and the profile version whose warnings a paired host acknowledged. Used by fw.app only.

One record of fw.copies (two hashed, counted copies), a line per entry:

    s <podlet_type> <limit-clock s of its last session start>
    a <podlet_type> <profile version acknowledged>
    s * <limit-clock s>      in doubt: every type's last start is at least this

A start is written before the ledger's (fw.session), so a power cut between the two
can only make the next session wait longer. A copy in doubt, or none valid, is taken
as every type having started at the ledger's floor (the latest a lost start can be)
and no acknowledgement held (the user acknowledges again); that is written at once.
"""
from fw import copies

_ANY = -1


class Course:
    def __init__(self, data_dir, floor_s):
        self.copies = copies.Copies(data_dir, "course")
        self.starts = {}         # podlet_type (or _ANY) -> limit-clock s
        self.acks = {}           # podlet_type -> version acknowledged
        self.problem = None      # why the record on flash was not all taken
        try:
            i = self.copies.newest()
        except copies.RecordError as e:
            self.problem = str(e)
            i = -1
        if i >= 0 and self.copies.doubt:
            self.problem = self.copies.doubt
        elif i >= 0:
            try:
                self._parse(self.copies.lines(i))
            except ValueError:
                self.problem = "course unreadable"
        if self.problem is not None:
            self.starts = {_ANY: floor_s}
            self.acks = {}
            self._write()

    def _parse(self, lines):
        for line in lines:
            kind, ptype, value = line.split()
            t = _ANY if ptype == b"*" else int(ptype)
            if kind == b"s":
                self.starts[t] = int(value)
            elif kind == b"a" and t != _ANY:
                self.acks[t] = int(value)
            else:
                raise ValueError

    def _write(self):
        with self.copies.writer() as f:
            for t in self.starts:
                f.write("s %s %d\n" % ("*" if t == _ANY else str(t), self.starts[t]))
            for t in self.acks:
                f.write("a %d %d\n" % (t, self.acks[t]))

    def last_start_s(self, ptype):
        """Limit-clock s of the last session start of ptype's course, or None."""
        got = self.starts.get(ptype)
        floor = self.starts.get(_ANY)
        if floor is not None and (got is None or floor > got):
            return floor
        return got

    def started(self, ptype, now_s):
        """A session of ptype's course starts at now_s: on flash when this returns."""
        self.starts[ptype] = now_s
        self._write()

    def refusal(self, prof, now_s):
        """Why a session of v2 profile prof may not start at now_s on the limit clock,
        or None: its warnings not acknowledged for this version, or its course's minimum
        spacing since the type's last start not passed (as min_interval_s, the limit
        clock's whole seconds make it "more than")."""
        ptype = prof["podlet_type"]
        if prof["acknowledge"] and self.acks.get(ptype) != prof["version"]:
            return "not_acknowledged"
        spacing = prof["min_spacing_s"]
        last = self.last_start_s(ptype)
        if spacing and last is not None and now_s - last <= spacing:
            return "course_spacing"
        return None

    def acknowledge(self, prof, arg, emit):
        """A paired host acknowledged the warnings of profile arg = (podlet_type,
        version, host id hex): kept on flash only for the profile installed for that
        type (prof), at that version; emit gets the decision (fw.app: the journal and
        the audit log)."""
        ptype, version, host = arg
        if prof is None:
            emit({"event": "command_rejected", "reason": "not_found"})
        elif prof["version"] != version:
            emit({"event": "command_rejected", "reason": "stale_version"})
        else:
            if self.acks.get(ptype) != version:
                self.acks[ptype] = version
                self._write()
            emit({"event": "warnings_acknowledged", "podlet_type": ptype,
                  "version": version, "host": host})
