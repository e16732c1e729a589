"""Daily totals exports on three generated months: every exported number equals the figure recomputed
from the append-only history alone; the XLSX opens and adds up; the PDF renders in Vietnamese."""
from __future__ import annotations

import copy
import csv
import io
from datetime import date, datetime

import pytest
from openpyxl import load_workbook

from queue_server.domain.figures import period_figures
from queue_server.exports import daily_totals
from queue_server.exports.daily_totals import ExportMismatch, build_tables, minutes
from queue_server.exports.jobs import daily_totals_export, load_period
from queue_server.exports.periods import days_of
from tests.exports.conftest import MONTHS_FIRST, MONTHS_LAST, pdf_fonts, pdf_text, render_pages

SHEETS = ["Tổng hợp", "Lĩnh vực", "Quầy", "Cán bộ"]

# Exported column (by its bilingual header) -> where the same number is in a figures dict.
TICKET_HEADERS = {
    "Số phát / Issued": lambda f: f["tickets"]["issued"],
    "Đã phục vụ / Served": lambda f: f["tickets"]["served"],
    "Vắng mặt / No-show": lambda f: f["tickets"]["no_show"],
    "Đã gọi / Called": lambda f: f["tickets"]["called"],
    "Đúng hẹn % / Within target %": lambda f: f["tickets"]["within_target_pct"],
    "Chờ TB (phút) / Avg wait (min)": lambda f: minutes(f["tickets"]["avg_wait_s"]),
    "Chờ P90 (phút) / P90 wait (min)": lambda f: minutes(f["tickets"]["p90_wait_s"]),
    "Phục vụ TB (phút) / Avg service (min)": lambda f: minutes(f["tickets"]["avg_service_s"]),
    "Rất hài lòng / Very satisfied": lambda f: f["ratings"]["by_level"]["very_satisfied"],
    "Hài lòng / Satisfied": lambda f: f["ratings"]["by_level"]["satisfied"],
    "Không hài lòng / Unsatisfied": lambda f: f["ratings"]["by_level"]["unsatisfied"],
    "Lượt đánh giá / Ratings counted": lambda f: f["ratings"]["counted"],
    "Hài lòng % / Satisfaction %": lambda f: f["ratings"]["satisfaction_pct"],
    "Chỉ số (0–100) / Index (0–100)": lambda f: f["ratings"]["index"],
    "Bấm không tính / Presses not counted": lambda f: f["ratings"]["flagged"],
}
DOSSIER_HEADERS = {
    "HS tiếp nhận / Dossiers received": lambda f: f["dossiers"]["received"]["total"],
    "Trực tuyến / Online": lambda f: f["dossiers"]["received"]["online"],
    "Trực tiếp / In person": lambda f: f["dossiers"]["received"]["in_person"],
    "Kỳ trước chuyển sang / Carried over": lambda f: f["dossiers"]["received"]["carried_over"],
    "Đã giải quyết / Resolved": lambda f: f["dossiers"]["resolved"]["total"],
    "Trước hạn / Early": lambda f: f["dossiers"]["resolved"]["early"],
    "Đúng hạn / On time": lambda f: f["dossiers"]["resolved"]["on_time"],
    "Trễ hạn / Late": lambda f: f["dossiers"]["resolved"]["late"],
    "Đang giải quyết / Still open": lambda f: f["dossiers"]["open"]["total"],
    "Trong hạn / Within time": lambda f: f["dossiers"]["open"]["within_time"],
    "Quá hạn / Overdue": lambda f: f["dossiers"]["open"]["overdue"],
    "Đúng hạn % / On time %": lambda f: f["dossiers"]["on_time_pct"],
}
GRADING_HEADERS = {"Điểm 5.4 (QĐ 766) % / Decision 766 indicator 5.4 %": lambda f: f["grading_766"]["score_pct"]}
OVERALL_HEADERS = TICKET_HEADERS | DOSSIER_HEADERS | GRADING_HEADERS
# Columns whose totals row is a SUM of the day rows.
SUMMED = ["Số phát / Issued", "Đã phục vụ / Served", "Vắng mặt / No-show", "Rất hài lòng / Very satisfied",
          "Không hài lòng / Unsatisfied", "Lượt đánh giá / Ratings counted", "Trực tuyến / Online",
          "Đã giải quyết / Resolved", "Trễ hạn / Late"]


@pytest.fixture(scope="module")
def from_history(months, months_history) -> dict:
    """Figures recomputed from the history only: the whole period, and each day on its own."""
    tickets, ratings, dossiers = months_history
    config = months.config
    return {
        "period": months.service.figures_from_history(MONTHS_FIRST, MONTHS_LAST),
        "days": {day: period_figures(config, day, day, tickets, ratings, dossiers) for day in days_of(MONTHS_FIRST, MONTHS_LAST)},
    }


@pytest.fixture(scope="module")
def xlsx(months):
    export = daily_totals_export(months.service, MONTHS_FIRST, MONTHS_LAST, "xlsx")
    return load_workbook(io.BytesIO(export.content))


def _by_header(sheet) -> dict[str, int]:
    return {cell.value: cell.column for cell in sheet[1]}


def test_the_tables_match_the_store_and_the_history_alike(months, from_history):
    figures = load_period(months.service, MONTHS_FIRST, MONTHS_LAST)
    assert figures.period == from_history["period"]
    for day_figures in figures.days:
        day = date.fromisoformat(day_figures["day"])
        assert {k: v for k, v in day_figures.items() if k != "day"} == from_history["days"][day], day


def test_csv_has_a_bom_bilingual_headers_and_every_row(months, from_history):
    export = daily_totals_export(months.service, MONTHS_FIRST, MONTHS_LAST, "csv")
    assert export.mimetype == "text/csv; charset=utf-8"
    assert export.filename == "bao-cao-tong-hop_hcc-nam_2026-01-01_2026-03-31.csv"
    assert export.content.startswith(b"\xef\xbb\xbf")  # Excel then reads the Vietnamese as UTF-8
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    header, body = rows[0], rows[1:]
    assert header[:4] == ["Phân loại / Breakdown", "Mã / Id", "Tên / Name", "Ngày / Day"]
    assert all(" / " in name for name in header)
    position = {name: i for i, name in enumerate(header)}
    overall = [row for row in body if row[0] == "overall"]
    assert [row[3] for row in overall] == [d.isoformat() for d in days_of(MONTHS_FIRST, MONTHS_LAST)]
    for row in overall:
        expected = from_history["days"][date.fromisoformat(row[3])]
        for name, value_of in OVERALL_HEADERS.items():
            value = value_of(expected)
            assert row[position[name]] == ("" if value is None else str(value)), (row[3], name)
    fields = [row for row in body if row[0] == "field"]
    for row in fields:
        expected = from_history["days"][date.fromisoformat(row[3])]["by_field"][row[1]]
        assert row[2] == months.config.field(row[1]).name.vi
        for name, value_of in (TICKET_HEADERS | DOSSIER_HEADERS).items():
            value = value_of(expected)
            assert row[position[name]] == ("" if value is None else str(value)), (row[1], row[3], name)
    # Breakdown rows of days when nothing happened in that group are left out, and only those.
    assert {row[0] for row in body} == {"overall", "field", "counter", "clerk"}
    counter_days = {(row[1], row[3]) for row in body if row[0] == "counter"}
    for day, figures in from_history["days"].items():
        for counter_id, counter_figures in figures["by_counter"].items():
            active = counter_figures["tickets"]["issued"] or counter_figures["ratings"]["counted"] or counter_figures["ratings"]["flagged"]
            assert ((counter_id, day.isoformat()) in counter_days) == bool(active), (counter_id, day)
    # Dossier columns are empty where a breakdown has no dossiers.
    assert all(row[position["Quá hạn / Overdue"]] == "" for row in body if row[0] in ("counter", "clerk"))


def test_xlsx_opens_with_one_formatted_sheet_per_breakdown(xlsx):
    assert xlsx.sheetnames == SHEETS
    for sheet in xlsx.worksheets:
        header = sheet[1]
        assert all(cell.font.bold for cell in header) and header[0].value == "Ngày / Day"
        assert sheet.freeze_panes in ("B2", "D2")
        assert sheet.column_dimensions["A"].width == 12
        totals = sheet[sheet.max_row]
        assert totals[0].value == "Tổng cộng / Total" and all(cell.font.bold for cell in totals if cell.value is not None)
    overall = xlsx["Tổng hợp"]
    columns = _by_header(overall)
    assert isinstance(overall.cell(2, 1).value, datetime) and overall.cell(2, 1).number_format == "dd/mm/yyyy"
    pct = columns["Đúng hẹn % / Within target %"]
    working_day = next(row for row in range(2, overall.max_row) if overall.cell(row, pct).value is not None)
    assert overall.cell(working_day, pct).number_format == "0.0"
    assert overall.cell(working_day, columns["Số phát / Issued"]).value > 0


def test_xlsx_overall_sheet_equals_the_history_and_its_sums_are_right(xlsx, from_history):
    sheet = xlsx["Tổng hợp"]
    columns = _by_header(sheet)
    days = days_of(MONTHS_FIRST, MONTHS_LAST)
    assert sheet.max_row == 1 + len(days) + 1  # header, every day, totals
    for row_number, day in enumerate(days, start=2):
        assert sheet.cell(row_number, 1).value.date() == day
        for name, value_of in OVERALL_HEADERS.items():
            assert sheet.cell(row_number, columns[name]).value == value_of(from_history["days"][day]), (day, name)
    period = from_history["period"]
    total_row = sheet.max_row
    for name in SUMMED:
        column = columns[name]
        letter = sheet.cell(1, column).column_letter
        assert sheet.cell(total_row, column).value == f"=SUM({letter}2:{letter}{total_row - 1})"
        day_values = [sheet.cell(r, column).value for r in range(2, total_row)]
        assert sum(day_values) == OVERALL_HEADERS[name](period), name
    # Ratios, stocks and averages of the totals row are the period's own figures.
    for name in ("Đúng hẹn % / Within target %", "Hài lòng % / Satisfaction %", "Đúng hạn % / On time %",
                 "Kỳ trước chuyển sang / Carried over", "Đang giải quyết / Still open", "Quá hạn / Overdue",
                 "HS tiếp nhận / Dossiers received", "Chờ P90 (phút) / P90 wait (min)",
                 "Điểm 5.4 (QĐ 766) % / Decision 766 indicator 5.4 %"):
        assert sheet.cell(total_row, columns[name]).value == OVERALL_HEADERS[name](period), name


@pytest.mark.parametrize("sheet_name, key", [("Lĩnh vực", "by_field"), ("Quầy", "by_counter"), ("Cán bộ", "by_clerk")])
def test_xlsx_breakdown_sheets_add_up_to_the_history(xlsx, from_history, sheet_name, key):
    sheet = xlsx[sheet_name]
    columns = _by_header(sheet)
    period_groups = from_history["period"][key]
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    day_rows = [row for row in rows if isinstance(row[0], datetime)]
    period_rows = [row for row in rows if row[0] == "Cả kỳ / Period"]
    assert len(period_rows) == len(period_groups) and len(rows) == len(day_rows) + len(period_rows) + 1
    for row in day_rows:
        expected = from_history["days"][row[0].date()][key][row[1]]
        for name, value_of in TICKET_HEADERS.items():
            assert row[columns[name] - 1] == value_of(expected), (row[0], row[1], name)
    for row in period_rows:
        for name, value_of in TICKET_HEADERS.items():
            assert row[columns[name] - 1] == value_of(period_groups[row[1]]), (row[1], name)
    total_row = sheet.max_row
    for name in ("Số phát / Issued", "Đã phục vụ / Served", "Lượt đánh giá / Ratings counted", "Không hài lòng / Unsatisfied"):
        column = columns[name]
        letter = sheet.cell(1, column).column_letter
        assert sheet.cell(total_row, column).value == f"=SUM({letter}2:{letter}{1 + len(day_rows)})"
        assert sum(row[column - 1] for row in day_rows) == sum(TICKET_HEADERS[name](g) for g in period_groups.values())
    if key == "by_field":  # every ticket has a field: the fields add up to the whole centre
        assert sum(row[columns["Số phát / Issued"] - 1] for row in day_rows) == from_history["period"]["tickets"]["issued"]
        assert sheet.cell(total_row, columns["Quá hạn / Overdue"]).value == from_history["period"]["dossiers"]["open"]["overdue"]


def test_a_day_row_that_does_not_add_up_is_never_exported(months):
    figures = load_period(months.service, date(2026, 3, 2), date(2026, 3, 6))
    tampered = copy.deepcopy(figures)
    tampered.days[2]["tickets"]["issued"] += 1
    build_tables(months.config, figures)
    with pytest.raises(ExportMismatch, match="overall.issued"):
        build_tables(months.config, tampered)


def test_pdf_report_renders_with_vietnamese_intact(months, from_history, tmp_path):
    export = daily_totals_export(months.service, MONTHS_FIRST, MONTHS_LAST, "pdf")
    assert export.mimetype == "application/pdf" and export.content.startswith(b"%PDF-")
    pages = render_pages(export.content, tmp_path)
    assert pages and all(page.stat().st_size > 2_000 for page in pages)
    text = pdf_text(export.content, tmp_path)
    for phrase in ("BÁO CÁO TỔNG HỢP", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc",
                   "Kỳ báo cáo: từ ngày 01/01/2026 đến ngày 31/03/2026", "Số hồ sơ tiếp nhận", "Kỳ trước chuyển sang",
                   "Đất đai", "Hộ tịch", "Đăng ký kinh doanh", "Rất hài lòng", "Hài lòng", "Không hài lòng",
                   "Trễ hạn", "Quá hạn", "Quyết định 766/QĐ-TTg", "Nguyễn Văn An", "Vũ Minh Đức"):
        assert phrase in text, phrase
    period = from_history["period"]
    received = f"{period['dossiers']['received']['total']:,}".replace(",", ".")
    satisfaction = f"{period['ratings']['satisfaction_pct']:.1f}".replace(".", ",")
    assert received in text and f"{satisfaction}%" in text
    fonts = pdf_fonts(export.content, tmp_path)
    assert "DejaVuSans" in fonts and "Helvetica" not in fonts and "Times" not in fonts, fonts


def test_pdf_bytes_do_not_depend_on_when_they_are_made(months):
    first = daily_totals_export(months.service, date(2026, 3, 2), date(2026, 3, 2), "pdf")
    again = daily_totals_export(months.service, date(2026, 3, 2), date(2026, 3, 2), "pdf")
    assert first.content == again.content


def test_one_day_exports_in_every_format(months, tmp_path):
    day = date(2026, 3, 2)
    for fmt in ("csv", "xlsx", "pdf"):
        export = daily_totals_export(months.service, day, day, fmt)
        assert export.filename == f"bao-cao-tong-hop_hcc-nam_2026-03-02_2026-03-02.{fmt}"
    workbook = load_workbook(io.BytesIO(daily_totals_export(months.service, day, day, "xlsx").content))
    assert workbook["Tổng hợp"].max_row == 3  # header, the day, totals


def test_csv_writer_handles_an_empty_breakdown(months):
    figures = load_period(months.service, date(2026, 2, 16), date(2026, 2, 16))  # Tết: no tickets
    tables = daily_totals.build_tables(months.config, figures)
    assert [len(t.day_rows) for t in tables][2:] == [0, 0]  # no counter or clerk worked
    rows = list(csv.reader(io.StringIO(daily_totals.to_csv(months.config, tables).decode("utf-8-sig"))))
    assert {row[0] for row in rows[1:]} == {"overall", "field"}  # open dossiers still count per field
    workbook = load_workbook(io.BytesIO(daily_totals.to_xlsx(months.config, tables, figures.first, figures.last)))
    assert workbook["Quầy"].max_row == 1 + len(months.config.counters) + 1
