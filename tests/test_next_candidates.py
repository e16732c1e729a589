"""A counter's "next" reads only the first ticket of each line it calls from
(Store.next_candidates) instead of the whole waiting line: the domain's choose_next must choose
the same ticket from those as from every waiting ticket, whatever the line looks like."""
from __future__ import annotations

import dataclasses
import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from queue_server.domain.counters import CounterState, choose_next
from queue_server.domain.tickets import TicketStatus, new_ticket
from queue_server.domain.timeutil import local_day
from queue_server.store import Store

from .conftest import MONDAY_9AM, make_config

CONFIG = make_config()
DAY = local_day(MONDAY_9AM, CONFIG.tz)
FIELDS = ["dat-dai", "ho-tich", "kinh-doanh"]

ticket_specs = st.lists(
    st.tuples(
        st.sampled_from(FIELDS),
        st.sampled_from([None, None, "elderly", "disabled"]),  # priority reason (None: normal)
        st.sampled_from([None, None, None, "quay-1", "quay-2", "quay-3"]),  # sent to a counter
        st.integers(0, 2),  # minutes after opening it joined the line: equal times are common
        st.sampled_from([TicketStatus.WAITING] * 4 + [TicketStatus.CALLED, TicketStatus.FINISHED]),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=ticket_specs, counter_id=st.sampled_from(["quay-1", "quay-2", "quay-3"]),
       streak=st.one_of(st.none(), st.integers(0, 3)), streak_today=st.booleans())
def test_choose_next_from_the_heads_equals_choose_next_from_the_whole_line(specs, counter_id, streak, streak_today):
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "motcua.sqlite3")
        try:
            numbers: dict[str, int] = {}
            with store.write():
                for n, (field_id, priority, target, minutes, status) in enumerate(specs):
                    numbers[field_id] = numbers.get(field_id, 0) + 1
                    at = MONDAY_9AM + timedelta(minutes=minutes)
                    ticket = new_ticket(f"t{(n * 7919) % 1009:04d}", CONFIG.field(field_id), numbers[field_id], at, CONFIG, priority=priority)
                    ticket = dataclasses.replace(ticket, target_counter_id=target, status=status,
                                                 queued_at=at)
                    store.insert_ticket(ticket)
            counter = CONFIG.counter(counter_id)
            state = CounterState(counter_id=counter_id, is_open=True, normal_streak=streak,
                                 streak_day=DAY if streak_today else DAY - timedelta(days=1))
            whole_line = store.waiting_tickets(DAY, list(counter.fields))
            heads = store.next_candidates(DAY, counter_id, list(counter.fields))
            assert len(heads) <= 3
            expected = choose_next(CONFIG, counter, state, whole_line, DAY)
            chosen = choose_next(CONFIG, counter, state, heads, DAY)
            assert (chosen.id if chosen else None) == (expected.id if expected else None)
            if expected is not None:
                assert chosen == expected
        finally:
            store.close()
