"""Vietnamese number words: the rules (mười/mươi, mốt, tư, lăm, linh, không trăm, nghìn) and all of 0–9999."""
from __future__ import annotations

import re

import pytest

from display_board.numbers_vi import DIGITS, MAX_NUMBER, digit_words, number_words


@pytest.mark.parametrize(("number", "words"), [
    (0, "không"),
    (1, "một"),
    (4, "bốn"),
    (5, "năm"),
    (9, "chín"),
    # 10–19: mười; its 1, 4 and 5 are một, bốn, lăm
    (10, "mười"),
    (11, "mười một"),
    (14, "mười bốn"),
    (15, "mười lăm"),
    (19, "mười chín"),
    # 20 and up: "<tens> mươi"; then 1 is mốt, 4 is tư, 5 is lăm
    (20, "hai mươi"),
    (21, "hai mươi mốt"),
    (24, "hai mươi tư"),
    (25, "hai mươi lăm"),
    (31, "ba mươi mốt"),
    (44, "bốn mươi tư"),
    (50, "năm mươi"),
    (55, "năm mươi lăm"),
    (99, "chín mươi chín"),
    # hundreds: a zero tens digit before a unit is linh (and 5 stays năm after linh)
    (100, "một trăm"),
    (101, "một trăm linh một"),
    (104, "một trăm linh bốn"),
    (105, "một trăm linh năm"),
    (110, "một trăm mười"),
    (111, "một trăm mười một"),
    (115, "một trăm mười lăm"),
    (121, "một trăm hai mươi mốt"),
    (205, "hai trăm linh năm"),
    (500, "năm trăm"),
    (999, "chín trăm chín mươi chín"),
    # thousands: nghìn, and a zero hundreds digit is said when something follows
    (1000, "một nghìn"),
    (1001, "một nghìn không trăm linh một"),
    (1005, "một nghìn không trăm linh năm"),
    (1010, "một nghìn không trăm mười"),
    (1015, "một nghìn không trăm mười lăm"),
    (1050, "một nghìn không trăm năm mươi"),
    (1100, "một nghìn một trăm"),
    (1105, "một nghìn một trăm linh năm"),
    (2024, "hai nghìn không trăm hai mươi tư"),
    (5555, "năm nghìn năm trăm năm mươi lăm"),
    (9999, "chín nghìn chín trăm chín mươi chín"),
])
def test_number_words(number: int, words: str) -> None:
    assert number_words(number) == words


@pytest.mark.parametrize(("number", "words"), [
    (105, "một trăm lẻ năm"),
    (1000, "một ngàn"),
    (1005, "một ngàn không trăm lẻ năm"),
    (21, "hai mươi mốt"),
])
def test_southern_reading(number: int, words: str) -> None:
    assert number_words(number, south=True) == words


@pytest.mark.parametrize("bad", [-1, MAX_NUMBER + 1, 100_000])
def test_out_of_range(bad: int) -> None:
    with pytest.raises(ValueError):
        number_words(bad)


@pytest.mark.parametrize("bad", [True, 1.0, "15", None])
def test_only_ints(bad) -> None:
    with pytest.raises(TypeError):
        number_words(bad)


def test_digit_words() -> None:
    assert digit_words("015") == "không một năm"
    assert digit_words("1005") == "một không không năm"
    for bad in ("", "1a", "١٢"):
        with pytest.raises(ValueError):
            digit_words(bad)


# --- every number 0–9999 -------------------------------------------------------------------

UNITS = {word: value for value, word in enumerate(DIGITS)}
VOCABULARY = set(DIGITS) | {"mười", "mươi", "mốt", "tư", "lăm", "linh", "trăm", "nghìn"}


def parse_words(text: str) -> int:
    """An independent reading of the words back into a number (a check, not the implementation)."""
    words = text.split(" ")
    total = 0
    if "nghìn" in words:
        at = words.index("nghìn")
        total += 1000 * UNITS[words[at - 1]]
        assert at == 1, text
        words = words[at + 1:]
    if "trăm" in words:
        at = words.index("trăm")
        assert at == 1, text
        total += 100 * UNITS[words[0]]
        words = words[2:]
    if words[:1] == ["linh"]:
        assert len(words) == 2 and words[1] in UNITS and words[1] != "không", text
        return total + UNITS[words[1]]
    if words[:1] == ["mười"]:
        total += 10
        words = words[1:]
    elif len(words) >= 2 and words[1] == "mươi":
        total += 10 * UNITS[words[0]]
        words = words[2:]
    if words:
        assert len(words) == 1, text
        unit = {"mốt": 1, "tư": 4, "lăm": 5}.get(words[0], UNITS.get(words[0]))
        assert unit is not None, text
        total += unit
    return total


def test_every_number_has_words_and_reads_back() -> None:
    seen: dict[str, int] = {}
    for number in range(MAX_NUMBER + 1):
        words = number_words(number)
        assert words and words == words.strip() and "  " not in words, number
        assert not re.search(r"\d", words), (number, words)
        assert set(words.split(" ")) <= VOCABULARY, (number, words)
        assert parse_words(words) == number, (number, words)
        assert words not in seen, (number, seen.get(words), words)
        seen[words] = number


def test_every_number_follows_the_neighbour_rules() -> None:
    for number in range(MAX_NUMBER + 1):
        words = number_words(number).split(" ")
        for index, word in enumerate(words):
            before = words[index - 1] if index else None
            if word == "mốt" or word == "tư":
                assert before == "mươi", (number, words)  # hai mươi mốt, but mười một, linh một
            if word == "lăm":
                assert before in ("mười", "mươi"), (number, words)  # mười lăm, but linh năm
            if word == "năm" and before in ("mười", "mươi"):
                raise AssertionError((number, words))
            if word == "mươi":
                assert before not in (None, "không", "một"), (number, words)  # mười, not một mươi
            if word == "linh":
                assert before == "trăm", (number, words)
        if number >= 1000 and number % 1000:
            assert "trăm" in words, (number, words)  # một nghìn không trăm …
