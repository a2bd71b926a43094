"""The app's guard, as another program or web page would meet it: the server listens on
127.0.0.1 only and refuses (403, with a body that says why) a request without its token,
with a wrong one, from a page of another site (Origin) or under another host name (Host:
DNS rebinding); with the token, same-site, it answers and hands the page its cookie."""
from __future__ import annotations

import asyncio

import aiohttp
import pytest

from steamer.app.server import cookie_name, start
from steamer.client import KeyRing
from steamer.live import Hub
from steamer.store import Store

TOKEN = "t0ken-for-the-test-0123456789"


@pytest.fixture
def served(tmp_path):
    """(base, port) of an app served in a loop of its own (no radio: nothing scans)."""
    loop = asyncio.new_event_loop()
    store = Store.open(tmp_path / "s.sqlite3")
    hub = Hub(None, KeyRing(), store)
    runner, url = loop.run_until_complete(start(hub, TOKEN))
    base = url.split("/?", 1)[0]
    yield loop, base, int(base.rsplit(":", 1)[1])
    loop.run_until_complete(runner.cleanup())
    store.close()
    loop.close()


def fetch(loop, url: str, headers: dict | None = None, cookies: dict | None = None,
          method: str = "GET") -> tuple[int, str, dict]:
    async def go():
        async with aiohttp.ClientSession(cookies=cookies) as s:
            async with s.request(method, url, headers=headers or {},
                                 allow_redirects=False) as r:
                return r.status, await r.text(), dict(r.cookies)
    return loop.run_until_complete(go())


def test_it_listens_on_loopback_only(served):
    _loop, base, _port = served
    assert base.startswith("http://127.0.0.1:")


@pytest.mark.parametrize("path", ["/", "/api/sessions", "/static/app.js", "/api/sessions.csv"])
def test_no_token_is_refused(served, path):
    loop, base, _ = served
    status, body, _ = fetch(loop, base + path)
    assert status == 403 and "no token" in body


def test_a_wrong_token_is_refused(served):
    loop, base, port = served
    assert fetch(loop, f"{base}/api/sessions?token=nope")[:2] == (
        403, "steamer app: refused: wrong token: open the address the running `steamer "
             "app` printed\n")
    status, body, _ = fetch(loop, f"{base}/api/sessions", cookies={cookie_name(port): "x" + TOKEN})
    assert status == 403 and "wrong token" in body
    status, _, _ = fetch(loop, f"{base}/api/session/stop", {"X-Steamer-Token": TOKEN[:-1]},
                         method="POST")
    assert status == 403


def test_a_foreign_origin_is_refused_even_with_the_token(served):
    loop, base, _ = served
    status, body, _ = fetch(loop, f"{base}/api/sessions?token={TOKEN}",
                            {"Origin": "http://evil.example"})
    assert status == 403 and "another site (http://evil.example)" in body
    status, _, _ = fetch(loop, f"{base}/api/session/start?token={TOKEN}",
                         {"Origin": "null"}, method="POST")
    assert status == 403


def test_a_foreign_host_is_refused_even_with_the_token(served):
    loop, base, port = served
    status, body, _ = fetch(loop, f"{base}/?token={TOKEN}", {"Host": f"evil.example:{port}"})
    assert status == 403 and "DNS rebinding" in body
    status, _, _ = fetch(loop, f"{base}/?token={TOKEN}", {"Host": "127.0.0.1:1"})
    assert status == 403


def test_the_token_opens_the_page_and_sets_a_strict_cookie(served):
    loop, base, port = served
    status, body, cookies = fetch(loop, f"{base}/?token={TOKEN}",
                                  {"Origin": f"http://127.0.0.1:{port}"})
    assert status == 200 and "<title>Steamer</title>" in body
    assert cookies[cookie_name(port)].value == TOKEN
    assert cookies[cookie_name(port)]["samesite"] == "Strict"
    assert cookies[cookie_name(port)]["httponly"]
    status, body, _ = fetch(loop, f"{base}/api/sessions", cookies={cookie_name(port): TOKEN},
                            headers={"Host": f"localhost:{port}"})
    assert (status, body) == (200, "[]")
    # Nothing is connected: a command says so in words, it does not fail obscurely.
    status, body, _ = fetch(loop, f"{base}/api/session/start", {"X-Steamer-Token": TOKEN},
                            method="POST")
    assert status == 409 and "no steamer is connected" in body
