"""The ticket kiosk's behaviour without Kivy: MQTT state in, one ticket per touch out, printing.

The Kivy app only shows what this object says and forwards touches; tests drive it directly
as well as through the app. Callbacks arrive on background threads: the app hops to its own.
"""
from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from queue_server.domain.tickets import within_opening_hours
from queue_server.mqtt import contract

from ..device_link import connect_in_background, device_client
from ..settings import KioskSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tile:
    """One field-of-work button as the citizen sees it."""

    field: str
    letter: str
    name_vi: str
    name_en: str
    waiting: int | None
    est_wait_min: int | None
    available: bool
    reason: str | None = None  # closed / outside_hours / holiday / cap_reached when not available


@dataclass
class IssueResult:
    """The end of one touch: a ticket (printed or not), or a plain reason why not."""

    transaction: str
    ticket: contract.TicketData | None = None
    lang: str = "vi"
    field_name_vi: str = ""
    field_name_en: str = ""
    printed: bool = False
    printer_state: str | None = None
    printer_detail: str | None = None
    error_code: str | None = None
    error_message: str | None = None


@dataclass
class _Pending:
    transaction: str
    payload: bytes
    started: float
    on_done: Callable[[IssueResult], None]
    on_slow: Callable[[], None] | None
    lang: str = "vi"
    told_slow: bool = False
    timer: threading.Timer | None = None
    done: bool = False


@dataclass
class KioskState:
    config: contract.ConfigState | None = None
    queues: dict[str, contract.QueueState] = field(default_factory=dict)
    broker_connected: bool = False
    server_status: str = "unknown"  # online / offline / stopped / unknown


def request_properties(remaining_s: float) -> Properties:
    """MQTT 5 properties of a ticket request: it expires at the broker when the kiosk gives up
    (`remaining_s` from now, at least 1 s), so a request nobody waits for any more is not
    delivered to a server that comes back later. bench/full_day.py sends its requests with it too."""
    properties = Properties(PacketTypes.PUBLISH)
    properties.MessageExpiryInterval = max(1, math.ceil(remaining_s))
    return properties


class TicketKiosk:
    def __init__(
        self,
        settings: KioskSettings,
        *,
        printer=None,
        on_update: Callable[[], None] | None = None,
    ) -> None:
        """`printer` is a callable (TicketData, field names, lang) -> (printed, state, detail),
        or None for a kiosk without a printer."""
        self.settings = settings
        self.site = settings.site
        self.device = settings.device
        self.state = KioskState()
        self.printer = printer
        self.on_update = on_update or (lambda: None)
        self._lock = threading.RLock()
        self._pending: _Pending | None = None
        self._boot = uuid.uuid4().hex[:8]
        self._seq = 0
        self._last_printer_state: str | None = None
        self.client = device_client(settings.mqtt, self.site, self.device)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    # --- connection -----------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background; paho keeps retrying while the broker is unreachable."""
        connect_in_background(self.client, self.settings.mqtt)

    def stop(self) -> None:
        with self._lock:
            if self._pending and self._pending.timer:
                self._pending.timer.cancel()
        if self.state.broker_connected:
            self.client.publish(contract.topic_device_status(self.site, self.device),
                                contract.Status.OFFLINE.value, qos=1, retain=True).wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()

    def online(self) -> bool:
        return self.state.broker_connected and self.state.server_status == "online"

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        if reason.is_failure:
            log.warning("broker refused the kiosk: %s", reason)
            return
        self.state.broker_connected = True
        client.publish(contract.topic_device_status(self.site, self.device), contract.Status.ONLINE.value, qos=1, retain=True)
        # Its responses, the config, the queues and the server's status: what the screen draws
        # (not today's figures, counters or calls, most of a busy centre's messages).
        client.subscribe(contract.ticket_kiosk_subscriptions(self.site, self.device))
        with self._lock:
            if self._pending is not None and not self._pending.done:  # made while offline: goes out now
                if self._pending.timer:
                    self._pending.timer.cancel()
                self._send(self._pending)
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
        elif kind is contract.Kind.QUEUE_STATE and inbound.message is not None:
            self.state.queues[inbound.message.field] = inbound.message
        elif kind is contract.Kind.SERVER_STATUS:
            self.state.server_status = str(getattr(inbound.message, "value", inbound.message or "unknown"))
        elif kind is contract.Kind.TICKET_RESPONSE:
            self._on_response(inbound.message)
            return
        else:
            return
        self.on_update()

    # --- what the screen shows ------------------------------------------------------------------

    def tiles(self, now: datetime | None = None) -> list[Tile]:
        config = self.state.config
        if config is None:
            return []
        now = now or datetime.now(timezone.utc)
        tz = ZoneInfo(config.timezone)
        tiles = []
        for field_info in config.fields:
            queue = self.state.queues.get(field_info.id)
            hours = field_info.opening_hours if field_info.opening_hours is not None else config.opening_hours
            reason = None
            if field_info.closed:
                reason = "closed"
            elif queue is not None and queue.cap_reached:
                reason = "cap_reached"
            elif now.astimezone(tz).date() in set(config.holidays):
                reason = "holiday"
            elif not within_opening_hours(hours, config.holidays, tz, now):
                reason = "outside_hours"
            tiles.append(Tile(
                field=field_info.id, letter=field_info.letter,
                name_vi=field_info.name.vi, name_en=field_info.name.en,
                waiting=queue.waiting if queue else None,
                est_wait_min=math.ceil(queue.est_wait_s / 60) if queue else None,
                available=reason is None, reason=reason,
            ))
        return tiles

    def field_names(self, field_id: str) -> tuple[str, str]:
        config = self.state.config
        info = next((f for f in config.fields if f.id == field_id), None) if config else None
        return (info.name.vi, info.name.en) if info else (field_id, field_id)

    # --- issuing --------------------------------------------------------------------------------

    def request_ticket(
        self,
        field_id: str,
        priority: str | None,
        lang: str,
        on_done: Callable[[IssueResult], None],
        on_slow: Callable[[], None] | None = None,
    ) -> str:
        """Ask for one ticket. While a request is in flight, further touches join it (a double
        touch gives one ticket); its transaction is repeated until answered or given up."""
        with self._lock:
            if self._pending is not None and not self._pending.done:
                return self._pending.transaction
            transaction = f"{self.device}-{uuid.uuid4().hex}"
            request = contract.TicketRequest(transaction=transaction, field=field_id, priority=priority, lang=lang)
            self._pending = _Pending(transaction, contract.encode(request), time.monotonic(), on_done, on_slow, lang)
            self._send(self._pending)
            return transaction

    def _send(self, pending: _Pending) -> None:
        # Published only while connected: paho would keep a request made during a network cut
        # and send it on reconnect, after the kiosk may have given up and told the citizen no
        # ticket was issued (the server would then issue one that nobody holds). A request
        # still pending at reconnect is sent by _on_connect. With MQTT 5 the request also
        # expires at the broker when the kiosk gives up, for a server that is down.
        if self.state.broker_connected:
            properties = None
            if self.client.is_mqtt5:
                remaining = self.settings.requests.give_up_after_s - (time.monotonic() - pending.started)
                properties = request_properties(remaining)
            self.client.publish(contract.topic_ticket_request(self.site, self.device), pending.payload, qos=1,
                                properties=properties)
        pending.timer = threading.Timer(self.settings.requests.retry_every_s, self._retry, args=(pending,))
        pending.timer.daemon = True
        pending.timer.start()

    def _retry(self, pending: _Pending) -> None:
        with self._lock:
            if pending.done:
                return
            waited = time.monotonic() - pending.started
            if waited >= self.settings.requests.give_up_after_s:
                pending.done = True
                self._pending = None
                result = IssueResult(
                    pending.transaction, error_code="unreachable",
                    error_message="Không kết nối được máy chủ, chưa lấy được số. Vui lòng thử lại hoặc hỏi cán bộ. / "
                                  "Cannot reach the server: no ticket was issued. Please try again or ask staff.",
                )
            else:
                result = None
                if not pending.told_slow and waited >= self.settings.requests.answer_within_s and pending.on_slow:
                    pending.told_slow = True
                    pending.on_slow()
                self._send(pending)  # the same transaction: the server answers it once
        if result is not None:
            pending.on_done(result)

    def _on_response(self, response: contract.TicketResponse | None) -> None:
        if response is None:
            return
        with self._lock:
            pending = self._pending
            if pending is None or pending.transaction != response.transaction or pending.done:
                return  # an answer to a request already answered (a repeat): nothing to do
            pending.done = True
            self._pending = None
            if pending.timer:
                pending.timer.cancel()
        if response.status != "ok" or response.data is None:
            error = response.error
            pending.on_done(IssueResult(
                pending.transaction,
                error_code=error.code if error else "error",
                error_message=error.message if error else "Không lấy được số / No ticket",
            ))
            return
        name_vi, name_en = self.field_names(response.data.field)
        result = IssueResult(pending.transaction, ticket=response.data, lang=pending.lang,
                             field_name_vi=name_vi, field_name_en=name_en)
        # Printing happens off the MQTT thread: a slow printer must not hold up messages.
        threading.Thread(target=self._print_then_report, args=(result, pending), daemon=True).start()

    def _print_then_report(self, result: IssueResult, pending: _Pending) -> None:
        if self.printer is not None:
            try:
                printed, state, detail = self.printer(result)
            except Exception as exc:  # the ticket is on screen whatever the printer does
                log.exception("printing failed")
                printed, state, detail = False, "error", str(exc)[:200]
            result.printed, result.printer_state, result.printer_detail = printed, state, detail
            self._report_printer(state, detail)
        pending.on_done(result)

    def _report_printer(self, state: str, detail: str | None) -> None:
        if state == self._last_printer_state:
            return
        self._last_printer_state = state
        self._seq += 1
        event = contract.PrinterEvent(msg_id=f"{self.device}:{self._boot}:{self._seq}", state=state,
                                      detail=(detail or None) and detail[:200])
        self.client.publish(contract.topic_printer(self.site, self.device), contract.encode(event), qos=1)
