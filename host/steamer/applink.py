"""How other programs reach a steamer that a running `steamer app` holds (a connected
steamer does not advertise, so a second program cannot find it on the radio): the app
writes its address and token to a file only this user can read (write_app_file), and
the consumer commands ask it (running_app, AppLink) to do what they would have done.

    app = running_app()
    if app and app.holds("bathroom-steamer"):
        view = app.get("/api/status")
"""
from __future__ import annotations

import json
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steamer.devices import DeviceError

# Where the running app's address file is, when not in the default place.
APP_ENV = "STEAMER_APP"
TOKEN_HEADER = "X-Steamer-Token"
TIMEOUT_S = 60.0


def app_file() -> Path:
    """$STEAMER_APP, else app.json in this user's runtime folder (as the simulated air's
    socket: $XDG_RUNTIME_DIR/steamer, else steamer-UID in the temp folder)."""
    if os.environ.get(APP_ENV):
        return Path(os.environ[APP_ENV])
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    folder = (Path(runtime) / "steamer" if runtime and os.path.isdir(runtime)
              else Path(tempfile.gettempdir()) / f"steamer-{os.getuid()}")
    return folder / "app.json"


def write_app_file(base_url: str, token: str) -> Path:
    """Says where this app is (mode 0600: the token opens it); remove_app_file at exit."""
    path = app_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"url": base_url, "token": token, "pid": os.getpid()}, f)
    tmp.replace(path)
    return path


def remove_app_file(token: str) -> None:
    """Removes the address file if it is still this app's."""
    path = app_file()
    try:
        if json.loads(path.read_text()).get("token") == token:
            path.unlink()
    except (OSError, ValueError):
        pass


@dataclass
class AppLink:
    """A running app's API, as this user's programs may use it."""
    url: str
    token: str

    def request(self, method: str, path: str, body: dict | bytes | None = None,
                headers: dict[str, str] | None = None) -> Any:
        """The answer's JSON; a refusal is a DeviceError in the app's words. A bytes
        body goes as it is (application/octet-stream), a dict as JSON."""
        raw = isinstance(body, bytes)
        data = body if raw else None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={
            TOKEN_HEADER: self.token, **(headers or {}),
            "Content-Type": "application/octet-stream" if raw else "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S) as r:
                return json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            try:
                text = json.loads(e.read()).get("error")
            except ValueError:
                text = None
            raise DeviceError(f"the running steamer app: {text or e.reason}") from None
        except (urllib.error.URLError, OSError) as e:
            raise DeviceError(f"the running steamer app at {self.url} does not answer "
                              f"({getattr(e, 'reason', e)})") from None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: dict | None = None) -> Any:
        return self.request("POST", path, body or {})

    def upload(self, path: str, data: bytes, filename: str) -> Any:
        """POSTs a file's bytes (a signed profile to /api/profiles)."""
        # A header is Latin-1: a name that is not ASCII goes with ? in its place.
        return self.request("POST", path, data,
                            {"X-Filename": filename.encode("ascii", "replace").decode()})

    def held(self) -> dict | None:
        """The steamer the app holds ({"device", "address"}), or None."""
        return self.get("/api/held")

    def holds(self, query: str) -> dict | None:
        """The held steamer when `query` (a name or an address) names it."""
        held = self.held()
        if held and (held["device"] == query or held["address"].lower() == query.lower()):
            return held
        return None


def running_app() -> AppLink | None:
    """The app this user runs, if its address file is there and its process lives."""
    try:
        info = json.loads(app_file().read_text())
        os.kill(int(info["pid"]), 0)
        return AppLink(str(info["url"]), str(info["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
