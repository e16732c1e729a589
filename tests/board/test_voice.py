"""The spoken call: its words, its WAV (real espeak-ng, cached, list arguments), its URL, and the chime."""
from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import pytest

from display_board import chime
from display_board.voice import Synthesizer, VoiceError, call_text, ticket_words_en, ticket_words_vi

ESPEAK = shutil.which("espeak-ng")
needs_espeak = pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is not installed (scripts/apt-packages.txt)")


@pytest.mark.parametrize(("code", "style", "words"), [
    ("A015", "number", "a mười lăm"),
    ("A001", "number", "a một"),
    ("B105", "number", "bê một trăm linh năm"),
    ("C021", "number", "xê hai mươi mốt"),
    ("X024", "number", "ích xì hai mươi tư"),
    ("A1015", "number", "a một nghìn không trăm mười lăm"),
    ("A015", "digits", "a không một năm"),
    ("D100", "digits", "dê một không không"),
])
def test_ticket_words_vi(code: str, style: str, words: str) -> None:
    assert ticket_words_vi(code, style) == words


def test_ticket_words_en() -> None:
    assert ticket_words_en("A015") == "A15"
    assert ticket_words_en("B105") == "B105"
    assert ticket_words_en("A015", "digits") == "A, 0 1 5"


@pytest.mark.parametrize("bad", ["", "A", "015", "a015", "AB15", "A12345", "Ă015", "A0x5"])
def test_not_a_ticket_code(bad: str) -> None:
    with pytest.raises(ValueError):
        ticket_words_vi(bad)


def test_call_text_in_both_languages() -> None:
    assert call_text("A015", 3) == "Xin mời công dân có số thứ tự a mười lăm đến quầy số ba"
    assert call_text("B105", 12) == "Xin mời công dân có số thứ tự bê một trăm linh năm đến quầy số mười hai"
    assert call_text("A015", 3, "en") == "Ticket number A15, please go to counter 3"


def test_call_text_template_is_configurable() -> None:
    templates = {"vi": "Mời số {ticket} tới quầy {counter}"}
    assert call_text("A015", 21, templates=templates) == "Mời số a mười lăm tới quầy hai mươi mốt"
    with pytest.raises(ValueError):
        call_text("A015", 3, "fr")


@needs_espeak
def test_wav_is_made_once_and_cached(tmp_path: Path, monkeypatch) -> None:
    synth = Synthesizer(tmp_path / "voices")
    text = call_text("A015", 3)
    runs: list[tuple] = []
    real_run = subprocess.run

    def spy(*args, **kwargs):
        runs.append((args, kwargs))
        return real_run(*args, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy)
    first = synth.wav(text, "vi")
    second = synth.wav(text, "vi")
    assert first == second and first.parent == tmp_path / "voices"
    assert len(runs) == 1, "the second request must come from the cache"
    (command,), options = runs[0]
    assert isinstance(command, list) and command[0] == ESPEAK and command[-1] == text, command
    assert ["-v", "vi"] == command[1:3]
    assert not options.get("shell"), "never a shell"
    with wave.open(str(first)) as audio:
        assert audio.getnchannels() == 1 and audio.getnframes() / audio.getframerate() > 1.0
    assert list((tmp_path / "voices").iterdir()) == [first], "no partial files left behind"
    # Another text, another file.
    assert synth.wav(call_text("A016", 3), "vi") != first


@needs_espeak
def test_text_that_looks_like_an_option_is_spoken_not_obeyed(tmp_path: Path) -> None:
    path = Synthesizer(tmp_path).wav("--version", "en")
    assert path.read_bytes()[:4] == b"RIFF"


@needs_espeak
def test_the_cache_keeps_the_most_recently_used(tmp_path: Path) -> None:
    import os

    synth = Synthesizer(tmp_path, max_files=2)
    first = synth.wav("một", "vi")
    second = synth.wav("hai", "vi")
    os.utime(first, (1, 1))
    os.utime(second, (2, 2))
    assert synth.wav("một", "vi") == first  # a hit: now the most recently used
    third = synth.wav("ba", "vi")
    assert sorted(tmp_path.glob("*.wav")) == sorted([first, third])


def test_missing_synthesiser_is_a_voice_error(tmp_path: Path) -> None:
    synth = Synthesizer(tmp_path, executable=str(tmp_path / "no-such-espeak"))
    with pytest.raises(VoiceError):
        synth.wav("Xin mời", "vi")
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".wav"]


# --- over HTTP ------------------------------------------------------------------------------


@needs_espeak
def test_voice_url_gives_a_wav(client, service, tmp_path: Path) -> None:
    client.application.config["MOTCUA_VOICE_CACHE_DIR"] = str(tmp_path / "cache")
    service.issue_ticket("dat-dai")
    with client.get("/board/voice/A001/quay-3.wav") as response:
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "audio/wav" and response.data[:4] == b"RIFF"
    with client.get("/board/voice/A001/quay-3.wav?lang=en&style=digits") as english:
        assert english.status_code == 200 and english.data != response.data
    assert len(list((tmp_path / "cache").glob("*.wav"))) == 2


@pytest.mark.parametrize(("path", "status"), [
    ("/board/voice/A002/quay-1.wav", 404),  # not issued today
    ("/board/voice/Z001/quay-1.wav", 404),  # no field has the letter Z
    ("/board/voice/A001/quay-9.wav", 404),  # no such counter
    ("/board/voice/A0000/quay-1.wav", 404),
    ("/board/voice/A100001/quay-1.wav", 404),
    ("/board/voice/xin-moi/quay-1.wav", 404),
    ("/board/voice/A001/quay-1.wav?lang=fr", 400),
    ("/board/voice/A001/quay-1.wav?style=roman", 400),
])
def test_voice_url_only_for_real_calls(client, service, path: str, status: int) -> None:
    service.issue_ticket("dat-dai")
    response = client.get(path)
    assert response.status_code == status
    assert response.get_json()["error"]["code"]


def test_voice_url_without_synthesiser_is_503(client, service, tmp_path: Path) -> None:
    from display_board.board import synthesizer

    service.issue_ticket("dat-dai")
    with client.application.app_context():
        synthesizer().executable = str(tmp_path / "no-such-espeak")
        synthesizer().cache_dir = tmp_path
    response = client.get("/board/voice/A001/quay-1.wav")
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "voice_unavailable"


# --- the chime ------------------------------------------------------------------------------


def test_chime_file_is_the_synthesised_chime() -> None:
    path = Path(chime.__file__).with_name("static") / "chime.wav"
    with wave.open(str(path)) as audio:
        assert (audio.getnchannels(), audio.getsampwidth(), audio.getframerate()) == (1, 2, chime.SAMPLE_RATE)
        frames = audio.readframes(audio.getnframes())
    stored = [int.from_bytes(frames[i:i + 2], "little", signed=True) for i in range(0, len(frames), 2)]
    made = chime.chime_samples()
    assert len(stored) == len(made)
    # ±1 allows another platform's last-bit rounding in sin/exp; regenerate with `python -m display_board.chime`.
    assert max(abs(a - b) for a, b in zip(stored, made)) <= 1
    assert max(abs(sample) for sample in made) < 32767 * 0.7, "headroom: never clipping"
    assert made[-1] == 0, "ends in silence"
