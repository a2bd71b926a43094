"""The app's course view and warnings step in a real browser (issue 17), on a simulated
steamer whose podlet runs a course profile (format 2: 4 sessions at least 6 days apart,
warnings to acknowledge). Start is refused by the steamer while the app has no profile
file to show the warnings from; once the file is opened the warnings are shown in words
and Start stays disabled (and the steamer still refuses it) until the user ticks that
they read them and acknowledges: the acknowledgement goes to the steamer (warnings_ack)
and into the history's database, the session runs, and the course view then says
session 2 of 4 with when the next one is allowed and recommended, and exports the plan
as .ics; a second start is refused before the course's spacing. `steamer course` reads
the acknowledgement the app recorded. Both screens are screenshotted at phone and
desktop sizes and pass axe-core with no serious or critical violation."""
from __future__ import annotations

import json
import re

import pytest

from steamer.store import Store
from steamer_harness import app as harness
from steamer_harness.ble import serve
from steamer_sim.signing import signed_profile

NAME = "app-course"
DAY_S = 86400
COURSE = {"podlet_type": harness.APP_PODLET_TYPE, "version": 2, "name": "vitamin-c",
          "outlet_target_c": 45.0, "session_s": 60, "dose_rate_ul_min": 300,
          "max_session_ul": 100, "max_day_ul": 5000, "min_interval_s": 0,
          "course_sessions": 4, "min_spacing_s": 6 * DAY_S,
          "recommended_spacing_s": 7 * DAY_S, "maintenance_spacing_s": 180 * DAY_S,
          "pattern": "pulsed", "bolus_ul": 10, "period_s": 4,
          "warnings": [{"code": "pregnancy", "text": "Not when pregnant or nursing."},
                       {"code": "sun_sensitivity",
                        "text": "Avoid strong sun for 2 days after."}],
          "acknowledge": True}


def nav(page, name: str):
    return page.get_by_role("navigation", name="Screens").get_by_role("link", name=name)


def course_scenario() -> dict:
    scenario = harness.app_scenario()
    scenario["profiles"] = [dict(COURSE, sign="ok")]
    return scenario


@pytest.fixture(scope="module")
def ui(air, tmp, browser):
    served = serve(air, tmp, NAME, course_scenario(), speed=harness.SPEED)
    app = harness.start_app(air, tmp)
    page = browser.new_page(viewport=harness.PHONE, accept_downloads=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield air, served, app, page, errors
    finally:
        page.close()
        app.stop()
        served.stop()


def test_course_view_and_warnings_step(ui, tmp, shoot):
    air, served, app, page, errors = ui
    from playwright.sync_api import expect
    blob = tmp / "vitamin-c.bin"
    blob.write_bytes(signed_profile(COURSE, "ok"))
    page.goto(app.url + "#nearby")
    page.get_by_role("button", name=f"Pair with {NAME}").click(timeout=15000)
    harness.press(air, NAME)
    expect(page.locator("#st-state")).to_have_text("Ready for a session", timeout=30000)
    start = page.get_by_role("button", name="Start")

    # The app has no file of the podlet's profile: the steamer itself refuses the start,
    # and the page says where to read the warnings.
    expect(start).to_be_enabled()
    start.click()
    expect(page.locator("#st-error")).to_contain_text(
        "the podlet's warnings have not been acknowledged")
    expect(page.locator("#st-warn-unknown")).to_be_visible()
    expect(page.locator("#st-state")).to_have_text("Ready for a session")

    # Course: the profile file opened (not installed: the steamer has it).
    nav(page, "Course").click()
    expect(page.locator("#co-note")).to_contain_text("open its signed profile file")
    page.set_input_files("#co-file", str(blob))
    page.get_by_role("button", name="Open the profile file").click()
    expect(page.locator("#co-position")).to_have_text("Next: session 1 of 4")
    expect(page.locator("#co-warnings")).to_contain_text(
        "pregnancy and nursing: Not when pregnant or nursing.")
    expect(page.locator("#co-ack")).to_contain_text("To be acknowledged before the first")
    expect(page.locator("#co-pattern")).to_have_text(
        "pulsed: a bolus of 10 µl (at 300 µl/min) every 4 s")
    assert shoot(page, "course-first") == []

    # The warnings step: in words, Start disabled, the acknowledgement explicit.
    nav(page, "The steamer").click()
    warn = page.locator("#st-warn")
    expect(warn).to_be_visible()
    expect(page.locator("#st-error")).to_have_text("")     # the step says it now
    expect(warn.locator("li")).to_have_text([
        "pregnancy and nursing: Not when pregnant or nursing.",
        "sensitivity to the sun: Avoid strong sun for 2 days after."])
    expect(start).to_be_disabled()
    expect(page.locator("#st-start-why")).to_have_text(
        "Start is possible once the warnings above are acknowledged.")
    ack = page.get_by_role("button", name="Acknowledge the warnings on the steamer")
    expect(ack).to_be_disabled()
    assert shoot(page, "warnings") == []
    # Neither the server nor the steamer takes a shortcut past the step.
    r = page.request.post(app.base + "/api/course/acknowledge",
                          data={"podlet_type": COURSE["podlet_type"], "version": 2})
    assert r.status == 400 and "read: true" in r.json()["error"]
    r = page.request.post(app.base + "/api/session/start")
    assert r.status == 409 and "not_acknowledged" in r.json()["error"]
    page.get_by_label("I have read these warnings, and none of them applies to me").check()
    ack.click()
    expect(page.locator("#st-ack-done")).to_contain_text(
        f"The warnings of vitamin-c v2 are acknowledged on {NAME}")
    expect(warn).to_be_hidden()
    expect(start).to_be_enabled()
    start.click()
    expect(page.locator("#st-state")).to_have_text(re.compile("Heating|Steaming|Dosing"),
                                                   timeout=10000)
    expect(page.locator("#st-state")).to_have_text(
        re.compile("Cooling down|Ready for a session"), timeout=30000)

    # The course after it: session 2 of 4, when it is allowed and recommended, the plan.
    nav(page, "Course").click()
    expect(page.locator("#co-position")).to_have_text("Next: session 2 of 4", timeout=20000)
    got = page.request.get(app.base + "/api/course").json()["course"]
    assert got["done"] == 1 and got["next_allowed_s"] == got["last_s"] + 6 * DAY_S
    assert got["next_recommended_s"] == got["last_s"] + 7 * DAY_S
    assert got["acknowledged_address"] == served.addr and got["missed"] == []
    expect(page.locator("#co-allowed")).to_contain_text("from ")
    expect(page.locator("#co-missed")).to_have_text("nothing")
    expect(page.locator("#co-ack")).to_contain_text("You acknowledged them on")
    steps = page.locator("#co-steps li")
    expect(steps).to_have_count(1 + 3 + 2)          # done, 3 to come, 2 maintenance
    expect(steps.nth(0)).to_have_text("session 1: done")
    expect(steps.nth(1)).to_contain_text("session 2 of 4: next, allowed from")
    assert shoot(page, "course") == []
    with page.expect_download() as dl:
        page.get_by_role("link", name="Add the plan to a calendar (.ics file)").click()
    assert dl.value.suggested_filename == "vitamin-c.ics"
    ics = open(dl.value.path(), encoding="utf-8", newline="").read().replace("\r\n ", "")
    assert ics.startswith("BEGIN:VCALENDAR\r\n") and ics.count("BEGIN:VEVENT") == 5
    assert "SUMMARY:vitamin-c: session 2 of 4" in ics

    # Before the course's spacing the steamer refuses the next session, in words.
    nav(page, "The steamer").click()
    expect(page.locator("#st-state")).to_have_text("Ready for a session", timeout=30000)
    start.click()
    expect(page.locator("#st-error")).to_have_text(
        f"{NAME} refused to start a session: too soon after the last session of this "
        "course (Course says when the next is allowed).")

    # The command line reads the acknowledgement the app kept in the history's database.
    p = app.steamer("course", str(blob), "--db", str(tmp / "sessions.sqlite3"), "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["position"] == "session 2 of 4" and out["acknowledged_s"] is not None
    assert out["acknowledged_address"] == served.addr

    # History, grouped by course: this course's session, and one of another course
    # (kept in the same database, as a sync from another steamer would).
    with Store.open(tmp / "sessions.sqlite3") as store:
        store.ingest("other-steamer", [
            {"seq": 1, "kind": "session_started", "payload": {
                "t": 1795000000, "t_ms": 1000, "podlet": "0000c0ffee05", "podlet_type": 5,
                "profile": "calm", "version": 1, "target_c": 44.0, "limit_ul": 900}},
            {"seq": 2, "kind": "session_ended", "payload": {
                "t": 1795000600, "t_ms": 601000, "reason": "completed", "session_ul": 90.0,
                "dose_s": 600}}])
    nav(page, "History").click()
    table = page.locator("#hist-table")
    expect(table.locator("tbody tr")).to_have_count(2, timeout=20000)
    expect(page.locator("#hist-caption")).to_have_text("Sessions, newest first")
    page.get_by_label("Group by course").check()
    heads = table.locator("tr.course-head")
    expect(heads).to_have_count(2)
    expect(heads.nth(0)).to_have_text("Course calm (podlet type 5): 1 session, 90 µl")
    expect(heads.nth(1)).to_contain_text(
        f"Course vitamin-c (podlet type {COURSE['podlet_type']}): 1 session,")
    expect(table.locator("tbody tr")).to_have_count(4)
    expect(table.locator("tbody tr").nth(3).locator("td").first).to_contain_text(
        "1 of the course")
    expect(page.locator("#hist-caption")).to_have_text(
        "Sessions by course, each course oldest first")
    expect(page.locator("#hist-note")).to_have_text("2 sessions in 2 courses")
    assert shoot(page, "history-by-course") == []
    groups = page.request.get(app.base + "/api/sessions?by=course").json()
    assert [(g["profile"], g["count"]) for g in groups] == [("calm", 1), ("vitamin-c", 1)]
    assert groups[1]["sessions"][0]["n"] == 1 and groups[1]["sessions"][0]["dose_ul"] > 0
    r = page.request.get(app.base + "/api/sessions?by=podlet")
    assert r.status == 400 and "'course' only" in r.json()["error"]
    page.get_by_label("Group by course").uncheck()
    expect(heads).to_have_count(0)
    assert errors == []
