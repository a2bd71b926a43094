"""The app drivers the tests (tests/app) and the benchmark (steamer_bench.app) share:
`steamer app --sim` as its own process on a simulated air (start_app), a steamer served
with a podlet in it (app_scenario, serve_for_app), Debian's Chromium driven by
Playwright (browser), axe-core's accessibility check in a page (axe_violations), and the
page's own figures: first paint and status-to-screen latency (page_figures).

Everything is the real thing: the firmware on micropython, the simulated air, the app's
server and its pages in a real browser.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from steamer.applink import APP_ENV
from steamer_harness.ble import Served, end_process, serve
from steamer_sim.air import ENV, Air, send_sim_event

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
AXE_JS = ROOT / "host" / "steamer" / "app" / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
APP_PODLET_TYPE = 3


def app_scenario(max_session_ul: int = 500) -> dict:
    """A steamer with a short profile (a session doses max_session_ul at 300 µl/min) and
    its podlet in: a session heats, doses and ends in a few seconds at SPEED."""
    return {
        "contract": 1, "duration_s": 86400,
        "profiles": [{"podlet_type": APP_PODLET_TYPE, "version": 1, "name": "vitamin-c",
                      "outlet_target_c": 45.0, "session_s": 600, "dose_rate_ul_min": 300,
                      "max_session_ul": max_session_ul, "max_day_ul": 5000,
                      "min_interval_s": 0, "sign": "ok"}],
        "events": [{"t_s": 1.0, "do": "set_clock", "epoch_s": 1795000000},
                   {"t_s": 2.0, "do": "insert_podlet",
                    "podlet": {"serial": "0000c0ffee01", "podlet_type": APP_PODLET_TYPE,
                               "capacity_ul": 3000, "expiry": "2027-06-30", "lot": "L2611",
                               "sign": "ok"}}],
    }


SPEED = 40.0            # the served steamer's --speed: a session in about 15 s
# A hold of the button in the steamer's time: a few seconds of ours at SPEED, while the
# app tries to pair (the window opens after 3 s of the steamer's).
PAIR_HOLD_MS = 120000


def serve_for_app(air: Air, tmp: Path, name: str, speed: float = SPEED,
                  max_session_ul: int = 500) -> Served:
    return serve(air, tmp, name, app_scenario(max_session_ul), speed=speed)


def press(air: Air, name: str, ms: int = PAIR_HOLD_MS) -> None:
    """Holds the served steamer's button for ms (3 s or more opens pairing)."""
    send_sim_event(air.address, name, {"do": "press_button", "ms": ms})


def inject(air: Air, name: str, event: dict) -> None:
    send_sim_event(air.address, name, event)


@dataclass
class AppProcess:
    proc: subprocess.Popen
    url: str            # with its token
    log: Path
    env: dict           # the app's environment: the air, and its address file

    def steamer(self, *args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess:
        """Runs a `steamer` command as this user would beside the running app."""
        return subprocess.run([sys.executable, "-m", "steamer.cli.main", *args],
                              env=self.env, text=True, capture_output=True,
                              timeout=timeout_s, stdin=subprocess.DEVNULL)

    @property
    def base(self) -> str:
        return self.url.split("/?", 1)[0]

    def stop(self) -> None:
        end_process(self.proc)


def start_app(air: Air, tmp: Path) -> AppProcess:
    """`steamer app --sim --no-browser` on `air`, with its own keys and history in tmp;
    returns once it printed its address."""
    log = tmp / "app.log"
    env = dict(os.environ, **{ENV: air.address, APP_ENV: str(tmp / "app.json")})
    err = open(log, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "steamer.cli.main", "app", "--sim", "--no-browser",
         "--keys", str(tmp / "keys.json"), "--db", str(tmp / "sessions.sqlite3")],
        env=env, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, text=True)
    err.close()
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        proc.kill()
        raise RuntimeError(f"steamer app printed {url!r}:\n{log.read_text()[-3000:]}")
    return AppProcess(proc, url, log, env)


@contextmanager
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, under Playwright (no browser download)."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                               args=["--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


def axe_violations(page: Any, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict]:
    """axe-core's violations of the page as it is now, of the given impacts: each
    {"id", "impact", "help", "nodes": [css selectors]}."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol: the page's CSP (no inline script)
        # stays in force for the page itself.
        page.evaluate(AXE_JS.read_text() + "\n;0")
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in result["violations"] if v["impact"] in impacts]


def percentile(values: list[float], q: float) -> float:
    xs = sorted(values)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))
    return xs[k]


def page_figures(page: Any) -> dict:
    """The page's first paint (ms from navigation, Paint Timing) and its status-to-screen
    latency: ms from the server stamping a status (sent_ms) to the frame showing it."""
    paint = page.evaluate("""() => Object.fromEntries(performance.getEntriesByType('paint')
        .map(e => [e.name, e.startTime]))""")
    nav = page.evaluate("""() => { const n = performance.getEntriesByType('navigation')[0];
        return n ? {dom_content_loaded_ms: n.domContentLoadedEventEnd, load_ms: n.loadEventEnd} : {}; }""")
    lat = page.evaluate("() => window.steamerApp.latencies_ms")
    return {"first_paint_ms": round(paint.get("first-paint", float("nan")), 1),
            "first_contentful_paint_ms": round(paint.get("first-contentful-paint",
                                                         float("nan")), 1),
            **{k: round(v, 1) for k, v in nav.items()},
            "status_updates": len(lat),
            "status_to_screen_ms_p50": round(percentile(lat, 50), 1),
            "status_to_screen_ms_p95": round(percentile(lat, 95), 1),
            "status_to_screen_ms_max": round(max(lat), 1) if lat else float("nan")}


def wait_for(fn: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


def dumps(data: Any) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False)
