"""`steamer dev bench-app`: the app's figures in a real browser: first paint of the page
(median over --loads page loads, Paint Timing) and status-to-screen latency (from the
server stamping a pushed status to the frame that shows it, p50/p95 over a session), on
`steamer app --sim` with a served steamer. The drivers are steamer_harness.app's, the
ones tests/app run. Takes about 40 s."""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from steamer.terminal import json_out, positive_int
from steamer_harness import app as harness
from steamer_sim.air import Air, LinkParams


def run(loads: int = 5, session_s: float = 20.0) -> dict:
    air = Air(LinkParams())
    air.start_thread()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        served = harness.serve_for_app(air, tmp, "bench-app")
        app = harness.start_app(air, tmp)
        try:
            with harness.browser() as b:
                page = b.new_page(viewport=harness.PHONE)
                paints, fcp = [], []
                for _ in range(loads):
                    page.goto(app.url + "#history")
                    page.wait_for_load_state("load")
                    f = harness.page_figures(page)
                    paints.append(f["first_paint_ms"])
                    fcp.append(f["first_contentful_paint_ms"])
                page.goto(app.url + "#nearby")
                page.get_by_role("button", name="Pair with bench-app").click(timeout=15000)
                harness.press(air, "bench-app")
                page.wait_for_selector("#st-start:enabled", timeout=30000)
                page.click("#st-start")
                t0 = time.monotonic()
                page.wait_for_timeout(session_s * 1000)
                f = harness.page_figures(page)
                f["status_rate_hz"] = round(f["status_updates"] / (time.monotonic() - t0), 1)
        finally:
            app.stop()
            served.stop()
    return {"page_loads": loads, "first_paint_ms_median": statistics.median(paints),
            "first_contentful_paint_ms_median": statistics.median(fcp),
            "follow_s": session_s, **{k: v for k, v in f.items() if k.startswith("status")}}


def _cmd(args: argparse.Namespace) -> int:
    print("bench-app: steamer app --sim in Chromium, about 40 s", file=sys.stderr)
    json_out(run(args.loads, args.follow_s))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench-app", help="the app's first paint and status-to-screen latency",
                       description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="Example:\n  steamer dev bench-app --loads 5")
    p.add_argument("--loads", type=positive_int, default=5, metavar="N",
                   help="page loads to take the first paint's median over (default 5)")
    p.add_argument("--follow-s", type=float, default=20.0, metavar="S",
                   help="how long to follow a session's status (default 20)")
    p.set_defaults(func=_cmd)
