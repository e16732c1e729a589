"""Exports: daily totals (CSV, XLSX, PDF) for managers; late dossiers and apology slips for clerks."""
from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

from flask import Blueprint, jsonify, request, send_file

from ..domain.errors import NotFound
from ..exports import jobs
from ..exports.apology import ApologySlip, apology_pdf
from ..exports.late import late_dossiers
from ..exports.scheduled import scheduled_status
from . import ApiError, parse_day, require_role, service

bp = Blueprint("exports", __name__, url_prefix="/api/v1")

# Returned-late dossiers listed by default: the last month's.
LATE_LOOKBACK_DAYS = 30


def _file(content: bytes, mimetype: str, filename: str, *, attachment: bool = True):
    response = send_file(io.BytesIO(content), mimetype=mimetype, as_attachment=attachment, download_name=filename,
                         etag=False, conditional=False, max_age=0)
    # Figures change all day long: never serve yesterday's file from a cache.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/exports/daily-totals")
@require_role("manager")
def daily_totals():
    first = parse_day(request.args.get("from"), "from")
    last = parse_day(request.args.get("to"), "to")
    fmt = request.args.get("format", "csv")
    if fmt not in jobs.FORMATS:
        raise ApiError(400, "invalid_input", "'format' phải là csv, xlsx hoặc pdf / 'format' must be csv, xlsx or pdf")
    export = jobs.daily_totals_export(service(), first, last, fmt)
    return _file(export.content, export.mimetype, export.filename)


@bp.get("/exports/scheduled")
@require_role("manager")
def scheduled():
    """The scheduled export's settings and its latest runs (files written, failures and why)."""
    svc = service()
    return jsonify(scheduled_status(svc, Path(svc.store.path).parent))


@bp.get("/dossiers/late")
@require_role("clerk")
def late():
    """Open and overdue now, and returned late since ?since= (default: the last 30 days)."""
    svc = service()
    today = svc.today()
    since_text = request.args.get("since")
    since = parse_day(since_text, "since") if since_text is not None else today - timedelta(days=LATE_LOOKBACK_DAYS)
    if since > today:
        raise ApiError(400, "invalid_input", "'since' không được sau hôm nay / 'since' must not be after today")
    found = late_dossiers(svc.store.dossiers_touching(since, today), svc.calendar, today, since)
    items = []
    for dossier, status, days in found:
        view = svc.dossier_view(dossier)
        field = svc.config.field(dossier.field_id)
        view.update({
            "status": status,  # overdue: still open past its date; late: returned after it
            "working_days_late": days,
            "field_name": field.name.model_dump() if field else None,
            "apology_url": f"/api/v1/dossiers/{dossier.code}/apology.pdf" if status == "overdue" else None,
        })
        items.append(view)
    return jsonify({"today": today.isoformat(), "since": since.isoformat(),
                    "overdue": sum(1 for _, status, _ in found if status == "overdue"),
                    "returned_late": sum(1 for _, status, _ in found if status == "late"), "dossiers": items})


@bp.get("/dossiers/<code>/apology.pdf")
@require_role("clerk")
def apology(code: str):
    """The apology slip, with the reason and the new date the dossier was rescheduled with
    (POST /api/v1/dossiers/{code}/reschedule); for a dossier never rescheduled, the older
    way still works: both given as ?reason=&new_date=."""
    svc = service()
    dossier = svc.store.get_dossier(code)
    if dossier is None:
        raise NotFound("unknown_dossier", f"Không có hồ sơ {code} / Unknown dossier {code}")
    # The stored values win: the slip handed to the citizen says what the record says.
    reason = dossier.delay_reason if dossier.delay_reason is not None else request.args.get("reason")
    if reason is None:
        raise ApiError(400, "invalid_input", "Thiếu tham số 'reason' / Missing parameter 'reason'")
    new_date = dossier.new_due_on or parse_day(request.args.get("new_date"), "new_date")
    field = svc.config.field(dossier.field_id)
    slip = ApologySlip(
        centre_name=svc.config.site.name.vi, dossier=dossier, field_name=field.name.vi if field else dossier.field_id,
        reason=reason, new_date=new_date, issued_on=svc.today(),
    )
    content = apology_pdf(slip)
    # Inline: the clerk's browser opens it to print; the name still says which dossier it is.
    return _file(content, "application/pdf", f"phieu-xin-loi_{dossier.code}.pdf", attachment=False)
