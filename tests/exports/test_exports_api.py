"""The exports over HTTP: roles, content types, file names, errors; and `motcua export`."""
from __future__ import annotations

import argparse
import csv
import io
import re
from datetime import date

import pytest
from openpyxl import load_workbook

from queue_server.api import exports as exports_api
from queue_server.api import openapi
from queue_server.domain.counters import Action
from tests.api.conftest import assert_error
from tests.api.test_openapi import documented_operations, routed_operations
from tests.exports.conftest import pdf_text

DAY = "2026-11-23"  # the test clock's Monday
TOTALS = f"/api/v1/exports/daily-totals?from={DAY}&to={DAY}"


@pytest.fixture
def seeded(service, clock):
    """Two served and rated tickets today, and three dossiers: overdue, within time, returned late."""
    for _ in range(2):
        service.issue_ticket("dat-dai")
        clock.advance(minutes=4)
        service.counter_action("quay-1", Action.NEXT, clerk_id="nguyen-van-an")
        clock.advance(minutes=6)
        service.counter_action("quay-1", Action.FINISH)
        clock.advance(seconds=10)
        service.record_rating("quay-1", "very_satisfied")
    service.receive_dossier("HS-1", "Đăng ký khai sinh", "ho-tich", received_on=date(2026, 11, 2), due_date=date(2026, 11, 9))
    service.receive_dossier("HS-2", "Đăng ký kết hôn", "ho-tich", received_on=date(2026, 11, 2), due_date=date(2026, 11, 30))
    service.receive_dossier("HS-3", "Cấp đổi Giấy chứng nhận", "dat-dai", received_on=date(2026, 11, 2), due_date=date(2026, 11, 6))
    service.return_dossier("HS-3", returned_on=date(2026, 11, 20))


def test_a_clerk_gets_403_on_exports_and_nobody_signed_in_gets_401(clerk, client):
    for fmt in ("csv", "xlsx", "pdf"):
        assert_error(clerk.get(f"{TOTALS}&format={fmt}"), 403, "forbidden")
        assert_error(client.get(f"{TOTALS}&format={fmt}"), 401, "login_required")


@pytest.mark.parametrize("fmt, mimetype", [
    ("csv", "text/csv"),
    ("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("pdf", "application/pdf"),
])
def test_a_manager_downloads_each_format(manager, seeded, fmt, mimetype, tmp_path):
    response = manager.get(f"{TOTALS}&format={fmt}")
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == mimetype
    assert response.headers["Content-Disposition"] == f"attachment; filename=bao-cao-tong-hop_hcc-test_{DAY}_{DAY}.{fmt}"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_data()
    if fmt == "csv":
        assert response.mimetype_params == {"charset": "utf-8"}
        rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
        overall = next(row for row in rows if row["Phân loại / Breakdown"] == "overall")
        assert overall["Số phát / Issued"] == "2" and overall["Rất hài lòng / Very satisfied"] == "2"
        assert overall["Quá hạn / Overdue"] == "1" and overall["Trong hạn / Within time"] == "1"
    elif fmt == "xlsx":
        sheet = load_workbook(io.BytesIO(body))["Tổng hợp"]
        header = [cell.value for cell in sheet[1]]
        assert sheet.cell(2, header.index("Số phát / Issued") + 1).value == 2
    else:
        assert "BÁO CÁO TỔNG HỢP" in pdf_text(body, tmp_path)


@pytest.mark.parametrize("query, code", [
    (f"from={DAY}&to={DAY}&format=docx", "invalid_input"),
    (f"to={DAY}&format=csv", "invalid_input"),
    (f"from=23/11/2026&to={DAY}", "invalid_input"),
    (f"from={DAY}&to=2026-11-01", "bad_range"),
    ("from=2025-01-01&to=2026-11-23", "range_too_long"),
])
def test_bad_export_requests_are_400(manager, query, code):
    assert_error(manager.get(f"/api/v1/exports/daily-totals?{query}"), 400, code)


def test_the_late_list_has_overdue_and_returned_late_dossiers(clerk, seeded):
    response = clerk.get("/api/v1/dossiers/late")
    assert response.status_code == 200
    body = response.get_json()
    assert body["today"] == DAY and body["since"] == "2026-10-24"
    assert (body["overdue"], body["returned_late"]) == (1, 1)
    overdue, late = body["dossiers"]
    assert overdue["code"] == "HS-1" and overdue["status"] == "overdue" and overdue["working_days_late"] == 10
    assert overdue["apology_url"] == "/api/v1/dossiers/HS-1/apology.pdf"
    assert overdue["field_name"] == {"vi": "Hộ tịch", "en": "Civil status"} and overdue["due_date"] == "2026-11-09"
    assert late["code"] == "HS-3" and late["status"] == "late" and late["apology_url"] is None
    assert clerk.get("/api/v1/dossiers/late?since=2026-11-21").get_json()["returned_late"] == 0
    assert_error(clerk.get("/api/v1/dossiers/late?since=2026-11-24"), 400, "invalid_input")


def test_the_late_route_does_not_hide_a_dossier_lookup(clerk, seeded):
    assert clerk.get("/api/v1/dossiers/HS-2").get_json()["code"] == "HS-2"


def test_a_clerk_prints_the_apology_slip(clerk, seeded, tmp_path):
    response = clerk.get("/api/v1/dossiers/HS-1/apology.pdf?reason=Chờ ý kiến của Sở Tư pháp&new_date=2026-11-27")
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == "inline; filename=phieu-xin-loi_HS-1.pdf"
    text = pdf_text(response.get_data(), tmp_path)
    for phrase in ("PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ", "Mã hồ sơ: HS-1", "Đăng ký khai sinh", "Lĩnh vực: Hộ tịch",
                   "09/11/2026", "Lý do chậm trễ: Chờ ý kiến của Sở Tư pháp", "ngày 27 tháng 11 năm 2026",
                   "TRUNG TÂM PHỤC VỤ HÀNH CHÍNH CÔNG (THỬ)"):
        assert phrase in text, phrase


def test_apology_slip_errors(clerk, client, seeded):
    slip = "/api/v1/dossiers/{}/apology.pdf?reason=Thiếu hồ sơ&new_date={}"
    assert_error(clerk.get(slip.format("HS-404", "2026-11-27")), 404, "unknown_dossier")
    assert_error(clerk.get(slip.format("HS-3", "2026-11-27")), 409, "already_returned")
    assert_error(clerk.get(slip.format("HS-1", "2026-11-09")), 400, "invalid_new_date")
    assert_error(clerk.get(slip.format("HS-1", "27/11/2026")), 400, "invalid_input")
    assert_error(clerk.get("/api/v1/dossiers/HS-1/apology.pdf?new_date=2026-11-27"), 400, "invalid_input")
    assert_error(clerk.get("/api/v1/dossiers/HS-1/apology.pdf?reason=%20&new_date=2026-11-27"), 400, "invalid_reason")
    assert_error(client.get(slip.format("HS-1", "2026-11-27")), 401, "login_required")


def test_a_filename_with_non_ascii_code_is_still_a_valid_header(clerk, service):
    service.receive_dossier("HS-Đ1", "Chứng thực bản sao", "ho-tich", received_on=date(2026, 11, 2), due_date=date(2026, 11, 9))
    response = clerk.get("/api/v1/dossiers/HS-Đ1/apology.pdf?reason=Thiếu bản chính&new_date=2026-11-27")
    assert response.status_code == 200
    disposition = response.headers["Content-Disposition"]
    assert disposition.isascii() and "filename*=UTF-8''phieu-xin-loi_HS-%C4%901.pdf" in disposition


# --- the exports routes in the OpenAPI document -------------------------------------------------------


def test_the_openapi_document_covers_exactly_the_blueprints_routes(server):
    prefix = exports_api.bp.name + "."
    routed = {
        (re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule), method.lower())
        for rule in server.app.url_map.iter_rules() if rule.endpoint.startswith(prefix)
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    exports_paths = {"/api/v1/exports/daily-totals", "/api/v1/exports/scheduled", "/api/v1/dossiers/late",
                     "/api/v1/dossiers/{code}/apology.pdf"}
    document = openapi.openapi_document()
    proposed = documented_operations({"paths": {path: document["paths"][path] for path in exports_paths}})
    assert routed == proposed
    assert routed <= routed_operations(server.app)


# --- motcua export ------------------------------------------------------------------------------------


def test_the_export_command_writes_the_file(tmp_path, capsys):
    from queue_server.cli import write_sample_config
    from queue_server.exports.command import add_export_command

    site = tmp_path / "site.toml"
    write_sample_config(site)
    parser = argparse.ArgumentParser(prog="motcua")
    add_export_command(parser.add_subparsers(dest="command", required=True))
    target = tmp_path / "out.xlsx"
    args = parser.parse_args(["export", "--from", "2026-11-01", "--to", "2026-11-30", "--format", "xlsx", "-o", str(target), "--config", str(site)])
    assert args.handler(args) == 0
    assert load_workbook(target).sheetnames == ["Tổng hợp", "Lĩnh vực", "Quầy", "Cán bộ"]
    args = parser.parse_args(["export", "--from", "2026-11-30", "--to", "2026-11-01", "--config", str(site)])
    assert args.handler(args) == 1 and "bad_range" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["export", "--from", "30/11/2026", "--to", "2026-11-01", "--config", str(site)])
