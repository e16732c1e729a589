"""The technician's commands: `motcua provision …`, `motcua backup`, `motcua restore`.

`add_cli(subparsers)` registers them on the `motcua` parser (queue_server/cli.py).
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from queue_server.config import ConfigError


def _fail(message: object) -> int:
    print(message, file=sys.stderr)
    return 1


def _provisioner(args):
    from .provision import Provisioner

    return Provisioner(args.inventory, args.out, broker_host=getattr(args, "broker_host", None),
                       esphome_dir=getattr(args, "esphome_dir", None),
                       server_config=getattr(args, "server_config", None))


def _print_report(report) -> None:
    for line in report.lines():
        print(line)


def cmd_provision_generate(args) -> int:
    from .provision import ProvisionError

    try:
        report = _provisioner(args).generate()
    except (ConfigError, ProvisionError) as exc:
        return _fail(exc)
    _print_report(report)
    print("Next: install the units in firmware_config/deploy/, then `systemctl reload motcua-broker` "
          "if it is running.")
    return 0


def cmd_provision_rotate(args) -> int:
    from .provision import ProvisionError

    try:
        provisioner = _provisioner(args)
        report = provisioner.rotate(args.device)
        _print_report(report)
        if args.reload:
            provisioner.reload_broker()
            print("broker reloaded: the old password no longer works")
        else:
            print("The old password works until the broker re-reads its files: systemctl reload motcua-broker")
    except (ConfigError, ProvisionError) as exc:
        return _fail(exc)
    print(f"Give {args.device} its new files (see the paths above); an ESPHome box needs flashing again.")
    return 0


def cmd_provision_remove(args) -> int:
    from queue_server.mqtt.client import MqttConnectError, MqttSubscribeError

    from .provision import ProvisionError, clear_retained

    try:
        provisioner = _provisioner(args)
        report = provisioner.remove(args.device)
        _print_report(report)
        if args.reload:
            provisioner.reload_broker()
            print("broker reloaded: the device's account is gone")
        else:
            print("Reload the broker (systemctl reload motcua-broker) so that the account stops working.")
        if args.no_clear:
            return 0
        inventory = provisioner.inventory
        topics = clear_retained(inventory.site, args.device,
                                args.mqtt_host or inventory.server.broker_host,
                                args.mqtt_port or inventory.broker.port,
                                "motcua_admin", provisioner.admin_password())
    except (ConfigError, ProvisionError) as exc:
        return _fail(exc)
    except (MqttConnectError, MqttSubscribeError, OSError) as exc:
        return _fail(f"the device is out of every file, but its retained topics were not cleared ({exc}); "
                     f"run `motcua provision remove --device {args.device}` again once the broker is up")
    for topic in topics:
        print(f"cleared retained {topic}")
    return 0


def cmd_provision_check(args) -> int:
    from .consistency import check

    problems = check(args.inventory, args.out, esphome_dir=args.esphome_dir, server_config=args.server_config,
                     broker_host=args.broker_host)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"OK: {args.inventory} and the files in {args.out} agree")
    return 0


def _database_path(config_path: str) -> tuple[str, Path]:
    from queue_server.config import data_dir_for, load_config
    from queue_server.server import DATABASE_NAME

    config = load_config(config_path)
    return config.site.id, data_dir_for(config, config_path) / DATABASE_NAME


def cmd_backup(args) -> int:
    from .backup import BackupError, backup_database

    try:
        site, database = _database_path(args.config)
        output = Path(args.output or f"motcua-{site}-{datetime.now().strftime('%Y%m%dT%H%M%S')}.sqlite3")
        result = backup_database(database, output)
    except (ConfigError, BackupError) as exc:
        return _fail(exc)
    counts = ", ".join(f"{count} {name}" for name, count in result.rows.items())
    print(f"backed up {database} to {result.path} ({result.size_bytes} bytes, {counts}; "
          f"integrity ok; {result.seconds:.2f} s)")
    return 0


def cmd_restore(args) -> int:
    from .backup import BackupError, restore_database

    try:
        _, database = _database_path(args.config)
        result = restore_database(args.file, database, force=args.force)
    except (ConfigError, BackupError) as exc:
        return _fail(exc)
    counts = ", ".join(f"{count} {name}" for name, count in result.rows.items())
    print(f"restored {args.file} into {database} ({counts}; integrity ok)")
    if result.previous:
        print(f"the replaced database is kept as {result.previous}")
    if result.live:
        print("the server had the database open: restart it (systemctl restart motcua-server)")
    return 0


def add_cli(commands: argparse._SubParsersAction) -> None:
    """Register `provision`, `backup` and `restore` on the `motcua` command's subparsers."""
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--inventory", required=True, help="the device inventory (TOML)")
    where.add_argument("--out", required=True, help="folder of the generated files, e.g. /etc/motcua/provision")
    where.add_argument("--esphome-dir", help="ESPHome device files (default: [esphome].dir of the inventory)")
    where.add_argument("--server-config", help="the site config (default: [server].config of the inventory)")
    where.add_argument("--broker-host", help="override [broker].host, the address devices use")

    provision = commands.add_parser("provision", help="device credentials, broker config and device files")
    sub = provision.add_subparsers(dest="provision_command", required=True)

    generate = sub.add_parser("generate", parents=[where], help="write everything from the inventory; "
                                                                "keeps existing passwords")
    generate.set_defaults(handler=cmd_provision_generate)

    rotate = sub.add_parser("rotate", parents=[where], help="a new broker password for one device")
    rotate.add_argument("--device", required=True, help="device id (or motcua_server, motcua_admin)")
    rotate.add_argument("--reload", action="store_true", help="signal the broker ([broker].pid_file) to re-read")
    rotate.set_defaults(handler=cmd_provision_rotate)

    remove = sub.add_parser("remove", parents=[where], help="take a device out of the inventory, the broker "
                                                            "and its files; clear its retained topics")
    remove.add_argument("--device", required=True, help="device id")
    remove.add_argument("--reload", action="store_true", help="signal the broker ([broker].pid_file) to re-read")
    remove.add_argument("--no-clear", action="store_true", help="do not connect to the broker to clear topics")
    remove.add_argument("--mqtt-host", help="broker address for clearing (default [server].broker_host)")
    remove.add_argument("--mqtt-port", type=int, help="broker port for clearing (default [broker].port)")
    remove.set_defaults(handler=cmd_provision_remove)

    check = sub.add_parser("check", parents=[where], help="the inventory, ACL, ESPHome files and server config "
                                                          "agree; exit 1 if not")
    check.set_defaults(handler=cmd_provision_check)

    backup = commands.add_parser("backup", help="copy the database while the server runs")
    backup.add_argument("--config", required=True, help="site config (TOML)")
    backup.add_argument("-o", "--output", help="backup file (default motcua-{site}-{time}.sqlite3 here)")
    backup.set_defaults(handler=cmd_backup)

    restore = commands.add_parser("restore", help="put a backup in place of the database")
    restore.add_argument("file", help="a file made by `motcua backup`")
    restore.add_argument("--config", required=True, help="site config (TOML)")
    restore.add_argument("--force", action="store_true", help="even while the server has the database open")
    restore.set_defaults(handler=cmd_restore)
