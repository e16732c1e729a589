"""Devices first: while a device's message (a press, a ticket request) waits to be applied, the
server's other work steps aside for a moment.

Every thread of the server runs Python under one global lock, and every SQLite statement lets go
of it and takes it back. When a clerk's request or the state publisher holds the lock, the MQTT
ingest waits for it at each statement of a press, up to the lock's switch interval each time (the
convoy effect). On the medium compressed day, a press spent p50/p99 10/54 ms between paho handing
it over and its batch being committed and sent to the boards, and 3/45 ms more waiting for the
ingest thread to start on it (bench/full_day.py --tickets 6000 --day-s 144, docs/performance.md).

So work that can wait a little, a clerk's request before it is built and each state message
before it is read and published, first gives way: it waits until no device message is waiting
or being applied, or `GIVE_WAY_MAX_S` at most, so that a flood of device messages slows the rest
but never stops it. A clerk does not notice 50 ms; a citizen watching the board after a press is
what the 100 ms target is about.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

# The longest one piece of other work waits for the devices' messages, each time it gives way.
GIVE_WAY_MAX_S = 0.05


class DeviceFirst:
    """How many device messages are received and not yet applied, and a bounded wait for other
    work until there are none.

    `received()` counts one in (paho's thread, as the message is queued); `settled(n)` says how
    many are still queued after a batch was applied (the ingest thread's own count, so any count
    that went astray is put right at the next batch, and a stopped link says 0)."""

    def __init__(self, max_wait_s: float = GIVE_WAY_MAX_S, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.max_wait_s = max_wait_s
        self._monotonic = monotonic
        self._waiting = 0
        self._changed = threading.Condition()
        self.gave_way = 0  # how many times other work had to wait

    @property
    def waiting(self) -> int:
        return self._waiting

    def received(self, count: int = 1) -> None:
        with self._changed:
            self._waiting += count

    def settled(self, still_waiting: int) -> None:
        with self._changed:
            self._waiting = max(0, still_waiting)
            if not self._waiting:
                self._changed.notify_all()

    def give_way(self) -> float:
        """Wait until no device message is waiting, or `max_wait_s`; returns the seconds waited."""
        if not self._waiting:  # the usual case: no lock taken
            return 0.0
        started = self._monotonic()
        with self._changed:
            if not self._waiting:
                return 0.0
            self.gave_way += 1
            self._changed.wait_for(lambda: not self._waiting, self.max_wait_s)
        return self._monotonic() - started
