"""The app in a real browser, as a consumer uses it the first time: the steamer shows up
in the scan, pairs while its button is held, runs a session whose dose the page follows
to its end, and the session is in the history (synced on its own) with its chart and a
CSV export. Beside the running app, the consumer commands for the steamer it holds go
through it (status, profile list/push, a second session started with the same
progress lines, sync); the two sessions' charts side by side. Every
screen is screenshotted at phone and desktop sizes and passes axe-core with no serious
or critical violation. Prints the page's first paint and its
status-to-screen latency."""
from __future__ import annotations

import csv
import io
import json
import re

import pytest

from steamer_harness import app as harness
from steamer_harness.ble import TEST_PODLET_TYPE, signed_test_profile

NAME = "app-a"


@pytest.fixture(scope="module")
def ui(air, tmp, browser):
    served = harness.serve_for_app(air, tmp, NAME)
    app = harness.start_app(air, tmp)
    page = browser.new_page(viewport=harness.PHONE, accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield air, app, page, errors
    finally:
        page.close()
        app.stop()
        served.stop()


def test_scan_pair_session_history(ui, tmp, shoot):
    air, app, page, errors = ui
    from playwright.sync_api import expect
    page.goto(app.url)              # no screen named: Nearby steamers
    pair = page.get_by_role("button", name=f"Pair with {NAME}")
    expect(pair).to_be_visible(timeout=15000)
    expect(page.locator(f"li[data-address] >> text=not paired")).to_be_visible()
    assert shoot(page, "nearby") == []

    # The keyboard reaches everything in reading order; pairing starts from it.
    order = []
    for _ in range(7):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.textContent.trim()"))
    assert order == ["Skip to the screen", "Nearby", "The steamer", "Course", "History",
                     "Profiles", f"Pair with {NAME}"]

    # Pairing: the instruction, the countdown, then "paired" while the button is held.
    page.keyboard.press("Enter")
    expect(page.locator("#pair-phase")).to_contain_text("waiting for the pairing window")
    expect(page.locator("figcaption")).to_have_text(
        "Press and hold the steamer's button until this says paired.")
    assert 0 < int(page.text_content("#pair-left")) <= 60
    assert shoot(page, "pairing") == []
    harness.press(air, NAME)
    expect(page.locator("#pair-result")).to_contain_text(f"paired with {NAME}", timeout=20000)

    # The steamer: connected on its own after pairing; the podlet in words.
    expect(page.locator("#screen-steamer")).to_be_visible(timeout=15000)
    expect(page.locator("#st-state")).to_have_text("Ready for a session", timeout=10000)
    # The podlet's expiry comes in its podlet_accepted record (the scenario's podlet).
    expect(page.locator("#st-podlet")).to_have_text(
        "Podlet vitamin-c v1, 3000 µl left, expires 2027-06-30")
    start = page.get_by_role("button", name="Start")
    expect(start).to_be_enabled()
    start.click()
    expect(page.locator("#st-state")).to_have_text("Heating", timeout=10000)
    expect(page.get_by_role("button", name="Stop")).to_be_enabled()

    # The dose as a bar against the dose it ends at, with the time left, to its end.
    expect(page.locator("#st-dose-text")).to_contain_text("min left", timeout=20000)
    text = page.text_content("#st-dose-text")
    m = re.match(r"(\d+) µl delivered of (\d+) µl, (\d+):(\d\d) min left", text)
    assert m and 0 <= int(m[1]) < int(m[2]) == 500, text
    assert page.eval_on_selector("#st-dose", "e => e.max") == 500
    assert shoot(page, "steamer") == []
    expect(page.locator("#st-state")).to_have_text("Cooling down", timeout=30000)
    assert page.is_hidden("#st-dose-box") and page.is_disabled("#st-stop")

    figures = harness.page_figures(page)
    print("\napp figures:", harness.dumps(figures))
    # Statuses come about twice a second while the session runs; how many depends on how
    # long the heat-up took, so the bound is loose: the page followed the session.
    assert figures["status_updates"] >= 10 and figures["status_to_screen_ms_p95"] < 1000

    # History: the session synced on its own, with how it ended; its chart; CSV.
    page.get_by_role("link", name="History").click()
    row = page.locator("#hist-table tbody tr").first
    expect(row).to_contain_text("reached its dose", timeout=15000)
    expect(row).to_contain_text("500 µl")
    expect(row).to_contain_text("vitamin-c")
    row.get_by_role("button", name=re.compile("^Chart")).click()
    expect(page.locator("#hist-charts figure canvas")).to_have_count(1)
    expect(page.locator("#hist-charts figure")).to_contain_text(
        re.compile(r"Phases: heating from 0:00, steam from \d+:\d\d, dosing from \d+:\d\d"))
    assert shoot(page, "history") == []
    with page.expect_download() as dl:
        page.get_by_role("link", name="Export this session as CSV").click()
    rows = list(csv.DictReader(io.StringIO(open(dl.value.path()).read())))
    assert rows and 400 < float(rows[-1]["dose_ul"]) <= 500 and "boiler_c" in rows[0]
    with page.expect_download() as dl:
        page.get_by_role("link", name="Export all sessions as CSV").click()
    (session,) = csv.DictReader(io.StringIO(open(dl.value.path()).read()))
    assert session["end_reason"] == "max_session" and session["profile"] == "vitamin-c"

    # Profiles: the steamer's, in a table.
    page.get_by_role("link", name="Profiles").click()
    expect(page.locator("#prof-table tbody")).to_contain_text("vitamin-c")
    assert shoot(page, "profiles") == []

    # A command for the steamer the app holds goes through the app (the steamer does
    # not advertise while connected: the command could not find it on the air).
    p = app.steamer("status", NAME, "--sim", "--json")
    assert p.returncode == 0, p.stderr
    assert "connected to the running steamer app: going through it" in p.stderr
    st = json.loads(p.stdout)
    assert st["device"] == NAME and st["state"] in ("cooldown", "idle") and st["fault"] is None
    p = app.steamer("session", "stop", NAME, "--sim")
    assert p.returncode == 1 and "no session is running" in p.stderr, p.stderr
    p = app.steamer("sync", NAME, "--sim")
    assert p.returncode == 0 and "into the steamer app's history" in p.stdout, p.stderr
    p = app.steamer("profile", "list", NAME, "--sim", "--json")
    assert p.returncode == 0, p.stderr
    assert [(x["podlet_type"], x["name"]) for x in json.loads(p.stdout)] == [(3, "vitamin-c")]
    blob = tmp / "calm-v2.bin"
    blob.write_bytes(signed_test_profile(2))
    p = app.steamer("profile", "push", NAME, str(blob), "--sim")
    assert p.returncode == 0, p.stderr
    assert p.stdout == (f"installed calm v2 (podlet type {TEST_PODLET_TYPE}) on {NAME} "
                        "(through the steamer app)\n")

    # A second session, started from the command line through the app: the same progress
    # lines as the command prints on its own connection, and the summary once it ends.
    page.get_by_role("link", name="The steamer").click()
    expect(page.locator("#st-state")).to_have_text("Ready for a session", timeout=30000)
    p = app.steamer("session", "start", NAME, "--sim", "--json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert (r["end_reason"], r["dose_ul"], r["profile"], r["via"]) == (
        "max_session", 500, "vitamin-c", "app"), r
    lines = p.stderr.splitlines()
    assert lines[0].endswith("going through it") and lines[1].startswith("preheat: boiler")
    doses = [line for line in lines if line.startswith("dose: ") and " of " in line]
    assert doses and all(" of 500 µl" in line for line in doses), p.stderr
    assert lines[-1] == "dose: 500 µl delivered", p.stderr

    # Two sessions' charts side by side (desktop width), each with its own CSV.
    page.set_viewport_size(harness.DESKTOP)
    page.get_by_role("link", name="History").click()
    rows = page.locator("#hist-table tbody tr")
    expect(rows).to_have_count(2, timeout=15000)
    for i in (0, 1):
        rows.nth(i).get_by_role("button", name=re.compile("^Chart")).click()
    figs = page.locator("#hist-charts figure")
    expect(figs.locator("canvas")).to_have_count(2)
    a, b = (figs.nth(i).bounding_box() for i in (0, 1))
    assert a["y"] == b["y"] and a["x"] + a["width"] <= b["x"], (a, b)
    expect(figs.get_by_role("link", name="Export this session as CSV")).to_have_count(2)
    page.set_viewport_size(harness.PHONE)

    # Delete: the session leaves the history.
    page.get_by_role("link", name="History").click()
    expect(rows).to_have_count(2)
    page.once("dialog", lambda d: d.accept())
    rows.first.get_by_role("button", name=re.compile("^Delete")).click()
    expect(rows).to_have_count(1)
    assert errors == []
