"""`motcua demo`: a sample centre on embedded defaults, with its logins printed."""
from __future__ import annotations

import logging
from pathlib import Path

from werkzeug.security import generate_password_hash

from .accounts import create_device_token, generate_password
from .config import load_config
from .exports.scheduled import start_scheduled_exports
from .server import build, run_http, start_alerts, start_mqtt

log = logging.getLogger(__name__)

MANAGER = "quanly"
ADMIN = "quantri"  # for the accounts page, /admin/accounts


def _ensure_user(server, username: str, role: str, password: str) -> None:
    store = server.store
    now = server.service.now()
    with store.write():
        if store.get_user(username) is None:
            store.add_user(username, role, generate_password_hash(password), now)
        else:
            # A demo prints fresh logins each start; a real site uses `motcua user add`.
            store.set_password(username, generate_password_hash(password))


def run_demo(args) -> int:
    from .cli import write_sample_config

    data_dir = Path(args.data).resolve()
    config_path = data_dir / "site.toml"
    if not config_path.exists():
        write_sample_config(config_path)
    config = load_config(config_path)
    server = build(config, data_dir)

    manager_password = generate_password()
    clerk_password = generate_password()
    _ensure_user(server, MANAGER, "manager", manager_password)
    admin_password = generate_password()
    _ensure_user(server, ADMIN, "admin", admin_password)
    for clerk in config.clerks:
        _ensure_user(server, clerk.id, "clerk", clerk_password)
    kiosk_token = create_device_token(server.store, "kiosk-01", server.service.now())

    mqtt_side = start_mqtt(server, data_dir, listen_host=args.host, port=args.mqtt_port)
    alerts = start_alerts(server)
    scheduled_exports = start_scheduled_exports(server.service, data_dir)  # the sample config sets [exports] folder
    simulator = None
    if not args.no_simulator:
        from .simulator import DemoSimulator

        simulator = DemoSimulator(server.service, "127.0.0.1", mqtt_side.port, protocol=mqtt_side.protocol)
        simulator.start()

    base = f"http://localhost:{args.port}"
    broker_name = getattr(mqtt_side.broker, "name", "external")
    print(
        "\n".join([
            "",
            f"motcua demo — {config.site.name.vi} / {config.site.name.en}",
            f"  data folder        {data_dir}",
            f"  health             {base}/healthz",
            f"  API description    {base}/api/v1/openapi.json",
            f"  lobby board        {base}/board",
            f"  clerk console      {base}/console",
            f"  manager dashboard  {base}/manage (sign in with the manager account below)",
            f"  counter display    {base}/counter/{config.counters[0].id}",
            f"  today's figures    {base}/api/v1/stats/today",
            f"  MQTT broker        {broker_name} on port {mqtt_side.port} (topics motcua/{config.site.id}/…, see docs/mqtt.md)",
            f"  simulator          {'kiosks, clerks and rating terminals at work' if simulator else 'off (--no-simulator)'}",
            f"  manager login      {MANAGER} / {manager_password}",
            f"  accounts page      {base}/admin/accounts (admin login {ADMIN} / {admin_password})",
            f"  daily exports      {scheduled_exports.folder if scheduled_exports else 'off ([exports] folder not set)'}",
            f"  clerk logins       {', '.join(c.id for c in config.clerks)} / {clerk_password}",
            f"  kiosk-01 token     {kiosk_token}",
            "  issue a ticket:",
            f"    curl -s -X POST {base}/api/v1/tickets -H 'Authorization: Bearer {kiosk_token}' "
            "-H 'Content-Type: application/json' -d '{\"field\": \"dat-dai\"}'",
            "",
        ]),
        flush=True,
    )
    try:
        run_http(server, args.host, args.port)
    except KeyboardInterrupt:
        pass
    finally:
        if simulator is not None:
            simulator.stop()
        if scheduled_exports is not None:
            scheduled_exports.stop()
        alerts.stop()
        mqtt_side.stop()
        server.store.close()
    return 0
