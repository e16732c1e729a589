"""The chime before a call: a two-note "ding-dong" synthesised in plain Python (no sample, no download).

`static/chime.wav` is this module's output; regenerate it with
`python -m display_board.chime display_board/static/chime.wav` (a test checks they agree).
"""
from __future__ import annotations

import math
import struct
import sys
import wave
from pathlib import Path

SAMPLE_RATE = 22050
# E5 then C5, like a lobby door chime.
NOTES = ((659.25, 0.0), (523.25, 0.45))
TOTAL_S = 1.4
# A bell-like tone: the fundamental and two quieter partials, each decaying at its own rate.
PARTIALS = ((1.0, 1.0, 3.0), (2.0, 0.35, 5.0), (3.0, 0.12, 8.0))  # (multiple, amplitude, decay per second)
PEAK = 0.6  # of full scale: loud enough, never clipping


def chime_samples() -> list[int]:
    total = int(TOTAL_S * SAMPLE_RATE)
    mix = [0.0] * total
    for frequency, start_s in NOTES:
        start = int(start_s * SAMPLE_RATE)
        for index in range(total - start):  # each note rings on to the end, under the next
            t = index / SAMPLE_RATE
            attack = min(1.0, t / 0.005)  # 5 ms attack: no click
            value = sum(amp * math.exp(-decay * t) * math.sin(2 * math.pi * frequency * mult * t) for mult, amp, decay in PARTIALS)
            mix[start + index] += attack * value
    peak = max(abs(value) for value in mix) or 1.0
    # a last fade makes the end silent (no click when the voice follows)
    fade_out = int(0.08 * SAMPLE_RATE)
    samples = []
    for index, value in enumerate(mix):
        gain = min(1.0, (total - index) / fade_out)
        samples.append(int(round(value / peak * PEAK * gain * 32767)))
    return samples


def write_chime(path: str | Path) -> Path:
    path = Path(path)
    samples = chime_samples()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    return path


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    write_chime(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).with_name("static") / "chime.wav")
