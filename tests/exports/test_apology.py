"""The apology slip (Phiếu xin lỗi và hẹn lại ngày trả kết quả) and the late-dossier list."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from queue_server.domain import dossiers as dossier_rules
from queue_server.domain.dossiers import OpenStatus, ReturnOutcome
from queue_server.domain.errors import Conflict, InvalidInput
from queue_server.exports.apology import ApologySlip, apology_pdf, vi_long_date
from queue_server.exports.late import OVERDUE, RETURNED_LATE, late_dossiers
from tests.exports.conftest import pdf_fonts, pdf_text, render_pages

CENTRE = "Trung tâm Phục vụ hành chính công tỉnh Ninh Bình"
REASON = "Chờ kết quả xác minh thực địa của Văn phòng đăng ký đất đai"


def overdue_dossier() -> dossier_rules.Dossier:
    return dossier_rules.receive("000.00.12.H42-261102-0042", "Đăng ký biến động quyền sử dụng đất", "dat-dai",
                                 "in_person", date(2026, 11, 2), date(2026, 11, 16))


def slip(**changes) -> ApologySlip:
    values = dict(centre_name=CENTRE, dossier=overdue_dossier(), field_name="Đất đai", reason=REASON,
                  new_date=date(2026, 11, 27), issued_on=date(2026, 11, 23))
    return ApologySlip(**(values | changes))


def test_the_slip_names_the_dossier_the_dates_and_the_reason_in_vietnamese(tmp_path):
    pdf = apology_pdf(slip())
    pages = render_pages(pdf, tmp_path, dpi=72)
    assert len(pages) == 1 and pages[0].stat().st_size > 5_000  # one A4 page, not blank
    text = pdf_text(pdf, tmp_path)
    for phrase in (
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc",
        "PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ", CENTRE.upper(), "ngày 23 tháng 11 năm 2026",
        "Mã hồ sơ: 000.00.12.H42-261102-0042", "Thủ tục hành chính: Đăng ký biến động quyền sử dụng đất",
        "Lĩnh vực: Đất đai", "Ngày tiếp nhận: 02/11/2026", "16/11/2026", f"Lý do chậm trễ: {REASON}",
        "ngày 27 tháng 11 năm 2026", "xin lỗi Ông/Bà", "THỦ TRƯỞNG CƠ QUAN", "Ông/Bà: ……",
    ):
        assert phrase in text, phrase
    fonts = pdf_fonts(pdf, tmp_path)
    assert "DejaVuSans" in fonts and "Helvetica" not in fonts, fonts


def test_the_slip_is_the_same_bytes_every_time():
    assert apology_pdf(slip()) == apology_pdf(slip())


def test_markup_in_the_reason_is_printed_as_typed(tmp_path):
    text = pdf_text(apology_pdf(slip(reason="Thiếu <b>bản vẽ</b> & sơ đồ")), tmp_path)
    assert "Thiếu <b>bản vẽ</b> & sơ đồ" in text


@pytest.mark.parametrize("changes, code", [
    ({"reason": "   "}, "invalid_reason"),
    ({"reason": "x" * 501}, "invalid_reason"),
    ({"new_date": date(2026, 11, 16)}, "invalid_new_date"),  # not after the original date
    ({"new_date": date(2026, 11, 20), "issued_on": date(2026, 11, 23)}, "invalid_new_date"),  # in the past
])
def test_a_slip_that_would_be_wrong_is_refused(changes, code):
    with pytest.raises(InvalidInput) as raised:
        apology_pdf(slip(**changes))
    assert raised.value.code == code


def test_a_returned_dossier_needs_no_new_date():
    returned = dossier_rules.return_result(overdue_dossier(), date(2026, 11, 20))
    with pytest.raises(Conflict) as raised:
        apology_pdf(slip(dossier=returned))
    assert raised.value.code == "already_returned"


def test_vietnamese_long_dates():
    assert vi_long_date(date(2026, 3, 5)) == "ngày 05 tháng 03 năm 2026"


def test_late_list_equals_the_history_on_three_months(months, months_history):
    today = months.service.today()
    since = today - timedelta(days=30)
    found = late_dossiers(months.store.dossiers_touching(since, today), months.service.calendar, today, since)
    calendar = months.service.calendar
    _, _, dossiers = months_history  # independently: every dossier as the history last saw it
    expected_overdue = {d.code for d in dossiers if (d.returned_on is None or d.returned_on > today)
                        and dossier_rules.classify_open(d, calendar, today) is OpenStatus.OVERDUE}
    expected_late = {d.code for d in dossiers if d.returned_on is not None and since <= d.returned_on <= today
                     and dossier_rules.classify_returned(d, calendar) is ReturnOutcome.LATE}
    assert {d.code for d, status, _ in found if status == OVERDUE} == expected_overdue and expected_overdue
    assert {d.code for d, status, _ in found if status == RETURNED_LATE} == expected_late and expected_late
    statuses = [status for _, status, _ in found]
    assert statuses == sorted(statuses, key=lambda status: status != OVERDUE)  # still owed a slip: first
    assert all(days > 0 for _, _, days in found)
