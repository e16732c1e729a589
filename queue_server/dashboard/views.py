"""The manager dashboard's routes: the page (GET /manage), its assets, and its figures as JSON.

The page is one static file (static/manage.html) filled in by its script from the API. Loaded
by someone not signed in, it shows the sign-in form; every figure it then shows comes through
endpoints that check the role on each call. A signed-in clerk gets 403 for the page itself: the
page (it says why and offers to sign out) to a browser, the JSON error to a client asking for
JSON. Today's figures follow the boards' event stream (GET /board/stream) live.
"""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, jsonify, request

from ..accounts import role_at_least
from ..api import ApiError, current_user, parse_day, record_reject, require_role, service
from ..domain.figures import period_figures
from ..domain.series import dashboard_series
from ..exports.periods import check_period

STATIC_DIR = Path(__file__).with_name("static")
MANAGER_ROLE = "manager"

bp = Blueprint("dashboard", __name__, static_folder="static", static_url_path="/manage/static")


def _wants_json() -> bool:
    """Whether the client prefers JSON to HTML (a script's fetch); a browser's navigation does not."""
    # Ties (*/*, no Accept header) go to HTML: it is a page first.
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


def _page(status: int = 200) -> Response:
    # Small file, read whole: no file handle is left to whoever consumes the response.
    response = Response((STATIC_DIR / "manage.html").read_bytes(), status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"
    if status != 200:
        return response
    response.add_etag()
    return response.make_conditional(request)


@bp.get("/manage")
def manage_page():
    user = current_user()
    if user is not None and not role_at_least(user["role"], MANAGER_ROLE):
        record_reject("forbidden", f"{user['username']} ({user['role']}) needs {MANAGER_ROLE}")
        if _wants_json():
            raise ApiError(403, "forbidden", "Không đủ quyền / Not allowed for your role")
        return _page(403)
    return _page()


def _period() -> tuple:
    """?from= and ?to= (YYYY-MM-DD), each today when left out."""
    today = service().today()
    first = parse_day(request.args["from"], "from") if "from" in request.args else today
    last = parse_day(request.args["to"], "to") if "to" in request.args else today
    check_period(first, last)
    return first, last, today


@bp.get("/api/v1/stats/breakdown")
@require_role(MANAGER_ROLE)
def breakdown():
    """The period's figures (as GET /api/v1/stats/daily computes them) with names, and the chart series."""
    svc = service()
    first, last, today = _period()
    config, store = svc.config, svc.store
    # One read of the records for both the figures and the series.
    tickets = store.tickets_between(first, last)
    ratings = store.ratings_between(first, last)
    figures = period_figures(config, first, last, tickets, ratings, store.dossiers_touching(first, last))
    clerk_ids = list(figures["by_clerk"])
    return jsonify({
        "from": first.isoformat(),
        "to": last.isoformat(),
        "today": today.isoformat(),
        "live": first <= today <= last,
        "generated_at": svc.now().isoformat(),
        "site": {"id": config.site.id, "name": config.site.name.model_dump(), "timezone": config.site.timezone},
        "fields": [{"id": f.id, "letter": f.letter, "name": f.name.model_dump(), "target_wait_min": f.target_wait_min} for f in config.fields],
        "counters": [{"id": c.id, "number": c.number} for c in config.counters],
        "clerks": [{"id": clerk_id, "name": clerk.name if (clerk := config.clerk(clerk_id)) else clerk_id} for clerk_id in clerk_ids],
        "rating_levels": [
            {"id": level.id, "name": level.name.model_dump(), "colour": level.colour, "satisfied": level.satisfied}
            for level in config.rating.levels
        ],
        "figures": figures,
        "series": dashboard_series(config, first, last, tickets, ratings, figures),
    })

