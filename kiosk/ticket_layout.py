"""Ticket layout: a queue ticket in, a 1-bit picture and the exact ESC/POS bytes for it out.

Pure: the only I/O is reading the font files. Nothing here opens a printer (kiosk/printing.py
does that) and the same ticket and profile always give the same bytes.

Why a picture: the text encodings of python-escpos mangle Vietnamese (TCVN-3 has no Đ, CP1258
turns toned letters into '?', and most printers have neither code page anyway), so every word
is drawn with Pillow in DejaVu Sans and sent as a raster bit image (GS v 0). No ESC t and no
code-page text is ever sent. The QR code and the CODE128 barcode are left to the printer
(GS ( k, GS k) when the profile says it can draw them, which keeps the ticket small; otherwise
the QR code is drawn into the picture.
"""
from __future__ import annotations

import functools
import math
import os
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import qrcode
import qrcode.constants
from escpos.capabilities import Profile
from escpos.constants import QR_ECLEVEL_M, TXT_STYLE
from escpos.printer import Dummy
from PIL import Image, ImageDraw, ImageFont

Lang = Literal["vi", "en"]
FontStyle = Literal["regular", "bold"]

LOCAL_TIMEZONE = "Asia/Ho_Chi_Minh"
PAPER_WIDTHS_PX = (576, 384)
"""Printable dots at 203 dpi: 72 mm of an 80 mm roll, 48 mm of a 58 mm roll."""

IMAGE_FRAGMENT_HEIGHT = 256
"""Rows per GS v 0 command. python-escpos defaults to 960 rows (69 KB at 576 px), more than the
receive buffer of many cheap printers (some have 64 KB); overflowing it makes the printer print
the rest of the picture as garbage text. 256 rows are 18 KB at 576 px."""

FONT_FILES: dict[FontStyle, str] = {"regular": "DejaVuSans.ttf", "bold": "DejaVuSans-Bold.ttf"}
FONT_DIR_ENV = "MOTCUA_FONT_DIR"
FONT_DIRS = (
    Path(__file__).resolve().parent / "fonts",      # bundled with the package, if ever shipped
    Path("/usr/share/fonts/truetype/dejavu"),         # Debian, Ubuntu, Raspberry Pi OS (fonts-dejavu-core)
    Path("/usr/share/fonts/dejavu-sans-fonts"),       # Fedora
    Path("/usr/share/fonts/dejavu"),                  # Alpine, older Fedora
    Path("/usr/share/fonts/TTF"),                     # Arch
    Path("/usr/local/share/fonts"),
    Path("/Library/Fonts"),
)
FONT_SEARCH_ROOTS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))


class FontNotFoundError(FileNotFoundError):
    """DejaVu Sans is not installed where we look for it."""


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class PrintedTicket:
    """What goes on the paper. Built by the kiosk from the server's TicketData and the site config."""

    centre_name_vi: str
    centre_name_en: str
    code: str                       # display code, e.g. "A015"
    field_name_vi: str
    field_name_en: str
    people_ahead: int
    est_wait_s: int
    issued_at: datetime             # aware; printed as local time (`timezone`)
    url: str | None = None          # for the QR code; None prints no QR code
    priority_label_vi: str | None = None
    priority_label_en: str | None = None
    ticket_ref: str | None = None   # TicketData.ticket_id, as a CODE128 barcode when the printer draws one
    timezone: str = LOCAL_TIMEZONE

    def __post_init__(self) -> None:
        if self.issued_at.tzinfo is None or self.issued_at.utcoffset() is None:
            raise ValueError("issued_at must be timezone-aware")
        if self.people_ahead < 0:
            raise ValueError(f"people_ahead must be ≥ 0, not {self.people_ahead}")
        if self.est_wait_s < 0:
            raise ValueError(f"est_wait_s must be ≥ 0, not {self.est_wait_s}")
        if not self.code.strip():
            raise ValueError("code must not be empty")
        if self.ticket_ref is not None and not (
            0 < len(self.ticket_ref) <= 64 and all(0x20 < ord(char) < 0x7F for char in self.ticket_ref)
        ):
            raise ValueError("ticket_ref must be 1–64 visible ASCII characters (CODE128 set B)")


@dataclass(frozen=True)
class PrinterProfile:
    """What the printer can do. paper_width_px: 576 for 80 mm paper, 384 for 58 mm."""

    paper_width_px: int = 576
    native_qr: bool = True
    native_barcode: bool = False
    cut: bool = True

    def __post_init__(self) -> None:
        if self.paper_width_px not in PAPER_WIDTHS_PX:
            raise ValueError(f"paper_width_px must be one of {PAPER_WIDTHS_PX}, not {self.paper_width_px}")


# --------------------------------------------------------------------------- output


@dataclass(frozen=True)
class TextLine:
    """One drawn line of text: enough to redraw it in isolation and compare pixels."""

    text: str
    style: FontStyle
    size: int
    origin: tuple[int, int]          # passed to ImageDraw.text (anchor "la")
    box: tuple[int, int, int, int]   # its inked pixels' bounding box in the picture
    inverted: bool = False           # white on black


@dataclass(frozen=True)
class TicketLayout:
    """The rendered ticket.

    `image` is exactly what goes to the printer as raster images, top to bottom. With a native
    QR code the printer prints the code between rows `qr_row - 1` and `qr_row` of the picture
    (`qr_data` is then the URL); with a drawn QR code `qr_data` is None and `qr_box` says where
    it is. `commands` is the complete ESC/POS job.
    """

    image: Image.Image
    commands: bytes
    qr_data: str | None
    qr_row: int | None = None
    qr_box: tuple[int, int, int, int] | None = None
    qr_native_module_px: int | None = None
    lines: tuple[TextLine, ...] = field(default=())

    def preview(self) -> Image.Image:
        """The ticket as it will look on paper (native QR code drawn in), for the screen and for people."""
        if self.qr_data is None or self.qr_row is None or self.qr_native_module_px is None:
            return self.image.copy()
        matrix = _qr_matrix(self.qr_data)
        side = len(matrix) * self.qr_native_module_px
        width = self.image.width
        picture = Image.new("1", (width, self.image.height + side), 1)
        picture.paste(self.image.crop((0, 0, width, self.qr_row)), (0, 0))
        _draw_qr(ImageDraw.Draw(picture), matrix, (width - side) // 2, self.qr_row, self.qr_native_module_px)
        picture.paste(self.image.crop((0, self.qr_row, width, self.image.height)), (0, self.qr_row + side))
        return picture


# --------------------------------------------------------------------------- fonts


def font_path(style: FontStyle = "regular") -> Path:
    """Where DejaVu Sans (or its bold) is. $MOTCUA_FONT_DIR first, then the usual places."""
    filename = FONT_FILES[style]
    directories = list(FONT_DIRS)
    if os.environ.get(FONT_DIR_ENV):
        directories.insert(0, Path(os.environ[FONT_DIR_ENV]))
    for directory in directories:
        candidate = directory / filename
        if candidate.is_file():
            return candidate
    for root in FONT_SEARCH_ROOTS:  # other layouts, e.g. /usr/share/fonts/dejavu-sans-fonts-2.37/
        if root.is_dir():
            for candidate in sorted(root.rglob(filename)):
                if candidate.is_file():
                    return candidate
    searched = ", ".join(str(directory) for directory in directories + list(FONT_SEARCH_ROOTS))
    raise FontNotFoundError(
        f"font {filename} not found (looked in {searched}). Tickets are drawn in DejaVu Sans because "
        f"it has every Vietnamese letter: install it (Debian/Ubuntu: apt-get install fonts-dejavu-core) "
        f"or set {FONT_DIR_ENV} to a directory holding {FONT_FILES['regular']} and {FONT_FILES['bold']}."
    )


def load_font(style: FontStyle, size: int) -> ImageFont.FreeTypeFont:
    """The ticket font. BASIC layout so the pixels do not depend on whether libraqm is installed."""
    return _load_font(str(font_path(style)), size)


@functools.lru_cache(maxsize=64)
def _load_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


# --------------------------------------------------------------------------- wording


NBSP = "\u00a0"
"""Non-breaking space: a number stays on the line of its unit ("11 phút") when text wraps."""


def wait_text(est_wait_s: int, lang: Lang) -> str:
    """'khoảng 4 phút' / 'about 4 min', minutes rounded up; 0 s is 'dưới 1 phút' / 'under 1 min'."""
    minutes = math.ceil(est_wait_s / 60)
    if minutes <= 0:
        return f"dưới 1{NBSP}phút" if lang == "vi" else f"under 1{NBSP}min"
    return f"khoảng {minutes}{NBSP}phút" if lang == "vi" else f"about {minutes}{NBSP}min"


LABELS: dict[str, dict[Lang, str]] = {
    "title": {"vi": "PHIẾU SỐ THỨ TỰ", "en": "QUEUE TICKET"},
    "priority": {"vi": "Ưu tiên: {label}", "en": "Priority: {label}"},
    "ahead": {"vi": f"Số người đang chờ trước bạn:{NBSP}{{count}}", "en": f"People ahead of you:{NBSP}{{count}}"},
    "wait": {"vi": "Thời gian chờ dự kiến: {wait}", "en": "Estimated wait: {wait}"},
    "issued": {"vi": "Lấy số lúc: {when}", "en": "Issued: {when}"},
    "scan": {"vi": "Quét mã để theo dõi lượt", "en": "Scan to follow your turn"},
    "thanks": {"vi": "Cảm ơn quý công dân!", "en": "Thank you!"},
}


# --------------------------------------------------------------------------- sizes


@dataclass(frozen=True)
class _Sizes:
    margin: int
    centre_name: int
    centre_name_other: int
    title: int
    number_max: int
    field_name: int
    field_name_other: int
    body: int
    small: int
    gap: int
    qr_target: int        # width of the QR code, in dots


_SIZES = {
    576: _Sizes(margin=16, centre_name=26, centre_name_other=21, title=32, number_max=190, field_name=36,
                field_name_other=24, body=26, small=22, gap=12, qr_target=260),
    384: _Sizes(margin=8, centre_name=21, centre_name_other=17, title=26, number_max=130, field_name=28,
                field_name_other=19, body=20, small=18, gap=8, qr_target=190),
}
_CANVAS_HEIGHT = 4000  # drawn on a tall canvas, then cropped to what was used
_TALL_GLYPHS = "ẪẤỖỸỮẰÁÉẾ"  # stacked diacritics reach well above the font's ascender
_DEEP_GLYPHS = "gjpqyỵỹạặ"


class _Canvas:
    """A cursor going down a 1-bit picture, centring wrapped lines."""

    def __init__(self, width: int, sizes: _Sizes) -> None:
        self.width = width
        self.sizes = sizes
        self.image = Image.new("1", (width, _CANVAS_HEIGHT), 1)
        self.draw = ImageDraw.Draw(self.image)
        self.y = sizes.margin
        self.lines: list[TextLine] = []

    @property
    def text_width(self) -> int:
        return self.width - 2 * self.sizes.margin

    def space(self, pixels: int) -> None:
        self.y += pixels

    def rule(self) -> None:
        self.space(self.sizes.gap)
        self.draw.rectangle((self.sizes.margin, self.y, self.width - self.sizes.margin - 1, self.y + 1), fill=0)
        self.space(2 + self.sizes.gap)

    def paragraph(self, text: str, style: FontStyle, size: int, inverted: bool = False) -> None:
        font = load_font(style, size)
        pad = size // 2 if inverted else 0
        for line in _wrap(text, font, self.text_width - 2 * pad):
            self._line(line, font, style, size, inverted)

    def _line(self, text: str, font: ImageFont.FreeTypeFont, style: FontStyle, size: int, inverted: bool) -> None:
        top = min(font.getbbox(_TALL_GLYPHS, anchor="la")[1], 0)
        bottom = font.getbbox(_DEEP_GLYPHS, anchor="la")[3]
        height = bottom - top
        pad = size // 2 if inverted else 0
        x = (self.width - round(font.getlength(text))) // 2
        origin = (x, self.y - top + pad // 2)
        if inverted:
            self.draw.rectangle((x - pad, self.y, x + round(font.getlength(text)) + pad - 1,
                                 self.y + height + pad - 1), fill=0)
        self.draw.text(origin, text, font=font, fill=1 if inverted else 0, anchor="la")
        box = self.draw.textbbox(origin, text, font=font, anchor="la")
        self.lines.append(TextLine(text, style, size, origin, box, inverted))
        self.y += height + pad + max(2, size // 6)

    def big_number(self, code: str) -> None:
        size = self.sizes.number_max
        # At most ~85 % of the paper: the number should not touch the edges.
        while size > 24 and load_font("bold", size).getlength(code) > self.width * 0.85:
            size -= 2
        font = load_font("bold", size)
        # Digits and Latin capitals: use their own box rather than the diacritic-tall line box.
        left, top, right, bottom = font.getbbox(code, anchor="la")
        x = (self.width - (right - left)) // 2 - left
        origin = (x, self.y - top)
        self.draw.text(origin, code, font=font, fill=0, anchor="la")
        self.lines.append(TextLine(code, "bold", size, origin, self.draw.textbbox(origin, code, font=font, anchor="la")))
        self.y += bottom - top + self.sizes.gap

    def qr(self, matrix: list[list[bool]], module_px: int) -> tuple[int, int, int, int]:
        side = len(matrix) * module_px
        x = (self.width - side) // 2
        _draw_qr(self.draw, matrix, x, self.y, module_px)
        box = (x, self.y, x + side, self.y + side)
        self.y += side
        return box

    def finish(self) -> Image.Image:
        if self.y + self.sizes.margin > _CANVAS_HEIGHT:
            raise ValueError(f"ticket taller than {_CANVAS_HEIGHT} px: are the names unreasonably long?")
        return self.image.crop((0, 0, self.width, self.y + self.sizes.margin))


def _wrap(text: str, font: ImageFont.FreeTypeFont, max_width: int) -> list[str]:
    """Greedy word wrap at plain spaces (not at NBSP); a word wider than the paper is broken."""
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        if not word:
            continue
        candidate = f"{current} {word}" if current else word
        if font.getlength(candidate) <= max_width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = word
        while font.getlength(current) > max_width and len(current) > 1:
            cut = len(current) - 1
            while cut > 1 and font.getlength(current[:cut]) > max_width:
                cut -= 1
            lines.append(current[:cut])
            current = current[cut:]
    if current:
        lines.append(current)
    return lines


def _qr_matrix(data: str) -> list[list[bool]]:
    """The QR modules with a 4-module quiet zone; error correction M, as the printer is told."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4, box_size=1)
    code.add_data(data)
    code.make(fit=True)
    return code.get_matrix()


def _draw_qr(draw: ImageDraw.ImageDraw, matrix: list[list[bool]], left: int, top: int, module_px: int) -> None:
    for row_index, row in enumerate(matrix):
        for column_index, dark in enumerate(row):
            if dark:
                x = left + column_index * module_px
                y = top + row_index * module_px
                draw.rectangle((x, y, x + module_px - 1, y + module_px - 1), fill=0)


# --------------------------------------------------------------------------- ESC/POS


def escpos_profile(profile: PrinterProfile) -> Profile:
    """A python-escpos profile for our printer.

    The stock "default" profile has no paper width, so python-escpos prints a notice to stdout on
    every image(); here the width is known and the features follow the PrinterProfile.
    """
    escpos = Profile()
    data = {key: value for key, value in Profile.profile_data.items() if key not in ("media", "features")}
    data["name"] = f"motcua-{profile.paper_width_px}px"
    data["media"] = {"dpi": 203, "width": {"mm": 72 if profile.paper_width_px == 576 else 48,
                                            "pixels": profile.paper_width_px}}
    features = dict(Profile.profile_data["features"])
    features.update(
        qrCode=profile.native_qr,
        barcodeA=profile.native_barcode,
        barcodeB=profile.native_barcode,
        paperFullCut=profile.cut,
        paperPartCut=profile.cut,
        bitImageRaster=True,
    )
    data["features"] = features
    escpos.profile_data = data
    escpos.features = features
    return escpos


def _native_qr_module_px(matrix: list[list[bool]], target_px: int) -> int:
    return max(1, min(16, target_px // len(matrix)))


def _commands(image: Image.Image, profile: PrinterProfile, qr_data: str | None, qr_row: int | None,
              qr_module_px: int | None, ticket_ref: str | None) -> bytes:
    """Drive python-escpos's Dummy printer: it records bytes and touches no device."""
    printer = Dummy(profile=escpos_profile(profile))
    printer.hw("INIT")  # ESC @: clear whatever a previous, interrupted job left behind
    width = image.width
    bands = [image] if qr_row is None else [image.crop((0, 0, width, qr_row)), image.crop((0, qr_row, width, image.height))]
    printer.image(bands[0], impl="bitImageRaster", fragment_height=IMAGE_FRAGMENT_HEIGHT)
    if qr_row is not None and qr_data is not None and qr_module_px is not None:
        printer._raw(TXT_STYLE["align"]["center"])  # qr(center=True) is refused for native codes
        printer.qr(qr_data, ec=QR_ECLEVEL_M, size=qr_module_px, native=True)
        printer._raw(TXT_STYLE["align"]["left"])
        printer.image(bands[1], impl="bitImageRaster", fragment_height=IMAGE_FRAGMENT_HEIGHT)
    if ticket_ref is not None and profile.native_barcode:
        # _hw_barcode, not barcode(): the public method print()s "Using hardware barcode renderer"
        # to stdout. Human-readable text off: the only text on the ticket is in the picture.
        printer._hw_barcode("{B" + ticket_ref, "CODE128", height=48, width=2, pos="OFF",
                            align_ct=True, function_type="B")
        printer._raw(TXT_STYLE["align"]["left"])
    if profile.cut:
        printer.cut()  # ESC d 6 (feed past the cutter), then GS V 0 (full cut)
    else:
        printer.print_and_feed(4)  # past the tear bar
    return printer.output


# --------------------------------------------------------------------------- the ticket


def _nfc(text: str) -> str:
    # Precomposed letters: a decomposed "ệ" typed into a config would otherwise be drawn as
    # "e" plus loose combining marks by the BASIC layout.
    # Line breaks and tabs from a config file become plain spaces (NBSP is kept).
    return re.sub(r"[^\S\u00a0]+", " ", unicodedata.normalize("NFC", text)).strip()


def render_ticket(ticket: PrintedTicket, profile: PrinterProfile, lang: Lang = "vi") -> TicketLayout:
    """Draw the ticket for this printer and produce its ESC/POS job. Same input, same bytes."""
    if lang not in ("vi", "en"):
        raise ValueError(f"lang must be 'vi' or 'en', not {lang!r}")
    width = profile.paper_width_px
    sizes = _SIZES[width]
    canvas = _Canvas(width, sizes)

    # The centre's name stays bilingual whatever the language: Vietnamese (official) first.
    canvas.paragraph(_nfc(ticket.centre_name_vi), "bold", sizes.centre_name)
    canvas.paragraph(_nfc(ticket.centre_name_en), "regular", sizes.centre_name_other)
    canvas.rule()
    canvas.paragraph(LABELS["title"][lang], "bold", sizes.title)
    canvas.space(sizes.gap)
    canvas.big_number(_nfc(ticket.code))

    priority_label = ticket.priority_label_vi if lang == "vi" else (ticket.priority_label_en or ticket.priority_label_vi)
    if priority_label:
        canvas.paragraph(LABELS["priority"][lang].format(label=_nfc(priority_label)), "bold", sizes.body, inverted=True)
        canvas.space(sizes.gap)

    if lang == "vi":
        canvas.paragraph(_nfc(ticket.field_name_vi), "bold", sizes.field_name)
    else:
        # The counters' signs are in Vietnamese: the Vietnamese field name helps find the way.
        canvas.paragraph(_nfc(ticket.field_name_en), "bold", sizes.field_name)
        canvas.paragraph(_nfc(ticket.field_name_vi), "regular", sizes.field_name_other)
    canvas.rule()

    canvas.paragraph(LABELS["ahead"][lang].format(count=ticket.people_ahead), "regular", sizes.body)
    canvas.paragraph(LABELS["wait"][lang].format(wait=wait_text(ticket.est_wait_s, lang)), "regular", sizes.body)
    issued_local = ticket.issued_at.astimezone(ZoneInfo(ticket.timezone))
    canvas.paragraph(LABELS["issued"][lang].format(when=issued_local.strftime("%d/%m/%Y %H:%M")), "regular", sizes.small)

    qr_data: str | None = None
    qr_row: int | None = None
    qr_box: tuple[int, int, int, int] | None = None
    qr_module_px: int | None = None
    if ticket.url:
        canvas.space(sizes.gap)
        canvas.paragraph(LABELS["scan"][lang], "regular", sizes.small)
        matrix = _qr_matrix(ticket.url)
        if profile.native_qr:
            qr_data = ticket.url
            qr_module_px = _native_qr_module_px(matrix, sizes.qr_target)
            # Printers differ on whether they leave a quiet zone around the symbol: leave one.
            canvas.space(4 * qr_module_px)
            qr_row = canvas.y
            canvas.space(4 * qr_module_px)
        else:
            qr_box = canvas.qr(matrix, max(1, sizes.qr_target // len(matrix)))
    else:
        canvas.space(sizes.gap)

    canvas.space(sizes.gap)
    canvas.paragraph(LABELS["thanks"][lang], "bold", sizes.body)
    image = canvas.finish()
    commands = _commands(image, profile, qr_data, qr_row, qr_module_px, ticket.ticket_ref)
    return TicketLayout(image=image, commands=commands, qr_data=qr_data, qr_row=qr_row, qr_box=qr_box,
                        qr_native_module_px=qr_module_px, lines=tuple(canvas.lines))
