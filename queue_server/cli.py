"""The `motcua` command: demo, serve, kiosk, check-config, user, token, export, provision, backup, restore."""
from __future__ import annotations

import argparse
import getpass
import logging
import shutil
import sys
from importlib import resources
from pathlib import Path

from .config import Config, ConfigError, data_dir_for, load_config

SAMPLE_CONFIG = "sample_site.toml"


def _load_or_exit(path: str) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(1) from None


def cmd_check_config(args) -> int:
    config = _load_or_exit(args.file)
    print(f"OK: {args.file} — {config.site.id}: {len(config.fields)} fields, {len(config.counters)} counters, "
          f"{len(config.clerks)} clerks, {len(config.rating.levels)} rating levels")
    return 0


def _site(args) -> tuple[Config, Path]:
    config = _load_or_exit(args.config)
    return config, data_dir_for(config, args.config)


def cmd_user_add(args) -> int:
    from .accounts import add_user, generate_password
    from .domain.errors import DomainError
    from .domain.timeutil import SystemClock
    from .server import DATABASE_NAME
    from .store import Store

    config, data_dir = _site(args)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif args.generate_password:
        password = generate_password()
    else:
        password = getpass.getpass(f"Mật khẩu cho {args.name} / Password for {args.name}: ")
        if getpass.getpass("Nhập lại / Again: ") != password:
            print("Hai mật khẩu không khớp / The passwords differ", file=sys.stderr)
            return 1
    store = Store(data_dir / DATABASE_NAME)
    try:
        add_user(store, args.name, args.role, password, SystemClock().now(), tz=config.tz)  # history: actor None = the command line
    except DomainError as exc:
        print(f"{exc.code}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"Đã tạo tài khoản / created user {args.name} ({args.role})")
    if args.generate_password:
        print(f"password: {password}")
    return 0


def cmd_token_create(args) -> int:
    from .accounts import create_device_token
    from .domain.errors import DomainError
    from .domain.timeutil import SystemClock
    from .server import DATABASE_NAME
    from .store import Store

    config, data_dir = _site(args)
    store = Store(data_dir / DATABASE_NAME)
    try:
        token = create_device_token(store, args.device, SystemClock().now())
    except DomainError as exc:
        print(f"{exc.code}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(token)
    return 0


def cmd_serve(args) -> int:
    from .exports.scheduled import start_scheduled_exports
    from .server import build, run_http, start_alerts, start_mqtt

    config, data_dir = _site(args)
    server = build(config, data_dir)
    mqtt_side = start_mqtt(server, data_dir)
    alerts = start_alerts(server)
    scheduled_exports = start_scheduled_exports(server.service, data_dir)  # None unless [exports] folder is set
    try:
        run_http(server, args.host or config.server.host, args.port or config.server.port)
    except KeyboardInterrupt:
        pass
    finally:
        if scheduled_exports is not None:
            scheduled_exports.stop()
        alerts.stop()
        mqtt_side.stop()
        server.store.close()
    return 0


def cmd_kiosk_ticket(args) -> int:
    from kiosk.settings import KioskMqtt, load_kiosk_settings
    from kiosk.ticket.run import run_ticket_kiosk

    overrides: dict = {"device": args.device, "site": args.site}
    try:
        settings = load_kiosk_settings(args.config, **overrides)
        if args.mqtt_host or args.mqtt_port:
            mqtt = settings.mqtt.model_dump() | {k: v for k, v in (("host", args.mqtt_host), ("port", args.mqtt_port)) if v}
            settings = settings.model_copy(update={"mqtt": KioskMqtt.model_validate(mqtt)})
        if args.windowed:
            settings = settings.model_copy(update={"screen": settings.screen.model_copy(update={"fullscreen": False})})
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    return run_ticket_kiosk(settings)


def cmd_kiosk_rating(args) -> int:
    from kiosk.rating.run import run_rating_terminal
    from kiosk.rating.settings import load_rating_settings

    mqtt = {key: value for key, value in (("host", args.mqtt_host), ("port", args.mqtt_port)) if value is not None}
    try:
        settings = load_rating_settings(
            args.config, device=args.device, site=args.site, counter=args.counter, outbox=args.outbox,
            mqtt=mqtt or None, screen={"fullscreen": False} if args.windowed else None,
        )
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    return run_rating_terminal(settings)


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(args)


def write_sample_config(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with resources.as_file(resources.files("queue_server") / SAMPLE_CONFIG) as sample:
        shutil.copyfile(sample, path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="motcua", description="Queue tickets and clerk ratings for one-stop centres")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="everything on embedded defaults, with a sample centre")
    demo.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")
    demo.add_argument("--mqtt-port", type=int, default=1883, help="MQTT broker port (default 1883)")
    demo.add_argument("--data", default="demo-data", help="data folder (default ./demo-data)")
    demo.add_argument("--host", default="0.0.0.0", help="address to listen on (default all)")
    demo.add_argument("--no-simulator", action="store_true", help="no simulated kiosks and terminals")
    demo.set_defaults(handler=cmd_demo)

    serve = commands.add_parser("serve", help="the server alone, as configured")
    serve.add_argument("--config", required=True, help="site config (TOML)")
    serve.add_argument("--host", help="override [server].host")
    serve.add_argument("--port", type=int, help="override [server].port")
    serve.set_defaults(handler=cmd_serve)

    kiosk = commands.add_parser("kiosk", help="the Kivy kiosk apps").add_subparsers(dest="kiosk_command", required=True)
    kiosk_ticket = kiosk.add_parser("ticket", help="the ticket kiosk (touchscreen, prints tickets)")
    kiosk_ticket.add_argument("--device", required=True, help="this kiosk's device id, e.g. kiosk-01")
    kiosk_ticket.add_argument("--config", help="the kiosk's settings (TOML): site, broker, printer, screen")
    kiosk_ticket.add_argument("--site", help="site id (overrides the settings file)")
    kiosk_ticket.add_argument("--mqtt-host", help="broker host (overrides the settings file)")
    kiosk_ticket.add_argument("--mqtt-port", type=int, help="broker port (overrides the settings file)")
    kiosk_ticket.add_argument("--windowed", action="store_true", help="a window instead of full screen")
    kiosk_ticket.set_defaults(handler=cmd_kiosk_ticket)
    kiosk_rating = kiosk.add_parser("rating", help="the rating terminal at a counter (citizens rate the clerk)")
    kiosk_rating.add_argument("--device", required=True, help="this terminal's device id, e.g. rating-03")
    kiosk_rating.add_argument("--config", help="the terminal's settings (TOML): site, counter, broker, screen, outbox")
    kiosk_rating.add_argument("--site", help="site id (overrides the settings file)")
    kiosk_rating.add_argument("--counter", help="the counter it rates, e.g. quay-3 (overrides the settings file)")
    kiosk_rating.add_argument("--outbox", help="SQLite file keeping presses until the broker has them")
    kiosk_rating.add_argument("--mqtt-host", help="broker host (overrides the settings file)")
    kiosk_rating.add_argument("--mqtt-port", type=int, help="broker port (overrides the settings file)")
    kiosk_rating.add_argument("--windowed", action="store_true", help="a window instead of full screen")
    kiosk_rating.set_defaults(handler=cmd_kiosk_rating)

    check = commands.add_parser("check-config", help="validate a config file; exit 1 on error")
    check.add_argument("file")
    check.set_defaults(handler=cmd_check_config)

    user = commands.add_parser("user", help="accounts").add_subparsers(dest="user_command", required=True)
    user_add = user.add_parser("add", help="add a clerk, manager or admin account")
    user_add.add_argument("name")
    user_add.add_argument("--role", required=True, choices=["clerk", "manager", "admin"])
    user_add.add_argument("--config", required=True, help="site config (TOML)")
    how = user_add.add_mutually_exclusive_group()
    how.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    how.add_argument("--generate-password", action="store_true", help="generate a password and print it")
    user_add.set_defaults(handler=cmd_user_add)

    token = commands.add_parser("token", help="device tokens").add_subparsers(dest="token_command", required=True)
    token_create = token.add_parser("create", help="create (or replace) a device's token and print it")
    token_create.add_argument("--device", required=True)
    token_create.add_argument("--config", required=True, help="site config (TOML)")
    token_create.set_defaults(handler=cmd_token_create)

    from firmware_config.cli import add_cli

    add_cli(commands)  # provision, backup, restore

    from .exports.command import add_export_command

    add_export_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return args.handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
