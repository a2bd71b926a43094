"""One session as a figure for a person: temperatures, heater and dose over time, as a
PNG (or PDF, SVG, ...: the file's suffix says which).

    from steamer.plot import plot_session
    plot_session(store, 3, "session-3.png")
"""
from __future__ import annotations

import os
from datetime import datetime

from steamer.store import END_REASONS, Session, Store, StoreError

_SIZE_IN = (10.0, 8.0)
_DPI = 100


def _mmss(t_s: float, _pos: object = None) -> str:
    sign = "-" if t_s < 0 else ""
    t_s = abs(round(t_s))
    return f"{sign}{t_s // 60}:{t_s % 60:02d}"


def _tick_s(span_s: float) -> float:
    """A tick step in whole seconds or minutes giving at most 10 ticks over span_s."""
    for step_s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if span_s / step_s <= 10:
            return step_s
    return span_s / 10


class PlotError(ValueError):
    """The figure cannot be written in the format asked for; str() names the file."""


def formats() -> dict[str, str]:
    """The file suffixes (without the dot) a figure can be written as, with their names."""
    from matplotlib.backend_bases import FigureCanvasBase
    # pgf needs a LaTeX installation, which a person plotting a session may not have.
    return {k: v for k, v in FigureCanvasBase.get_supported_filetypes().items() if k != "pgf"}


def format_of(out: str | os.PathLike) -> str:
    """The format `out`'s suffix names; PlotError for a suffix that names none."""
    suffix = os.path.splitext(os.fspath(out))[1].lstrip(".").lower()
    known = formats()
    if suffix not in known:
        what = f"its suffix .{suffix}" if suffix else "it has no suffix, and that"
        raise PlotError(f"{os.fspath(out)}: {what} is not a format a plot can be written "
                        f"as (use one of .{', .'.join(sorted(known))})")
    return suffix


def title(s: Session) -> str:
    profile = s.profile or f"podlet type {s.podlet_type}"
    if s.profile_version is not None:
        profile += f" v{s.profile_version}"
    when = (datetime.fromtimestamp(s.start_epoch_s).astimezone().strftime("%Y-%m-%d %H:%M")
            if s.start_epoch_s is not None else "date unknown")
    ended = (END_REASONS.get(s.end_reason, s.end_reason) if s.end_reason
             else "still running")
    return (f"Session {s.id}: {profile}, podlet {s.podlet or '?'}\n"
            f"{when}, {s.dose_ul:.0f} µl, {ended}")


def plot_session(store: Store, session_id: int, out: str | os.PathLike) -> None:
    """Writes session `session_id` of `store` to `out`, in the format its suffix names
    (a PNG is 1000 x 800 px). Raises PlotError for a suffix that names no format,
    StoreError when there is no such session, OSError when it cannot write."""
    # Imported here: matplotlib takes a noticeable moment to import, and only this needs it.
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    fmt = format_of(out)
    s = store.session(session_id)
    if s is None:
        raise StoreError(f"no session {session_id}")
    samples = store.samples(session_id)
    t_s = [p.t_ms / 1000 for p in samples]

    fig = Figure(figsize=_SIZE_IN, dpi=_DPI, layout="constrained")
    temp, heater, dose = fig.subplots(3, 1, sharex=True, height_ratios=[2, 1, 1])
    fig.suptitle(title(s), fontsize=12)

    temp.plot(t_s, [p.boiler_c for p in samples], color="tab:red", label="boiler")
    temp.plot(t_s, [p.outlet_c for p in samples], color="tab:blue", label="steam outlet")
    if s.target_c is not None:
        temp.axhline(s.target_c, color="tab:blue", linestyle="--", linewidth=1,
                     label=f"outlet target {s.target_c:g} °C")
    temp.set_ylabel("temperature (°C)")
    # Wherever it hides the least: in a short session the outlet curve ends lower right.
    temp.legend(loc="best")

    heater.plot(t_s, [p.heater_pct for p in samples], color="tab:orange", label="heater")
    heater.set_ylabel("heater (%)")
    heater.set_ylim(-5, 105)

    dose.plot(t_s, [p.dose_ul for p in samples], color="tab:green", label="dose delivered")
    dose.set_ylabel("dose (µl)")
    dose.set_xlabel("time since start (min:s)")
    dose.set_ylim(bottom=0, top=max(1.0, s.dose_ul, *(p.dose_ul for p in samples)) * 1.08)
    dose.xaxis.set_major_locator(MultipleLocator(_tick_s(t_s[-1] - t_s[0] if t_s else 0)))
    dose.xaxis.set_major_formatter(FuncFormatter(_mmss))

    for ax in (temp, heater, dose):
        ax.grid(True, alpha=0.3)
    if not samples:
        temp.text(0.5, 0.5, "no samples recorded", transform=temp.transAxes,
                  ha="center", va="center", fontsize=14, color="gray")
    fig.savefig(os.fspath(out), format=fmt)
