"""A small XLSX (SpreadsheetML) writer for report tables: text, numbers, dates and SUM-style formulas,
a few cell styles, column widths and a frozen header, and nothing else.

openpyxl builds a Python object per cell and passes each through an XML serializer: a year's daily
totals (about 250,000 cells) took it well over a second. Here each row is formatted straight into the
sheet's XML text, a few times faster. The parts and markup are the ones openpyxl writes (numbers as
`%.16g`, dates as serial day numbers, text inline), so spreadsheet programs and openpyxl read the file
as they read openpyxl's.
"""
from __future__ import annotations

import io
import math
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from xml.sax.saxutils import escape

# The number formats Excel knows by id; any other is declared in styles.xml from id 164 on.
BUILTIN_NUMBER_FORMATS = {"General": 0, "0": 1, "0.00": 2, "#,##0": 3, "#,##0.00": 4, "0%": 9, "0.00%": 10, "@": 49}
# Day 0 of spreadsheet dates (1900 date system, as Excel on Windows and openpyxl write them).
EXCEL_EPOCH = date(1899, 12, 30)
# Characters XML 1.0 does not allow (openpyxl refuses them; here they are left out).
_ILLEGAL_CHARACTERS = dict.fromkeys([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])

_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_XML_HEADER = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


class Formula(str):
    """A cell formula without its leading '=', e.g. Formula("SUM(B2:B366)"). Text is never taken for a
    formula, even when it starts with '=' (a clerk's name cannot become one)."""


@dataclass(frozen=True)
class CellStyle:
    number_format: str = "General"
    bold: bool = False
    fill: str | None = None  # solid fill colour, "RRGGBB"
    top_border: bool = False  # a thin line above the cell
    wrap: bool = False  # text wrapped, aligned to the top


def column_letter(number: int) -> str:
    """1 → A, 27 → AA."""
    letters = ""
    while number:
        number, remainder = divmod(number - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def _text(value: str) -> str:
    return escape(value.translate(_ILLEGAL_CHARACTERS))


def _attribute(value: str) -> str:
    return escape(value.translate(_ILLEGAL_CHARACTERS), {'"': "&quot;"})


@dataclass
class Sheet:
    title: str
    widths: list[float]
    frozen_cell: str | None  # the top-left cell of the part that scrolls, e.g. "B2"
    _styles: _Styles
    _rows: list[str] = field(default_factory=list)

    def append(self, values: list, styles: list[int | None]) -> None:
        """One row: a value and a style (from Workbook.style; None: none) per column. A None value is
        written only when it has a style (an empty formatted cell); the values known are text, int,
        float, date and Formula."""
        row_number = len(self._rows) + 1
        letters = self._styles.letters(len(values))
        parts = [f'<row r="{row_number}">']
        for letter, value, style in zip(letters, values, styles):
            attributes = f'r="{letter}{row_number}"' if style is None else f'r="{letter}{row_number}" s="{style}"'
            value_type = type(value)
            if value is None or (value_type is float and (value != value or value in (math.inf, -math.inf))):
                if style is not None:
                    parts.append(f"<c {attributes}/>")
            elif value_type is int or value_type is float:
                parts.append(f'<c {attributes} t="n"><v>{value:.16g}</v></c>')
            elif value_type is Formula:
                parts.append(f"<c {attributes}><f>{_text(value)}</f><v></v></c>")
            elif isinstance(value, str):
                space = ' xml:space="preserve"' if value != value.strip() else ""
                parts.append(f'<c {attributes} t="inlineStr"><is><t{space}>{_text(value)}</t></is></c>')
            elif value_type is date:
                parts.append(f'<c {attributes} t="n"><v>{(value - EXCEL_EPOCH).days}</v></c>')
            else:
                raise TypeError(f"{self.title}!{letter}{row_number}: cannot write {value!r} to a spreadsheet")
        parts.append("</row>")
        self._rows.append("".join(parts))

    def xml(self) -> str:
        column, row = _split_cell(self.frozen_cell) if self.frozen_cell else (1, 1)
        if column == 1 and row == 1:
            view = '<sheetView workbookViewId="0"/>'
        else:
            # Columns left of the cell and rows above it stay in view (the panes as openpyxl writes them).
            splits = (f' xSplit="{column - 1}"' if column > 1 else "") + (f' ySplit="{row - 1}"' if row > 1 else "")
            active = "bottomRight" if column > 1 and row > 1 else "topRight" if column > 1 else "bottomLeft"
            selections = '<selection pane="topRight"/><selection pane="bottomLeft"/>' if active == "bottomRight" else ""
            view = (
                f'<sheetView workbookViewId="0"><pane{splits} topLeftCell="{self.frozen_cell}" activePane="{active}" state="frozen"/>'
                f'{selections}<selection pane="{active}" activeCell="A1" sqref="A1"/></sheetView>'
            )
        columns = "".join(
            f'<col min="{number}" max="{number}" width="{width:g}" customWidth="1"/>' for number, width in enumerate(self.widths, start=1)
        )
        return (
            f'{_XML_HEADER}<worksheet xmlns="{_MAIN_NS}"><sheetPr><outlinePr summaryBelow="1" summaryRight="1"/></sheetPr>'
            f'<sheetViews>{view}</sheetViews><sheetFormatPr baseColWidth="8" defaultRowHeight="15"/>'
            f'{f"<cols>{columns}</cols>" if columns else ""}<sheetData>{"".join(self._rows)}</sheetData>'
            '<pageMargins left="0.75" right="0.75" top="1" bottom="1" header="0.5" footer="0.5"/></worksheet>'
        )


def _split_cell(reference: str) -> tuple[int, int]:
    """"B2" → (2, 2)."""
    letters = reference.rstrip("0123456789")
    column = 0
    for letter in letters:
        column = column * 26 + ord(letter) - 64
    return column, int(reference[len(letters):])


class _Styles:
    """The workbook's cell formats (cellXfs), numbered in the order first used; 0 is the default."""

    def __init__(self) -> None:
        self.ids: dict[CellStyle, int] = {CellStyle(): 0}
        self._letters: list[str] = []

    def add(self, style: CellStyle) -> int:
        self.ids[style] = len(self.ids)
        return self.ids[style]

    def letters(self, count: int) -> list[str]:
        while len(self._letters) < count:
            self._letters.append(column_letter(len(self._letters) + 1))
        return self._letters

    def xml(self) -> str:
        styles = list(self.ids)
        custom_formats: dict[str, int] = {}
        for style in styles:
            if style.number_format not in BUILTIN_NUMBER_FORMATS and style.number_format not in custom_formats:
                custom_formats[style.number_format] = 164 + len(custom_formats)
        fills = [None, "gray125", *dict.fromkeys(style.fill for style in styles if style.fill is not None)]
        number_formats = "".join(f'<numFmt numFmtId="{number}" formatCode="{_attribute(code)}"/>' for code, number in custom_formats.items())
        number_formats = f'<numFmts count="{len(custom_formats)}">{number_formats}</numFmts>' if custom_formats else ""
        fill_xml = "".join(
            "<fill><patternFill/></fill>" if fill is None else
            '<fill><patternFill patternType="gray125"/></fill>' if fill == "gray125" else
            f'<fill><patternFill patternType="solid"><fgColor rgb="00{fill}"/></patternFill></fill>'
            for fill in fills
        )
        formats = []
        for style in styles:
            number_format = BUILTIN_NUMBER_FORMATS.get(style.number_format) or custom_formats.get(style.number_format, 0)
            attributes = (f'numFmtId="{number_format}" fontId="{int(style.bold)}" fillId="{fills.index(style.fill) if style.fill else 0}"'
                          f' borderId="{int(style.top_border)}" xfId="0"')
            applied = "".join(name for name, used in ((' applyNumberFormat="1"', number_format), (' applyFont="1"', style.bold),
                                                      (' applyFill="1"', style.fill), (' applyBorder="1"', style.top_border)) if used)
            if style.wrap:
                formats.append(f'<xf {attributes}{applied} applyAlignment="1"><alignment vertical="top" wrapText="1"/></xf>')
            else:
                formats.append(f"<xf {attributes}{applied}/>")
        font = '<sz val="11"/><color theme="1"/><name val="Calibri"/><family val="2"/><scheme val="minor"/>'
        return (
            f'{_XML_HEADER}<styleSheet xmlns="{_MAIN_NS}">'
            f"{number_formats}"
            f'<fonts count="2"><font>{font}</font><font><b val="1"/>{font}</font></fonts>'
            f'<fills count="{len(fills)}">{fill_xml}</fills>'
            '<borders count="2"><border><left/><right/><top/><bottom/><diagonal/></border>'
            '<border><left/><right/><top style="thin"><color auto="1"/></top><bottom/><diagonal/></border></borders>'
            '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
            f'<cellXfs count="{len(formats)}">{"".join(formats)}</cellXfs>'
            '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>'
        )


class Workbook:
    """Sheets in order; `content()` is the .xlsx file."""

    def __init__(self, title: str, creator: str) -> None:
        self.title, self.creator = title, creator
        self.sheets: list[Sheet] = []
        self._styles = _Styles()

    def style(self, style: CellStyle) -> int:
        """The id a row gives a cell for this style (registered on first use)."""
        style_id = self._styles.ids.get(style)
        return self._styles.add(style) if style_id is None else style_id

    def add_sheet(self, title: str, widths: list[float], frozen_cell: str | None = None) -> Sheet:
        # Excel limits a sheet's name to 31 characters and forbids a few.
        if len(title) > 31 or any(character in title for character in "[]:*?/\\"):
            raise ValueError(f"not a valid sheet name: {title!r}")
        sheet = Sheet(title, widths, frozen_cell, self._styles)
        self.sheets.append(sheet)
        return sheet

    def content(self, now: datetime | None = None) -> bytes:
        stamp = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        sheets = range(1, len(self.sheets) + 1)
        parts = {
            "[Content_Types].xml": (
                f'{_XML_HEADER}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                '<Default Extension="xml" ContentType="application/xml"/>'
                '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
                '<Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
                + "".join(f'<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>' for n in sheets)
                + '<Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
                '<Override PartName="/docProps/app.xml" ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>'
                "</Types>"
            ),
            "_rels/.rels": (
                f'{_XML_HEADER}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                f'<Relationship Id="rId1" Type="{_REL_NS}/officeDocument" Target="xl/workbook.xml"/>'
                '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>'
                f'<Relationship Id="rId3" Type="{_REL_NS}/extended-properties" Target="docProps/app.xml"/>'
                "</Relationships>"
            ),
            "docProps/core.xml": (
                f'{_XML_HEADER}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"'
                ' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/"'
                ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
                f"<dc:title>{_text(self.title)}</dc:title><dc:creator>{_text(self.creator)}</dc:creator>"
                f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
                f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified></cp:coreProperties>'
            ),
            "docProps/app.xml": (
                f'{_XML_HEADER}<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
                "<Application>motcua</Application></Properties>"
            ),
            "xl/workbook.xml": (
                f'{_XML_HEADER}<workbook xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}"><workbookPr/>'
                '<bookViews><workbookView activeTab="0"/></bookViews><sheets>'
                + "".join(f'<sheet name="{_attribute(sheet.title)}" sheetId="{n}" r:id="rId{n}"/>' for n, sheet in zip(sheets, self.sheets))
                + '</sheets><calcPr calcId="124519" fullCalcOnLoad="1"/></workbook>'
            ),
            "xl/_rels/workbook.xml.rels": (
                f'{_XML_HEADER}<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                + "".join(f'<Relationship Id="rId{n}" Type="{_REL_NS}/worksheet" Target="worksheets/sheet{n}.xml"/>' for n in sheets)
                + f'<Relationship Id="rId{len(self.sheets) + 1}" Type="{_REL_NS}/styles" Target="styles.xml"/></Relationships>'
            ),
            "xl/styles.xml": self._styles.xml(),
            **{f"xl/worksheets/sheet{n}.xml": sheet.xml() for n, sheet in zip(sheets, self.sheets)},
        }
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as package:
            for name, text in parts.items():
                package.writestr(name, text.encode("utf-8"))
        return buffer.getvalue()
