"""The host's session store: the device's log records kept exactly once in SQLite, and
the sessions and plot samples derived from them.

    from steamer.store import Store
    with Store.open() as store:                  # platformdirs.user_data_dir("steamer")
        result = store.ingest("c0ffee-01", records)
        ack = store.last_seq("c0ffee-01")        # acknowledge this, ask for ack + 1 next
        for s in store.sessions():
            print(s.id, s.profile, s.dose_ul, s.end_reason)

Records. A record is a dict ``{"seq": int, "kind": str, "payload": dict}`` (a
``"device_id"`` key, if present, must name the device being ingested). ``seq`` is the
device's log sequence number: it identifies the record, so a record seen twice is kept
once. Payload shapes the derivation reads (extra keys are kept and ignored; keys marked
``?`` may be missing or null):

    session_started  {podlet: str, podlet_type: int, target_c: number,
                      profile?: str, version?: int,      # the profile the session runs
                      t?: number,                        # device clock, epoch s (null: unset)
                      t_ms?: int}                        # device uptime
    sample           {t_ms: int,                         # device uptime
                      boiler_c?, outlet_c?, heater_pct?, pump_ul_min?: number,
                      session_ul: number}                # dose delivered so far
    session_ended    {reason: str, session_ul: number, t?: number, t_ms?: int}

Any other kind is stored raw and ignored by the derivation. A record of a known kind
that does not have its shape is refused (RecordError) with the whole batch.

Derivation, in seq order per device: session_started opens a session (one still open is
closed as "missing_end"), samples attach to the open session, session_ended closes it;
samples and ends outside a session are ignored, and a boot closes a session still open
as "restarted" (the firmware boots cold: a power cut or a reset ended it). So every
session_started record is one session, identified by (device, its seq); its `id` never
changes once given.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import sqlite3
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

from steamer.inputs import InputTooLarge, open_input, size_text

# Env var naming the database when no path is given (tests, several profiles of use).
DB_ENV = "STEAMER_DB"
DB_FILE = "sessions.sqlite3"

KIND_STARTED = "session_started"
KIND_SAMPLE = "sample"
KIND_ENDED = "session_ended"
KIND_TRACE_IMPORTED = "trace_imported"
KIND_BOOT = "boot"
_DERIVED_KINDS = (KIND_STARTED, KIND_SAMPLE, KIND_ENDED, KIND_BOOT)

# End reason of a session whose session_ended never came (a later session_started did).
END_MISSING = "missing_end"
# End reason of a session a boot came in (a power cut or a reset ended it).
END_RESTARTED = "restarted"
# What each end reason means to a person; the firmware's END_NAMES plus the host's own.
END_REASONS = {
    "completed": "completed",
    "max_session": "full dose delivered",
    "stopped": "stopped",
    "podlet_removed": "podlet removed",
    "fault": "fault",
    "podlet_empty": "podlet empty",
    "max_day": "today's dose limit reached",
    "podlet_changed": "podlet swapped",
    "podlet_unreadable": "podlet unreadable",
    "power_loss": "power cut",
    "watchdog": "watchdog reset",
    "reset": "steamer reset",
    END_MISSING: "no end record",
    END_RESTARTED: "the steamer restarted (power cut or reset)",
}

# A trace sample is taken every this many ms of a session's steps.
TRACE_SAMPLE_MS = 1000
# The largest trace imported (the longest scenario, a day, writes about 250 MB; it is
# read a line at a time) and the longest line of one (a step is about 300 bytes).
TRACE_MAX_BYTES = 1 << 30
TRACE_LINE_MAX_BYTES = 64 << 10

# What a stored payload may hold, so that every read can show what was stored: numbers
# within +-NUM_MAX (exact in JSON, within SQLite's integers), nesting up to DEPTH_MAX,
# text that is Unicode (no lone surrogates). The device clock `t` is epoch s within
# its wire range (podproto.logevents: u32), uptime `t_ms` at least 0.
NUM_MAX = 2**53
DEPTH_MAX = 8
CLOCK_MAX_S = 0xFFFFFFFF


class StoreError(Exception):
    """The store cannot be used; str() is one line for a person."""


class StoreTooNew(StoreError):
    """The database was written by a newer program (its schema version is unknown here)."""


class RecordError(StoreError):
    """A record in a batch is malformed; the batch was not applied."""

    def __init__(self, device_id: str, seq: Any, message: str):
        super().__init__(f"device {device_id!r} record seq {seq}: {message}")
        self.device_id = device_id
        self.seq = seq
        self.detail = message


class TraceError(StoreError):
    """A simulator trace cannot be imported; names the file and line."""

    def __init__(self, path: str | os.PathLike, line: int | None, message: str):
        where = f"{os.fspath(path)} line {line}" if line else os.fspath(path)
        super().__init__(f"{where}: {message}")
        self.line = line


@dataclass(frozen=True)
class IngestResult:
    new: int                # records stored by this call
    duplicate: int          # records already stored (or repeated in the batch): ignored
    last_seq: int | None    # the device's acknowledged watermark after the call
    conflicts: int = 0      # duplicates whose kind or payload differ from the stored one


@dataclass(frozen=True)
class Device:
    id: str
    name: str | None
    address: str | None
    first_seen: str
    last_seq: int | None
    journal_id: str | None = None   # hex; the steamer's journal whose records these are


@dataclass(frozen=True)
class JournalCursor:
    device_id: str              # the records of this journal are the store's under it
    # When the journal is new to its address: the id of the one synced there before
    # ("" for a cursor from before journal ids were kept). None otherwise.
    previous: str | None


@dataclass(frozen=True)
class Session:
    id: int
    device_id: str
    podlet: str | None
    podlet_type: int | None
    profile: str | None
    profile_version: int | None
    target_c: float | None
    start_epoch_s: float | None   # device clock; None when it was not set
    end_epoch_s: float | None
    duration_ms: int | None
    end_reason: str | None        # None while the session is open
    dose_ul: float
    samples: int
    start_seq: int
    end_seq: int | None           # last seq that belongs to the session; None while open


@dataclass(frozen=True)
class KnownProfile:
    """A signed profile this computer has met (installed through it, or opened)."""
    sha256: str                   # hex, of `data`: what the steamer's profile list carries
    podlet_type: int
    version: int
    name: str
    data: bytes                   # the signed profile, as pushed
    added_at: str                 # ISO 8601 UTC


@dataclass(frozen=True)
class Acknowledgement:
    """The user acknowledged the warnings of a podlet type's profile version."""
    podlet_type: int
    version: int
    profile: str                  # the profile's name
    address: str | None           # the steamer it was sent to; None: none named
    epoch_s: float                # when (this computer's clock)


@dataclass(frozen=True)
class Sample:
    t_ms: int                     # since the session started
    boiler_c: float | None
    outlet_c: float | None
    heater_pct: float | None
    pump_ul_min: float | None
    dose_ul: float


@dataclass(frozen=True)
class TraceImport:
    device_id: str
    records: int                  # records stored
    first_seq: int | None
    last_seq: int | None
    session_ids: list[int]
    already_imported: bool        # the same trace was imported for this device before


def default_path() -> Path:
    env = os.environ.get(DB_ENV)
    if env:
        return Path(env)
    import platformdirs
    return Path(platformdirs.user_data_dir("steamer", appauthor=False)) / DB_FILE


# --- schema -------------------------------------------------------------------------

def _v1(db: sqlite3.Connection) -> None:
    # Not executescript(): it commits first, and a migration must be one transaction.
    _script(db, """
        CREATE TABLE devices (
            id TEXT PRIMARY KEY, name TEXT, address TEXT, first_seen TEXT NOT NULL);
        CREATE TABLE log_records (
            device_id TEXT NOT NULL REFERENCES devices(id),
            seq INTEGER NOT NULL, received_at TEXT NOT NULL,
            kind TEXT NOT NULL, payload TEXT NOT NULL,
            PRIMARY KEY (device_id, seq)) WITHOUT ROWID;
        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            device_id TEXT NOT NULL REFERENCES devices(id),
            start_seq INTEGER NOT NULL, end_seq INTEGER,
            podlet TEXT, podlet_type INTEGER, profile TEXT, profile_version INTEGER,
            target_c REAL, start_epoch_s REAL, end_epoch_s REAL, duration_ms INTEGER,
            end_reason TEXT, dose_ul REAL NOT NULL DEFAULT 0,
            samples INTEGER NOT NULL DEFAULT 0,
            UNIQUE (device_id, start_seq));
        CREATE TABLE samples (
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL, t_ms INTEGER NOT NULL,
            boiler_c REAL, outlet_c REAL, heater_pct REAL, pump_ul_min REAL,
            dose_ul REAL NOT NULL,
            PRIMARY KEY (session_id, seq)) WITHOUT ROWID;
    """)


def _script(db: sqlite3.Connection, sql: str) -> None:
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


def _v2(db: sqlite3.Connection) -> None:
    # The acknowledged watermark is kept rather than recomputed so that it can pass a gap
    # the device can never fill (records it dropped before we pulled them: log_first).
    db.execute("ALTER TABLE devices ADD COLUMN last_seq INTEGER")
    for (device_id,) in db.execute("SELECT id FROM devices").fetchall():
        db.execute("UPDATE devices SET last_seq = ? WHERE id = ?",
                   (_advance(db, device_id, None), device_id))


def _v3(db: sqlite3.Connection) -> None:
    # A steamer's journal has an identity: a cursor counts in one journal, and a journal
    # made anew at an address (a reformatted flash) gets a device row of its own. Rows
    # from before have none (NULL) until sync_cursor finds which journal they counted.
    db.execute("ALTER TABLE devices ADD COLUMN journal_id TEXT")


def _v4(db: sqlite3.Connection) -> None:
    # Courses (profile format 2): the signed profiles this computer has met (the steamer
    # lists only their sha256, so the course and warnings are read from these), and the
    # warnings the user acknowledged: which podlet type and version, to which steamer
    # (its address; NULL: none named), and when.
    _script(db, """
        CREATE TABLE profiles (
            sha256 TEXT PRIMARY KEY, podlet_type INTEGER NOT NULL,
            version INTEGER NOT NULL, name TEXT NOT NULL, data BLOB NOT NULL,
            added_at TEXT NOT NULL);
        CREATE TABLE acknowledgements (
            id INTEGER PRIMARY KEY, podlet_type INTEGER NOT NULL,
            version INTEGER NOT NULL, profile TEXT NOT NULL, address TEXT,
            epoch_s REAL NOT NULL);
    """)


# MIGRATIONS[i] takes the schema from version i to i + 1, inside one transaction.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2, _v3, _v4]
SCHEMA_VERSION = len(MIGRATIONS)


def _advance(db: sqlite3.Connection, device_id: str, watermark: int | None) -> int | None:
    """The end of the run of consecutive stored seqs from watermark + 1 (from the lowest
    stored seq when there is no watermark yet)."""
    if watermark is None:
        (lowest,) = db.execute("SELECT MIN(seq) FROM log_records WHERE device_id = ?",
                               (device_id,)).fetchone()
        if lowest is None:
            return None
        top: int = lowest - 1
    else:
        top = watermark
    for (seq,) in db.execute("SELECT seq FROM log_records WHERE device_id = ? AND seq > ? "
                             "ORDER BY seq", (device_id, top)):
        if seq != top + 1:
            break
        top = seq
    return top


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- validation ---------------------------------------------------------------------

def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(v) and -NUM_MAX <= v <= NUM_MAX)


def _is_clock(v: Any) -> bool:
    return _is_num(v) and 0 <= v <= CLOCK_MAX_S


def _is_uptime(v: Any) -> bool:
    return _is_int(v) and 0 <= v <= NUM_MAX


def _shown(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _json_problem(v: Any, depth: int = 0) -> str | None:
    """What in a payload a read could not show (see NUM_MAX), else None."""
    if depth > DEPTH_MAX:
        return f"nested deeper than {DEPTH_MAX}"
    if isinstance(v, dict):
        for key, item in v.items():
            problem = (f"key {_shown(key)} is not text" if not isinstance(key, str) else
                       _json_problem(key, depth + 1) or _json_problem(item, depth + 1))
            if problem:
                return problem
    elif isinstance(v, list):
        for item in v:
            problem = _json_problem(item, depth + 1)
            if problem:
                return problem
    elif isinstance(v, str):
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            return f"text {_shown(v)} is not Unicode"
    elif isinstance(v, float) and not math.isfinite(v):
        return f"{_shown(v)} is not JSON (not a finite number)"
    elif isinstance(v, (int, float)) and not isinstance(v, bool) and not _is_num(v):
        return f"number {_shown(v)} is out of range (+-2**53)"
    return None


_CLOCK = f"epoch seconds 0..{CLOCK_MAX_S}"
_UPTIME = f"an integer 0..{NUM_MAX}"
# kind -> ((key, check, required), ...); a missing key or null passes when not required.
_SHAPES: dict[str, tuple[tuple[str, Callable[[Any], bool], str, bool], ...]] = {
    KIND_STARTED: (("podlet", lambda v: isinstance(v, str), "a string", True),
                   ("podlet_type", _is_int, "an integer", True),
                   ("target_c", _is_num, "a number", True),
                   ("profile", lambda v: isinstance(v, str), "a string", False),
                   ("version", _is_int, "an integer", False),
                   ("t", _is_clock, _CLOCK, False),
                   ("t_ms", _is_uptime, _UPTIME, False)),
    KIND_SAMPLE: (("t_ms", _is_uptime, _UPTIME, True),
                  ("session_ul", _is_num, "a number", True),
                  ("boiler_c", _is_num, "a number", False),
                  ("outlet_c", _is_num, "a number", False),
                  ("heater_pct", _is_num, "a number", False),
                  ("pump_ul_min", _is_num, "a number", False)),
    KIND_ENDED: (("reason", lambda v: isinstance(v, str) and v != "", "a reason", True),
                 ("session_ul", _is_num, "a number", True),
                 ("t", _is_clock, _CLOCK, False),
                 ("t_ms", _is_uptime, _UPTIME, False)),
}


def _check(device_id: str, rec: Any) -> tuple[int, str, str]:
    """(seq, kind, payload JSON) of a well-formed record, else RecordError."""
    if not isinstance(rec, dict):
        raise RecordError(device_id, "?", f"a record is a dict, not {type(rec).__name__}")
    seq = rec.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise RecordError(device_id, seq, "seq must be an integer >= 0")
    if "device_id" in rec and rec["device_id"] != device_id:
        raise RecordError(device_id, seq, f"record is from device {rec['device_id']!r}")
    kind = rec.get("kind")
    if not isinstance(kind, str) or not kind:
        raise RecordError(device_id, seq, "kind must be a non-empty string")
    problem = _json_problem(kind)
    if problem:
        raise RecordError(device_id, seq, f"kind: {problem}")
    payload = rec.get("payload")
    if not isinstance(payload, dict):
        raise RecordError(device_id, seq, "payload must be a dict")
    for key, ok, what, required in _SHAPES.get(kind, ()):
        value = payload.get(key)
        if value is None:
            if required:
                raise RecordError(device_id, seq, f"{kind}: {key} is required")
        elif not ok(value):
            raise RecordError(device_id, seq, f"{kind}: {key} must be {what}, not "
                                              f"{_shown(value)}")
    problem = _json_problem(payload)
    if problem:
        raise RecordError(device_id, seq, f"{kind}: {problem}")
    try:
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise RecordError(device_id, seq, f"payload is not JSON: {e}") from None
    return seq, kind, text


# --- derivation ---------------------------------------------------------------------

@dataclass
class _Derived:
    start_seq: int
    start: dict
    end_seq: int | None = None
    end: dict | None = None
    end_reason: str | None = None
    samples: list[tuple[int, dict]] | None = None
    ended_at_boot: bool = False   # its end came from the boot after a cut


def _derive(rows: Iterable[tuple[int, str, dict]]) -> list[_Derived]:
    """Sessions from (seq, kind, payload) in seq order, starting with none open."""
    out: list[_Derived] = []
    cur: _Derived | None = None
    # The session a boot cut short: the firmware ends it after its boot records
    # (reason power_loss / watchdog / reset, with the dose its ledger counted); until that
    # end comes (older firmware writes none) it reads as "restarted".
    cut: _Derived | None = None
    for seq, kind, payload in rows:
        if kind == KIND_STARTED:
            if cur is not None:
                cur.end_seq, cur.end_reason = seq - 1, END_MISSING
            cur, cut = _Derived(seq, payload, samples=[]), None
            out.append(cur)
        elif cur is None:
            if kind == KIND_ENDED and cut is not None:
                cut.end_seq, cut.end, cut.end_reason = seq, payload, payload["reason"]
                cut.ended_at_boot, cut = True, None
            continue
        elif kind == KIND_SAMPLE:
            assert cur.samples is not None
            cur.samples.append((seq, payload))
        elif kind == KIND_ENDED:
            cur.end_seq, cur.end, cur.end_reason = seq, payload, payload["reason"]
            cur = None
        elif kind == KIND_BOOT:
            cur.end_seq, cur.end_reason = seq - 1, END_RESTARTED
            cur, cut = None, cur
    return out


def _session_row(d: _Derived) -> dict:
    samples = d.samples or []
    t0_ms = d.start.get("t_ms")
    if t0_ms is None and samples:
        t0_ms = samples[0][1]["t_ms"]
    end = d.end or {}
    if d.end is not None:
        dose_ul = float(end["session_ul"])
    else:
        dose_ul = float(samples[-1][1]["session_ul"]) if samples else 0.0
    duration_ms = None
    # An end on an uptime before the session's own start or last sample was recorded by
    # the next boot (a session a power cut or watchdog reset cut short).
    # Its length is then its samples' (the end's time is the new boot's, after the cut).
    end_ms = None if d.ended_at_boot else end.get("t_ms")
    if end_ms is not None and t0_ms is not None and (
            end_ms < t0_ms or (samples and samples[-1][1]["t_ms"] > end_ms)):
        end_ms = None
    if t0_ms is not None and end_ms is not None:
        duration_ms = end_ms - t0_ms
    elif t0_ms is not None and samples:
        duration_ms = samples[-1][1]["t_ms"] - t0_ms
    elif d.start.get("t") is not None and end.get("t") is not None:
        duration_ms = round((end["t"] - d.start["t"]) * 1000)
    return {
        "start_seq": d.start_seq, "end_seq": d.end_seq,
        "podlet": d.start.get("podlet"), "podlet_type": d.start.get("podlet_type"),
        "profile": d.start.get("profile"), "profile_version": d.start.get("version"),
        "target_c": d.start.get("target_c"),
        "start_epoch_s": d.start.get("t"), "end_epoch_s": end.get("t"),
        "duration_ms": duration_ms, "end_reason": d.end_reason, "dose_ul": dose_ul,
        "samples": len(samples), "t0_ms": t0_ms or 0,
    }


# --- the store ----------------------------------------------------------------------

class Store:
    """One SQLite file. Not for sharing between threads; several processes may open it."""

    def __init__(self, db: sqlite3.Connection, path: Path, created: bool = False):
        self._db = db
        self.path = path
        self.created = created      # open() made the file

    @classmethod
    def open(cls, path: str | os.PathLike | None = None, *, create: bool = True,
             readonly: bool = False) -> Store:
        """Opens (creating it and its folder if `create`) and migrates the database at
        `path` (default: default_path()). Raises StoreTooNew for a database of a newer
        schema, StoreError when it cannot be opened or is not a database.

        `readonly` opens it for reading only (it may be on read-only media): nothing is
        created or written, except that a database of an older schema is upgraded
        first when it can be; a missing one reads as empty when `create`."""
        p = Path(path) if path is not None else default_path()
        if readonly:
            return cls._open_readonly(p, create)
        created = not p.exists()
        if created:
            if not create:
                raise StoreError(f"no database at {p}")
            try:
                p.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise StoreError(f"cannot create {p.parent}: {e.strerror or e}") from None
        try:
            db = sqlite3.connect(p, timeout=10.0, isolation_level=None)
        except sqlite3.Error as e:
            raise StoreError(f"cannot open {p}: {e}") from None
        try:
            store = cls(db, p, created)
            store._setup()
            return store
        except sqlite3.DatabaseError as e:
            db.close()
            raise StoreError(f"cannot use {p}: {e}") from None
        except BaseException:
            db.close()
            raise

    @classmethod
    def _open_readonly(cls, p: Path, empty_if_missing: bool) -> Store:
        if not p.exists():
            if not empty_if_missing:
                raise StoreError(f"no database at {p}")
            db = sqlite3.connect(":memory:", isolation_level=None)
            for migrate in MIGRATIONS:
                migrate(db)
            return cls(db, p)
        store = cls._connect_readonly(p)
        try:
            version = store._version()
            store._refuse_newer(version)
            if version == 0:        # no steamer ever wrote it
                if store._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                    raise StoreError(f"{p} is not a session database (an SQLite file of "
                                     "something else)")
                raise StoreError(f"{p} is empty, not a session database (a command that "
                                 "writes, such as steamer sync, makes one there)")
            if version < SCHEMA_VERSION:
                store.close()
                try:
                    cls.open(p, create=False).close()     # the upgrade: the one write
                except StoreError as e:
                    raise StoreError(f"{p} has schema version {version}, older than this "
                                     f"program's {SCHEMA_VERSION}, and cannot be upgraded "
                                     f"({e})") from None
                store = cls._connect_readonly(p)
            store._db.execute("PRAGMA foreign_keys = ON")
            return store
        except sqlite3.DatabaseError as e:
            store.close()
            raise StoreError(f"cannot use {p}: {e}") from None
        except BaseException:
            store.close()
            raise

    @classmethod
    def _connect_readonly(cls, p: Path) -> Store:
        uri = p.absolute().as_uri() + "?mode=ro"
        try:
            db = sqlite3.connect(uri, uri=True, timeout=10.0, isolation_level=None)
            try:
                db.execute("PRAGMA user_version").fetchone()
            except sqlite3.OperationalError as e:
                db.close()
                # A WAL database in a folder it cannot write (read-only media) cannot
                # have its -shm made: without a -wal there is no writer, and all of it
                # is in the file.
                if e.sqlite_errorname != "SQLITE_CANTOPEN" or Path(f"{p}-wal").exists():
                    raise
                db = sqlite3.connect(uri + "&immutable=1", uri=True, isolation_level=None)
                db.execute("PRAGMA user_version").fetchone()
        except sqlite3.Error as e:
            raise StoreError(f"cannot use {p}: {e}") from None
        return cls(db, p)

    def _setup(self) -> None:
        self._refuse_newer(self._version())  # before anything writes to the file
        self._db.execute("PRAGMA foreign_keys = ON")
        if self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
            raise StoreError(f"{self.path}: cannot switch to WAL mode")
        # Records are acknowledged to the device (which may then drop them) right after
        # the commit, so the commit must survive a power cut, not just a crash.
        self._db.execute("PRAGMA synchronous = FULL")
        if self._version() < SCHEMA_VERSION:
            with self._write():
                version = self._version()  # another process may have migrated meanwhile
                self._refuse_newer(version)
                for migrate in MIGRATIONS[version:]:
                    migrate(self._db)
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreTooNew(f"{self.path} has schema version {version}, newer than this "
                              f"program's {SCHEMA_VERSION}: upgrade steamer to use it")

    @property
    def schema_version(self) -> int:
        return self._version()

    def integrity(self) -> str:
        """SQLite's integrity check of the history file: "ok" when it is sound."""
        return self._db.execute("PRAGMA integrity_check").fetchone()[0]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front: no deadlock upgrading a read later.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # devices

    def add_device(self, device_id: str, name: str | None = None,
                   address: str | None = None) -> None:
        """Records a device, or updates the name and address given."""
        with self._write():
            self._add_device(device_id, name, address)

    def _add_device(self, device_id: str, name: str | None = None,
                    address: str | None = None) -> None:
        self._db.execute(
            "INSERT INTO devices (id, name, address, first_seen) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET name = coalesce(excluded.name, name), "
            "address = coalesce(excluded.address, address)",
            (device_id, name, address, _now_iso()))

    def devices(self) -> list[Device]:
        return [Device(*row) for row in self._db.execute(
            "SELECT id, name, address, first_seen, last_seq, journal_id FROM devices "
            "ORDER BY first_seen, id")]

    def sync_cursor(self, address: str, journal_id: str, *, name: str | None = None,
                    log_next: int | None = None) -> JournalCursor:
        """The device id under which the journal `journal_id` (hex) of the steamer at
        `address` is synced, made on first sight. A cursor from before journal ids (none
        recorded) is taken over by the first journal synced at its address, unless it is
        past that journal's end (`log_next`, Info's): then it counted another one."""
        with self._write():
            db = self._db
            row = db.execute("SELECT id FROM devices WHERE address = ? AND journal_id = ? "
                             "ORDER BY first_seen DESC, rowid DESC", (address, journal_id)
                             ).fetchone()
            if row is not None:
                self._add_device(row[0], name)
                return JournalCursor(row[0], None)
            old = db.execute("SELECT id, last_seq, journal_id FROM devices WHERE address = ? "
                             "ORDER BY first_seen DESC, rowid DESC", (address,)).fetchone()
            if old is not None and old[2] is None and (
                    old[1] is None or log_next is None or old[1] < log_next):
                db.execute("UPDATE devices SET journal_id = ? WHERE id = ?",
                           (journal_id, old[0]))
                self._add_device(old[0], name)
                return JournalCursor(old[0], None)
            taken = db.execute("SELECT 1 FROM devices WHERE id = ?", (address,)).fetchone()
            device_id = f"{address}/{journal_id}" if taken else address
            self._add_device(device_id, name, address)
            db.execute("UPDATE devices SET journal_id = ? WHERE id = ?", (journal_id, device_id))
            return JournalCursor(device_id, None if old is None else old[2] or "")

    # records

    def ingest(self, device_id: str, records: Iterable[dict], *,
               log_first: int | None = None) -> IngestResult:
        """Stores the records not stored yet and updates the sessions, all in one
        transaction: if anything fails (a malformed record: RecordError; the iterable
        raising; the process dying) nothing of this call is kept.

        `log_first` is the device's oldest retained seq (its info.log_first), so the
        watermark can pass seqs the device dropped before they were pulled."""
        with self._write():
            return self._ingest(device_id, records, log_first)

    def _ingest(self, device_id: str, records: Iterable[dict],
                log_first: int | None) -> IngestResult:
        db = self._db
        self._add_device(device_id)
        received_at = _now_iso()
        new = duplicate = conflicts = 0
        min_new: int | None = None
        for rec in records:
            seq, kind, text = _check(device_id, rec)
            cur = db.execute("INSERT OR IGNORE INTO log_records (device_id, seq, "
                             "received_at, kind, payload) VALUES (?, ?, ?, ?, ?)",
                             (device_id, seq, received_at, kind, text))
            if cur.rowcount == 1:
                new += 1
                if kind in _DERIVED_KINDS and (min_new is None or seq < min_new):
                    min_new = seq
            else:
                duplicate += 1
                if db.execute("SELECT kind, payload FROM log_records WHERE device_id = ? "
                              "AND seq = ?", (device_id, seq)).fetchone() != (kind, text):
                    conflicts += 1
        if min_new is not None:
            self._rederive(device_id, min_new)
        (watermark,) = db.execute("SELECT last_seq FROM devices WHERE id = ?",
                                  (device_id,)).fetchone()
        if log_first is not None and (watermark is None or watermark < log_first - 1):
            watermark = log_first - 1
        watermark = _advance(db, device_id, watermark)
        db.execute("UPDATE devices SET last_seq = ? WHERE id = ?", (watermark, device_id))
        return IngestResult(new, duplicate, watermark, conflicts)

    def _rederive(self, device_id: str, min_new: int) -> None:
        """Derives again every session a record at seq >= min_new can change: those not
        closed before it. Sessions closed before it keep their rows untouched."""
        db = self._db
        affected = dict(db.execute(
            "SELECT start_seq, id FROM sessions WHERE device_id = ? AND "
            "(end_seq IS NULL OR end_seq >= ?)", (device_id, min_new)).fetchall())
        # A session a boot cut short ("restarted", closed before the boot) still takes
        # the end the firmware writes after its boot records, until the next session
        # starts: the last session begun before min_new, if a boot cut it, may change.
        last = db.execute(
            "SELECT start_seq, id, end_reason FROM sessions WHERE device_id = ? AND "
            "start_seq < ? ORDER BY start_seq DESC LIMIT 1", (device_id, min_new)).fetchone()
        if last is not None and last[2] == END_RESTARTED:
            affected[last[0]] = last[1]
        from_seq = min([min_new, *affected])
        rows = ((seq, kind, json.loads(text)) for seq, kind, text in db.execute(
            "SELECT seq, kind, payload FROM log_records WHERE device_id = ? AND seq >= ? "
            f"AND kind IN ({', '.join('?' * len(_DERIVED_KINDS))}) ORDER BY seq",
            (device_id, from_seq, *_DERIVED_KINDS)))
        derived = _derive(list(rows))
        keep = {d.start_seq for d in derived}
        for start_seq, session_id in affected.items():
            if start_seq not in keep:  # cannot happen: a start always opens a session
                db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        for d in derived:
            row = _session_row(d)
            t0_ms = row.pop("t0_ms")
            cols = list(row)
            (session_id,) = db.execute(
                f"INSERT INTO sessions (device_id, {', '.join(cols)}) "
                f"VALUES (?, {', '.join('?' * len(cols))}) "
                f"ON CONFLICT (device_id, start_seq) DO UPDATE SET "
                f"{', '.join(f'{c} = excluded.{c}' for c in cols)} RETURNING id",
                (device_id, *row.values())).fetchone()
            db.execute("DELETE FROM samples WHERE session_id = ?", (session_id,))
            db.executemany(
                "INSERT INTO samples (session_id, seq, t_ms, boiler_c, outlet_c, "
                "heater_pct, pump_ul_min, dose_ul) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(session_id, seq, p["t_ms"] - t0_ms, p.get("boiler_c"), p.get("outlet_c"),
                  p.get("heater_pct"), p.get("pump_ul_min"), p["session_ul"])
                 for seq, p in d.samples or []])

    def last_seq(self, device_id: str) -> int | None:
        """The highest seq up to which every record of the device is stored (or was
        dropped by the device, see ingest's log_first): acknowledge it, ask for the next.
        None when nothing is stored."""
        row = self._db.execute("SELECT last_seq FROM devices WHERE id = ?",
                               (device_id,)).fetchone()
        return None if row is None else row[0]

    def records(self, device_id: str) -> list[dict]:
        """The device's raw records in seq order, as ingested."""
        return [{"seq": seq, "kind": kind, "payload": json.loads(text)}
                for seq, kind, text in self._db.execute(
                    "SELECT seq, kind, payload FROM log_records WHERE device_id = ? "
                    "ORDER BY seq", (device_id,))]

    # sessions

    _SESSION_COLS = ("id, device_id, podlet, podlet_type, profile, profile_version, "
                     "target_c, start_epoch_s, end_epoch_s, duration_ms, end_reason, "
                     "dose_ul, samples, start_seq, end_seq")

    def sessions(self, device_id: str | None = None) -> list[Session]:
        """Every session (of one device), oldest first."""
        where, args = ("WHERE device_id = ?", (device_id,)) if device_id else ("", ())
        return [Session(*row) for row in self._db.execute(
            f"SELECT {self._SESSION_COLS} FROM sessions {where} "
            f"ORDER BY start_epoch_s IS NULL, start_epoch_s, device_id, start_seq", args)]

    def session(self, session_id: int) -> Session | None:
        row = self._db.execute(f"SELECT {self._SESSION_COLS} FROM sessions WHERE id = ?",
                               (session_id,)).fetchone()
        return None if row is None else Session(*row)

    def samples(self, session_id: int) -> list[Sample]:
        return [Sample(*row) for row in self._db.execute(
            "SELECT t_ms, boiler_c, outlet_c, heater_pct, pump_ul_min, dose_ul FROM samples "
            "WHERE session_id = ? ORDER BY t_ms, seq", (session_id,))]

    def delete_session(self, session_id: int) -> None:
        """Forgets a closed session: its row, samples and the log records it was derived
        from (the steamer has dropped them once synced, so they do not come back).
        StoreError for an unknown or still open session."""
        s = self.session(session_id)
        if s is None:
            raise StoreError(f"no session {session_id} in {self.path}")
        if s.end_seq is None:
            raise StoreError(f"session {session_id} is still open: it can be deleted once "
                             "it has ended and been synced")
        with self._write() as db:
            db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
            db.execute("DELETE FROM log_records WHERE device_id = ? AND seq BETWEEN ? AND ?",
                       (s.device_id, s.start_seq, s.end_seq))

    def export_csv(self, fileobj: IO[str], session_id: int | None = None) -> int:
        """Writes every session as CSV (one row each; times in UTC ISO 8601), or with
        `session_id` that session's samples. Returns the number of rows written."""
        out = csv.writer(fileobj, lineterminator="\n")
        if session_id is not None:
            rows: list[Any] = self.samples(session_id)
            out.writerow(["t_s", "boiler_c", "outlet_c", "heater_pct", "pump_ul_min",
                          "dose_ul"])
            for s in rows:
                out.writerow([s.t_ms / 1000, s.boiler_c, s.outlet_c, s.heater_pct,
                              s.pump_ul_min, s.dose_ul])
            return len(rows)
        rows = self.sessions()
        names = {d.id: d.name for d in self.devices()}
        out.writerow(["id", "device_id", "device", "start_utc", "end_utc", "duration_s", "podlet",
                      "podlet_type", "profile", "profile_version", "target_c", "end_reason",
                      "dose_ul", "samples"])
        for s in rows:
            out.writerow([s.id, s.device_id, names.get(s.device_id) or s.device_id,
                          iso_utc(s.start_epoch_s), iso_utc(s.end_epoch_s),
                          "" if s.duration_ms is None else s.duration_ms / 1000, s.podlet,
                          s.podlet_type, s.profile, s.profile_version, s.target_c,
                          s.end_reason or "", s.dose_ul, s.samples])
        return len(rows)

    # courses: the profiles met, the warnings acknowledged

    def add_profile(self, data: bytes, podlet_type: int, version: int, name: str) -> KnownProfile:
        """Keeps a signed profile (its bytes and the fields decoded from them) by its
        SHA-256; one already kept stays as it was."""
        digest = hashlib.sha256(data).hexdigest()
        with self._write():
            self._db.execute(
                "INSERT INTO profiles (sha256, podlet_type, version, name, data, added_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING",
                (digest, podlet_type, version, name, bytes(data), _now_iso()))
        known = self.profile(digest)
        assert known is not None
        return known

    def profile(self, sha256: str) -> KnownProfile | None:
        """The kept profile whose signed bytes have this SHA-256 (hex), or None."""
        row = self._db.execute("SELECT sha256, podlet_type, version, name, data, added_at "
                               "FROM profiles WHERE sha256 = ?", (sha256.lower(),)).fetchone()
        return None if row is None else KnownProfile(*row)

    def profiles(self) -> list[KnownProfile]:
        """The kept profiles, by podlet type, newest version first."""
        return [KnownProfile(*row) for row in self._db.execute(
            "SELECT sha256, podlet_type, version, name, data, added_at FROM profiles "
            "ORDER BY podlet_type, version DESC, added_at DESC")]

    def add_acknowledgement(self, podlet_type: int, version: int, profile: str,
                            address: str | None = None,
                            epoch_s: float | None = None) -> Acknowledgement:
        """Records that the user acknowledged the warnings of `profile` (podlet type,
        version), sent to the steamer at `address`, at epoch_s (default: now)."""
        ack = Acknowledgement(podlet_type, version, profile, address,
                              datetime.now(timezone.utc).timestamp() if epoch_s is None
                              else float(epoch_s))
        with self._write():
            self._db.execute("INSERT INTO acknowledgements (podlet_type, version, profile, "
                             "address, epoch_s) VALUES (?, ?, ?, ?, ?)",
                             (ack.podlet_type, ack.version, ack.profile, ack.address,
                              ack.epoch_s))
        return ack

    def acknowledgement(self, podlet_type: int, version: int,
                        address: str | None = None) -> Acknowledgement | None:
        """The newest acknowledgement of this podlet type and version (sent to the
        steamer at `address`, when given), or None."""
        sql = ("SELECT podlet_type, version, profile, address, epoch_s FROM acknowledgements "
               "WHERE podlet_type = ? AND version = ?")
        args: tuple = (podlet_type, version)
        if address is not None:
            sql += " AND address = ?"
            args += (address,)
        row = self._db.execute(sql + " ORDER BY epoch_s DESC, id DESC", args).fetchone()
        return None if row is None else Acknowledgement(*row)

    def acknowledgements(self) -> list[Acknowledgement]:
        """Every acknowledgement recorded, oldest first."""
        return [Acknowledgement(*row) for row in self._db.execute(
            "SELECT podlet_type, version, profile, address, epoch_s FROM acknowledgements "
            "ORDER BY epoch_s, id")]


@dataclass
class DeviceSink:
    """Log sync's sink (steamer.client.LogSink) into a store for one device: each
    batch is ingested in one committed transaction before the steamer is told it may
    drop it, and the sync resumes from the store's watermark."""
    store: Store
    device_id: str
    log_first: int | None = None   # the device's info.log_first (see Store.ingest)
    new: int = 0
    duplicate: int = 0

    def last_seq(self) -> int:
        return self.store.last_seq(self.device_id) or 0

    def add(self, records: list[dict]) -> None:
        result = self.store.ingest(self.device_id, records, log_first=self.log_first)
        self.new += result.new
        self.duplicate += result.duplicate


def iso_utc(epoch_s: float | None) -> str:
    if epoch_s is None:
        return ""
    return datetime.fromtimestamp(epoch_s, timezone.utc).isoformat(
        timespec="seconds").replace("+00:00", "Z")


def session_dict(s: Session) -> dict:
    """A session as JSON-ready data (times also as UTC ISO 8601)."""
    d = asdict(s)
    d["start_utc"] = iso_utc(s.start_epoch_s) or None
    d["end_utc"] = iso_utc(s.end_epoch_s) or None
    return d


# --- simulator traces ---------------------------------------------------------------

def trace_records(trace_path: str | os.PathLike, first_seq: int = 1, *,
                  start_epoch_s: float | None = None,
                  end_epoch_s: float | None = None) -> list[dict]:
    """The log records a device would have sent for a simulator trace (docs: the
    simulator contract): a `trace_imported` record, every decision record as a record
    of its kind, and during each session a sample every TRACE_SAMPLE_MS of steps and at
    its last step (before its end or a power cut). The trace has no clock: the device
    clock reads `start_epoch_s` at t_ms 0, or else `end_epoch_s` at the trace's last
    record; neither gives sessions without a date. Raises TraceError naming the line;
    what it returns, Store.ingest takes and every read can show."""
    path = os.fspath(trace_path)
    try:
        with open_input(path, TRACE_MAX_BYTES, "a trace") as f:
            return _trace_records(f, path, first_seq, start_epoch_s, end_epoch_s)
    except InputTooLarge as e:
        raise TraceError(path, None, e.reason) from None
    except OSError as e:
        raise TraceError(path, None, f"cannot read: {e.strerror or e}") from None


def _trace_records(f: IO[bytes], path: str, first_seq: int, start_epoch_s: float | None,
                   end_epoch_s: float | None) -> list[dict]:
    sha = hashlib.sha256()
    out: list[dict] = [{"seq": first_seq, "kind": KIND_TRACE_IMPORTED, "payload": {
        "file": os.path.basename(path), "sha256": ""}}]
    profiles: dict[int, dict] = {}
    start_ms: int | None = None  # of the open session
    next_sample_ms = 0
    last_step: tuple[int, dict, int] | None = None  # (t_ms, fw, line) of the session's last
    last_sampled_ms: int | None = None
    timed: list[tuple[dict, int, int]] = []     # (payload, t_ms, line) of records with a t

    def add(kind: str, payload: dict) -> None:
        out.append({"seq": first_seq + len(out), "kind": kind, "payload": payload})

    def sample(t_ms: int, fw: dict, line: int) -> None:
        nonlocal last_sampled_ms
        add(KIND_SAMPLE, {"t_ms": t_ms, "boiler_c": fw.get("boiler_c"),
                          "outlet_c": fw.get("outlet_c"), "heater_pct": fw.get("heater_pct"),
                          "pump_ul_min": fw.get("pump_ul_min"),
                          "session_ul": fw.get("session_ul")})
        try:
            _check("trace", out[-1])
        except RecordError as e:
            raise TraceError(path, line, "fw." + e.detail.split(": ", 1)[1]) from None
        last_sampled_ms = t_ms

    steps = 0
    t_ms = 0
    n = 0
    while True:
        raw = f.readline(TRACE_LINE_MAX_BYTES + 1)
        if not raw:
            break
        n += 1
        sha.update(raw)
        if len(raw) > TRACE_LINE_MAX_BYTES:
            raise TraceError(path, n, f"longer than {size_text(TRACE_LINE_MAX_BYTES)}: not a "
                                      "trace record")
        line = raw.decode("utf-8", "replace")
        if not line.strip():
            continue
        rec = _trace_json(path, n, line)
        if not isinstance(rec, dict) or not _is_int(rec.get("t_ms")):
            raise TraceError(path, n, "not a trace record (an object with an integer t_ms)")
        if not _is_uptime(rec["t_ms"]):
            raise TraceError(path, n, f"t_ms {_shown(rec['t_ms'])} is out of range "
                                      f"(0..{NUM_MAX})")
        if rec["t_ms"] < t_ms:
            raise TraceError(path, n, f"t_ms {rec['t_ms']} is before the last record's "
                                      f"{t_ms}: a trace's time never goes back")
        t_ms = rec["t_ms"]
        event = rec.get("event")
        if event is not None:
            if not isinstance(event, str) or not event:
                raise TraceError(path, n, "event must be a non-empty string")
            payload = {k: v for k, v in rec.items() if k != "event"}
            if event == "profile_installed" and _is_int(rec.get("podlet_type")):
                profiles[rec["podlet_type"]] = rec
            elif event == KIND_STARTED:
                podlet_type = rec.get("podlet_type")
                prof = profiles.get(podlet_type, {}) if isinstance(podlet_type, int) else {}
                payload.update(profile=prof.get("name"), version=prof.get("version"), t=None)
                timed.append((payload, t_ms, n))
                start_ms, next_sample_ms, last_step, last_sampled_ms = t_ms, t_ms, None, None
            elif event == KIND_ENDED:
                if start_ms is not None and last_step is not None \
                        and last_step[0] != last_sampled_ms:
                    sample(*last_step)
                payload["t"] = None
                timed.append((payload, t_ms, n))
                start_ms = None
            try:
                _check("trace", {"seq": 0, "kind": event, "payload": payload})
            except RecordError as e:
                raise TraceError(path, n, e.detail) from None
            add(event, payload)
            continue
        fw = rec.get("fw")
        off = rec.get("state") == "off" and fw is None    # the power is cut: no firmware
        if not (isinstance(fw, dict) or off) or "state" not in rec:
            raise TraceError(path, n, "a step record needs state and fw (or an event key)")
        steps += 1
        if start_ms is None:
            continue
        if not isinstance(fw, dict):    # off
            # The session ends with the power (the firmware boots cold): its last step
            # is its last sample, as at a session_ended.
            if last_step is not None and last_step[0] != last_sampled_ms:
                sample(*last_step)
            start_ms = None
            continue
        last_step = (t_ms, fw, n)
        if t_ms >= next_sample_ms:
            sample(t_ms, fw, n)
            next_sample_ms = start_ms + ((t_ms - start_ms) // TRACE_SAMPLE_MS + 1) * TRACE_SAMPLE_MS
    if steps == 0:
        raise TraceError(path, None, "no step records: not a simulator trace")
    out[0]["payload"]["sha256"] = sha.hexdigest()
    if start_epoch_s is None and end_epoch_s is not None:
        start_epoch_s = end_epoch_s - t_ms / 1000
    if start_epoch_s is not None:
        for payload, at_ms, line in timed:
            t = round(start_epoch_s + at_ms / 1000, 3)
            if not _is_clock(t):
                raise TraceError(path, line, f"the device clock there would read {t:g} s, "
                                 f"outside its range (0..{CLOCK_MAX_S} epoch s): is the "
                                 "trace's start time right?")
            payload["t"] = t
    return out


def _trace_json(path: str, line: int, text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise TraceError(path, line, f"not valid JSON: {e.msg} (column {e.colno})") from None
    except (ValueError, RecursionError) as e:   # a number too long, nesting too deep
        why = "nested too deeply" if isinstance(e, RecursionError) else str(e).split(";")[0]
        raise TraceError(path, line, f"not valid JSON: {why}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_trace(trace_path: str | os.PathLike, *,
               start_epoch_s: float | None = None) -> list[dict]:
    """trace_records numbered from 1, the clock at t_ms 0 `start_epoch_s`; default: the
    file's modification time less the trace's length, as if it had just been run."""
    end_epoch_s = None
    if start_epoch_s is None:
        try:
            end_epoch_s = os.stat(trace_path).st_mtime
        except OSError as e:
            raise TraceError(trace_path, None, f"cannot read: {e.strerror or e}") from None
    return trace_records(trace_path, 1, start_epoch_s=start_epoch_s, end_epoch_s=end_epoch_s)


def import_trace(store: Store, device_id: str, trace_path: str | os.PathLike, *,
                 start_epoch_s: float | None = None,
                 records: list[dict] | None = None) -> TraceImport:
    """Ingests a simulator trace as records of `device_id`, numbered after the device's
    last record (one transaction). A trace already imported for this device (same
    bytes) is not imported again. The trace is read as read_trace reads it, unless its
    `records` (from read_trace) are given: a caller can refuse a bad trace before it
    opens the store."""
    if records is None:
        records = read_trace(trace_path, start_epoch_s=start_epoch_s)
    with store._write() as db:
        store._add_device(device_id, name=device_id)
        (top,) = db.execute("SELECT MAX(seq) FROM log_records WHERE device_id = ?",
                            (device_id,)).fetchone()
        sha = records[0]["payload"]["sha256"]
        for (text,) in db.execute("SELECT payload FROM log_records WHERE device_id = ? AND "
                                  "kind = ?", (device_id, KIND_TRACE_IMPORTED)):
            if json.loads(text).get("sha256") == sha:
                return TraceImport(device_id, 0, None, None, [], True)
        offset = (top or 0) + 1 - records[0]["seq"]
        records = [dict(r, seq=r["seq"] + offset) for r in records]
        result = store._ingest(device_id, records, None)
        first, last = records[0]["seq"], records[-1]["seq"]
        ids = [i for (i,) in db.execute(
            "SELECT id FROM sessions WHERE device_id = ? AND start_seq BETWEEN ? AND ? "
            "ORDER BY start_seq", (device_id, first, last))]
        return TraceImport(device_id, result.new, first, last, ids, False)


__all__ = ["Store", "StoreError", "StoreTooNew", "RecordError", "TraceError", "IngestResult",
           "Device", "DeviceSink", "JournalCursor", "Session", "Sample", "TraceImport",
           "KnownProfile", "Acknowledgement",
           "import_trace", "read_trace", "trace_records",
           "default_path", "session_dict", "iso_utc", "END_REASONS", "MIGRATIONS",
           "SCHEMA_VERSION"]
