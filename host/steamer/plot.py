"""One session as a figure for a person: temperatures, heater and dose over time, PNG.

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


def plot_session(store: Store, session_id: int, out_png: str | os.PathLike) -> None:
    """Writes session `session_id` of `store` as a PNG (1000 x 800 px) to `out_png`.
    Raises StoreError when there is no such session, OSError when it cannot write."""
    # Imported here: matplotlib takes a noticeable moment to import, and only this needs it.
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MultipleLocator

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
    temp.legend(loc="lower right")

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
    fig.savefig(os.fspath(out_png), format="png")
