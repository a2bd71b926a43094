"""`steamer sessions …` and `steamer plot`: the session history, a thin layer over
steamer.store and steamer.plot. `steamer` registers them (steamer.cli.main); ``python -m
steamer.cli.history`` runs these commands alone, with the same arguments.
"""
from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime
from typing import Callable

from steamer import course
from steamer.plot import PlotError
from steamer.session import say_if_created
from steamer.store import (END_REASONS, Session, Store, StoreError, TraceError,
                           import_trace, read_trace, session_dict)
from steamer.terminal import BAD_INPUT, FAILED, ErrorRow, command, json_out, print_table, run_parser

_DB_HELP = ("the session database (default: $STEAMER_DB, else sessions.sqlite3 in the "
            "user data folder, e.g. ~/.local/share/steamer)")

# The history commands' expected failures, after which the command ends with one line.
ERRORS: tuple[ErrorRow, ...] = (
    ((TraceError, PlotError), BAD_INPUT, None),
    (StoreError, FAILED, None),
)


def _command(name: str) -> Callable[[Callable[[argparse.Namespace], int]],
                                    Callable[[argparse.Namespace], int]]:
    return command(name, ERRORS)


def _open(args: argparse.Namespace, *, create: bool) -> Store:
    # Reading opens the database read-only and writes nothing. One named explicitly
    # must exist: a typo should not show an empty history; no default one yet reads
    # as empty. Writing creates it.
    if not create:
        return Store.open(args.db, create=args.db is None, readonly=True)
    store = Store.open(args.db)
    say_if_created(store)
    return store


def _local(epoch_s: float | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return "-" if epoch_s is None else datetime.fromtimestamp(epoch_s).astimezone().strftime(fmt)


def _duration(ms: int | None) -> str:
    if ms is None:
        return "-"
    s = round(ms / 1000)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _profile(s: Session) -> str:
    name = s.profile or f"type {s.podlet_type}"
    return name if s.profile_version is None else f"{name} v{s.profile_version}"


def _ended(s: Session) -> str:
    return END_REASONS.get(s.end_reason, s.end_reason) if s.end_reason else "running"


def _names(store: Store) -> dict[str, str]:
    """Each device's name as sync stored it, by id (an id is the device's address)."""
    return {d.id: d.name for d in store.devices() if d.name}


# --- commands -----------------------------------------------------------------------

@_command("sessions")
def _list(args: argparse.Namespace) -> int:
    with _open(args, create=False) as store:
        sessions = store.sessions()
        names = _names(store)
    if args.json:
        json_out([dict(session_dict(s), device=names.get(s.device_id, s.device_id))
                   for s in sessions])
        return 0
    if not sessions:
        print("No sessions yet: `steamer sync DEVICE` brings a steamer's sessions into "
              "this history (a simulated steamer's too, with --sim).")
        return 0
    if args.by_course:
        _by_course(sessions, names)
        return 0
    rows = [("ID", "DATE", "DEVICE", "PODLET", "PROFILE", "DURATION", "DOSE", "END")]
    rows += [(str(s.id), _local(s.start_epoch_s), names.get(s.device_id, s.device_id),
              s.podlet or "-", _profile(s),
              _duration(s.duration_ms), f"{s.dose_ul:.0f} µl", _ended(s)) for s in sessions]
    print_table(rows, right=(0, 5, 6))
    return 0


def _by_course(sessions: list[Session], names: dict[str, str]) -> None:
    """The sessions grouped by course (steamer.course.group_by_course), numbered in it."""
    for i, g in enumerate(course.group_by_course(sessions)):
        if i:
            print()
        dose = sum(s.dose_ul for s in g.sessions)
        print(f"course {g.profile or '-'} (podlet type {g.podlet_type}): "
              f"{len(g.sessions)} session{'s' if len(g.sessions) != 1 else ''}, {dose:.0f} µl")
        rows = [("#", "ID", "DATE", "DEVICE", "PODLET", "PROFILE", "DOSE", "END")]
        rows += [(str(n), str(s.id), _local(s.start_epoch_s),
                  names.get(s.device_id, s.device_id), s.podlet or "-", _profile(s),
                  f"{s.dose_ul:.0f} µl", _ended(s)) for n, s in enumerate(g.sessions, 1)]
        print_table(rows, right=(0, 1, 6))


def _get(store: Store, session_id: int) -> Session:
    s = store.session(session_id)
    if s is None:
        raise StoreError(f"no session {session_id} (`steamer sessions` lists them)")
    return s


@_command("sessions show")
def _show(args: argparse.Namespace) -> int:
    with _open(args, create=False) as store:
        s = _get(store, args.id)
        samples = store.samples(s.id)
        device = _names(store).get(s.device_id, s.device_id)
    if args.json:
        data = {**session_dict(s), "device": device}
        data["series"] = [vars(p) for p in samples]
        json_out(data)
        return 0
    fmt = "%Y-%m-%d %H:%M:%S"
    ended = _ended(s)
    if s.end_reason and ended != s.end_reason:
        ended += f" ({s.end_reason})"
    lines = [
        ("device", device if device == s.device_id else f"{device} ({s.device_id})"),
        ("podlet", f"{s.podlet or '-'} (type {s.podlet_type})"),
        ("profile", _profile(s)),
        ("target", "-" if s.target_c is None else f"{s.target_c:g} °C at the outlet"),
        ("started", _local(s.start_epoch_s, fmt)),
        ("ended", f"{_local(s.end_epoch_s, fmt)}, {ended}" if s.end_reason else "running"),
        ("duration", _duration(s.duration_ms)),
        ("dose", f"{s.dose_ul:g} µl"),
        ("samples", str(s.samples)),
    ]
    outlet = [p.outlet_c for p in samples if p.outlet_c is not None]
    boiler = [p.boiler_c for p in samples if p.boiler_c is not None]
    if outlet and boiler:
        lines.append(("highest", f"outlet {max(outlet):.1f} °C, boiler {max(boiler):.1f} °C"))
    print(f"session {s.id}")
    for key, value in lines:
        print(f"  {key:<9} {value}")
    return 0


@_command("sessions export")
def _export(args: argparse.Namespace) -> int:
    with _open(args, create=False) as store:
        if args.session is not None:
            _get(store, args.session)
        if args.output in (None, "-"):
            store.export_csv(sys.stdout, args.session)
        else:
            # Written aside and renamed, so a failure never leaves half a file behind.
            part = f"{args.output}.part"
            try:
                with open(part, "w", encoding="utf-8", newline="") as f:
                    n = store.export_csv(f, args.session)
                os.replace(part, args.output)
            except OSError as e:
                raise OSError(e.errno, e.strerror, args.output) from None
            finally:
                if os.path.exists(part):
                    os.unlink(part)
            what = "samples" if args.session is not None else "sessions"
            print(f"wrote {n} {what} to {args.output}", file=sys.stderr)
    return 0


@_command("sessions import-trace")
def _import(args: argparse.Namespace) -> int:
    # Read first: a trace refused makes no database.
    records = read_trace(args.trace, start_epoch_s=args.start_epoch_s)
    with _open(args, create=True) as store:
        result = import_trace(store, args.device, args.trace, records=records)
    if args.json:
        json_out(vars(result))
    elif result.already_imported:
        print(f"{args.trace} was already imported for device {args.device}: nothing to do")
    else:
        ids = ", ".join(map(str, result.session_ids)) or "none"
        n = len(result.session_ids)
        print(f"imported {args.trace} as device {args.device}: {result.records} records, "
              f"{n} session{'s' if n != 1 else ''} (id {ids})")
    return 0


@_command("plot")
def _plot(args: argparse.Namespace) -> int:
    from steamer.plot import format_of, plot_session
    format_of(args.output)        # a wrong suffix fails before the database is opened
    with _open(args, create=False) as store:
        _get(store, args.id)
        plot_session(store, args.id, args.output)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


# --- parsers ------------------------------------------------------------------------

def _common(parser: argparse.ArgumentParser, *, json_help: str | None, top: bool) -> None:
    # The sessions group takes --db/--json before its subcommand and each subcommand
    # after it; SUPPRESS keeps a subcommand's unset default from hiding the group's value.
    default = None if top else argparse.SUPPRESS
    parser.add_argument("--db", metavar="PATH", default=default, help=_DB_HELP)
    if json_help:
        parser.add_argument("--json", action="store_true",
                            default=False if top else argparse.SUPPRESS, help=json_help)


def register_sessions(subparsers: argparse._SubParsersAction) -> None:
    """Adds `sessions` (list, show, export, import-trace) to the top-level subparsers."""
    fmt = argparse.RawDescriptionHelpFormatter
    group = subparsers.add_parser(
        "sessions", help="the steaming sessions recorded from your steamers",
        description="List the steaming sessions kept on this computer, newest last; "
                    "--by-course groups them by course (podlet type and profile), "
                    "numbered within it. Exit 1 when the database cannot be used.",
        epilog="Examples:\n  steamer sessions\n  steamer sessions --json\n"
               "  steamer sessions --by-course\n"
               "  steamer sessions show 3\n  steamer sessions export --csv -o sessions.csv",
        formatter_class=fmt)
    _common(group, json_help="print the sessions as a JSON list", top=True)
    group.add_argument("--by-course", action="store_true",
                       help="group the sessions by course (steamer course FILE says where "
                            "you are in one)")
    group.set_defaults(func=_list)
    sub = group.add_subparsers(dest="sessions_command", metavar="SUBCOMMAND")

    show = sub.add_parser(
        "show", help="one session in detail",
        description="Show one session: podlet, profile, times, dose, why it ended.",
        epilog="Example: steamer sessions show 3 --json", formatter_class=fmt)
    show.add_argument("id", type=int, metavar="ID", help="the session's id (see `steamer sessions`)")
    _common(show, json_help="print the session and its samples as JSON", top=False)
    show.set_defaults(func=_show)

    export = sub.add_parser(
        "export", help="export sessions (or one session's samples) as CSV",
        description="Write every session as CSV, one row each, times in UTC; with "
                    "--session, that session's samples (one per second).",
        epilog="Examples:\n  steamer sessions export --csv -o sessions.csv\n"
               "  steamer sessions export --csv --session 3 > session-3.csv",
        formatter_class=fmt)
    export.add_argument("--csv", action="store_true", required=True, help="CSV (the format)")
    export.add_argument("-o", "--out", dest="output", metavar="FILE", help="write here (default: stdout)")
    export.add_argument("--session", type=int, metavar="ID", help="that session's samples")
    _common(export, json_help=None, top=False)
    export.set_defaults(func=_export)

    imp = sub.add_parser(
        "import-trace", help="add the sessions of a simulator trace (for developers)",
        description="Import a trace written by `steamer sim run --trace` as the log a "
                    "steamer named --device would have sent: its sessions, a sample a "
                    "second. Importing the same trace again for the same device does "
                    "nothing. Exit 2 for a file that is not a trace (naming the line).",
        epilog="Example:\n  steamer sim run scenarios/demo.json --trace /tmp/demo.jsonl\n"
               "  steamer sessions import-trace /tmp/demo.jsonl --device sim",
        formatter_class=fmt)
    imp.add_argument("trace", metavar="TRACE.jsonl", help="the trace (JSON lines)")
    imp.add_argument("--device", default="sim", metavar="NAME",
                     help="the device to file it under (default: %(default)s)")
    imp.add_argument("--start-epoch-s", type=float, metavar="S",
                     help="device clock at the trace's start, epoch seconds (default: the "
                          "file's time less the trace's length)")
    _common(imp, json_help="print the result as JSON", top=False)
    imp.set_defaults(func=_import)


def register_plot(subparsers: argparse._SubParsersAction) -> None:
    """Adds `plot ID -o FILE.png` to the top-level subparsers."""
    plot = subparsers.add_parser(
        "plot", help="draw a session (temperatures, heater, dose) as a PNG",
        description="Draw one session as a PNG (or PDF, SVG, ...: FILE's suffix says "
                    "which; exit 2 for one that names no format): boiler and outlet "
                    "temperatures with the target, heater power, and the dose delivered, "
                    "over time.",
        epilog="Examples:\n  steamer plot 3 -o session-3.png\n  steamer plot 3 -o session-3.pdf",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    plot.add_argument("id", type=int, metavar="ID", help="the session's id (see `steamer sessions`)")
    plot.add_argument("-o", "--out", dest="output", required=True, metavar="FILE.png",
                      help="the file to write: .png, .pdf, .svg, ...")
    _common(plot, json_help=None, top=True)
    plot.set_defaults(func=_plot)


def build_parser() -> argparse.ArgumentParser:
    """These commands alone, under the same names as in `steamer`."""
    parser = argparse.ArgumentParser(prog="steamer")
    sub = parser.add_subparsers(dest="group", metavar="COMMAND")
    sub.required = True
    register_sessions(sub)
    register_plot(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_parser(build_parser, argv)


if __name__ == "__main__":
    sys.exit(main())
