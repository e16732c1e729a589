"""Wiring: config + store + service + Flask app, and the production WSGI server (waitress)."""
from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from flask import Flask

from .api import create_app
from .config import Config
from .domain.timeutil import Clock
from .service import QueueService
from .store import Store

log = logging.getLogger(__name__)

DATABASE_NAME = "motcua.sqlite3"


def secret_key(data_dir: Path) -> str:
    """MOTCUA_SECRET_KEY from the environment, else a random key kept (0600) in the data dir."""
    from_env = os.environ.get("MOTCUA_SECRET_KEY")
    if from_env:
        return from_env
    path = data_dir / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()


@dataclass
class Server:
    config: Config
    store: Store
    service: QueueService
    app: Flask


def build(config: Config, data_dir: Path, clock: Clock | None = None, mqtt_status=None) -> Server:
    store = Store(data_dir / DATABASE_NAME)
    svc = QueueService(config, store, clock)
    app = create_app(svc, secret_key=secret_key(data_dir), mqtt_status=mqtt_status)
    return Server(config, store, svc, app)


def run_http(server: Server, host: str, port: int) -> None:
    """Serve until interrupted. waitress: a thread pool, so event streams never block requests."""
    import waitress

    log.info("HTTP on http://%s:%d", host, port)
    waitress.serve(
        server.app,
        host=host,
        port=port,
        threads=server.config.server.threads,
        ident="motcua",
        channel_timeout=120,
        connection_limit=1000,
    )
