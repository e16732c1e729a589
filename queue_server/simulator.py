"""The demo's believable day: ticket kiosks and rating terminals as real MQTT clients, clerks at work.

Kiosks publish ticket requests and rating terminals publish presses over MQTT, exactly as
devices do; the simulated clerks act through the service, as the clerk console does. Time
runs faster than life (`speed`): a ten-minute service takes ten minutes / speed.
"""
from __future__ import annotations

import json
import logging
import random
import threading
import uuid
from datetime import datetime

from paho.mqtt.enums import MQTTProtocolVersion

from .service import QueueService
from .domain.counters import Action
from .domain.errors import DomainError
from .mqtt import contract
from .mqtt.client import connect_and_wait, disconnect_and_stop, make_client, subscribe_and_wait

log = logging.getLogger(__name__)

# Relative arrivals by local hour: a morning peak around 9–10, a smaller one after lunch.
ARRIVALS_BY_HOUR = {7: 0.6, 8: 1.2, 9: 1.8, 10: 1.6, 11: 0.8, 12: 0.3, 13: 0.7, 14: 1.1, 15: 1.0, 16: 0.7}
NIGHT_ARRIVALS = 0.8  # the demo is open around the clock; keep it alive at night too
# Shares of rating levels, best first, for a 3-level scale; other scales get a similar tilt.
RATING_SHARES = (0.68, 0.24, 0.08)
SKIP_RATING = 0.12  # citizens who walk away without pressing
DOUBLE_PRESS = 0.04  # an impatient second press (flagged as misuse by the server)
PRIORITY_SHARE = 0.1


class DemoSimulator:
    def __init__(
        self,
        svc: QueueService,
        mqtt_host: str,
        mqtt_port: int,
        *,
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
        speed: float = 60.0,
        kiosks: int = 2,
        mean_arrival_s: float = 1.5,
        seed: int | None = None,
    ) -> None:
        self.service = svc
        self.config = svc.config
        self.site = svc.config.site.id
        self.host, self.port, self.protocol = mqtt_host, mqtt_port, protocol
        self.speed = speed
        # Pauses between actions (a citizen reaching for the buttons, a clerk between
        # citizens) shrink with the speed, relative to the demo's default of 60.
        self._pace = min(1.0, 60.0 / speed)
        self.mean_arrival_s = mean_arrival_s
        self.kiosk_ids = [f"kiosk-{n:02d}" for n in range(1, kiosks + 1)]
        self.random = random.Random(seed)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._clients: list = []
        self._boot = uuid.uuid4().hex[:6]
        self._seq = 0
        self._seq_lock = threading.Lock()
        self.issued = 0
        self.rated = 0

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        for kiosk_id in self.kiosk_ids:
            client = self._client(kiosk_id)
            subscribe_and_wait(client, [(contract.topic_ticket_response(self.site, kiosk_id), 1)])
            self._spawn(self._kiosk_loop, kiosk_id, client)
        for counter in self.config.counters:
            terminal_id = f"rating-{counter.id}"[:32]
            client = self._client(terminal_id)
            client.on_message = self._on_counter_state(terminal_id, counter.id)
            subscribe_and_wait(client, [(contract.topic_counter_state(self.site, counter.id), 1)])
            self._spawn(self._clerk_loop, counter.id)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        for client in self._clients:
            disconnect_and_stop(client)

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, name=f"sim-{args[0]}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _client(self, device_id: str):
        client = make_client(
            f"motcua-sim-{device_id}",
            protocol=self.protocol,
            will=(contract.topic_device_status(self.site, device_id), b"offline", True),
        )
        connect_and_wait(client, self.host, self.port)
        client.publish(contract.topic_device_status(self.site, device_id), b"online", qos=1, retain=True)
        self._clients.append(client)
        return client

    def _msg_id(self, device_id: str) -> str:
        with self._seq_lock:
            self._seq += 1
            return f"{device_id}:{self._boot}:{self._seq}"

    # --- kiosks ---------------------------------------------------------------------------------

    def _arrival_gap_s(self) -> float:
        hour = self.service.now().astimezone(self.config.tz).hour
        rate = ARRIVALS_BY_HOUR.get(hour, NIGHT_ARRIVALS)
        return self.random.expovariate(rate / self.mean_arrival_s) * len(self.kiosk_ids)

    def _kiosk_loop(self, kiosk_id: str, client) -> None:
        fields = [f.id for f in self.config.fields]
        weights = [3, 4, 2, 3][: len(fields)] + [2] * max(0, len(fields) - 4)
        reasons = [r.id for r in self.config.priority.reasons]
        while not self._stop.wait(self._arrival_gap_s()):
            request = {
                "transaction": uuid.uuid4().hex,
                "field": self.random.choices(fields, weights)[0],
                "lang": "en" if self.random.random() < 0.05 else "vi",
            }
            if reasons and self.random.random() < PRIORITY_SHARE:
                request["priority"] = self.random.choice(reasons)
            client.publish(contract.topic_ticket_request(self.site, kiosk_id), json.dumps(request), qos=1)
            self.issued += 1

    # --- clerks ---------------------------------------------------------------------------------

    def _clerk_for(self, counter_id: str) -> str | None:
        return next((c.id for c in self.config.clerks if counter_id in c.counters), None)

    def _service_s(self, field_id: str) -> float:
        field = self.config.field(field_id)
        mean = (field.avg_service_min if field else 8) * 60
        return self.random.lognormvariate(0, 0.4) * mean / self.speed

    def _clerk_loop(self, counter_id: str) -> None:
        clerk_id = self._clerk_for(counter_id)
        try:
            self.service.counter_action(counter_id, Action.OPEN, clerk_id=clerk_id)
        except DomainError:
            log.debug("counter %s could not be opened", counter_id)
        while not self._stop.is_set():
            try:
                view = self.service.counter_action(counter_id, Action.NEXT, clerk_id=clerk_id)
            except DomainError:
                self._stop.wait(2.0 * self._pace)  # nobody waiting: look again shortly
                continue
            field_id = next((t["field"] for t in view["tickets"] if t["status"] == "called"), None)
            if field_id is None:
                continue
            if self.random.random() < 0.04:  # the citizen has left
                if not self._stop.wait(60 / self.speed):
                    self._act(counter_id, Action.NO_SHOW)
                continue
            if self._stop.wait(self._service_s(field_id)):
                return
            self._act(counter_id, Action.FINISH)
            # A short pause while the citizen rates and the next one is called.
            self._stop.wait(self.random.uniform(3, 8) * self._pace)

    def _act(self, counter_id: str, action: Action) -> None:
        try:
            self.service.counter_action(counter_id, action)
        except DomainError as exc:
            log.debug("simulated %s at %s refused: %s", action, counter_id, exc.code)

    # --- rating terminals -----------------------------------------------------------------------

    def _on_counter_state(self, terminal_id: str, counter_id: str):
        rated: set[str] = set()

        def on_message(client, userdata, message) -> None:
            try:
                state = json.loads(message.payload or b"{}")
            except ValueError:
                return
            ticket = state.get("ticket")
            if state.get("status") != "rating" or not ticket or ticket in rated:
                return
            rated.add(ticket)
            if self.random.random() < SKIP_RATING:
                return
            delay = self.random.uniform(1.5, 6.0) * self._pace
            presses = 2 if self.random.random() < DOUBLE_PRESS else 1
            timer = threading.Timer(delay, self._press, args=(client, terminal_id, counter_id, presses))
            timer.daemon = True
            timer.start()

        return on_message

    def _press(self, client, terminal_id: str, counter_id: str, presses: int) -> None:
        if self._stop.is_set():
            return
        levels = [level.id for level in self.config.rating.levels]
        shares = list(RATING_SHARES) if len(levels) == 3 else [len(levels) - i for i in range(len(levels))]
        level = self.random.choices(levels, shares)[0]
        for _ in range(presses):
            event = {
                "msg_id": self._msg_id(terminal_id),
                "counter": counter_id,
                "level": level,
                "at": datetime.now().astimezone().isoformat(),
            }
            if level in [lv.id for lv in self.config.rating.levels if not lv.satisfied] and self.config.rating.reasons:
                event["reasons"] = [self.random.choice(self.config.rating.reasons).id]
            client.publish(contract.topic_rating(self.site, terminal_id), json.dumps(event), qos=1)
            self.rated += 1
