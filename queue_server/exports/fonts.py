"""DejaVu Sans for reportlab: PDF's built-in fonts have no Vietnamese letters (ơ, ư, đ, ạ, ễ…)."""
from __future__ import annotations

import os
import threading
from pathlib import Path

FONT_DIR_ENV = "MOTCUA_FONT_DIR"
# reportlab font name -> DejaVu file. Oblique for the place-and-date line of official forms.
FONT_FILES = {
    "DejaVuSans": "DejaVuSans.ttf",
    "DejaVuSans-Bold": "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique": "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique": "DejaVuSans-BoldOblique.ttf",
}
FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),  # Debian, Ubuntu, Raspberry Pi OS (fonts-dejavu-core)
    Path("/usr/share/fonts/dejavu-sans-fonts"),  # Fedora
    Path("/usr/share/fonts/dejavu"),  # Alpine
    Path("/usr/share/fonts/TTF"),  # Arch
    Path("/usr/local/share/fonts"),
)
FONT_SEARCH_ROOTS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
REGULAR, BOLD, OBLIQUE, BOLD_OBLIQUE = FONT_FILES

_registered = False
_lock = threading.Lock()


class FontNotFoundError(FileNotFoundError):
    """DejaVu Sans is not installed where we look for it."""


def font_path(filename: str) -> Path:
    """Where a DejaVu file is: $MOTCUA_FONT_DIR first, then the usual places."""
    directories = list(FONT_DIRS)
    if os.environ.get(FONT_DIR_ENV):
        directories.insert(0, Path(os.environ[FONT_DIR_ENV]))
    for directory in directories:
        if (directory / filename).is_file():
            return directory / filename
    for root in FONT_SEARCH_ROOTS:
        if root.is_dir():
            for candidate in sorted(root.rglob(filename)):
                if candidate.is_file():
                    return candidate
    raise FontNotFoundError(
        f"font {filename} not found (looked in {', '.join(map(str, directories))}). PDF exports are set in "
        f"DejaVu Sans because it has every Vietnamese letter: install it (Debian/Ubuntu: apt-get install "
        f"fonts-dejavu-core) or set {FONT_DIR_ENV} to a directory holding the DejaVuSans*.ttf files."
    )


def register_fonts() -> None:
    """Register the DejaVu family with reportlab once per process (parsing the files takes ~0.1 s)."""
    global _registered
    if _registered:
        return
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    with _lock:
        if _registered:
            return
        for name, filename in FONT_FILES.items():
            pdfmetrics.registerFont(TTFont(name, str(font_path(filename))))
        # So that <b> and <i> in paragraphs pick the right faces.
        pdfmetrics.registerFontFamily(REGULAR, normal=REGULAR, bold=BOLD, italic=OBLIQUE, boldItalic=BOLD_OBLIQUE)
        _registered = True
