"""The server's MQTT side: device events and requests into the QueueService, retained state out.

One persistent session (`motcua-server-{site}`, clean_start False) so that QoS 1 events
published while the server was down are delivered when it comes back. `server/status` is
`online` (retained) on every connect, `offline` as the Last Will, `stopped` on a clean stop.

Outbound state is published by one worker thread that coalesces changes: the service's
listener only marks counters, fields and today's figures dirty (and publishes `events/call`,
a non-retained event), so the committing thread is never held up by figures or the network.
The worker always reads the state fresh from the store, so the last retained message of a
topic is the committed state, whatever order concurrent commits notified in.

Inbound: every message goes through `contract.parse_inbound`; a rejected payload or a rule
the service refuses is recorded in `rejects` and the link carries on. Nothing escapes the
paho callback thread.
"""
from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ..alerts_runner import active_alert_views
from ..domain.counters import Action
from ..domain.errors import DomainError, NotFound
from ..domain.tickets import Ticket
from ..service import Change, QueueService
from ..store import StorageFull, is_storage_full
from . import contract
from .client import (
    DEFAULT_SESSION_EXPIRY_S,
    BrokerUnreachable,
    MQTTv5,
    MqttClient,
    connect_and_wait,
    make_client,
)

log = logging.getLogger(__name__)

KEYPAD_ACTIONS = {
    "next": Action.NEXT,
    "recall": Action.RECALL,
    "no_show": Action.NO_SHOW,
    "finish": Action.FINISH,
}
PUBLISH_WAIT_S = 5.0
LAST_SEEN_FLUSH_S = 2.0
TODAY_MIN_INTERVAL_S = 1.0
# A line's state/queue goes to every kiosk: at most this often per field, its last change always
# sent. Under a burst of tickets it is sent a few times a second, not once per ticket and call.
QUEUE_MIN_INTERVAL_S = 0.25
TODAY_COST_FACTOR = 10
INGEST_BATCH_MAX = 500
# A batch that did not commit (the disk full…) is tried again after this, doubling up to the
# maximum: its messages stay unacknowledged meanwhile, so nothing is lost if the server stops.
INGEST_RETRY_S = 0.5
INGEST_RETRY_MAX_S = 15.0


@dataclass(frozen=True)
class _Inbound:
    """A received message waiting for the ingest thread."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int


@dataclass
class _Pending:
    """What the worker has to (re)publish."""

    config: bool = False
    today: bool = False
    counters: set[str] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)
    alerts: bool = False
    calls: list[contract.CallEvent] = field(default_factory=list)  # events/call, in the order made

    def __bool__(self) -> bool:
        return self.config or self.today or bool(self.counters) or bool(self.fields) or self.alerts or bool(self.calls)


class Pacer:
    """Keys let through at most once per `interval_s` each; a key changed sooner is held, never
    dropped, and let through once its interval has passed (the last change always goes out)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.held: set[str] = set()
        self._passed_at: dict[str, float] = {}

    def due(self, changed: set[str], now: float) -> set[str]:
        """Of `changed` and the held keys, those to let through now (the rest are held)."""
        wanted = changed | self.held
        ready = {key for key in wanted if now - self._passed_at.get(key, -math.inf) >= self.interval_s}
        self._passed_at.update(dict.fromkeys(ready, now))
        self.held = wanted - ready
        return ready

    def release(self) -> set[str]:
        """Every held key, at once (shutting down)."""
        held, self.held = self.held, set()
        return held

    def wait_s(self, now: float) -> float | None:
        """How long until the first held key is due; None when nothing is held."""
        if not self.held:
            return None
        return max(0.0, min(self._passed_at[key] for key in self.held) + self.interval_s - now)


class ServerLink:
    """Connects a QueueService to a broker. `start()`, `stop()`, `status()`."""

    def __init__(
        self,
        service: QueueService,
        host: str,
        port: int,
        *,
        protocol: mqtt.MQTTProtocolVersion = MQTTv5,
        username: str | None = None,
        password: str | None = None,
        session_expiry_s: int = DEFAULT_SESSION_EXPIRY_S,
        keepalive: int = 30,
    ) -> None:
        self.service = service
        self.site = service.config.site.id
        self.host = host
        self.port = port
        self.keepalive = keepalive
        self.client_id = f"motcua-server-{self.site}"
        self.status_topic = contract.topic_server_status(self.site)
        self.client: MqttClient = make_client(
            self.client_id,
            protocol=protocol,
            clean_start=False,
            session_expiry_s=session_expiry_s,
            will=(self.status_topic, contract.Status.OFFLINE.value, True),
            username=username,
            password=password,
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self._state = "disconnected"
        self._stopping = False
        self._worker_stop = False
        self._subscribed = threading.Event()
        self._pending = _Pending()
        self._pending_changed = threading.Condition()
        self._queue_pacer = Pacer(QUEUE_MIN_INTERVAL_S)  # state/queue per field, under the same condition
        self._worker: threading.Thread | None = None
        self._unsubscribe_service: Callable[[], None] | None = None
        self.client.manual_ack_set(True)
        self._inbox: queue.SimpleQueue[_Inbound] = queue.SimpleQueue()  # put and get in C: one of each per message
        self._device_first = service.device_first  # what is in the inbox, which other work gives way to
        self._generation = 0
        self._ingest_stop = threading.Event()
        self._ingest_thread: threading.Thread | None = None
        self._seen_lock = threading.Lock()
        self._last_seen: dict[str, tuple[datetime, str]] = {}
        self._handlers: dict[contract.Kind, Callable[[contract.Inbound, datetime], None]] = {
            contract.Kind.RATING: self._handle_rating,
            contract.Kind.KEYPAD: self._handle_keypad,
            contract.Kind.TICKET_REQUEST: self._handle_ticket_request,
            contract.Kind.PRINTER: self._handle_printer,
            contract.Kind.DEVICE_STATUS: self._handle_device_status,
        }

    # --- lifecycle --------------------------------------------------------------------------------

    def status(self) -> str:
        """connected / connecting / disconnected, for /healthz."""
        return self._state

    def start(self, timeout: float = 10.0, *, keep_trying: bool = False) -> None:
        """Connect, subscribe and publish the retained state. Raises MqttConnectError when the
        broker refuses, or cannot be reached unless `keep_trying`; once connected, paho
        reconnects by itself."""
        self._stopping = False
        self._worker_stop = False
        self._state = "connecting"
        self._worker = threading.Thread(target=self._run_worker, name="mqtt-state", daemon=True)
        self._worker.start()
        self._ingest_stop.clear()
        self._ingest_thread = threading.Thread(target=self._run_ingest, name="mqtt-ingest", daemon=True)
        self._ingest_thread.start()
        self._unsubscribe_service = self.service.subscribe(self._on_change)
        try:
            connect_and_wait(self.client, self.host, self.port, timeout=timeout, keepalive=self.keepalive)
        except BrokerUnreachable:
            if not keep_trying:
                self._abandon_start()
                raise
            # The server works without the broker (HTTP still issues tickets); paho keeps
            # trying in the background and everything is published once it connects.
            log.warning("MQTT broker %s:%d unreachable; retrying in the background", self.host, self.port)
            self.client.connect_async(self.host, self.port, keepalive=self.keepalive, **self.client.connect_arguments())
            self.client.loop_start()
            return
        except Exception:
            self._abandon_start()
            raise
        if not self._subscribed.wait(timeout):
            log.warning("no SUBACK from the broker within %s s", timeout)

    def _stop_ingest(self) -> None:
        """Finish what was received (acked or, if the connection is gone, redelivered later)."""
        self._ingest_stop.set()
        if self._ingest_thread is not None:
            self._ingest_thread.join(timeout=10)
            self._ingest_thread = None
        leftover = []
        while True:
            try:
                leftover.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        if leftover:
            self._ingest(leftover)
        self._device_first.settled(0)

    def _abandon_start(self) -> None:
        self._stop_ingest()
        if self._unsubscribe_service is not None:
            self._unsubscribe_service()
            self._unsubscribe_service = None
        self._shutdown_worker()
        self._state = "disconnected"

    def stop(self) -> None:
        """Publish `stopped`, flush pending state and leave cleanly (no Last Will)."""
        self._stopping = True
        self._stop_ingest()
        if self._unsubscribe_service is not None:
            self._unsubscribe_service()
            self._unsubscribe_service = None
        self._shutdown_worker()
        if self._state == "connected":
            info = self.client.publish(self.status_topic, contract.Status.STOPPED.value, qos=1, retain=True)
            try:
                info.wait_for_publish(PUBLISH_WAIT_S)
            except (RuntimeError, ValueError):
                log.warning("could not publish server status 'stopped'")
        self.client.disconnect()
        self.client.loop_stop()
        self._state = "disconnected"
        self._device_first.settled(0)  # whatever came after the last batch is delivered again next time

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Until the worker has nothing left to publish (tests, orderly shutdown)."""
        with self._pending_changed:
            return self._pending_changed.wait_for(
                lambda: not self._pending and not self._busy and not self._today_deferred and not self._queue_pacer.held,
                timeout,
            )

    # --- paho callbacks (network thread) ------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
                    reason: ReasonCode, properties: Properties | None) -> None:
        if reason.is_failure:
            self._state = "connecting"
            log.warning("broker refused the connection: %s", reason)
            return
        self._generation += 1  # acks owed on an earlier connection are not sent on this one
        self._state = "connected"
        log.info("MQTT connected (session present: %s)", flags.session_present)
        # Subscribing again is harmless with a persistent session and needed without one.
        client.subscribe(contract.server_subscriptions(self.site))
        client.publish(self.status_topic, contract.Status.ONLINE.value, qos=1, retain=True)
        self._mark(config=True, today=True, counters={c.id for c in self.service.config.counters},
                   fields={f.id for f in self.service.config.fields}, alerts=True)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags,
                       reason: ReasonCode, properties: Properties | None) -> None:
        self._state = "disconnected" if self._stopping else "connecting"
        if not self._stopping:
            log.warning("MQTT connection lost (%s); paho reconnects", reason)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: list[ReasonCode],
                      properties: Properties | None) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            log.error("broker refused server subscriptions: %s", ", ".join(refused))
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        # Only queued here: the ingest thread applies messages in batches and acknowledges
        # each one to the broker after the batch is committed (manual acks), so a crash
        # loses nothing and a redelivery is dropped by its msg_id.
        self._inbox.put(_Inbound(message.topic, bytes(message.payload), message.mid, message.qos, self._generation))
        self._device_first.received()

    # --- inbound ----------------------------------------------------------------------------------

    def _run_ingest(self) -> None:
        while not self._ingest_stop.is_set():
            try:
                first = self._inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < INGEST_BATCH_MAX:
                try:
                    batch.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            # The broker redelivers unacknowledged messages only on a new connection: a batch
            # that failed is retried here, or it would wait for the next reconnect.
            pause = INGEST_RETRY_S
            while not self._ingest(batch) and not self._ingest_stop.wait(pause):
                pause = min(pause * 2, INGEST_RETRY_MAX_S)
            self._device_first.settled(self._inbox.qsize())

    def _ingest(self, batch: list[_Inbound]) -> bool:
        """Apply a batch in one transaction and acknowledge it; False (nothing acked) if it did
        not commit."""
        try:
            with self.service.store.write():
                for item in batch:
                    try:
                        self._handle(item.topic, item.payload)
                    except StorageFull:
                        raise  # not the message's fault: the whole batch waits for space
                    except Exception as exc:  # nothing a message causes may stop ingestion
                        log.exception("failed to handle MQTT message on %s", item.topic)
                        self._reject(self.service.now(), item.topic, "internal_error", repr(exc), item.payload)
        except StorageFull as exc:
            log.error("disk full: a batch of %d MQTT messages is kept unacknowledged and retried (%s)",
                      len(batch), exc)
            return False
        except Exception:
            # The batch did not commit: no acks, so the broker delivers it all again.
            log.exception("an MQTT batch of %d messages failed to commit", len(batch))
            return False
        generation = self._generation
        # QoS 1 (all devices use it) acked in one write; anything else one by one.
        self.client.ack_many([item.mid for item in batch if item.qos == 1 and item.generation == generation])
        for item in batch:
            if item.qos > 1 and item.generation == generation:
                self.client.ack(item.mid, item.qos)
        return True

    def _handle(self, topic: str, payload: bytes) -> None:
        now = self.service.now()
        try:
            inbound = contract.parse_inbound(self.site, topic, payload, now=now)
        except contract.PayloadRejected as exc:
            self._reject(now, topic, exc.reason, exc.detail, payload)
            return
        if inbound.device_id is not None:
            with self._seen_lock:
                self._last_seen[inbound.device_id] = (now, topic)
        handler = self._handlers.get(inbound.kind)
        if handler is None:  # a kind the contract has but the server does not act on
            return
        try:
            with self.service.store.savepoint():  # a refused message leaves no trace of its own
                handler(inbound, now)
        except DomainError as exc:
            if exc.status in (400, 404):  # bad input: kept and counted as a reject
                self._reject(now, topic, exc.code, exc.message, payload, inbound.device_id)
            else:  # a rule of the centre (queue empty, cap reached…): answered, not a reject
                log.info("%s from %s refused: %s", inbound.kind, inbound.device_id, exc.code)

    def _handle_rating(self, inbound: contract.Inbound, now: datetime) -> None:
        message = inbound.message
        assert isinstance(message, contract.RatingEvent)
        self._require_counter(message.counter)
        self.service.record_rating(
            message.counter, message.level,
            ticket_id=message.ticket, reasons=list(message.reasons) if message.reasons else None,
            device_at=message.at, device_id=inbound.device_id, msg_id=message.msg_id,
        )

    def _handle_keypad(self, inbound: contract.Inbound, now: datetime) -> None:
        message = inbound.message
        assert isinstance(message, contract.KeypadEvent)
        counter = self._require_counter(message.counter)
        store = self.service.store
        # The msg_id is remembered in the action's own transaction: a redelivery acts once,
        # and an action that fails leaves no trace, so a retry may still act.
        with store.write():
            if store.seen_message(message.msg_id):
                log.info("keypad %s already handled", message.msg_id)
                return
            store.remember_message(message.msg_id, "keypad", inbound.device_id, now)
            self.service.counter_action(message.counter, KEYPAD_ACTIONS[message.action])

    def _handle_ticket_request(self, inbound: contract.Inbound, now: datetime) -> None:
        message = inbound.message
        assert isinstance(message, contract.TicketRequest) and inbound.device_id is not None
        device = inbound.device_id
        try:
            ticket, _created = self.service.issue(
                message.field, message.priority, message.lang or "vi",
                device_id=device, idempotency_scope=f"device:{device}", idempotency_key=message.transaction,
            )
        except DomainError as exc:
            error = contract.ResponseError(code=exc.code[:64], message=exc.message[:256])
            self._publish(contract.topic_ticket_response(self.site, device),
                          contract.TicketResponse(transaction=message.transaction, status="error", error=error))
            raise
        # Answered once the ticket is committed (a kiosk never shows a ticket that could vanish),
        # with the people ahead and the estimate read then, outside the batch's write lock.
        self.service.store.after_commit(lambda: self._answer_ticket(device, message.transaction, ticket))

    def _answer_ticket(self, device: str, transaction: str, ticket: Ticket) -> None:
        view = self.service.ticket_view(ticket)
        public_url = self.service.config.server.public_url
        data = contract.TicketData(
            ticket_id=view["id"], code=view["code"], field=view["field"], priority=view["priority"],
            ahead=int(view["people_ahead"] or 0), est_wait_s=int(view["est_wait_s"] or 0),
            issued_at=view["issued_at"],
            url=(public_url.rstrip("/") + view["url"]) if public_url else view["url"],
        )
        response = contract.TicketResponse(transaction=transaction, status="ok", data=data)
        self._publish(contract.topic_ticket_response(self.site, device), response)

    def _handle_printer(self, inbound: contract.Inbound, now: datetime) -> None:
        message = inbound.message
        assert isinstance(message, contract.PrinterEvent) and inbound.device_id is not None
        level = logging.INFO if message.state == "ok" else logging.WARNING
        log.log(level, "printer of %s: %s %s", inbound.device_id, message.state, message.detail or "")
        self.service.record_printer_state(inbound.device_id, message.state, message.detail)

    def _handle_device_status(self, inbound: contract.Inbound, now: datetime) -> None:
        if inbound.device_id is None:
            return
        if inbound.message is None:
            # A cleared retained status: `motcua provision remove` took the device out. Recorded
            # as removed, so that a device that went offline for good stops raising an alert.
            log.info("device %s was removed", inbound.device_id)
            self.service.record_device_status(inbound.device_id, "removed")
            return
        log.info("device %s is %s", inbound.device_id, inbound.message)
        self.service.record_device_status(inbound.device_id, str(getattr(inbound.message, "value", inbound.message)))

    def _require_counter(self, counter_id: str):
        counter = self.service.config.counter(counter_id)
        if counter is None:
            raise NotFound("unknown_counter", f"Không có quầy '{counter_id}' / Unknown counter '{counter_id}'")
        return counter

    def _reject(self, at: datetime, topic: str, reason: str, detail: str, payload: bytes,
                device_id: str | None = None) -> None:
        if device_id is None:
            device_id = _device_in_topic(self.site, topic)
        log.info("rejected MQTT message on %s: %s (%s)", topic, reason, detail)
        try:
            self.service.store.add_reject(at, "mqtt", topic[:300], reason, detail,
                                          payload.decode("utf-8", "replace"), device_id)
        except Exception as exc:
            if isinstance(exc, StorageFull) or is_storage_full(exc):
                raise StorageFull(str(exc)) from exc  # the reject must be kept: retried with its batch
            log.exception("could not record a rejected MQTT message")

    # --- outbound ---------------------------------------------------------------------------------

    def _on_change(self, change: Change) -> None:
        """Service listener, on the committing thread: mark dirty; calls are handed to the worker,
        which publishes them first thing (the committing thread, a clerk's request or the MQTT
        ingestion, does not wait for the network)."""
        if change.kind == "counter":
            self._mark(today=True, counters={change.data["counter"]})
        elif change.kind == "queue":
            self._mark(today=True, fields={change.data["field"]})
        elif change.kind == "call":
            data = change.data
            event = contract.CallEvent(
                ticket=data["ticket"], counter=data["counter"], at=data["at"], repeat=bool(data["repeat"]),
                field=data.get("field"),
                call_id=f"{data['ticket_id']}@{data['at']}"[:64] if data.get("ticket_id") else None,
            )
            with self._pending_changed:
                self._pending.calls.append(event)
                self._pending_changed.notify_all()
        elif change.kind == "alert":
            # Raised and cleared are events of their own; a refreshed alert only changes the state.
            if change.data["event"] in ("raised", "cleared"):
                self._publish(contract.topic_alert_event(self.site), contract.AlertEvent.model_validate(
                    {"event": change.data["event"], "alert": change.data["alert"]}))
            self._mark(alerts=True)
        elif change.kind == "device":
            pass  # a device's health is in the devices table and the API; no published state has it
        else:
            self._mark(today=True)

    def _mark(self, *, config: bool = False, today: bool = False, counters: set[str] = frozenset(),
              fields: set[str] = frozenset(), alerts: bool = False) -> None:
        with self._pending_changed:
            self._pending.config |= config
            self._pending.alerts |= alerts
            self._pending.today |= today
            self._pending.counters |= set(counters)
            self._pending.fields |= set(fields)
            self._pending_changed.notify_all()

    _busy = False
    _today_deferred = False
    _today_published_at = -math.inf

    def _worth_waking(self) -> bool:
        """Whether the worker has something to do now. Today's figures alone, while they are held
        back, do not wake it: under a stream of presses that woke the worker for every single
        one, only for it to find nothing it could publish yet."""
        pending = self._pending
        if self._worker_stop or pending.calls or pending.config or pending.counters or pending.fields or pending.alerts:
            return True
        return pending.today and not self._today_deferred

    def _run_worker(self) -> None:
        last_seen_flushed_at = time.monotonic()
        while True:
            with self._pending_changed:
                timeout = LAST_SEEN_FLUSH_S
                if self._today_deferred:
                    timeout = max(0.0, self._today_interval() - (time.monotonic() - self._today_published_at))
                queue_wait_s = self._queue_pacer.wait_s(time.monotonic())
                if queue_wait_s is not None:
                    timeout = min(timeout, queue_wait_s)
                self._pending_changed.wait_for(self._worth_waking, timeout)
                pending, self._pending = self._pending, _Pending()
                stopping = self._worker_stop
                if stopping:
                    pending.fields |= self._queue_pacer.release()
                else:
                    pending.fields = self._queue_pacer.due(pending.fields, time.monotonic())
                # Today's figures are the costly part: published at most once per interval,
                # so a burst of presses is not slowed by recomputing them after each one.
                pending.today |= self._today_deferred
                recent = time.monotonic() - self._today_published_at < self._today_interval()
                self._today_deferred = pending.today and recent and not stopping
                if self._today_deferred:
                    pending.today = False
                self._busy = True
            try:
                if stopping or time.monotonic() - last_seen_flushed_at >= LAST_SEEN_FLUSH_S:
                    last_seen_flushed_at = time.monotonic()
                    self._flush_last_seen()
                if pending:
                    self._publish_state(pending)
            except Exception:
                log.exception("failed to publish state")
            finally:
                with self._pending_changed:
                    self._busy = False
                    self._pending_changed.notify_all()
            if stopping and not pending:
                return

    def _flush_last_seen(self) -> None:
        """When each device was last heard from, written in one batch every few seconds
        rather than one write per message on the hot path."""
        with self._seen_lock:
            last_seen, self._last_seen = self._last_seen, {}
        if last_seen:
            self.service.store.devices_seen(last_seen)

    def _shutdown_worker(self) -> None:
        """Let the worker publish what is pending, then end it."""
        with self._pending_changed:
            self._worker_stop = True
            self._pending_changed.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=10)
            self._worker = None

    def _publish_state(self, pending: _Pending) -> None:
        for call in pending.calls:  # events, not state: kept by paho for the next connection if need be
            self._publish(contract.topic_call(self.site), call)
        if self._state != "connected":
            return  # everything is published again on the next connect
        # Each state message is read and published after the devices' messages waiting (a press,
        # a ticket request): state is retained and follows within moments; presses come first.
        give_way = self._device_first.give_way
        if pending.config:
            self._publish(contract.topic_config(self.site), self.config_state())
        for counter_id in sorted(pending.counters):
            give_way()
            self._publish(contract.topic_counter_state(self.site, counter_id), self.counter_state(counter_id))
        for field_id in sorted(pending.fields):
            give_way()
            self._publish(contract.topic_queue_state(self.site, field_id), self.queue_state(field_id))
        if pending.alerts:
            self._publish(contract.topic_alerts(self.site), self.alerts_state())
        if pending.today:
            give_way()
            started = self._today_published_at = time.monotonic()
            self._publish(contract.topic_today(self.site), contract.TodayState.model_validate(self.service.stats_today()))
            self._today_cost_s = time.monotonic() - started

    _today_cost_s = 0.0

    def _today_interval(self) -> float:
        """At least a second between two state/today, and never more than a tenth of the time
        spent recomputing them: a busy day's figures must not starve the ingestion."""
        return max(TODAY_MIN_INTERVAL_S, TODAY_COST_FACTOR * self._today_cost_s)

    def _publish(self, topic: str, message: contract.Message) -> None:
        definition, _ = contract.match_topic(self.site, topic)
        self.client.publish(topic, contract.encode(message), qos=contract.QOS, retain=definition.retained)

    def config_state(self) -> contract.ConfigState:
        config = self.service.config
        return contract.ConfigState.model_validate({
            "site": config.site.id,
            "name": config.site.name.model_dump(),
            "timezone": config.site.timezone,
            "fields": [{
                "id": f.id, "letter": f.letter, "name": f.name.model_dump(),
                "target_wait_min": f.target_wait_min, "closed": f.closed,
                "opening_hours": [p.model_dump() for p in f.opening_hours] if f.opening_hours else None,
            } for f in config.fields],
            "counters": [{"id": c.id, "number": c.number, "fields": list(c.fields)} for c in config.counters],
            "rating_scale": [level.model_dump(include={"id", "name", "colour", "satisfied"})
                             for level in config.rating.levels],
            "rating_reasons": [r.model_dump(include={"id", "name"}) for r in config.rating.reasons],
            "rating_window_s": config.rating.window_s,
            "priorities": [r.model_dump(include={"id", "name"}) for r in config.priority.reasons],
            "opening_hours": [p.model_dump() for p in config.opening_hours],
            "holidays": [day.isoformat() for day in config.holidays],
            "updated_at": self.service.now().isoformat(),
        })

    def alerts_state(self) -> contract.AlertsState:
        return contract.AlertsState.model_validate({
            "active": active_alert_views(self.service), "updated_at": self.service.now().isoformat(),
        })

    def counter_state(self, counter_id: str) -> contract.CounterState:
        view = self.service.counter_view(counter_id)
        return contract.CounterState(
            counter=view["counter"], clerk=view["clerk_name"], status=view["status"],
            ticket=view["ticket"] or view["rating_ticket"], rating_until=view["rating_until"],
            rating_ticket_id=view["rating_ticket_id"], at=self.service.now(),
        )

    def queue_state(self, field_id: str) -> contract.QueueState:
        view = self.service.queue_state(field_id)
        return contract.QueueState(
            field=view["field"], waiting=view["waiting"], priority_waiting=view["priority_waiting"],
            est_wait_s=int(view["est_wait_s"]), cap_reached=view["cap_reached"],
        )


def _device_in_topic(site: str, topic: str) -> str | None:
    """The device id of a topic that failed to parse, when its shape still says it."""
    prefix = f"{contract.PREFIX}/{site}/device/"
    if topic.startswith(prefix):
        device = topic[len(prefix):].split("/", 1)[0]
        if contract.is_id(device):
            return device
    return None
