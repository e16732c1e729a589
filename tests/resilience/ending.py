"""The ending every resilience test shares: nothing lost, nothing counted twice, figures right.

`check_nothing_lost` reads the server's SQLite file through a QueueService of its own (the
server may be running or stopped: WAL lets it read the last commit) and asserts:

- `PRAGMA integrity_check` is ok;
- every rating msg_id the devices got acknowledged is stored, exactly once, with its one
  history record, and no ticket has more than one counted rating;
- every ticket number is used once per field and day, from 1 without a gap (a crash never
  leaves half a ticket), and every idempotency key (HTTP Idempotency-Key or a kiosk's
  transaction) names exactly one ticket;
- the figures of every day in the file equal the figures recomputed from the append-only
  history alone.
"""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

from queue_server.service import QueueService


@dataclass(frozen=True)
class Ending:
    """What the file holds at the end, for the test's own, more specific checks."""

    ratings: int
    counted: int
    flagged: dict[str, int]
    tickets: int
    first_day: date | None
    last_day: date | None
    figures: dict | None


def check_nothing_lost(service: QueueService, *, msg_ids: Collection[str] = (), exact_msg_ids: bool = True,
                       idempotency_keys: Collection[tuple[str, str]] = ()) -> Ending:
    """`msg_ids`: presses acknowledged to their device (all stored; with `exact_msg_ids`, nothing
    else either). `idempotency_keys`: (scope, key) pairs acknowledged or retried, one ticket each."""
    db = service.store.db
    assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]

    stored = dict(db.execute("SELECT msg_id, COUNT(*) FROM ratings GROUP BY msg_id").fetchall())
    assert {msg_id: n for msg_id, n in stored.items() if n != 1} == {}, "a msg_id stored twice"
    missing = set(msg_ids) - set(stored)
    assert not missing, f"{len(missing)} acknowledged presses lost, e.g. {sorted(missing)[:5]}"
    if exact_msg_ids:
        assert set(stored) == set(msg_ids), f"unexpected presses {sorted(set(stored) - set(msg_ids))[:5]}"
    assert db.execute("SELECT ticket_id FROM ratings WHERE counted = 1 GROUP BY ticket_id "
                      "HAVING COUNT(*) > 1").fetchall() == [], "a ticket counted twice"
    ratings = db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0]
    assert db.execute("SELECT COUNT(*) FROM history WHERE kind = 'rating_recorded'").fetchone()[0] == ratings

    numbering = db.execute(
        "SELECT service_day, issued_field_id, COUNT(*), COUNT(DISTINCT number), MIN(number), MAX(number) "
        "FROM tickets GROUP BY service_day, issued_field_id").fetchall()
    for day, field, count, distinct, lowest, highest in numbering:
        assert count == distinct == highest and lowest == 1, f"numbers of {field} on {day}: {count} tickets, " \
                                                            f"{distinct} distinct, {lowest}..{highest}"
    tickets = db.execute("SELECT COUNT(*) FROM tickets").fetchone()[0]
    assert db.execute("SELECT COUNT(*) FROM tickets WHERE id NOT IN (SELECT subject FROM history)").fetchone()[0] == 0, \
        "a ticket without its history"
    for scope, key in idempotency_keys:
        found = db.execute("SELECT ticket_id FROM idempotency WHERE scope = ? AND key = ?", [scope, key]).fetchall()
        assert len(found) == 1, f"{scope} {key}: {len(found)} tickets"
        assert db.execute("SELECT COUNT(*) FROM tickets WHERE id = ?", [found[0][0]]).fetchone()[0] == 1

    days = db.execute(
        "SELECT MIN(day), MAX(day) FROM (SELECT service_day AS day FROM tickets UNION ALL SELECT day FROM ratings)"
    ).fetchone()
    figures = None
    first = last = None
    if days[0] is not None:
        first, last = date.fromisoformat(days[0]), date.fromisoformat(days[1])
        figures = service.figures(first, last)
        assert figures == service.figures_from_history(first, last), "figures differ from the history's"
    counted = db.execute("SELECT COUNT(*) FROM ratings WHERE counted = 1").fetchone()[0]
    flagged = dict(db.execute("SELECT flag, COUNT(*) FROM ratings WHERE counted = 0 GROUP BY flag").fetchall())
    return Ending(ratings, counted, flagged, tickets, first, last, figures)
