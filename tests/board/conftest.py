"""Board tests: a real waitress server in a thread (stoppable and restartable on the same port),
and a real Chromium (Debian's, driven by Playwright) looking at it."""
from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from werkzeug.security import generate_password_hash

from tests.conftest import CHROMIUM, CHROMIUM_ARGS, PASSWORD  # noqa: F401  (CHROMIUM*: used by board tests)

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "board"
# Short spoken calls keep the audio tests quick; the default template is tested in test_voice.
SHORT_TEMPLATES = {"vi": "Số {ticket}, quầy {counter}", "en": "{ticket}, counter {counter}"}
_CHEAP_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveServer:
    """waitress serving `app` on 127.0.0.1:port from a thread; stop() closes every connection at once."""

    def __init__(self, app, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "LiveServer":
        import waitress

        self._stop.clear()
        self._server = waitress.create_server(self.app, host="127.0.0.1", port=self.port, threads=8, ident="motcua-test")
        self._thread = threading.Thread(target=self._serve, name=f"waitress-{self.port}", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        from waitress import wasyncore
        from waitress.channel import HTTPChannel

        server = self._server
        try:
            while not self._stop.is_set():
                wasyncore.loop(timeout=0.05, map=server._map, count=1)
        finally:
            # In the loop's own thread: asyncore objects are not shared across threads.
            for dispatcher in list(server._map.values()):
                if isinstance(dispatcher, HTTPChannel):
                    dispatcher.handle_close()
                else:
                    dispatcher.close()
            server._map.clear()
            hub = self.app.extensions.get("motcua.board_hub")
            if hub is not None:
                hub.close_all()  # event streams end now rather than at their next heartbeat
            server.task_dispatcher.shutdown(timeout=5)

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=10)
            assert not self._thread.is_alive(), "the HTTP server did not stop"
            self._thread = None


@pytest.fixture
def board_app(server):
    """The app as a board sees it: quick heartbeats and reconnects, short spoken calls."""
    server.app.config.update(
        MOTCUA_BOARD_HEARTBEAT_S=0.25,  # a departed board is noticed after a few heartbeats
        MOTCUA_BOARD_RETRY_MS=300,
        MOTCUA_VOICE_TEMPLATES=SHORT_TEMPLATES,
    )
    return server.app


@pytest.fixture
def live(board_app):
    live_server = LiveServer(board_app).start()
    yield live_server
    live_server.stop()


@pytest.fixture
def clerk_account(server) -> str:
    now = server.service.now()
    with server.store.write():
        server.store.add_user("nguyen-van-an", "clerk", _CHEAP_HASH, now)
    return "nguyen-van-an"


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh")
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    yield tab
    context.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path
