"""The rating terminal's behaviour without Kivy: its counter's state in, one press at a time out.

A press is written to the outbox first, then published at QoS 1, and removed from the outbox
when the broker acknowledges it (on_publish with its mid). On every connect whatever is still
in the outbox and not already held by paho for resending is published again, unchanged: the
server counts a msg_id once, so a repeat is harmless and a lost press is not possible.

Callbacks arrive on paho's network thread; the Kivy app hops to its own.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt

from queue_server.mqtt import contract

from ..device_link import connect_in_background, device_client
from .outbox import Outbox, OutboxEntry
from .settings import RatingTerminalSettings

log = logging.getLogger(__name__)

# Presses wait in the outbox while the broker is away; come back quickly when it returns
# rather than after paho's default backoff of up to 30 s.
RECONNECT_MAX_S = 5
# paho keeps a QoS 1 message it accepted (sent or queued while disconnected) and resends it
# itself after a reconnect; any other result means it dropped it and the outbox must resend.
_KEPT_BY_PAHO = (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN)


@dataclass
class TerminalState:
    config: contract.ConfigState | None = None
    counter: contract.CounterState | None = None
    broker_connected: bool = False
    server_status: str = "unknown"  # online / offline / stopped / unknown


def rateable_ticket_id(counter: contract.CounterState | None) -> str | None:
    """The id of the ticket awaiting its rating (state/counter's rating_ticket_id): a press names
    it, so that one delivered late from the outbox still binds to the ticket it was meant for."""
    return counter.rating_ticket_id if counter is not None else None


class RatingTerminal:
    def __init__(
        self,
        settings: RatingTerminalSettings,
        *,
        outbox: Outbox | None = None,
        on_update: Callable[[], None] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """`outbox` defaults to the settings' outbox file; `clock` (aware datetimes) to the real one."""
        self.settings = settings
        self.site = settings.site
        self.device = settings.device
        self.counter_id = settings.counter
        self.state = TerminalState()
        self.on_update = on_update or (lambda: None)
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self._own_outbox = outbox is None
        self.outbox = outbox or Outbox(settings.outbox_path(), settings.device)
        self._ack_lock = threading.Lock()  # never held while calling into paho (on_publish runs under its lock)
        self._send_lock = threading.Lock()  # one sender at a time: a press and a reconnect do not send a row twice
        self._in_flight: dict[int, str | None] = {}  # mid -> msg_id (None: a publish of ours not from the outbox)
        self._acked_early: set[int] = set()  # PUBACKs that beat publish() returning its mid
        self._pressed_until: datetime | None = None  # the rating window this terminal already sent a press for
        # The server's clock minus this device's, from the `at` of live counter states: the
        # rating window is the server's, and a device clock can be hours off.
        self._server_offset = timedelta(0)
        self._offset_from_live_state = False
        self.client = device_client(settings.mqtt, self.site, self.device)
        self.client.reconnect_delay_set(min_delay=1, max_delay=RECONNECT_MAX_S)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish

    # --- connection -----------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (once per object); paho keeps retrying while the broker is away."""
        connect_in_background(self.client, self.settings.mqtt)

    def stop(self) -> None:
        """Leave cleanly. What the broker has not acknowledged stays in the outbox for next time."""
        if self.state.broker_connected:
            info = self._publish(contract.topic_device_status(self.site, self.device), contract.Status.OFFLINE.value,
                                 retain=True)
            try:
                info.wait_for_publish(2)
            except (RuntimeError, ValueError):
                log.warning("could not publish device status 'offline'")
        self.client.disconnect()
        self.client.loop_stop()
        self.state.broker_connected = False
        with self._ack_lock:
            self._in_flight.clear()
            self._acked_early.clear()
        if self._own_outbox:
            self.outbox.close()

    def online(self) -> bool:
        return self.state.broker_connected and self.state.server_status == "online"

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:
            log.warning("broker refused the rating terminal: %s", reason)
            return
        self.state.broker_connected = True
        self._publish(contract.topic_device_status(self.site, self.device), contract.Status.ONLINE.value, retain=True)
        client.subscribe(contract.rating_terminal_subscriptions(self.site, self.counter_id))
        self._resend_outbox()
        self.on_update()

    def _on_disconnect(self, client, userdata, flags, reason, properties) -> None:
        self.state.broker_connected = False
        self.on_update()

    def _on_message(self, client, userdata, message) -> None:
        try:
            inbound = contract.parse_from_server(self.site, message.topic, bytes(message.payload))
        except contract.PayloadRejected as exc:
            log.warning("ignored a message on %s: %s", message.topic, exc)
            return
        kind = inbound.kind
        if kind is contract.Kind.CONFIG and inbound.message is not None:
            self.state.config = inbound.message
        elif kind is contract.Kind.COUNTER_STATE and inbound.ids.get("counter") == self.counter_id:
            self.state.counter = inbound.message  # None: the retained state was cleared
            self._learn_server_time(inbound.message, retained=bool(message.retain))
        elif kind is contract.Kind.SERVER_STATUS:
            self.state.server_status = str(getattr(inbound.message, "value", inbound.message or "unknown"))
        else:
            return
        self.on_update()

    def _learn_server_time(self, counter: contract.CounterState | None, *, retained: bool) -> None:
        """A live state was published a moment ago: its `at` is the server's time now. A retained
        one may be minutes old, so it is only used while nothing better is known."""
        if counter is None or counter.at is None or (retained and self._offset_from_live_state):
            return
        self._server_offset = counter.at - self.clock()
        self._offset_from_live_state = not retained

    def server_now(self) -> datetime:
        """The server's time as far as this terminal knows it."""
        return self.clock() + self._server_offset

    # --- what the screen shows ------------------------------------------------------------------

    def counter_number(self) -> int | None:
        config = self.state.config
        info = next((c for c in config.counters if c.id == self.counter_id), None) if config else None
        return info.number if info else None

    def clerk_name(self) -> str | None:
        return self.state.counter.clerk if self.state.counter else None

    def status(self) -> str | None:
        """idle / serving / rating / closed, as the server last said; None before it said anything."""
        return self.state.counter.status if self.state.counter else None

    def serving_ticket(self) -> str | None:
        """The display code of the ticket being served here now."""
        counter = self.state.counter
        return counter.ticket if counter and counter.status == "serving" else None

    def rating_ticket(self) -> str | None:
        """The display code of the ticket awaiting its rating, when the state names it."""
        counter = self.state.counter
        return counter.ticket if counter and counter.status == "rating" and self.awaiting_rating() else None

    def awaiting_rating(self, now: datetime | None = None) -> bool:
        """A finished ticket may be rated now and this terminal has not sent a press for it.

        Also true while the counter is already serving the next ticket: "Next" finishes the
        current ticket and calls another at once, and the finished one stays rateable until
        `rating_until` (the state says so by keeping rating_until)."""
        counter = self.state.counter
        if counter is None or counter.rating_until is None or counter.rating_until == self._pressed_until:
            return False
        return (now or self.server_now()) < counter.rating_until

    def rating_until(self) -> datetime | None:
        counter = self.state.counter
        return counter.rating_until if counter else None

    def levels(self) -> list[contract.RatingLevel]:
        """The configured scale, best first."""
        return list(self.state.config.rating_scale) if self.state.config else []

    def reasons(self) -> list[contract.Choice]:
        return list(self.state.config.rating_reasons) if self.state.config else []

    def is_satisfied(self, level_id: str) -> bool:
        level = next((lv for lv in self.levels() if lv.id == level_id), None)
        return level.satisfied if level else True

    def local_now(self) -> datetime:
        """The device's time with the centre's offset (as `at` is sent)."""
        now = self.clock()
        config = self.state.config
        return now.astimezone(ZoneInfo(config.timezone)) if config else now.astimezone()

    # --- pressing -------------------------------------------------------------------------------

    def press(self, level: str, reasons: list[str] | None = None, *, at: datetime | None = None) -> str:
        """Record one press (on disk first) and send it; returns its msg_id.

        `at` is when the citizen pressed (the level, before choosing reasons), default now."""
        known = [lv.id for lv in self.levels()]
        if known and level not in known:
            raise ValueError(f"level {level!r} is not on the configured scale {known}")
        at = at or self.local_now()
        counter = self.state.counter
        ticket_id = rateable_ticket_id(counter)

        def payload(msg_id: str) -> bytes:
            event = contract.RatingEvent(
                msg_id=msg_id, counter=self.counter_id, level=level, ticket=ticket_id,
                reasons=list(reasons)[:contract.MAX_REASONS] if reasons else None, at=at,
            )
            return contract.encode(event)

        entry = self.outbox.add(contract.topic_rating(self.site, self.device), payload)
        if counter is not None and counter.rating_until is not None:
            self._pressed_until = counter.rating_until  # the prompt is answered, whatever the network does
        with self._send_lock:
            self._send(entry)
        self.on_update()
        return entry.msg_id

    def unsent(self) -> int:
        """Presses the broker has not acknowledged yet."""
        return self.outbox.count()

    # --- publishing with acknowledgement ----------------------------------------------------------

    def _publish(self, topic: str, payload: bytes | str, *, retain: bool = False,
                 msg_id: str | None = None) -> mqtt.MQTTMessageInfo:
        """Every QoS 1 publish of this client goes through here, so that every PUBACK's mid is
        known to be ours: an outbox row (msg_id) or not (None)."""
        info = self.client.publish(topic, payload, qos=contract.QOS, retain=retain)
        if info.rc not in _KEPT_BY_PAHO:
            log.warning("paho did not accept a publish on %s: %s", topic, mqtt.error_string(info.rc))
            return info
        with self._ack_lock:
            acknowledged = info.mid in self._acked_early
            if acknowledged:
                self._acked_early.discard(info.mid)
            else:
                self._in_flight[info.mid] = msg_id
        if acknowledged and msg_id is not None:
            self.outbox.remove(msg_id)
        return info

    def _send(self, entry: OutboxEntry) -> None:
        self._publish(entry.topic, entry.payload, msg_id=entry.msg_id)

    def _resend_outbox(self) -> None:
        """After a (re)connect: what the outbox holds and paho does not (a new process, or a
        publish paho refused) goes out again with its original bytes."""
        with self._send_lock:
            with self._ack_lock:
                held_by_paho = {msg_id for msg_id in self._in_flight.values() if msg_id is not None}
            pending = [entry for entry in self.outbox.pending() if entry.msg_id not in held_by_paho]
            for entry in pending:
                self._send(entry)
        if pending:
            log.info("sent %d press(es) again from the outbox", len(pending))

    def _on_publish(self, client, userdata, mid, reason, properties) -> None:
        with self._ack_lock:
            if mid not in self._in_flight:
                self._acked_early.add(mid)  # publish() has not returned yet: _publish settles it
                return
            msg_id = self._in_flight.pop(mid)
        if msg_id is None:
            return
        if reason.is_failure:  # MQTT 5: the broker did not take it (e.g. not authorised); retried on reconnect
            log.warning("broker refused rating %s: %s", msg_id, reason)
            return
        self.outbox.remove(msg_id)
