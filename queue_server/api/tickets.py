"""Tickets (issue, follow) and rating presses over HTTP; the public config for screens."""
from __future__ import annotations

from flask import Blueprint, g, jsonify, render_template_string, request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ..config import ID_PATTERN
from . import ApiError, parse_body, require_device_or_role, service

bp = Blueprint("tickets", __name__)


class TicketIn(BaseModel):
    model_config = ConfigDict(strict=True)
    field: str = Field(pattern=ID_PATTERN)
    priority: str | None = Field(default=None, pattern=ID_PATTERN)
    lang: str = Field(default="vi", pattern=r"^(vi|en)$")


class RatingIn(BaseModel):
    """The payload of the MQTT rating event."""

    model_config = ConfigDict(strict=True)
    msg_id: str = Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")
    counter: str = Field(pattern=ID_PATTERN)
    level: str = Field(min_length=1, max_length=32)
    ticket: str | None = Field(default=None, min_length=1, max_length=64)
    reasons: list[str] | None = Field(default=None, max_length=8)
    dossier: str | None = Field(default=None, min_length=1, max_length=64)
    at: AwareDatetime


@bp.post("/api/v1/tickets")
@require_device_or_role("clerk")
def issue_ticket():
    body = parse_body(TicketIn)
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (1 <= len(key) <= 128):
        raise ApiError(400, "bad_idempotency_key", "Idempotency-Key: 1–128 ký tự / 1–128 characters")
    scope = f"device:{g.device_id}" if g.get("device_id") else f"user:{g.user['username']}"
    view, created = service().issue_ticket(
        body.field, body.priority, body.lang,
        device_id=g.get("device_id"), idempotency_scope=scope, idempotency_key=key,
    )
    return jsonify(view), 201 if created else 200


@bp.get("/api/v1/tickets/<ticket_id>")
def get_ticket(ticket_id: str):
    svc = service()
    return jsonify(svc.ticket_view(svc.get_ticket(ticket_id)))


@bp.post("/api/v1/ratings")
@require_device_or_role("manager")
def post_rating():
    body = parse_body(RatingIn)
    view, created = service().record_rating(
        body.counter, body.level,
        ticket_id=body.ticket, reasons=body.reasons, device_at=body.at,
        device_id=g.get("device_id"), msg_id=body.msg_id, dossier_code=body.dossier,
    )
    return jsonify(view), 201 if created else 200


@bp.get("/api/v1/config")
def public_config():
    """What kiosks, boards and consoles show: names, fields, counters, scale (no secrets)."""
    config = service().config
    return jsonify({
        "site": {"id": config.site.id, "name": config.site.name.model_dump(), "timezone": config.site.timezone},
        "fields": [f.model_dump(include={"id", "letter", "name", "target_wait_min", "daily_cap", "closed"}) for f in config.fields],
        "counters": [c.model_dump(include={"id", "number", "fields"}) for c in config.counters],
        "rating": {"levels": [lv.model_dump() for lv in config.rating.levels], "window_s": config.rating.window_s},
        "priority": {"policy": config.priority.policy, "reasons": [r.model_dump() for r in config.priority.reasons]},
    })


TICKET_PAGE = """<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{ t.code }} · {{ site.vi }}</title>
<style>body{font-family:system-ui,sans-serif;margin:0;background:#0b3d91;color:#fff;text-align:center}
main{padding:24px}h1{font-size:20px;font-weight:500}.code{font-size:88px;font-weight:800;margin:8px 0}
.row{font-size:22px;margin:10px 0}.en{opacity:.75;font-size:16px}</style></head>
<body><main>
<h1>{{ site.vi }}<br><span class="en">{{ site.en }}</span></h1>
<div class="code" id="code">{{ t.code }}</div>
<div class="row">{{ t.field_name.vi if t.field_name else t.field }}<br><span class="en">{{ t.field_name.en if t.field_name else '' }}</span></div>
<div class="row" id="status" data-id="{{ t.id }}"></div>
</main>
<script>
const vi={waiting:"Đang chờ",called:"Mời đến quầy",serving:"Đang được phục vụ",finished:"Đã phục vụ xong",no_show:"Đã qua lượt"};
const en={waiting:"Waiting",called:"Please go to counter",serving:"Being served",finished:"Served",no_show:"Missed"};
function show(t){let s=vi[t.status]+" / "+en[t.status];
 if(t.status==="waiting"&&t.people_ahead!==null){s+="<br>Còn "+t.people_ahead+" người trước bạn / "+t.people_ahead+" ahead of you";
  s+="<br>Chờ khoảng "+Math.ceil(t.est_wait_s/60)+" phút / about "+Math.ceil(t.est_wait_s/60)+" min";}
 if((t.status==="called"||t.status==="serving")&&t.counter_number)s+=" "+t.counter_number;
 document.getElementById("status").innerHTML=s;}
show({{ t | tojson }});
// A phone follows its own ticket: fetch its JSON now and then, never reload the page.
setInterval(()=>fetch("/api/v1/tickets/{{ t.id }}").then(r=>r.ok?r.json():null).then(t=>t&&show(t)).catch(()=>{}),20000);
</script></body></html>"""


@bp.get("/t/<ticket_id>")
def ticket_page(ticket_id: str):
    svc = service()
    view = svc.ticket_view(svc.get_ticket(ticket_id))
    return render_template_string(TICKET_PAGE, t=view, site=svc.config.site.name.model_dump())
