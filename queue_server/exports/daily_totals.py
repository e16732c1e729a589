"""Daily totals as tables (per day × overall / field / counter / clerk) and as CSV, XLSX and PDF bytes.

Pure: figures in (from `periods.figures_by_day`), bytes out. One table per breakdown, each with:

- a row per day (the overall sheet has every day of the period; the breakdown sheets leave out a
  group's days on which nothing at all happened in it, e.g. a counter on a Sunday);
- on breakdown sheets, a row per group for the whole period ("Cả kỳ");
- a totals row: columns that add up over days (tickets, ratings, dossiers received and resolved)
  are the sum of the day rows — a SUM formula in the XLSX, checked here against the period's own
  figures; ratios are recomputed from those sums; stocks (carried over, still open) and averages are
  the period's own figures on the overall sheet.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from ..config import Config
from ..domain.figures import percent
from .periods import PeriodFigures

# How a column's totals-row value is made (see the module docstring).
SUM, RATIO, STOCK, MEAN = "sum", "ratio", "stock", "mean"
INT, DEC, TEXT, DAY = "int", "dec", "text", "day"


class ExportMismatch(AssertionError):
    """The day rows do not add up to the period's figures: a bug, never a file to hand out."""


@dataclass(frozen=True)
class Column:
    key: str
    vi: str
    en: str
    kind: str  # INT, DEC, TEXT, DAY
    total: str | None = None  # SUM, RATIO, STOCK, MEAN; None for the label columns
    value: Callable[[dict], object] | None = None  # from one group's figures
    ratio_of: tuple[tuple[str, ...], str] | None = None  # RATIO: (numerator keys, denominator key)
    width: float = 10.0

    @property
    def header(self) -> str:
        return f"{self.vi} / {self.en}"


@dataclass
class Table:
    """One breakdown: its columns, its day rows, its per-group period rows, and its totals row."""

    key: str  # overall, field, counter, clerk
    title_vi: str
    title_en: str
    columns: list[Column]
    day_rows: list[list] = field(default_factory=list)
    period_rows: list[list] = field(default_factory=list)
    total_row: list = field(default_factory=list)

    def index(self, key: str) -> int:
        return next(i for i, column in enumerate(self.columns) if column.key == key)


def minutes(seconds: float | None) -> float | None:
    """Waits and service times are exported in minutes, to one decimal."""
    return None if seconds is None else round(seconds / 60.0, 1)


# --- columns ---------------------------------------------------------------------------------------


def _t(name: str) -> Callable[[dict], object]:
    return lambda figures: figures["tickets"][name]


def _r(name: str) -> Callable[[dict], object]:
    return lambda figures: figures["ratings"][name]


def _d(part: str, name: str | None = None) -> Callable[[dict], object]:
    if name is None:
        return lambda figures: figures["dossiers"][part]
    return lambda figures: figures["dossiers"][part][name]


def _g(name: str) -> Callable[[dict], object]:
    return lambda figures: figures["grading_766"][name]


def ticket_columns() -> list[Column]:
    return [
        Column("issued", "Số phát", "Issued", INT, SUM, _t("issued")),
        Column("priority", "Ưu tiên", "Priority", INT, SUM, _t("priority")),
        Column("served", "Đã phục vụ", "Served", INT, SUM, _t("served")),
        Column("no_show", "Vắng mặt", "No-show", INT, SUM, _t("no_show")),
        Column("waiting", "Còn chờ", "Still waiting", INT, SUM, _t("waiting")),
        Column("called", "Đã gọi", "Called", INT, SUM, _t("called")),
        Column("within_target", "Gọi đúng hẹn", "Called within target", INT, SUM, _t("within_target"), width=12),
        Column("within_target_pct", "Đúng hẹn %", "Within target %", DEC, RATIO, _t("within_target_pct"),
               ratio_of=(("within_target",), "called"), width=12),
        Column("avg_wait_min", "Chờ TB (phút)", "Avg wait (min)", DEC, MEAN, lambda f: minutes(f["tickets"]["avg_wait_s"]), width=12),
        Column("p90_wait_min", "Chờ P90 (phút)", "P90 wait (min)", DEC, MEAN, lambda f: minutes(f["tickets"]["p90_wait_s"]), width=12),
        Column("avg_service_min", "Phục vụ TB (phút)", "Avg service (min)", DEC, MEAN,
               lambda f: minutes(f["tickets"]["avg_service_s"]), width=13),
    ]


def rating_columns(config: Config) -> list[Column]:
    levels = [
        Column(f"rating_{level.id}", level.name.vi, level.name.en, INT, SUM,
               (lambda level_id: lambda f: f["ratings"]["by_level"].get(level_id, 0))(level.id), width=12)
        for level in config.rating.levels
    ]
    return levels + [
        Column("ratings_counted", "Lượt đánh giá", "Ratings counted", INT, SUM, _r("counted"), width=12),
        Column("ratings_satisfied", "Hài lòng (gộp)", "Satisfied (all levels)", INT, SUM, _r("satisfied"), width=12),
        Column("satisfaction_pct", "Hài lòng %", "Satisfaction %", DEC, RATIO, _r("satisfaction_pct"),
               ratio_of=(("ratings_satisfied",), "ratings_counted"), width=12),
        Column("satisfaction_index", "Chỉ số (0–100)", "Index (0–100)", DEC, MEAN, _r("index"), width=12),
        Column("ratings_flagged", "Bấm không tính", "Presses not counted", INT, SUM, _r("flagged"), width=12),
    ]


def dossier_columns() -> list[Column]:
    return [
        Column("dossiers_received", "HS tiếp nhận", "Dossiers received", INT, STOCK, _d("received", "total"), width=12),
        Column("dossiers_new", "HS mới", "New", INT, SUM, _d("received", "new")),
        Column("dossiers_online", "Trực tuyến", "Online", INT, SUM, _d("received", "online")),
        Column("dossiers_in_person", "Trực tiếp", "In person", INT, SUM, _d("received", "in_person")),
        Column("dossiers_carried_over", "Kỳ trước chuyển sang", "Carried over", INT, STOCK, _d("received", "carried_over"), width=13),
        Column("resolved", "Đã giải quyết", "Resolved", INT, SUM, _d("resolved", "total"), width=12),
        Column("resolved_early", "Trước hạn", "Early", INT, SUM, _d("resolved", "early")),
        Column("resolved_on_time", "Đúng hạn", "On time", INT, SUM, _d("resolved", "on_time")),
        Column("resolved_late", "Trễ hạn", "Late", INT, SUM, _d("resolved", "late")),
        Column("open", "Đang giải quyết", "Still open", INT, STOCK, _d("open", "total"), width=13),
        Column("open_within_time", "Trong hạn", "Within time", INT, STOCK, _d("open", "within_time")),
        Column("open_overdue", "Quá hạn", "Overdue", INT, STOCK, _d("open", "overdue")),
        Column("on_time_pct", "Đúng hạn %", "On time %", DEC, RATIO, _d("on_time_pct"),
               ratio_of=(("resolved_early", "resolved_on_time"), "resolved"), width=12),
    ]


def grading_columns() -> list[Column]:
    return [
        Column("score_766", "Điểm 5.4 (QĐ 766) %", "Decision 766 indicator 5.4 %", DEC, MEAN, _g("score_pct"), width=14),
        Column("late_pct_766", "Tỷ lệ trễ hạn %", "Late rate %", DEC, MEAN, _g("late_pct"), width=12),
        Column("unsatisfied_pct_766", "Tỷ lệ không hài lòng %", "Unsatisfied rate %", DEC, MEAN, _g("unsatisfied_pct"), width=14),
    ]


DAY_COLUMN = Column("day", "Ngày", "Day", DAY, width=12)
BREAKDOWNS = (
    # key, figures key, sheet title (vi, en), label columns after the day
    ("overall", None, "Tổng hợp", "Overall"),
    ("field", "by_field", "Lĩnh vực", "Fields"),
    ("counter", "by_counter", "Quầy", "Counters"),
    ("clerk", "by_clerk", "Cán bộ", "Clerks"),
)


def table_columns(config: Config, breakdown: str) -> list[Column]:
    labels = {
        "overall": [],
        "field": [Column("field", "Mã lĩnh vực", "Field id", TEXT, width=18), Column("field_name", "Lĩnh vực", "Field", TEXT, width=26)],
        "counter": [Column("counter", "Mã quầy", "Counter id", TEXT, width=10), Column("counter_name", "Quầy", "Counter", TEXT, width=10)],
        "clerk": [Column("clerk", "Mã cán bộ", "Clerk id", TEXT, width=18), Column("clerk_name", "Cán bộ", "Clerk", TEXT, width=22)],
    }[breakdown]
    columns = [DAY_COLUMN, *labels, *ticket_columns(), *rating_columns(config)]
    if breakdown in ("overall", "field"):
        columns += dossier_columns()
    if breakdown == "overall":
        columns += grading_columns()
    return columns


def group_names(config: Config, breakdown: str, group_id: str) -> list[str]:
    if breakdown == "field":
        found = config.field(group_id)
        return [group_id, found.name.vi if found else group_id]
    if breakdown == "counter":
        found = config.counter(group_id)
        return [group_id, f"Quầy {found.number}" if found else group_id]
    if breakdown == "clerk":
        found = config.clerk(group_id)
        return [group_id, found.name if found else group_id]
    return []


# --- rows ------------------------------------------------------------------------------------------


def _metric_values(columns: list[Column], figures: dict) -> list:
    return [column.value(figures) for column in columns if column.value is not None]


def build_tables(config: Config, figures: PeriodFigures) -> list[Table]:
    """The four tables, with totals checked against the period's figures (ExportMismatch if not)."""
    tables = []
    for breakdown, figures_key, title_vi, title_en in BREAKDOWNS:
        columns = table_columns(config, breakdown)
        metrics = [column for column in columns if column.value is not None]
        first_metric = len(columns) - len(metrics)
        table = Table(breakdown, title_vi, title_en, columns)
        for day_figures in figures.days:
            day = date.fromisoformat(day_figures["day"])
            if figures_key is None:
                table.day_rows.append([day, *_metric_values(metrics, day_figures)])
                continue
            for group_id, group_figures in day_figures[figures_key].items():
                values = _metric_values(metrics, group_figures)
                if _is_empty(metrics, values):
                    continue
                table.day_rows.append([day, *group_names(config, breakdown, group_id), *values])
        if figures_key is None:
            period_groups = {None: figures.period}
        else:
            period_groups = figures.period[figures_key]
            table.period_rows = [
                [None, *group_names(config, breakdown, group_id), *_metric_values(metrics, group_figures)]
                for group_id, group_figures in period_groups.items()
            ]
        table.total_row = _totals(table, metrics, first_metric, figures.period if figures_key is None else None)
        _check(table, metrics, first_metric, list(period_groups.values()))
        tables.append(table)
    return tables


def _is_empty(metrics: list[Column], values: list) -> bool:
    """Nothing happened in this group on this day: every count zero (ratios and averages are then None)."""
    return all(not value for column, value in zip(metrics, values) if column.total in (SUM, STOCK))


def _column_sum(rows: list[list], index: int) -> int:
    return sum(row[index] or 0 for row in rows)


def _totals(table: Table, metrics: list[Column], first_metric: int, overall: dict | None) -> list:
    """Python values of the totals row; the XLSX writes SUM formulas in the SUM columns instead."""
    row: list = [None] * len(table.columns)
    sums: dict[str, int] = {}
    for offset, column in enumerate(metrics):
        index = first_metric + offset
        if column.total == SUM:
            sums[column.key] = row[index] = _column_sum(table.day_rows, index)
    for offset, column in enumerate(metrics):
        index = first_metric + offset
        if column.total == RATIO:
            numerators, denominator = column.ratio_of
            row[index] = percent(sum(sums[key] for key in numerators), sums[denominator])
        elif column.total in (STOCK, MEAN):
            if overall is not None:
                row[index] = column.value(overall)
            elif column.total == STOCK:  # summed over the groups' own period figures
                row[index] = _column_sum(table.period_rows, index)
    return row


def _check(table: Table, metrics: list[Column], first_metric: int, period_groups: list[dict]) -> None:
    """The day rows' sums equal the period's figures (summed over the groups on breakdown sheets)."""
    for offset, column in enumerate(metrics):
        index = first_metric + offset
        expected = None
        if column.total == SUM:
            expected = sum(column.value(group) or 0 for group in period_groups)
        elif column.total == RATIO and table.key == "overall":
            expected = column.value(period_groups[0])
        if expected is not None and table.total_row[index] != expected:
            raise ExportMismatch(
                f"{table.key}.{column.key}: days add up to {table.total_row[index]!r}, the period says {expected!r}"
            )


# --- CSV -------------------------------------------------------------------------------------------

CSV_LEADING = [
    Column("breakdown", "Phân loại", "Breakdown", TEXT),
    Column("group", "Mã", "Id", TEXT),
    Column("group_name", "Tên", "Name", TEXT),
]


def to_csv(config: Config, tables: list[Table]) -> bytes:
    """One CSV of every day row of every breakdown, UTF-8 with a BOM so that Excel reads Vietnamese.

    Columns: breakdown (overall, field, counter, clerk), id, name, day, then every metric; a metric
    a breakdown does not have (dossiers per counter) is left empty. No totals rows: a CSV is for
    other programs to add up.
    """
    metric_columns: list[Column] = []
    for table in tables:
        for column in table.columns:
            if column.value is not None and all(column.key != known.key for known in metric_columns):
                metric_columns.append(column)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([column.header for column in (*CSV_LEADING, DAY_COLUMN, *metric_columns)])
    for table in tables:
        positions = {column.key: i for i, column in enumerate(table.columns)}
        label_count = len(table.columns) - sum(1 for c in table.columns if c.value is not None) - 1
        for row in table.day_rows:
            labels = row[1:1 + label_count] if label_count else ["", ""]
            writer.writerow([
                table.key, *labels, row[0].isoformat(),
                *(_csv_value(row[positions[column.key]]) if column.key in positions else "" for column in metric_columns),
            ])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _csv_value(value: object) -> object:
    return "" if value is None else value


# --- XLSX ------------------------------------------------------------------------------------------

NUMBER_FORMATS = {INT: "#,##0", DEC: "0.0", DAY: "dd/mm/yyyy", TEXT: "@"}


def to_xlsx(config: Config, tables: list[Table], first: date, last: date) -> bytes:
    """One sheet per breakdown: bold header, widths, number formats, frozen header, totals row with SUMs.

    Written with the small writer in exports/xlsx.py rather than openpyxl: a year is 10,000 rows of
    36 columns, which openpyxl took most of the export's time to write."""
    from .xlsx import CellStyle, Formula, Workbook, column_letter

    workbook = Workbook(title=f"Báo cáo tổng hợp {first.isoformat()} – {last.isoformat()}", creator="motcua")
    header_style = workbook.style(CellStyle(bold=True, fill="DDE5F0", wrap=True))
    # Per kind of column: a day row's format (None: the value needs none; integers and text), and the
    # styles of the period rows and the totals row, with their format and without it (an empty cell).
    day_style = {kind: workbook.style(CellStyle(NUMBER_FORMATS[kind])) if kind in (DEC, DAY) else None for kind in NUMBER_FORMATS}
    period_style = {kind: workbook.style(CellStyle(NUMBER_FORMATS[kind], fill="F3F3F3")) for kind in NUMBER_FORMATS}
    period_empty = workbook.style(CellStyle(fill="F3F3F3"))
    total_style = {kind: workbook.style(CellStyle(NUMBER_FORMATS[kind], bold=True, fill="FFF2CC", top_border=True)) for kind in NUMBER_FORMATS}
    total_empty = workbook.style(CellStyle(bold=True, fill="FFF2CC", top_border=True))
    for table in tables:
        kinds = [column.kind for column in table.columns]
        label_columns = 1 + sum(1 for c in table.columns if c.value is None and c.kind == TEXT)
        sheet = workbook.add_sheet(table.title_vi, [column.width for column in table.columns], f"{column_letter(label_columns + 1)}2")
        sheet.append([column.header for column in table.columns], [header_style] * len(kinds))
        formats = [day_style[kind] for kind in kinds]
        for row in table.day_rows:
            sheet.append(row, [style if value is not None else None for value, style in zip(row, formats)])
        first_row, last_row = 2, 1 + len(table.day_rows)
        label_kinds = [TEXT, *kinds[1:]]  # "Cả kỳ" / "Tổng cộng" stand in the day column
        for row in table.period_rows:
            values = ["Cả kỳ / Period", *row[1:]]
            sheet.append(values, [period_style[kind] if value is not None else period_empty for value, kind in zip(values, label_kinds)])
        totals = ["Tổng cộng / Total"]
        for index, (column, value) in enumerate(zip(table.columns, table.total_row)):
            if index and column.total == SUM:
                letter = column_letter(index + 1)
                # Excel computes it; table.total_row holds the same sum, checked against the period.
                value = Formula(f"SUM({letter}{first_row}:{letter}{last_row})") if table.day_rows else 0
            if index:
                totals.append(value)
        sheet.append(totals, [total_style[kind] if value is not None else total_empty for value, kind in zip(totals, label_kinds)])
    return workbook.content()


# --- PDF -------------------------------------------------------------------------------------------


def _fmt_int(value: object) -> str:
    # Vietnamese groups thousands with a dot: 12.345
    return "" if value is None else f"{int(value):,}".replace(",", ".")


def _fmt_dec(value: object) -> str:
    # …and writes decimals with a comma: 92,5
    return "–" if value is None else f"{value:.1f}".replace(".", ",")


def _vi_date(day: date) -> str:
    return f"{day.day:02d}/{day.month:02d}/{day.year}"


def to_pdf(config: Config, figures: PeriodFigures, generated_on: date) -> bytes:
    """The period report in Vietnamese: dossiers by field (Biểu 06 columns), satisfaction per level,
    the queue, the Decision 766 indicator 5.4, and satisfaction per clerk."""
    from reportlab.lib import colors
    from reportlab.lib.enums import TA_CENTER
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table as PdfTable, TableStyle

    from .fonts import BOLD, REGULAR, register_fonts

    register_fonts()
    period = figures.period
    base = ParagraphStyle("base", fontName=REGULAR, fontSize=8.5, leading=10.5)
    centred = ParagraphStyle("centred", parent=base, alignment=TA_CENTER)
    heading = ParagraphStyle("heading", parent=base, fontName=BOLD, fontSize=10.5, leading=13, spaceBefore=8, spaceAfter=4)
    title = ParagraphStyle("title", parent=centred, fontName=BOLD, fontSize=15, leading=19, spaceAfter=2)
    cell_style = ParagraphStyle("cell", parent=base, fontSize=8, leading=9.5)
    head_style = ParagraphStyle("head", parent=cell_style, fontName=BOLD, alignment=TA_CENTER)

    def grid(rows: list[list], widths: list[float], header_rows: int = 1, spans: list | None = None, total: bool = True) -> PdfTable:
        wrapped = [[Paragraph(str(value), head_style if r < header_rows else cell_style) if isinstance(value, str) and r < header_rows else value
                    for value in row] for r, row in enumerate(rows)]
        table = PdfTable(wrapped, colWidths=widths, repeatRows=header_rows)
        style = [
            ("FONT", (0, 0), (-1, -1), REGULAR, 8),
            ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
            ("BACKGROUND", (0, 0), (-1, header_rows - 1), colors.HexColor("#DDE5F0")),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("ALIGN", (1, header_rows), (-1, -1), "RIGHT"),
        ]
        if total:
            style += [("FONT", (0, -1), (-1, -1), BOLD, 8), ("BACKGROUND", (0, -1), (-1, -1), colors.HexColor("#FFF2CC"))]
        for span in spans or []:
            style.append(("SPAN", *span))
        table.setStyle(TableStyle(style))
        return table

    story = [
        PdfTable(
            [[Paragraph(f"<b>{config.site.name.vi.upper()}</b>", centred),
              Paragraph("<b>CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM</b><br/><b>Độc lập - Tự do - Hạnh phúc</b>", centred)]],
            colWidths=[120 * mm, 137 * mm],
            style=[("FONT", (0, 0), (-1, -1), REGULAR)],  # else the table sets Helvetica around its cells
        ),
        Spacer(1, 4 * mm),
        Paragraph("BÁO CÁO TỔNG HỢP", title),
        Paragraph("tình hình tiếp nhận, giải quyết hồ sơ và mức độ hài lòng", centred),
        Paragraph(f"Kỳ báo cáo: từ ngày {_vi_date(figures.first)} đến ngày {_vi_date(figures.last)}"
                  f" · Lập ngày {_vi_date(generated_on)}", centred),
        Spacer(1, 3 * mm),
    ]

    # 1. Biểu 06 columns, by field.
    story.append(Paragraph("1. Tình hình tiếp nhận và giải quyết hồ sơ theo lĩnh vực (theo mẫu Biểu 06)", heading))
    rows = [
        ["STT", "Lĩnh vực", "Số hồ sơ tiếp nhận", "", "", "", "Số hồ sơ đã giải quyết", "", "", "", "Số hồ sơ đang giải quyết", "", "", "Tỷ lệ đúng hạn (%)"],
        ["", "", "Tổng số", "Trực tuyến", "Trực tiếp", "Kỳ trước chuyển sang", "Tổng số", "Trước hạn", "Đúng hạn", "Trễ hạn", "Tổng số", "Trong hạn", "Quá hạn", ""],
    ]

    def dossier_cells(dossiers: dict) -> list:
        received, resolved, still_open = dossiers["received"], dossiers["resolved"], dossiers["open"]
        return [_fmt_int(received["total"]), _fmt_int(received["online"]), _fmt_int(received["in_person"]),
                _fmt_int(received["carried_over"]), _fmt_int(resolved["total"]), _fmt_int(resolved["early"]),
                _fmt_int(resolved["on_time"]), _fmt_int(resolved["late"]), _fmt_int(still_open["total"]),
                _fmt_int(still_open["within_time"]), _fmt_int(still_open["overdue"]), _fmt_dec(dossiers["on_time_pct"])]

    for number, field_config in enumerate(config.fields, start=1):
        rows.append([str(number), Paragraph(field_config.name.vi, cell_style), *dossier_cells(period["by_field"][field_config.id]["dossiers"])])
    rows.append(["", "Tổng cộng", *dossier_cells(period["dossiers"])])
    spans = [((0, 0), (0, 1)), ((1, 0), (1, 1)), ((2, 0), (5, 0)), ((6, 0), (9, 0)), ((10, 0), (12, 0)), ((13, 0), (13, 1))]
    story.append(grid(rows, [11 * mm, 50 * mm] + [16 * mm] * 11 + [19 * mm], header_rows=2, spans=spans))

    # 2. Satisfaction per level.
    ratings = period["ratings"]
    story.append(Paragraph("2. Mức độ hài lòng của người dân, doanh nghiệp", heading))
    rows = [["Mức đánh giá", "Số lượt", "Tỷ lệ (%)"]]
    for level in config.rating.levels:
        count = ratings["by_level"].get(level.id, 0)
        rows.append([Paragraph(level.name.vi, cell_style), _fmt_int(count), _fmt_dec(percent(count, ratings["counted"]))])
    rows.append(["Tổng số lượt đánh giá được tính", _fmt_int(ratings["counted"]), _fmt_dec(100.0 if ratings["counted"] else None)])
    story.append(grid(rows, [80 * mm, 30 * mm, 30 * mm]))
    story.append(Spacer(1, 2 * mm))
    story.append(Paragraph(
        f"Tỷ lệ hài lòng: <b>{_fmt_dec(ratings['satisfaction_pct'])}%</b> · Chỉ số hài lòng (0–100): "
        f"<b>{_fmt_dec(ratings['index'])}</b> · Lượt bấm không được tính (bấm lặp, quá thời gian, không có lượt phục vụ): "
        f"{_fmt_int(ratings['flagged'])}", base))

    # 3. Decision 766, indicator 5.4.
    grading = period["grading_766"]
    story.append(Paragraph("3. Chỉ số 5.4 (Quyết định 766/QĐ-TTg): 100% − (tỷ lệ hồ sơ trễ hạn + tỷ lệ hồ sơ không hài lòng)", heading))
    full = {True: "Đạt điểm tối đa (≥ 90%)", False: "Chưa đạt điểm tối đa (< 90%)", None: "Chưa có hồ sơ đã giải quyết"}[grading["full_marks"]]
    rows = [["Tỷ lệ hồ sơ trễ hạn (%)", "Tỷ lệ hồ sơ không hài lòng (%)", "Điểm chỉ số 5.4 (%)", "Đánh giá"],
            [_fmt_dec(grading["late_pct"]), _fmt_dec(grading["unsatisfied_pct"]), _fmt_dec(grading["score_pct"]), Paragraph(full, cell_style)]]
    story.append(grid(rows, [45 * mm, 50 * mm, 40 * mm, 60 * mm], total=False))

    # 4. The queue, by field.
    story.append(Paragraph("4. Cấp số thứ tự và thời gian chờ theo lĩnh vực", heading))
    rows = [["Lĩnh vực", "Số phát", "Đã phục vụ", "Vắng mặt", "Gọi đúng hẹn (%)", "Chờ TB (phút)", "Chờ P90 (phút)", "Phục vụ TB (phút)"]]

    def queue_cells(tickets: dict) -> list:
        return [_fmt_int(tickets["issued"]), _fmt_int(tickets["served"]), _fmt_int(tickets["no_show"]),
                _fmt_dec(tickets["within_target_pct"]), _fmt_dec(minutes(tickets["avg_wait_s"])),
                _fmt_dec(minutes(tickets["p90_wait_s"])), _fmt_dec(minutes(tickets["avg_service_s"]))]

    for field_config in config.fields:
        rows.append([Paragraph(field_config.name.vi, cell_style), *queue_cells(period["by_field"][field_config.id]["tickets"])])
    rows.append(["Tổng cộng", *queue_cells(period["tickets"])])
    story.append(grid(rows, [62 * mm] + [26 * mm] * 7))

    # 5. Satisfaction per clerk.
    story.append(Paragraph("5. Mức độ hài lòng theo cán bộ tiếp nhận", heading))
    rows = [["Cán bộ", "Lượt phục vụ", *[level.name.vi for level in config.rating.levels], "Hài lòng (%)", "Chỉ số (0–100)"]]
    for clerk_id, clerk_figures in period["by_clerk"].items():
        clerk = config.clerk(clerk_id)
        clerk_ratings = clerk_figures["ratings"]
        rows.append([Paragraph(clerk.name if clerk else clerk_id, cell_style), _fmt_int(clerk_figures["tickets"]["served"]),
                     *[_fmt_int(clerk_ratings["by_level"].get(level.id, 0)) for level in config.rating.levels],
                     _fmt_dec(clerk_ratings["satisfaction_pct"]), _fmt_dec(clerk_ratings["index"])])
    level_width = 26 * mm
    story.append(grid(rows, [62 * mm, 26 * mm] + [level_width] * len(config.rating.levels) + [26 * mm, 26 * mm], total=False))

    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer, pagesize=landscape(A4), leftMargin=15 * mm, rightMargin=15 * mm, topMargin=12 * mm, bottomMargin=12 * mm,
        title=f"Báo cáo tổng hợp {figures.first.isoformat()} – {figures.last.isoformat()}", author=config.site.name.vi,
        creator="motcua", lang="vi-VN", invariant=True, initialFontName=REGULAR,
    )
    document.build(story, onFirstPage=_page_number, onLaterPages=_page_number)
    return buffer.getvalue()


def _page_number(canvas, document) -> None:
    from reportlab.lib.units import mm

    from .fonts import REGULAR

    canvas.saveState()
    canvas.setFont(REGULAR, 7.5)
    canvas.drawRightString(document.pagesize[0] - 15 * mm, 7 * mm, f"Trang {document.page}")
    canvas.restoreState()

