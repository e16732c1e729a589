"""The lobby board, counter displays and clerk console pages, the boards' event stream and the spoken calls.

Pages are static files (display_board/static/) filled in by their scripts from one
server-sent event stream, GET /board/stream: a full snapshot on every (re)connection, then
each change as it is committed. Nothing polls and nothing reloads.

Settings (Flask app.config, all optional):
  MOTCUA_BOARD_HEARTBEAT_S   seconds between heartbeat comments on an idle stream (15)
  MOTCUA_BOARD_RETRY_MS      the EventSource reconnection delay the stream asks for (2000)
  MOTCUA_VOICE_TEMPLATES     {"vi": "...{ticket}...{counter}...", "en": "..."} replacing the defaults
  MOTCUA_VOICE_CACHE_DIR     where WAVs are kept (default: voice-cache/ beside the database)
  MOTCUA_VOICE_SPEED_WPM     espeak-ng speed (140)
"""
from __future__ import annotations

import threading
from pathlib import Path

from flask import Blueprint, Response, current_app, request, send_file

from queue_server.api import ApiError, service
from queue_server.domain.errors import NotFound
from queue_server.domain.tickets import parse_code

from . import live
from .voice import DEFAULT_TEMPLATES, STYLES, Synthesizer, VoiceError, call_text

STATIC_DIR = Path(__file__).with_name("static")
DEFAULT_HEARTBEAT_S = 15.0
DEFAULT_RETRY_MS = 2000

bp = Blueprint("board", __name__, static_folder="static", static_url_path="/board/static")
_setup_lock = threading.Lock()


def hub() -> live.BoardHub:
    extensions = current_app.extensions
    with _setup_lock:
        if "motcua.board_hub" not in extensions:
            extensions["motcua.board_hub"] = live.BoardHub(service())
        return extensions["motcua.board_hub"]


def synthesizer() -> Synthesizer:
    extensions = current_app.extensions
    with _setup_lock:
        if "motcua.voice" not in extensions:
            cache_dir = current_app.config.get("MOTCUA_VOICE_CACHE_DIR") or Path(service().store.path).parent / "voice-cache"
            extensions["motcua.voice"] = Synthesizer(
                Path(cache_dir), speed_wpm=int(current_app.config.get("MOTCUA_VOICE_SPEED_WPM", 140))
            )
        return extensions["motcua.voice"]


def _page(name: str) -> Response:
    # Small files, read whole: no file handle is left to whoever consumes the response.
    response = Response((STATIC_DIR / name).read_bytes(), mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"
    response.add_etag()
    return response.make_conditional(request)


@bp.get("/board")
def board_page():
    return _page("board.html")


@bp.get("/counter/<counter_id>")
def counter_page(counter_id: str):
    if service().config.counter(counter_id) is None:
        raise NotFound("unknown_counter", f"Không có quầy '{counter_id}' / Unknown counter '{counter_id}'")
    return _page("counter.html")


@bp.get("/console")
def console_page():
    # The page is public; everything it does goes through the API, which asks for a clerk's login.
    return _page("console.html")


@bp.get("/board/stream")
def board_stream():
    heartbeat_s = float(current_app.config.get("MOTCUA_BOARD_HEARTBEAT_S", DEFAULT_HEARTBEAT_S))
    retry_ms = int(current_app.config.get("MOTCUA_BOARD_RETRY_MS", DEFAULT_RETRY_MS))
    # The generator attaches itself when it first runs, so a response never read holds nothing.
    events = live.stream(hub(), heartbeat_s=heartbeat_s, retry_ms=retry_ms)
    response = Response(events, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # a reverse proxy must not buffer the stream
    return response


@bp.get("/board/voice/<code>/<counter_id>.wav")
def voice(code: str, counter_id: str):
    """The spoken call of ticket `code` to a counter.

    Only for a ticket issued today and a configured counter: what is synthesised (and kept on
    disk) is bounded by the day's real calls, not by whatever URLs someone on the LAN tries.
    """
    svc = service()
    parsed = parse_code(code)
    if parsed is None or len(code) > 5 or svc.store.find_ticket_by_code(svc.today(), *parsed) is None:
        raise NotFound("unknown_ticket_code", f"Không có số thứ tự '{code}' hôm nay / No ticket '{code}' today")
    place = svc.config.counter(counter_id)
    if place is None:
        raise NotFound("unknown_counter", f"Không có quầy '{counter_id}' / Unknown counter '{counter_id}'")
    templates = {**DEFAULT_TEMPLATES, **(current_app.config.get("MOTCUA_VOICE_TEMPLATES") or {})}
    lang = request.args.get("lang", "vi")
    style = request.args.get("style", "number")
    if lang not in templates or style not in STYLES:
        raise ApiError(400, "invalid_input", f"lang: {sorted(templates)}; style: {list(STYLES)}")
    text = call_text(code, place.number, lang, style=style, templates=templates)
    try:
        path = synthesizer().wav(text, lang)
    except VoiceError as exc:
        raise ApiError(503, "voice_unavailable", f"Không tạo được lời gọi / No voice: {exc}") from None
    return send_file(path, mimetype="audio/wav", max_age=600, conditional=True)
