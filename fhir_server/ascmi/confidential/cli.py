"""Command line of confidential communications, added under ``fhir-server ascmi``:

- ``confidential-communications import FILE...`` — requests and withdrawals into the store (the same service as
  ``POST /ascmi/confidential-communications[/withdrawals]``);
- ``overdue [--date YYYY-MM-DD]`` — the fulfil Tasks past their due date, per Care Partner;
- ``render REQUEST`` (through ``ascmi render``) — a request in plain language.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fhir_server.settings import Settings
from fhir_server.store.base import Store

OnStore = Callable[[argparse.Namespace, Callable[[Store, Settings], Awaitable[int]]], int]


def is_request(document: Any) -> bool:
    return isinstance(document, dict) and "requestId" in document and "designated" in document


def render(path: str, request: Any, settings: Settings, today: date) -> int:
    from fhir_server.ascmi.confidential import render as text
    from fhir_server.ascmi.confidential import schema
    from fhir_server.ascmi.files import diagnostics
    from fhir_server.fhir.outcome import FHIRError

    vocabulary = schema.load_vocabulary(settings.canonical_base)
    try:
        schema.check_request(request, vocabulary=vocabulary, today=today)
    except FHIRError as exc:
        print(f"{path}: {diagnostics(exc)}", file=sys.stderr)
        return 1
    print(text.render_request(request, vocabulary=vocabulary))
    return 0


def add_commands(ascmi_sub: Any, on_store: OnStore) -> None:
    cc = ascmi_sub.add_parser("confidential-communications", help="confidential communications requests (§6)")
    cc_sub = cc.add_subparsers(dest="cc_command", required=True)
    imp = cc_sub.add_parser("import", help="file confidential communications requests and withdrawals (JSON)")
    imp.add_argument("--data-dir", default=None)
    imp.add_argument("files", nargs="+")
    imp.set_defaults(func=lambda args: on_store(args, lambda store, settings: _import(args, store, settings)))
    late = ascmi_sub.add_parser("overdue", help="confidential communications requests past their due date, "
                                                "per Care Partner")
    late.add_argument("--data-dir", default=None)
    late.add_argument("--date", default=None, help="today (YYYY-MM-DD; default: today in the server's time zone)")
    late.set_defaults(func=lambda args: on_store(args, lambda store, settings: _overdue(args, store, settings)))


async def _import(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    from fhir_server.ascmi.confidential import files
    from fhir_server.ascmi.confidential.intake import ConfidentialIntake
    from fhir_server.repository import bootstrap

    await bootstrap.load(store, settings.canonical_base, settings.load_conformance)
    intake = ConfidentialIntake(store, settings, settings.base_url or "http://localhost/fhir")
    items = files.ordered(args.files)
    failed = 0
    for path, document in items:
        outcome = await files.import_one(intake, path, document)
        if outcome.error:
            failed += 1
            print(f"{path}: {outcome.error}", file=sys.stderr)
        else:
            print(f"{path}: {outcome.consent}")
    print(f"{len(items) - failed} imported, {failed} failed", file=sys.stderr)
    return 1 if failed else 0


async def _overdue(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    from fhir_server.ascmi.confidential import overdue

    try:
        today = date.fromisoformat(args.date) if args.date else datetime.now(ZoneInfo(settings.timezone)).date()
    except ValueError:
        print(f"--date {args.date!r} is not a date (YYYY-MM-DD)", file=sys.stderr)
        return 2
    print(overdue.report(await overdue.overdue(store, today), today))
    return 0
