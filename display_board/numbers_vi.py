"""Vietnamese number words (0–9999) for spoken calls: "mười lăm", "hai mươi mốt", "một trăm linh năm".

espeak-ng's own reading of digits is wrong in places (it says "1015" as "... mười năm"), so
the announcer never hands it digits: it hands it these words.

The rules, in the standard (northern) reading:

- 10–19 use *mười* (mười, mười một, mười bốn, mười lăm); 20 and up use "<tens> *mươi*".
- After *mươi* (tens ≥ 2): 1 is *mốt* (hai mươi mốt), 4 is *tư* (hai mươi tư);
  after *mười* they stay *một*, *bốn* (mười một, mười bốn).
- 5 after *mười*/*mươi* is *lăm* (mười lăm, hai mươi lăm); alone or after *linh* it is *năm*.
- A zero tens digit between hundreds and a non-zero unit is *linh* (một trăm linh năm);
  the southern *lẻ* is an option.
- Inside a thousand, a zero hundreds digit is said when anything follows it:
  1005 một nghìn không trăm linh năm, 1050 một nghìn không trăm năm mươi, 1000 một nghìn.
- Thousands are *nghìn* (north) or *ngàn* (south).
"""
from __future__ import annotations

DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
MAX_NUMBER = 9999


def _under_hundred(number: int) -> list[str]:
    """1..99 (0 gives no words: the caller decides whether zero is said)."""
    tens, units = divmod(number, 10)
    if tens == 0:
        return [DIGITS[units]] if units else []
    if tens == 1:
        words = ["mười"]
        if units == 5:
            words.append("lăm")
        elif units:
            words.append(DIGITS[units])
        return words
    words = [DIGITS[tens], "mươi"]
    if units == 1:
        words.append("mốt")
    elif units == 4:
        words.append("tư")
    elif units == 5:
        words.append("lăm")
    elif units:
        words.append(DIGITS[units])
    return words


def _under_thousand(number: int, *, full: bool, odd_word: str) -> list[str]:
    """0..999; `full` says the hundreds even when zero (inside a larger number)."""
    hundreds, rest = divmod(number, 100)
    words: list[str] = []
    if hundreds or full:
        words += [DIGITS[hundreds], "trăm"]
    if rest == 0:
        return words
    if words and rest < 10:
        words.append(odd_word)  # một trăm linh năm: năm, not lăm, after linh
        words.append(DIGITS[rest])
        return words
    return words + _under_hundred(rest)


def number_words(number: int, *, south: bool = False) -> str:
    """The Vietnamese words for 0 ≤ number ≤ 9999 (south: "ngàn", "lẻ" instead of "nghìn", "linh")."""
    if isinstance(number, bool) or not isinstance(number, int):
        raise TypeError(f"an int is needed, not {type(number).__name__}")
    if not 0 <= number <= MAX_NUMBER:
        raise ValueError(f"{number} is outside 0..{MAX_NUMBER}")
    if number == 0:
        return DIGITS[0]
    thousands, rest = divmod(number, 1000)
    odd_word = "lẻ" if south else "linh"
    words: list[str] = []
    if thousands:
        words += [DIGITS[thousands], "ngàn" if south else "nghìn"]
    words += _under_thousand(rest, full=bool(thousands), odd_word=odd_word) if rest else []
    return " ".join(words)


def digit_words(digits: str) -> str:
    """Digit by digit: "015" -> "không một năm" (for centres that read codes that way)."""
    if not digits or not digits.isascii() or not digits.isdigit():
        raise ValueError(f"{digits!r} is not a string of digits")
    return " ".join(DIGITS[int(digit)] for digit in digits)
