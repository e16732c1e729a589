"""The small XLSX writer (queue_server/exports/xlsx.py), read back with openpyxl: values of every kind,
styles, widths, the frozen header, the document's properties; and what it refuses."""
from __future__ import annotations

import io
import zipfile
from datetime import date, datetime, timezone

import pytest
from openpyxl import load_workbook

from queue_server.exports.xlsx import CellStyle, Formula, Workbook, column_letter


def read(content: bytes):
    return load_workbook(io.BytesIO(content))


def test_values_of_every_kind_read_back_as_written() -> None:
    book = Workbook(title="Báo cáo & <thử>", creator="motcua")
    sheet = book.add_sheet("Tổng hợp", [12, 30, 10], frozen_cell="B2")
    day_style = book.style(CellStyle("dd/mm/yyyy"))
    decimal = book.style(CellStyle("0.0"))
    sheet.append(["Ngày / Day", "Tên / Name", "Số / Count"], [None, None, None])
    sheet.append([date(2026, 3, 2), "Nguyễn Văn An", 1250], [day_style, None, None])
    sheet.append([date(2028, 2, 29), "  lề & <b>\"đậm\"</b>  ", 91.3], [day_style, None, decimal])
    sheet.append([None, "=1+1", 0.1 + 0.2], [day_style, None, None])
    sheet.append([None, "ký tự\x07 điều khiển", Formula("SUM(C2:C4)")], [None, None, None])
    content = book.content(now=datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))

    workbook = read(content)
    assert workbook.sheetnames == ["Tổng hợp"]
    assert workbook.properties.title == "Báo cáo & <thử>" and workbook.properties.creator == "motcua"
    assert workbook.properties.created == datetime(2026, 11, 23, 2, 0)
    rows = [[cell.value for cell in row] for row in workbook.active.iter_rows()]
    assert rows == [
        ["Ngày / Day", "Tên / Name", "Số / Count"],
        [datetime(2026, 3, 2), "Nguyễn Văn An", 1250],
        [datetime(2028, 2, 29), "  lề & <b>\"đậm\"</b>  ", 91.3],
        [None, "=1+1", 0.3],  # 16 significant digits, as openpyxl wrote them (and spreadsheets keep 15)
        [None, "ký tự điều khiển", "=SUM(C2:C4)"],
    ]
    sheet_read = workbook.active
    assert sheet_read["B4"].data_type == "s"  # text that looks like a formula stays text
    assert sheet_read["C5"].data_type == "f"
    assert sheet_read["A2"].number_format == "dd/mm/yyyy" and sheet_read["C3"].number_format == "0.0"
    assert sheet_read["A4"].number_format == "dd/mm/yyyy"  # an empty formatted cell is kept
    assert sheet_read["C2"].number_format == "General" and sheet_read["C2"].data_type == "n"


def test_styles_widths_and_the_frozen_header() -> None:
    book = Workbook(title="t", creator="motcua")
    header = book.style(CellStyle(bold=True, fill="DDE5F0", wrap=True))
    total = book.style(CellStyle("#,##0", bold=True, fill="FFF2CC", top_border=True))
    assert book.style(CellStyle(bold=True, fill="DDE5F0", wrap=True)) == header  # one id per style
    assert book.style(CellStyle()) == 0
    first = book.add_sheet("Quầy", [10, 22.5], frozen_cell="C2")
    first.append(["Mã quầy / Counter id", "Tổng / Total"], [header, header])
    first.append([None, 12345], [total, total])
    second = book.add_sheet("Cán bộ", [18])
    second.append(["x"], [None])
    book.add_sheet("Hàng", [8], frozen_cell="A3").append(["y"], [None])
    book.add_sheet("Cột", [8], frozen_cell="B1").append(["z"], [None])
    workbook = read(book.content())
    assert workbook.sheetnames == ["Quầy", "Cán bộ", "Hàng", "Cột"]
    sheet = workbook["Quầy"]
    assert sheet.freeze_panes == "C2" and workbook["Cán bộ"].freeze_panes is None
    assert workbook["Hàng"].freeze_panes == "A3" and workbook["Cột"].freeze_panes == "B1"
    assert sheet.column_dimensions["A"].width == 10 and sheet.column_dimensions["B"].width == 22.5
    head = sheet["A1"]
    assert head.font.b and head.fill.fgColor.rgb == "00DDE5F0" and head.alignment.wrap_text and head.alignment.vertical == "top"
    assert sheet["A2"].value is None and sheet["A2"].font.b and sheet["A2"].border.top.style == "thin"
    assert sheet["B2"].number_format == "#,##0" and sheet["B2"].fill.fgColor.rgb == "00FFF2CC"
    assert not sheet["A1"].border.top.style and not workbook["Cán bộ"]["A1"].font.b


def test_the_package_has_the_parts_a_spreadsheet_program_expects() -> None:
    book = Workbook(title="t", creator="motcua")
    book.add_sheet("Một", [10]).append([1], [None])
    book.add_sheet("Hai", [10]).append([2], [None])
    with zipfile.ZipFile(io.BytesIO(book.content())) as package:
        names = set(package.namelist())
        content_types = package.read("[Content_Types].xml").decode()
    assert names == {
        "[Content_Types].xml", "_rels/.rels", "docProps/core.xml", "docProps/app.xml", "xl/workbook.xml",
        "xl/_rels/workbook.xml.rels", "xl/styles.xml", "xl/worksheets/sheet1.xml", "xl/worksheets/sheet2.xml",
    }
    assert all(f'PartName="/{name}"' in content_types for name in names if name.endswith(".xml") and name != "[Content_Types].xml")


def test_column_letters() -> None:
    assert [column_letter(n) for n in (1, 26, 27, 52, 53, 702, 703)] == ["A", "Z", "AA", "AZ", "BA", "ZZ", "AAA"]


def test_what_it_refuses() -> None:
    book = Workbook(title="t", creator="motcua")
    with pytest.raises(ValueError):
        book.add_sheet("Báo cáo tổng hợp theo ngày và lĩnh vực", [10])  # over 31 characters
    with pytest.raises(ValueError):
        book.add_sheet("Quý 1/2026", [10])  # '/' is not allowed in a sheet name
    sheet = book.add_sheet("Sheet", [10])
    with pytest.raises(TypeError):
        sheet.append([datetime(2026, 1, 1, 8, 0)], [None])  # an instant: a report writes local dates
    with pytest.raises(TypeError):
        sheet.append([True], [None])
