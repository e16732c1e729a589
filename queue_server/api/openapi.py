"""The OpenAPI 3.1 description of the HTTP API (a test checks every route is in it)."""
from __future__ import annotations

from .auth import LoginIn
from .counters import TransferIn
from .dossiers import DayIn, DossierIn, RescheduleIn
from .tickets import RatingIn, TicketIn
from .users import PasswordIn, UserChangeIn, UserIn

ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _responses(ok: str, *errors: int, ok_status: str = "200") -> dict:
    texts = {400: "bad input", 401: "not signed in / bad token", 403: "role not allowed", 404: "unknown id",
             409: "conflicts with the current state", 413: "body too large", 415: "not JSON", 422: "a rule of the centre forbids it"}
    responses = {ok_status: {"description": ok}}
    for status in errors:
        responses[str(status)] = {"description": texts[status], **_json(ERROR)}
    return responses


def _op(summary: str, responses: dict, *, body: type | None = None, security: list | None = None, tags: list | None = None, params: list | None = None) -> dict:
    operation: dict = {"summary": summary, "responses": responses}
    if body is not None:
        operation["requestBody"] = {"required": True, **_json({"$ref": f"#/components/schemas/{body.__name__}"})}
    if security is not None:
        operation["security"] = security
    if tags:
        operation["tags"] = tags
    if params:
        operation["parameters"] = params
    return operation


def _path_param(name: str, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": description}


# One alert of GET /api/v1/alerts (the same fields as AlertInfo on MQTT); `cleared_at` only in `recent`.
ALERT_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "rule": {"type": "string", "description": "the rule's id in [alerts].rules"},
        "kind": {"type": "string", "enum": ["unsatisfied_share", "wait_over_target", "device_offline", "printer_problem"]},
        "subject": {"type": "string", "description": "the counter, field or device id the alert is about"},
        "severity": {"type": "string", "enum": ["warning", "critical"]},
        "message": {"type": "object", "properties": {"vi": {"type": "string"}, "en": {"type": "string"}}, "required": ["vi", "en"]},
        "since": {"type": "string", "format": "date-time"},
        "details": {"type": "object", "description": "the figures behind it, per kind"},
        "cleared_at": {"type": "string", "format": "date-time"},
    },
    "required": ["id", "rule", "kind", "subject", "severity", "message", "since", "details"],
}
DEVICE_OR_USER = [{"deviceToken": []}, {"session": []}]
USER = [{"session": []}]
COUNTER_ACTIONS = {
    "open": "open the counter (the signed-in clerk takes it)",
    "close": "close the counter",
    "next": "call the next ticket (finishing the current one, if any)",
    "recall": "call the current ticket again",
    "start": "mark the service of the current ticket as started",
    "no-show": "the called citizen did not come",
    "finish": "finish the current ticket; its rating window opens",
}


def openapi_document() -> dict:
    paths: dict = {
        "/healthz": {"get": _op("health of the database and the broker link", {"200": {"description": "ok"}, "503": {"description": "degraded"}}, tags=["health"])},
        "/api/v1/openapi.json": {"get": _op("this document", _responses("OpenAPI document"), tags=["health"])},
        "/api/v1/login": {"post": _op("sign in (sets a session cookie)", _responses("signed in", 400, 401, 415), body=LoginIn, tags=["auth"])},
        "/api/v1/logout": {"post": _op("sign out", _responses("signed out"), tags=["auth"])},
        "/api/v1/me": {"get": _op("who is signed in", _responses("the user", 401), tags=["auth"])},
        "/api/v1/config": {"get": _op("public configuration for screens: site, fields, counters, rating scale", _responses("config"), tags=["config"])},
        "/api/v1/tickets": {"post": _op(
            "issue a ticket (header Idempotency-Key makes retries return the same ticket)",
            _responses("the same ticket again (repeated Idempotency-Key)", 400, 401, 403, 404, 409, 415, 422) | {"201": {"description": "a new ticket"}},
            body=TicketIn, security=DEVICE_OR_USER, tags=["tickets"],
            params=[{"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string", "minLength": 1, "maxLength": 128}}],
        )},
        "/api/v1/tickets/{ticket_id}": {"get": _op("a ticket's status, position and estimated wait", _responses("the ticket", 404), tags=["tickets"], params=[_path_param("ticket_id", "ticket id")])},
        "/t/{ticket_id}": {"get": _op("human page for a ticket's QR code (HTML)", _responses("HTML page", 404), tags=["tickets"], params=[_path_param("ticket_id", "ticket id")])},
        "/api/v1/ratings": {"post": _op(
            "record a rating press (same payload as the MQTT rating event); repeats of a msg_id return the first",
            _responses("repeat of an earlier msg_id", 400, 401, 403, 404, 415) | {"201": {"description": "recorded (counted or flagged)"}},
            body=RatingIn, security=DEVICE_OR_USER, tags=["ratings"],
        )},
        "/api/v1/counters": {"get": _op("every counter's state", _responses("counters"), tags=["counters"])},
        "/api/v1/counters/{counter_id}": {"get": _op("one counter's state", _responses("counter", 404), tags=["counters"], params=[_path_param("counter_id", "counter id")])},
        "/api/v1/counters/{counter_id}/transfer": {"post": _op(
            "send the current ticket to another field's line or to one counter", _responses("counter after the action", 400, 401, 403, 404, 409, 415, 422),
            body=TransferIn, security=USER, tags=["counters"], params=[_path_param("counter_id", "counter id")],
        )},
        "/api/v1/dossiers": {
            "post": _op("record a dossier received (due date given or counted in working days)", _responses("the dossier", 400, 401, 403, 404, 409, 415, 422, ok_status="201"), body=DossierIn, security=USER, tags=["dossiers"]),
            "get": _op("recent dossiers (?open=1 for those not returned)", _responses("dossiers", 401, 403), security=USER, tags=["dossiers"]),
        },
        "/api/v1/dossiers/import": {"post": _op(
            "bulk import (CSV: code,procedure,field,received,due,returned[,channel]); all rows or none",
            _responses("imported", 400, 401, 403, 413, 415, 422) | {"422": {"description": "bad rows, each with its line and reason; nothing imported", **_json(ERROR)}},
            security=USER, tags=["dossiers"],
        )},
        "/api/v1/dossiers/{code}": {"get": _op("one dossier with its on-time status", _responses("dossier", 401, 403, 404), security=USER, tags=["dossiers"], params=[_path_param("code", "dossier code")])},
        "/api/v1/stats/today": {"get": _op("today's figures (the board's numbers)", _responses("figures"), tags=["stats"])},
        "/api/v1/stats/daily": {"get": _op(
            "figures per local day", _responses("a list of days", 400, 401, 403), security=USER, tags=["stats"],
            params=[{"name": n, "in": "query", "required": True, "schema": {"type": "string", "format": "date"}} for n in ("from", "to")],
        )},
        "/api/v1/devices": {"get": _op("devices: online/offline since when, last heard from, printer state", _responses("devices", 401, 403), security=USER, tags=["devices"])},
        "/api/v1/alerts": {"get": _op(
            "alerts of the configured rules ([alerts] in the site config): `active` (open now, critical first) and "
            "`recent` (cleared in the last [alerts].recent_hours, latest first)",
            _responses("the alerts", 401, 403) | {"200": {"description": "the alerts", **_json({"$ref": "#/components/schemas/Alerts"})}},
            security=USER, tags=["alerts"],
        )},
        "/api/v1/exports/daily-totals": {"get": _op(
            "daily totals per day × overall / field / counter / clerk: CSV (UTF-8 with BOM), XLSX (a sheet per breakdown, "
            "totals rows) or the PDF report in Vietnamese (Biểu 06 dossier table, satisfaction per level, Decision 766 5.4)",
            _responses("the file (Content-Disposition: attachment)", 400, 401, 403), security=USER, tags=["exports"],
            params=[*({"name": n, "in": "query", "required": True, "schema": {"type": "string", "format": "date"}} for n in ("from", "to")),
                    {"name": "format", "in": "query", "required": False, "schema": {"type": "string", "enum": ["csv", "xlsx", "pdf"], "default": "csv"}}],
        )},
        "/api/v1/dossiers/late": {"get": _op(
            "dossiers still open past their appointment date (overdue, with the apology slip's URL) and those returned late since ?since= (default 30 days ago)",
            _responses("the late dossiers", 400, 401, 403), security=USER, tags=["dossiers"],
            params=[{"name": "since", "in": "query", "required": False, "schema": {"type": "string", "format": "date"}}],
        )},
        "/api/v1/dossiers/{code}/apology.pdf": {"get": _op(
            "the apology slip 'Phiếu xin lỗi và hẹn lại ngày trả kết quả' (PDF, inline) naming the reason and the new date the dossier "
            "was rescheduled with (POST /api/v1/dossiers/{code}/reschedule); for a dossier never rescheduled, ?reason= and ?new_date= "
            "are required instead (the stored values win when both exist)",
            _responses("the PDF", 400, 401, 403, 404, 409), security=USER, tags=["dossiers"],
            params=[_path_param("code", "dossier code"),
                    {"name": "reason", "in": "query", "required": False, "schema": {"type": "string", "maxLength": 500},
                     "description": "only for a dossier not rescheduled"},
                    {"name": "new_date", "in": "query", "required": False, "schema": {"type": "string", "format": "date"},
                     "description": "only for a dossier not rescheduled"}],
        )},
        "/api/v1/dossiers/{code}/reschedule": {"post": _op(
            "give a late (or soon late) dossier a new date for the result and the reason for the delay, as the apology slip prints them; "
            "the new date is a working day after the original appointment date and not in the past; on-time figures still judge "
            "the dossier by its original date",
            _responses("the dossier (delay_reason, new_due_date)", 400, 401, 403, 404, 409, 415), body=RescheduleIn, security=USER,
            tags=["dossiers"], params=[_path_param("code", "dossier code")],
        )},
        "/api/v1/exports/scheduled": {"get": _op(
            "the scheduled export at closing time: whether it is on, its folder, time and formats, and its latest runs "
            "(each file written, each failure with its reason)",
            _responses("settings and runs", 401, 403), security=USER, tags=["exports"],
        )},
        "/api/v1/users": {
            "get": _op("every account (admin): username, role, disabled, created_at; never a password hash", _responses("accounts", 401, 403),
                       security=USER, tags=["accounts"]),
            "post": _op(
                "add an account (admin); without `password` one is generated and returned once as `password`",
                _responses("the account", 400, 401, 403, 409, 415, ok_status="201"), body=UserIn, security=USER, tags=["accounts"],
            ),
        },
        "/api/v1/users/{username}": {"patch": _op(
            "change an account's role and/or disable or re-enable it (admin). Disabling ends its sessions. 409: the last enabled "
            "admin, or the admin's own account, cannot be demoted or disabled",
            _responses("the account", 400, 401, 403, 404, 409, 415), body=UserChangeIn, security=USER, tags=["accounts"],
            params=[_path_param("username", "login name")],
        )},
        "/api/v1/users/{username}/password": {"post": _op(
            "reset an account's password (admin); without a body or `password` one is generated and returned once as `password`. "
            "Every session of the account ends",
            _responses("{username, password?}", 400, 401, 403, 404, 415), security=USER, tags=["accounts"],
            params=[_path_param("username", "login name")],
        ) | {"requestBody": {"required": False, **_json({"$ref": "#/components/schemas/PasswordIn"})}}},
        "/admin/accounts": {"get": _op(
            "accounts page for admins (HTML): sign-in form until someone signs in; add and disable accounts, reset passwords, "
            "set roles. A signed-in clerk or manager gets 403",
            _responses("HTML page") | {"403": {"description": "signed in as a clerk or manager (HTML page saying so)"}}, tags=["accounts"],
        )},
        "/admin/static/{filename}": {"get": _op("the accounts page's script and style", _responses("file", 404), tags=["accounts"],
                                                params=[_path_param("filename", "file name")])},
        "/api/v1/rejects": {"get": _op("rejected input: counts per reason and the latest", _responses("rejects", 401, 403), security=USER, tags=["stats"])},
        "/board": {"get": _op("lobby board page (HTML; ?notice= scrolling text, ?voice=vi,en languages spoken, ?style=number|digits)", _responses("HTML page"), tags=["board"])},
        "/board/stream": {"get": _op(
            "the boards' server-sent events (text/event-stream): `snapshot` on every connection, then `counter`, `call`, `queue` "
            "as they happen and `today` (the board's part of /api/v1/stats/today) at most once a second; heartbeat comments", _responses("event stream"), tags=["board"],
        )},
        "/board/voice/{code}/{counter_id}.wav": {"get": _op(
            "the spoken call of a ticket issued today to a counter (WAV by espeak-ng, cached; ?lang=vi|en, ?style=number|digits)",
            _responses("audio/wav", 400, 404) | {"503": {"description": "no speech synthesiser", **_json(ERROR)}}, tags=["board"],
            params=[_path_param("code", "ticket code, e.g. A015"), _path_param("counter_id", "counter id")],
        )},
        "/board/static/{filename}": {"get": _op("the pages' scripts, styles and chime", _responses("file", 404), tags=["board"], params=[_path_param("filename", "file name")])},
        "/counter/{counter_id}": {"get": _op("a counter's own display (HTML): the number being served and the clerk", _responses("HTML page", 404), tags=["board"], params=[_path_param("counter_id", "counter id")])},
        "/console": {"get": _op("clerk console (HTML; it signs in with /api/v1/login and acts through the counter and dossier endpoints)", _responses("HTML page"), tags=["board"])},
        "/manage": {"get": _op(
            "manager dashboard (HTML): sign-in form until a manager or admin signs in; live figures per field, counter and clerk, "
            "charts, exports, late dossiers, device health and alerts. A signed-in clerk gets 403 (the page, or JSON when asked for)",
            _responses("HTML page") | {"403": {"description": "signed in as a clerk (HTML page, or the JSON error to Accept: application/json)"}}, tags=["dashboard"],
        )},
        "/manage/static/{filename}": {"get": _op("the dashboard's script, style and vendored Chart.js (with its licence)", _responses("file", 404), tags=["dashboard"], params=[_path_param("filename", "file name, e.g. vendor/chart.umd.min.js")])},
        "/api/v1/stats/breakdown": {"get": _op(
            "the dashboard's figures for a period (default today): tickets, ratings, dossiers and the Decision 766 5.4 score, overall "
            "and per field / counter / clerk (as /api/v1/stats/daily computes them), with names, and the chart series: arrivals and "
            "average wait by hour, satisfaction % by day, clerks side by side; `live` says whether the period includes today",
            _responses("figures and series", 400, 401, 403), security=USER, tags=["stats"],
            params=[{"name": n, "in": "query", "required": False, "schema": {"type": "string", "format": "date"}, "description": "default: today"} for n in ("from", "to")],
        )},
    }
    for action, summary in COUNTER_ACTIONS.items():
        paths[f"/api/v1/counters/{{counter_id}}/{action}"] = {"post": _op(
            summary, _responses("counter after the action", 401, 403, 404, 409, 422), security=USER, tags=["counters"],
            params=[_path_param("counter_id", "counter id")],
        )}
    for action in ("return", "pause", "resume"):
        paths[f"/api/v1/dossiers/{{code}}/{action}"] = {"post": _op(
            {"return": "the result was returned to the citizen", "pause": "waiting for the citizen's documents: the clock stops",
             "resume": "documents supplied: the clock runs again"}[action] + " (optional body {on: date})",
            _responses("the dossier", 400, 401, 403, 404, 409, 422), security=USER, tags=["dossiers"], params=[_path_param("code", "dossier code")],
        )}
    # Whatever writes (every POST; a signed-in GET records a refused role) may find the disk full.
    for item in paths.values():
        for method, operation in item.items():
            if method == "post" or "security" in operation:
                operation["responses"].setdefault(
                    "507", {"description": "the server's disk is full: nothing was saved, try again later", **_json(ERROR)})
    schemas = {model.__name__: model.model_json_schema(ref_template="#/components/schemas/{model}") for model in (TicketIn, RatingIn, TransferIn, DossierIn, DayIn, LoginIn, RescheduleIn, UserIn, UserChangeIn, PasswordIn)}
    schemas["Alert"] = ALERT_SCHEMA
    schemas["Alerts"] = {
        "type": "object",
        "properties": {"active": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}},
                       "recent": {"type": "array", "items": {"$ref": "#/components/schemas/Alert"}}},
        "required": ["active", "recent"],
    }
    schemas["Error"] = {
        "type": "object",
        "properties": {"error": {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}}, "required": ["code", "message"]}},
        "required": ["error"],
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "motcua queue server", "version": "1", "description": "Tickets, counters, ratings, dossiers and figures of a one-stop centre."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "deviceToken": {"type": "http", "scheme": "bearer", "description": "token from `motcua token create --device ID`"},
                "session": {"type": "apiKey", "in": "cookie", "name": "session", "description": "set by POST /api/v1/login"},
            },
        },
    }
