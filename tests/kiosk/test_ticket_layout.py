"""The ticket layout: what is drawn, the ESC/POS bytes it makes, and Vietnamese drawn right."""
from __future__ import annotations

import unicodedata
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import qrcode
import qrcode.constants
from PIL import Image, ImageDraw, ImageFont

from kiosk import ticket_layout
from kiosk.ticket_layout import (
    PrintedTicket,
    PrinterProfile,
    TextLine,
    TicketLayout,
    NBSP,
    font_path,
    render_ticket,
    wait_text,
)
from tests.kiosk.virtual_printer import decode_raster, parse_commands, raster_commands

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "tickets"
# Monday 2026-11-23 09:05 in Hà Nội (UTC+7).
ISSUED_AT = datetime(2026, 11, 23, 2, 5, tzinfo=timezone.utc)
URL = "https://hcc.example.vn/q/hcc-test/2026-11-23:A015"
ALL_THE_MARKS = "Đất đai – Hộ tịch – Đăng ký kinh doanh ữ ỹ ặ ợ"

TICKET = PrintedTicket(
    centre_name_vi="Trung tâm Phục vụ hành chính công tỉnh Bắc Ninh",
    centre_name_en="Bac Ninh Public Administration Service Centre",
    code="A015",
    field_name_vi="Đất đai",
    field_name_en="Land",
    people_ahead=4,
    est_wait_s=610,
    issued_at=ISSUED_AT,
    url=URL,
)
NATIVE_80 = PrinterProfile(paper_width_px=576, native_qr=True, native_barcode=False, cut=True)
DRAWN_80 = PrinterProfile(paper_width_px=576, native_qr=False, native_barcode=False, cut=True)

# What a ticket job may contain. Anything else (ESC t code-page selection, ESC ! text modes,
# printable text bytes) would mean text went out as code-page characters.
ALLOWED_COMMANDS = {"ESC @", "ESC a", "ESC d", "GS v 0", "GS ( k", "GS V", "GS h", "GS w", "GS H", "GS f", "GS k"}


def texts(layout: TicketLayout) -> list[str]:
    """The drawn lines, non-breaking spaces read as spaces."""
    return [line.text.replace(NBSP, " ") for line in layout.lines]


def render_alone(line: TextLine) -> Image.Image:
    """The line drawn by Pillow straight from the font file, on its own, the size of its box."""
    font = ImageFont.truetype(str(font_path(line.style)), line.size, layout_engine=ImageFont.Layout.BASIC)
    left, top, right, bottom = line.box
    picture = Image.new("1", (right - left, bottom - top), 0 if line.inverted else 1)
    ImageDraw.Draw(picture).text((line.origin[0] - left, line.origin[1] - top), line.text, font=font,
                                 fill=1 if line.inverted else 0, anchor="la")
    return picture


def strip_marks(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(char for char in decomposed if not unicodedata.combining(char))


# --------------------------------------------------------------------------- bytes and picture


def test_commands_carry_exactly_the_picture() -> None:
    layout = render_ticket(TICKET, DRAWN_80)

    assert layout.image.mode == "1"
    printed = decode_raster(layout.commands)
    assert printed.size == layout.image.size
    assert printed.tobytes() == layout.image.tobytes()


def test_tall_picture_goes_in_several_raster_bands() -> None:
    layout = render_ticket(TICKET, DRAWN_80)

    bands = raster_commands(layout.commands)
    assert len(bands) > 1, "a ticket is taller than one band; the decoder must join them"
    assert all(band.args[2] <= ticket_layout.IMAGE_FRAGMENT_HEIGHT for band in bands)
    assert sum(band.args[2] for band in bands) == layout.image.height


def test_job_starts_with_init_and_ends_with_a_cut() -> None:
    commands, _ = parse_commands(render_ticket(TICKET, NATIVE_80).commands)

    assert commands[0].name == "ESC @"
    assert [command.name for command in commands[-2:]] == ["ESC d", "GS V"]


def test_no_cutter_means_feed_and_no_cut() -> None:
    commands, _ = parse_commands(render_ticket(TICKET, replace(NATIVE_80, cut=False)).commands)

    assert "GS V" not in {command.name for command in commands}
    assert commands[-1].name == "ESC d"


def test_same_ticket_same_bytes() -> None:
    first = render_ticket(TICKET, NATIVE_80)
    second = render_ticket(replace(TICKET), NATIVE_80)

    assert first.commands == second.commands
    assert first.image.tobytes() == second.image.tobytes()


@pytest.mark.parametrize("width", [576, 384])
@pytest.mark.parametrize("lang", ["vi", "en"])
def test_picture_is_exactly_the_paper_width(width: int, lang: str) -> None:
    for native_qr in (True, False):
        layout = render_ticket(TICKET, PrinterProfile(paper_width_px=width, native_qr=native_qr), lang)

        assert layout.image.width == width
        assert all(band.args[1] * 8 == width for band in raster_commands(layout.commands))
        assert decode_raster(layout.commands).tobytes() == layout.image.tobytes()


def test_other_paper_widths_are_refused() -> None:
    with pytest.raises(ValueError, match="576"):
        PrinterProfile(paper_width_px=512)


# --------------------------------------------------------------------------- QR code and barcode


def test_native_qr_is_a_printer_command_with_the_url() -> None:
    layout = render_ticket(TICKET, NATIVE_80)

    commands, _ = parse_commands(layout.commands)
    qr_commands = [command for command in commands if command.name == "GS ( k"]
    assert qr_commands, "a native-QR printer gets GS ( k"
    stored = [command.payload for command in qr_commands if command.payload[:2] == b"1P"]
    assert stored == [b"1P0" + URL.encode("ascii")]
    assert layout.qr_data == URL
    assert layout.qr_box is None
    # The printer prints the code where the picture is split: after the rows above qr_row.
    first_qr = commands.index(qr_commands[0])
    rows_before = sum(command.args[2] for command in commands[:first_qr] if command.name == "GS v 0")
    assert rows_before == layout.qr_row


def test_drawn_qr_sends_no_qr_command_and_makes_a_taller_picture() -> None:
    native = render_ticket(TICKET, NATIVE_80)
    drawn = render_ticket(TICKET, DRAWN_80)

    assert "GS ( k" not in {command.name for command in parse_commands(drawn.commands)[0]}
    assert drawn.qr_data is None
    assert drawn.image.height > native.image.height


def test_drawn_qr_encodes_the_url() -> None:
    layout = render_ticket(TICKET, DRAWN_80)

    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4, box_size=1)
    code.add_data(URL)
    code.make(fit=True)
    matrix = code.get_matrix()
    assert layout.qr_box is not None
    left, top, right, _ = layout.qr_box
    module = (right - left) // len(matrix)
    assert module >= 3, "modules of at least 3 dots scan reliably from thermal paper"
    for row, cells in enumerate(matrix):
        for column, dark in enumerate(cells):
            centre = (left + column * module + module // 2, top + row * module + module // 2)
            assert (layout.image.getpixel(centre) == 0) == dark, (row, column)


def test_preview_shows_the_native_qr_where_the_printer_puts_it() -> None:
    layout = render_ticket(TICKET, NATIVE_80)

    preview = layout.preview()
    assert preview.width == layout.image.width
    assert preview.height > layout.image.height
    above = (0, 0, layout.image.width, layout.qr_row)
    assert preview.crop(above).tobytes() == layout.image.crop(above).tobytes()


def test_no_url_no_qr_code() -> None:
    for profile in (NATIVE_80, DRAWN_80):
        layout = render_ticket(replace(TICKET, url=None), profile)

        assert layout.qr_data is None and layout.qr_box is None and layout.qr_row is None
        assert "GS ( k" not in {command.name for command in parse_commands(layout.commands)[0]}
        assert "Quét mã để theo dõi lượt" not in texts(layout)


def test_native_barcode_carries_the_ticket_ref() -> None:
    ticket = replace(TICKET, ticket_ref="2026-11-23:A015")

    with_barcode = parse_commands(render_ticket(ticket, replace(NATIVE_80, native_barcode=True)).commands)[0]
    without = parse_commands(render_ticket(ticket, NATIVE_80).commands)[0]

    assert [command.payload for command in with_barcode if command.name == "GS k"] == [b"{B2026-11-23:A015"]
    assert "GS k" not in {command.name for command in without}


# --------------------------------------------------------------------------- Vietnamese


@pytest.mark.parametrize("width", [576, 384])
def test_every_diacritic_is_printed_as_the_font_draws_it(width: int) -> None:
    ticket = replace(TICKET, field_name_vi=ALL_THE_MARKS)
    layout = render_ticket(ticket, PrinterProfile(paper_width_px=width), "vi")
    printed = decode_raster(layout.commands)  # from the bytes, not from layout.image

    field_lines = [line for line in layout.lines if line.text in ALL_THE_MARKS and line.style == "bold"
                   and line.size == ticket_layout._SIZES[width].field_name]
    assert " ".join(line.text for line in field_lines) == ALL_THE_MARKS  # wrapped, nothing lost
    for line in field_lines:
        alone = render_alone(line)
        assert printed.crop(line.box).tobytes() == alone.tobytes(), line.text
        # ...and the marks make a visible difference: the same words without them do not match.
        bare = render_alone(replace(line, text=strip_marks(line.text)))
        assert bare.size != alone.size or bare.tobytes() != alone.tobytes(), line.text


def test_decomposed_input_is_drawn_like_precomposed() -> None:
    decomposed = unicodedata.normalize("NFD", ALL_THE_MARKS)
    assert decomposed != ALL_THE_MARKS

    one = render_ticket(replace(TICKET, field_name_vi=decomposed), NATIVE_80)
    other = render_ticket(replace(TICKET, field_name_vi=ALL_THE_MARKS), NATIVE_80)

    assert one.commands == other.commands


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_no_text_leaves_as_code_page_characters(lang: str) -> None:
    ticket = replace(TICKET, field_name_vi=ALL_THE_MARKS, priority_label_vi="Người cao tuổi",
                     priority_label_en="Elderly person")
    layout = render_ticket(ticket, NATIVE_80, lang)

    names = {command.name for command in parse_commands(layout.commands)[0]}
    assert names <= ALLOWED_COMMANDS, names - ALLOWED_COMMANDS  # no ESC t, no text bytes, no LF
    for words in ("Đất đai", "Hộ tịch", "Đăng ký", "Trung tâm", "PHIẾU", "Cảm ơn"):
        assert words.encode("utf-8") not in layout.commands
        assert strip_marks(words).encode("ascii") not in layout.commands
    for words in ("QUEUE TICKET", "Thank you", "Land", "Bac Ninh"):
        assert words.encode("ascii") not in layout.commands


# --------------------------------------------------------------------------- wording


def test_vietnamese_ticket_says_it_all_in_vietnamese() -> None:
    layout = render_ticket(replace(TICKET, priority_label_vi="Người cao tuổi", priority_label_en="Elderly person"),
                           NATIVE_80, "vi")

    lines = texts(layout)
    assert lines.index("PHIẾU SỐ THỨ TỰ") < lines.index("A015") < lines.index("Đất đai")
    for expected in ("Ưu tiên: Người cao tuổi", "Số người đang chờ trước bạn: 4",
                     "Thời gian chờ dự kiến: khoảng 11 phút", "Lấy số lúc: 23/11/2026 09:05",
                     "Quét mã để theo dõi lượt", "Cảm ơn quý công dân!"):
        assert expected in lines
    assert "Land" not in lines and "QUEUE TICKET" not in lines
    centre = " ".join(lines[:lines.index("PHIẾU SỐ THỨ TỰ")])
    assert "Trung tâm Phục vụ hành chính công" in centre and "Public Administration" in centre


def test_english_ticket_keeps_the_centre_name_bilingual() -> None:
    layout = render_ticket(replace(TICKET, priority_label_vi="Người cao tuổi", priority_label_en="Elderly person"),
                           NATIVE_80, "en")

    lines = texts(layout)
    for expected in ("QUEUE TICKET", "A015", "Priority: Elderly person", "People ahead of you: 4",
                     "Estimated wait: about 11 min", "Issued: 23/11/2026 09:05", "Scan to follow your turn",
                     "Thank you!"):
        assert expected in lines
    assert lines.index("Land") < lines.index("Đất đai")  # English first, Vietnamese for the signs
    assert "PHIẾU SỐ THỨ TỰ" not in lines and "Cảm ơn quý công dân!" not in lines
    centre = " ".join(lines[:lines.index("QUEUE TICKET")])
    assert "Trung tâm Phục vụ hành chính công" in centre and "Public Administration" in centre


@pytest.mark.parametrize(("seconds", "vi", "en"), [
    (0, "dưới 1 phút", "under 1 min"),
    (1, "khoảng 1 phút", "about 1 min"),
    (60, "khoảng 1 phút", "about 1 min"),
    (61, "khoảng 2 phút", "about 2 min"),
    (3600, "khoảng 60 phút", "about 60 min"),
])
def test_wait_is_rounded_up_to_whole_minutes(seconds: int, vi: str, en: str) -> None:
    # The number and its unit are joined by a non-breaking space: never "khoảng 11" / "phút".
    assert wait_text(seconds, "vi") == vi.replace(" phút", NBSP + "phút")
    assert wait_text(seconds, "en") == en.replace(" min", NBSP + "min")


def test_a_number_is_not_parted_from_its_unit_on_narrow_paper() -> None:
    layout = render_ticket(replace(TICKET, est_wait_s=7190, people_ahead=1234), PrinterProfile(paper_width_px=384))

    lines = texts(layout)
    assert "khoảng 120 phút" in " ".join(lines)
    assert not any(line in ("phút", "1234") for line in lines)


def test_zero_wait_on_the_ticket() -> None:
    layout = render_ticket(replace(TICKET, est_wait_s=0, people_ahead=0), NATIVE_80)

    assert "Thời gian chờ dự kiến: dưới 1 phút" in texts(layout)
    assert "Số người đang chờ trước bạn: 0" in texts(layout)


def test_time_is_local_even_across_midnight_utc() -> None:
    late = datetime(2026, 11, 23, 17, 30, tzinfo=timezone.utc)  # 00:30 on the 24th in Hà Nội
    layout = render_ticket(replace(TICKET, issued_at=late), NATIVE_80)
    other_offset = render_ticket(replace(TICKET, issued_at=late.astimezone(timezone(timedelta(hours=-5)))), NATIVE_80)

    assert "Lấy số lúc: 24/11/2026 00:30" in texts(layout)
    assert layout.commands == other_offset.commands


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        replace(TICKET, issued_at=datetime(2026, 11, 23, 9, 5))


def test_long_centre_name_wraps_inside_the_paper() -> None:
    long_name = "Bộ phận tiếp nhận và trả kết quả Ủy ban nhân dân xã Nghĩa Hưng huyện Vĩnh Tường tỉnh Vĩnh Phúc"
    layout = render_ticket(replace(TICKET, centre_name_vi=long_name), PrinterProfile(paper_width_px=384))

    name_lines = [line for line in layout.lines if line.text in long_name]
    assert len(name_lines) > 1
    assert " ".join(line.text for line in name_lines) == long_name
    assert all(0 <= line.box[0] and line.box[2] <= 384 for line in layout.lines)


# --------------------------------------------------------------------------- fonts


def test_missing_font_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ticket_layout.FONT_DIR_ENV, raising=False)
    monkeypatch.setattr(ticket_layout, "FONT_DIRS", ())
    monkeypatch.setattr(ticket_layout, "FONT_SEARCH_ROOTS", ())

    with pytest.raises(ticket_layout.FontNotFoundError, match="fonts-dejavu-core"):
        render_ticket(TICKET, NATIVE_80)


def test_font_dir_from_the_environment_comes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for style in ("regular", "bold"):
        (tmp_path / ticket_layout.FONT_FILES[style]).symlink_to(font_path(style))
    monkeypatch.setenv(ticket_layout.FONT_DIR_ENV, str(tmp_path))

    assert font_path("bold") == tmp_path / "DejaVuSans-Bold.ttf"


# --------------------------------------------------------------------------- for people to look at


@pytest.mark.parametrize("width", [576, 384])
@pytest.mark.parametrize("lang", ["vi", "en"])
def test_save_ticket_pictures(width: int, lang: str) -> None:
    """test-artifacts/tickets/*.png: the tickets as printed (native QR drawn in) and as sent."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ticket = replace(TICKET, priority_label_vi="Người cao tuổi", priority_label_en="Elderly person")
    native = render_ticket(ticket, PrinterProfile(paper_width_px=width, native_qr=True), lang)
    drawn = render_ticket(ticket, PrinterProfile(paper_width_px=width, native_qr=False), lang)

    native.preview().save(ARTIFACTS / f"ticket-{width}px-{lang}.png")
    native.image.save(ARTIFACTS / f"ticket-{width}px-{lang}-raster-only.png")
    drawn.image.save(ARTIFACTS / f"ticket-{width}px-{lang}-qr-in-image.png")
    assert (ARTIFACTS / f"ticket-{width}px-{lang}.png").stat().st_size > 0
