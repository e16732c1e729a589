"""Fixtures for the export tests: three months of generated data (once per session), and the app with
the exports blueprint on it."""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from queue_server.api import exports as exports_api
from queue_server.config import Config
from queue_server.domain.timeutil import FixedClock
from queue_server.service import QueueService
from queue_server.store import Store
from tests.api.conftest import accounts  # noqa: F401  (cheap password hashes for the role fixtures)
from tests.exports.yeargen import Summary, generate, year_config

# Three months with Tết in the middle (16–20 February 2026 are holidays): a quarter's report.
MONTHS_FIRST, MONTHS_LAST = date(2026, 1, 1), date(2026, 3, 31)
MONTHS_PER_DAY = 300
# "Now" for the generated data: Wednesday 1 April 2026, 09:00 in Hà Nội.
AFTER_MONTHS = datetime(2026, 4, 1, 2, 0, tzinfo=timezone.utc)


@dataclass
class Generated:
    config: Config
    store: Store
    service: QueueService
    summary: Summary


@pytest.fixture(scope="session")
def months(tmp_path_factory) -> Generated:
    """Jan–Mar 2026 of a 16-counter centre (~18,000 tickets), written once for the whole session.

    Read-only for the tests: nothing may write to it (each test that needs to write has its own server)."""
    config = year_config()
    store = Store(tmp_path_factory.mktemp("months") / "motcua.sqlite3")
    summary = generate(store, config, MONTHS_FIRST, MONTHS_LAST, MONTHS_PER_DAY)
    yield Generated(config, store, QueueService(config, store, FixedClock(AFTER_MONTHS)), summary)
    store.close()


@pytest.fixture(scope="session")
def months_history(months: Generated) -> tuple[list, list, list]:
    """Tickets, ratings and dossiers rebuilt from the history alone (domain.history.rebuild)."""
    from queue_server.domain.history import rebuild

    return rebuild(months.store.history())


@pytest.fixture
def server(server):
    """The usual test server (tests/conftest.py) with the exports blueprint registered on its app."""
    if exports_api.bp.name not in server.app.blueprints:
        server.app.register_blueprint(exports_api.bp)
    return server


def poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is missing: apt-get install poppler-utils (scripts/apt-packages.txt)")
    return path


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    """The text poppler extracts, with runs of white space (table cells wrap) made one space."""
    source = tmp_path / "doc.pdf"
    source.write_bytes(pdf)
    result = subprocess.run([poppler("pdftotext"), "-enc", "UTF-8", str(source), "-"], capture_output=True, check=True, timeout=60)
    return " ".join(result.stdout.decode("utf-8").split())


def render_pages(pdf: bytes, tmp_path: Path, dpi: int = 60) -> list[Path]:
    """Every page as a PNG through pdftoppm; fails if poppler cannot read the file."""
    source = tmp_path / "render.pdf"
    source.write_bytes(pdf)
    result = subprocess.run([poppler("pdftoppm"), "-r", str(dpi), "-png", str(source), str(tmp_path / "page")],
                            capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    return sorted(tmp_path.glob("page*.png"))


def pdf_fonts(pdf: bytes, tmp_path: Path) -> str:
    source = tmp_path / "fonts.pdf"
    source.write_bytes(pdf)
    return subprocess.run([poppler("pdffonts"), str(source)], capture_output=True, check=True, timeout=60).stdout.decode()
