"""The spoken call: its words (Vietnamese, English) and its WAV, made offline by espeak-ng and cached.

How a ticket code is read. The code on the ticket is the field's letter and the day's number
padded to three digits ("A015"); the padding is for the eye. Callers in Vietnamese
one-stop centres and banks read the number as a number, so "A015" is said
"A mười lăm" and "B105" "bê một trăm linh năm" (style "number", the default). Centres that
prefer digit by digit ("A không một năm") choose style "digits". The letter is said by its
Vietnamese name (bê, xê, dê, …) because espeak-ng reads some lone capitals wrongly ("X"
comes out as "ích").

Words, not digits, are handed to espeak-ng: its own Vietnamese reading of digits is wrong
in places ("1015" becomes "… mười năm"). espeak-ng runs with list arguments (never a shell
string); each distinct text is synthesised once into a cache directory, named by the hash of
voice, speed and text.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .numbers_vi import digit_words, number_words

log = logging.getLogger(__name__)

DEFAULT_TEMPLATES = {
    "vi": "Xin mời công dân có số thứ tự {ticket} đến quầy số {counter}",
    "en": "Ticket number {ticket}, please go to counter {counter}",
}
ESPEAK_VOICES = {"vi": "vi", "en": "en"}
STYLES = ("number", "digits")

# Vietnamese names of the Latin letters, as a caller says them.
LETTER_NAMES_VI = {
    "A": "a", "B": "bê", "C": "xê", "D": "dê", "E": "e", "F": "ép", "G": "giê", "H": "hát",
    "I": "i", "J": "gi", "K": "ca", "L": "e lờ", "M": "em mờ", "N": "en nờ", "O": "o", "P": "pê",
    "Q": "quy", "R": "e rờ", "S": "ét xì", "T": "tê", "U": "u", "V": "vê", "W": "vê kép",
    "X": "ích xì", "Y": "i dài", "Z": "dét",
}


class VoiceError(Exception):
    """The call could not be synthesised (espeak-ng missing or failing)."""


def split_code(code: str) -> tuple[str, str]:
    """'A015' -> ('A', '015'); ValueError when it is not a letter and 1–4 digits."""
    letter, digits = code[:1], code[1:]
    if letter not in LETTER_NAMES_VI or not (1 <= len(digits) <= 4) or not digits.isascii() or not digits.isdigit():
        raise ValueError(f"{code!r} is not a ticket code (a letter A–Z and 1–4 digits)")
    return letter, digits


def ticket_words_vi(code: str, style: str = "number") -> str:
    """'A015' -> 'a mười lăm' (number) or 'a không một năm' (digits)."""
    letter, digits = split_code(code)
    if style == "number":
        spoken = number_words(int(digits))
    elif style == "digits":
        spoken = digit_words(digits)
    else:
        raise ValueError(f"unknown style {style!r}; one of {STYLES}")
    return f"{LETTER_NAMES_VI[letter]} {spoken}"


def ticket_words_en(code: str, style: str = "number") -> str:
    """'A015' -> 'A15' (espeak-ng's English says 'ay fifteen'; with a space it says 'uh fifteen')."""
    letter, digits = split_code(code)
    if style == "digits":
        return f"{letter}, " + " ".join(digits)
    if style != "number":
        raise ValueError(f"unknown style {style!r}; one of {STYLES}")
    return f"{letter}{int(digits)}"


def call_text(code: str, counter_number: int, lang: str = "vi", *, style: str = "number", templates: dict[str, str] | None = None) -> str:
    """The sentence said for a call, e.g. 'Xin mời công dân có số thứ tự a mười lăm đến quầy số ba'."""
    templates = {**DEFAULT_TEMPLATES, **(templates or {})}
    if lang not in templates:
        raise ValueError(f"no template for language {lang!r}")
    if lang == "vi":
        ticket, counter = ticket_words_vi(code, style), number_words(counter_number)
    else:
        ticket, counter = ticket_words_en(code, style), str(counter_number)
    return templates[lang].format(ticket=ticket, counter=counter)


@dataclass
class Synthesizer:
    """espeak-ng into a cache directory of WAV files, one per distinct (voice, speed, text)."""

    cache_dir: Path
    executable: str | None = None  # None: espeak-ng found on PATH
    speed_wpm: int = 140  # espeak's default 175 is hurried for a lobby
    timeout_s: float = 20.0
    max_files: int = 2000  # ~100 KB each; the least recently used go first
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def available(self) -> bool:
        return self._executable() is not None

    def _executable(self) -> str | None:
        return self.executable or shutil.which("espeak-ng")

    def cache_path(self, text: str, lang: str) -> Path:
        key = hashlib.sha256(f"{ESPEAK_VOICES[lang]}\n{self.speed_wpm}\n{text}".encode()).hexdigest()[:32]
        return Path(self.cache_dir) / f"{lang}-{key}.wav"

    def wav(self, text: str, lang: str = "vi") -> Path:
        """The WAV of `text`, synthesised on first use; raises VoiceError when that fails."""
        if lang not in ESPEAK_VOICES:
            raise ValueError(f"unknown language {lang!r}")
        path = self.cache_path(text, lang)
        if self._touch(path):
            return path
        executable = self._executable()
        if executable is None:
            raise VoiceError("espeak-ng is not installed")
        # One synthesis at a time: espeak-ng is quick, and a burst of boards asking for the
        # same new call then makes it once, not once per board.
        with self._lock:
            if self._touch(path):
                return path
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, partial = tempfile.mkstemp(prefix=".voice-", suffix=".wav", dir=path.parent)
            os.close(fd)
            command = [executable, "-v", ESPEAK_VOICES[lang], "-s", str(self.speed_wpm), "-w", partial, "--", text]
            try:
                result = subprocess.run(command, capture_output=True, timeout=self.timeout_s, check=False)
                if result.returncode != 0 or os.path.getsize(partial) <= 44:
                    raise VoiceError(f"espeak-ng failed ({result.returncode}): {result.stderr.decode(errors='replace')[:300]}")
                os.replace(partial, path)  # readers see a whole file or none
            except subprocess.TimeoutExpired:
                raise VoiceError(f"espeak-ng took longer than {self.timeout_s} s") from None
            except OSError as exc:  # not executable, vanished, …
                raise VoiceError(f"espeak-ng could not run: {exc}") from None
            finally:
                if os.path.exists(partial):
                    os.unlink(partial)
            self._prune(keep=path)
        log.info("voice %s synthesised: %s", path.name, text)
        return path

    @staticmethod
    def _touch(path: Path) -> bool:
        """Whether `path` is cached; a hit is marked as recently used."""
        try:
            os.utime(path)
            return True
        except FileNotFoundError:
            return False

    def _prune(self, keep: Path) -> None:
        files = sorted(Path(self.cache_dir).glob("*.wav"), key=lambda p: p.stat().st_mtime)
        for old in files[: max(0, len(files) - self.max_files)]:
            if old != keep:
                old.unlink(missing_ok=True)
