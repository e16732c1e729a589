"""The apology slip for a late dossier: "Phiếu xin lỗi và hẹn lại ngày trả kết quả", as a PDF.

Laid out like the official form (the one-stop rules' Mẫu "Phiếu xin lỗi và hẹn lại ngày trả kết
quả"): the centre and the national heading side by side, the place and date, the title, the
dossier (code, procedure, field, received on, the original appointment date), the reason for the
delay, the new appointment date, the apology, and the signature block. The citizen's name is a
blank line filled in by hand: motcua keeps no citizen identity.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date
from xml.sax.saxutils import escape

from ..domain.dossiers import MAX_DELAY_REASON_LENGTH, Dossier
from ..domain.errors import Conflict, InvalidInput

MAX_REASON_LENGTH = MAX_DELAY_REASON_LENGTH  # the same limit as a stored reschedule's reason
TITLE = "PHIẾU XIN LỖI VÀ HẸN LẠI NGÀY TRẢ KẾT QUẢ"
NATIONAL_HEADING = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
MOTTO = "Độc lập - Tự do - Hạnh phúc"


@dataclass(frozen=True)
class ApologySlip:
    """What the slip says; `check` refuses what would make a wrong or empty form."""

    centre_name: str
    dossier: Dossier
    field_name: str
    reason: str
    new_date: date
    issued_on: date
    place: str = ""  # e.g. "Hà Nội"; left as dots when unknown

    def check(self) -> None:
        if self.dossier.returned_on is not None:
            raise Conflict(
                "already_returned",
                "Hồ sơ đã trả kết quả, không cần hẹn lại / The dossier was returned already: no new date to give",
                dossier_code=self.dossier.code, returned_on=self.dossier.returned_on.isoformat(),
            )
        reason = self.reason.strip()
        if not reason or len(reason) > MAX_REASON_LENGTH:
            raise InvalidInput(
                "invalid_reason",
                f"Cần nêu lý do chậm trễ (1–{MAX_REASON_LENGTH} ký tự) / Give the reason for the delay (1–{MAX_REASON_LENGTH} characters)",
            )
        if self.new_date <= self.dossier.due_date or self.new_date < self.issued_on:
            raise InvalidInput(
                "invalid_new_date",
                "Ngày hẹn mới phải sau ngày hẹn cũ và không trước hôm nay"
                " / The new date must be after the original appointment date and not before today",
                due_date=self.dossier.due_date.isoformat(), new_date=self.new_date.isoformat(),
            )


def vi_long_date(day: date) -> str:
    """'ngày 05 tháng 03 năm 2026', as dates are written in Vietnamese administrative documents."""
    return f"ngày {day.day:02d} tháng {day.month:02d} năm {day.year}"


def vi_short_date(day: date) -> str:
    return f"{day.day:02d}/{day.month:02d}/{day.year}"


def apology_pdf(slip: ApologySlip) -> bytes:
    """The slip on one A4 page, in DejaVu Sans (every Vietnamese letter), deterministic bytes."""
    from reportlab.lib.enums import TA_CENTER, TA_JUSTIFY, TA_LEFT
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    from .fonts import BOLD, OBLIQUE, REGULAR, register_fonts

    slip.check()
    register_fonts()
    dossier = slip.dossier
    text = ParagraphStyle("text", fontName=REGULAR, fontSize=11.5, leading=16, alignment=TA_JUSTIFY, spaceAfter=3)
    centred = ParagraphStyle("centred", parent=text, alignment=TA_CENTER, spaceAfter=0)
    centred_bold = ParagraphStyle("centred_bold", parent=centred, fontName=BOLD)
    dateline = ParagraphStyle("dateline", parent=centred, fontName=OBLIQUE, fontSize=11)
    title = ParagraphStyle("title", parent=centred, fontName=BOLD, fontSize=14, leading=19, spaceBefore=6, spaceAfter=10)
    small = ParagraphStyle("small", parent=text, fontSize=9.5, leading=12, alignment=TA_LEFT)
    blank = ParagraphStyle("blank", parent=text, alignment=TA_LEFT)
    centre = escape(slip.centre_name)
    place = escape(slip.place) if slip.place else "……………"

    heading = Table(
        [
            [Paragraph(f"<b>{centre.upper()}</b>", centred), Paragraph(f"<b>{NATIONAL_HEADING}</b>", centred)],
            [Paragraph("―――――", centred), Paragraph(f"<b><u>{MOTTO}</u></b>", centred)],
            [Paragraph("Số: ………/PXL", centred), Paragraph(f"{place}, {vi_long_date(slip.issued_on)}", dateline)],
        ],
        colWidths=[78 * mm, 100 * mm],
    )
    # FONT: else the table sets Helvetica around its cells and the PDF references a font it never shows.
    heading.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), REGULAR), ("VALIGN", (0, 0), (-1, -1), "TOP"), ("TOPPADDING", (0, 0), (-1, -1), 1),
                                 ("BOTTOMPADDING", (0, 0), (-1, -1), 1)]))

    def line(label: str, value: str) -> Paragraph:
        return Paragraph(f"{label}: <b>{value}</b>", text)

    story = [
        heading,
        Spacer(1, 8 * mm),
        Paragraph(TITLE, title),
        Paragraph(f"Ngày {vi_short_date(dossier.received_on)}, {centre} tiếp nhận giải quyết hồ sơ của:", text),
        # Blanks filled in by hand: left-aligned, since justifying a line of dots spreads its words apart.
        Paragraph("Ông/Bà: ……………………………………………………………………………………", blank),
        Paragraph("Địa chỉ / số điện thoại: ……………………………………………………………………", blank),
        line("Mã hồ sơ", escape(dossier.code)),
        line("Thủ tục hành chính", escape(dossier.procedure)),
        line("Lĩnh vực", escape(slip.field_name)),
        line("Ngày tiếp nhận", vi_short_date(dossier.received_on)),
        line("Ngày hẹn trả kết quả (theo Giấy tiếp nhận hồ sơ và hẹn trả kết quả)", vi_short_date(dossier.due_date)),
        Spacer(1, 2 * mm),
        Paragraph(f"Tuy nhiên đến nay, {centre} chưa trả kết quả giải quyết hồ sơ của Ông/Bà đúng hẹn ghi trên "
                  "Giấy tiếp nhận hồ sơ và hẹn trả kết quả.", text),
        Paragraph(f"Lý do chậm trễ: <b>{escape(slip.reason.strip())}</b>", text),
        Paragraph(f"Sự chậm trễ này đã gây phiền hà cho Ông/Bà. {centre} xin lỗi Ông/Bà và hẹn trả kết quả "
                  f"giải quyết hồ sơ cho Ông/Bà vào <b>{vi_long_date(slip.new_date)}</b> "
                  f"(<b>{vi_short_date(slip.new_date)}</b>).", text),
        Paragraph("Xin trân trọng cảm ơn sự hợp tác của Ông/Bà./.", text),
        Spacer(1, 8 * mm),
    ]
    signature = Table(
        [[Paragraph("<b><i>Nơi nhận:</i></b><br/>- Như trên;<br/>- Lưu: VT, hồ sơ.", small),
          Paragraph("<b>THỦ TRƯỞNG CƠ QUAN</b><br/><i>(Ký, ghi rõ họ tên và đóng dấu)</i>", centred)]],
        colWidths=[78 * mm, 100 * mm],
    )
    signature.setStyle(TableStyle([("FONT", (0, 0), (-1, -1), REGULAR), ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story.append(signature)
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer, pagesize=A4, leftMargin=20 * mm, rightMargin=15 * mm, topMargin=15 * mm, bottomMargin=15 * mm,
        title=f"Phiếu xin lỗi và hẹn lại ngày trả kết quả – {dossier.code}", author=slip.centre_name,
        creator="motcua", lang="vi-VN", invariant=True, initialFontName=REGULAR,
    )
    document.build(story)
    return buffer.getvalue()
