"""`motcua export --from DATE --to DATE --format csv|xlsx|pdf [-o FILE] --config site.toml`."""
from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def add_export_command(commands) -> None:
    """Register the subcommand on `build_parser`'s subparsers."""
    from .jobs import FORMATS

    export = commands.add_parser("export", help="daily totals of a period as CSV, XLSX or PDF")
    export.add_argument("--from", dest="first", type=_day, required=True, help="first local day, YYYY-MM-DD")
    export.add_argument("--to", dest="last", type=_day, required=True, help="last local day, YYYY-MM-DD")
    export.add_argument("--format", choices=sorted(FORMATS), default="csv")
    export.add_argument("-o", "--output", type=Path, help="file to write (default: standard output)")
    export.add_argument("--config", required=True, help="site config (TOML)")
    export.set_defaults(handler=cmd_export)


def cmd_export(args) -> int:
    from ..cli import _site
    from ..domain.errors import DomainError
    from ..server import DATABASE_NAME
    from ..service import QueueService
    from ..store import Store
    from .jobs import daily_totals_export

    if args.output is None and args.format != "csv" and sys.stdout.isatty():
        print(f"{args.format.upper()} là tệp nhị phân: dùng -o TỆP / {args.format.upper()} is binary: give -o FILE",
              file=sys.stderr)
        return 2
    config, data_dir = _site(args)
    store = Store(data_dir / DATABASE_NAME)
    try:
        export = daily_totals_export(QueueService(config, store), args.first, args.last, args.format)
    except DomainError as exc:
        print(f"{exc.code}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if args.output is None:
        sys.stdout.buffer.write(export.content)
        sys.stdout.buffer.flush()
    else:
        args.output.write_bytes(export.content)
        print(f"{args.output} ({len(export.content):,} bytes)", file=sys.stderr)
    return 0
