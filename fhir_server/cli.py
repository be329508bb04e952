"""``fhir-server`` command line: ``serve``, ``export``/``import`` (NDJSON), ``reindex``, ``relabel``,
``ascmi import``/``render``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from fhir_server.settings import Settings
from fhir_server.store.base import Store


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    if getattr(args, "data_dir", None):
        settings = settings.with_(data_dir=Path(args.data_dir))
    return settings


def _on_store(args: argparse.Namespace, work: Callable[[Store, Settings], Awaitable[int]]) -> int:
    """Open the configured store (as ``serve`` would), run ``work`` on it, close it; the exit code."""
    from fhir_server.app import make_store

    settings = _settings(args)

    async def run() -> int:
        store = make_store(settings)
        await store.open()
        try:
            return await work(store, settings)
        finally:
            await store.close()

    return asyncio.run(run())


def _serve(args: argparse.Namespace) -> int:
    from fhir_server.serving import serve

    settings = _settings(args)
    if settings.auth == "off":
        access = "FHIR_AUTH=off: no token needed, every request acts as an administrator"
    else:
        data_dir = f" --data-dir {args.data_dir}" if args.data_dir else ""
        access = (f"get an administrator token with: fhir-server token --admin{data_dir} "
                  "(send it as 'Authorization: Bearer <token>'; README.md shows how to register clients); "
                  f"add a person for the web page /app/ with: fhir-server users add NAME --organization "
                  f"Organization/<id>{data_dir}")
    print(f"FHIR base: http://{args.host}:{args.port}/fhir "
          f"({'MongoDB' if settings.mongodb_uri else f'SQLite in {settings.data_dir}'}); {access}", flush=True)
    serve(settings, args.host, args.port, args.workers)
    return 0


def _backup(args: argparse.Namespace) -> int:
    """SQLite: a consistent copy while the server runs (``store/sqlite/backup.py``). MongoDB: its own tools."""
    from fhir_server.store.sqlite.backup import BackupError, backup

    settings = _settings(args)
    if settings.mongodb_uri:
        print("MongoDB stores are backed up with mongodump --oplog (or a managed snapshot) and restored with "
              "mongorestore --oplogReplay: see docs/deploy.md", file=sys.stderr)
        return 2
    try:
        size = backup(settings.sqlite_path, Path(args.dest))
    except (BackupError, OSError) as e:
        print(f"backup failed: {e}", file=sys.stderr)
        return 1
    print(f"backed up {settings.sqlite_path} to {args.dest} ({size} bytes)", file=sys.stderr)
    return 0


def _restore(args: argparse.Namespace) -> int:
    from fhir_server.store.sqlite.backup import BackupError, restore

    settings = _settings(args)
    if settings.mongodb_uri:
        print("MongoDB stores are restored with mongorestore: see docs/deploy.md", file=sys.stderr)
        return 2
    if settings.sqlite_path.exists() and not args.force:
        print(f"{settings.sqlite_path} exists: stop the server and pass --force to replace it", file=sys.stderr)
        return 1
    try:
        restore(Path(args.source), settings.sqlite_path)
    except (BackupError, OSError) as e:
        print(f"restore failed: {e}", file=sys.stderr)
        return 1
    print(f"restored {args.source} into {settings.sqlite_path}", file=sys.stderr)
    return 0


def _export(args: argparse.Namespace) -> int:
    from fhir_server.repository import ndjson

    async def work(store: Store, _: Settings) -> int:
        out = open(args.output, "wb") if args.output != "-" else sys.stdout.buffer
        async for line in ndjson.export(store, args.type):
            out.write(line)
        out.flush()
        return 0

    return _on_store(args, work)


def _import(args: argparse.Namespace) -> int:
    from fhir_server.repository import bootstrap, ndjson

    async def work(store: Store, settings: Settings) -> int:
        await bootstrap.load(store, settings.canonical_base, settings.load_conformance)  # the label ValueSets
        failed = 0
        for name in args.files:
            with open(name, "rb") as fh:
                report = await ndjson.import_lines(store, fh)
            failed += report.failed
            print(f"{name}: {report.imported} imported, {report.failed} failed", file=sys.stderr)
            for error in (report.errors or [])[:20]:
                print(f"  {error}", file=sys.stderr)
        return 1 if failed else 0

    return _on_store(args, work)


def _reindex(args: argparse.Namespace) -> int:
    from fhir_server.repository.reindex import reindex

    async def work(store: Store, _: Settings) -> int:
        count = await reindex(store, args.type)
        print(f"re-indexed {count} resources", file=sys.stderr)
        return 0

    return _on_store(args, work)


def _ascmi_import(args: argparse.Namespace) -> int:
    """Forms and revocations straight into the store (the same service as ``POST /ascmi/...``)."""
    from tqdm import tqdm

    from fhir_server.ascmi import files
    from fhir_server.ascmi.intake import Intake
    from fhir_server.repository import bootstrap

    async def work(store: Store, settings: Settings) -> int:
        await bootstrap.load(store, settings.canonical_base, settings.load_conformance)
        intake = Intake(store, settings, settings.base_url or "http://localhost/fhir")
        items = files.ordered(args.files)
        failed = 0
        bar = tqdm(items, desc="ascmi import", unit="file", file=sys.stderr, disable=len(items) < 10)
        for path, document in bar:
            outcome = await files.import_one(intake, path, document)
            if outcome.error:
                failed += 1
                tqdm.write(f"{path}: {outcome.error}", file=sys.stderr)
            else:
                tqdm.write(f"{path}: {outcome.consent}", file=sys.stdout)
        print(f"{len(items) - failed} imported, {failed} failed", file=sys.stderr)
        return 1 if failed else 0

    return _on_store(args, work)


def _ascmi_render(args: argparse.Namespace) -> int:
    """The plain-language text of what a form (or a confidential communications request) will record."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from fhir_server.ascmi import files, render, schema
    from fhir_server.ascmi.confidential import cli as confidential_cli
    from fhir_server.ascmi.terminology import load_terminology
    from fhir_server.fhir.outcome import FHIRError

    settings = _settings(args)
    terminology = load_terminology(settings.canonical_base)
    today = datetime.now(ZoneInfo(settings.timezone)).date()
    try:
        form = files.load(args.form)
        if confidential_cli.is_request(form):
            return confidential_cli.render(args.form, form, settings, today)
        schema.check_form(form, terminology=terminology, today=today)
    except (OSError, ValueError) as exc:
        print(f"{args.form}: cannot read: {exc}", file=sys.stderr)
        return 1
    except FHIRError as exc:
        print(f"{args.form}: {files.diagnostics(exc)}", file=sys.stderr)
        return 1
    print(render.render_form(form, terminology=terminology, today=today))
    return 0


def _relabel(args: argparse.Namespace) -> int:
    from fhir_server.repository import bootstrap
    from fhir_server.repository.relabel import relabel

    async def work(store: Store, settings: Settings) -> int:
        await bootstrap.load(store, settings.canonical_base, settings.load_conformance)
        report = await relabel(store, args.type)
        print(f"examined {report.examined} resources, {report.relabelled} relabelled (a new version each)",
              file=sys.stderr)
        return 0

    return _on_store(args, work)


def _clients(args: argparse.Namespace) -> int:
    """``fhir-server clients add|list|disable``: the client registry in the configured store."""
    from fhir_server.security import admin

    return _on_store(args, lambda store, settings: admin.clients_command(args, store, settings))


def _token(args: argparse.Namespace) -> int:
    """``fhir-server token --admin``: a local administrator token, signed with the store's key."""
    from fhir_server.security import admin

    return _on_store(args, lambda store, settings: admin.token_command(args, store, settings))


def _users(args: argparse.Namespace) -> int:
    """``fhir-server users add|list|disable|enable|passwd``: people who sign in to the web page."""
    from fhir_server.security import users_admin

    return _on_store(args, lambda store, settings: users_admin.users_command(args, store, settings))


def _ascmi_disclosures(args: argparse.Namespace) -> int:
    """A person's accounting of disclosures, in plain language (who received what, when, on which basis)."""
    from fhir_server.consent.report import report

    async def work(store: Store, settings: Settings) -> int:
        found = await report(store, args.patient, f"{settings.canonical_base}/sid/medi-cal-cin")
        if found is None:
            print(f"no Patient with id or Medi-Cal CIN {args.patient!r}", file=sys.stderr)
            return 1
        print("\n".join(found))
        return 0

    return _on_store(args, work)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fhir-server", description="FHIR R4 server for ASCMI consent")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", default=os.environ.get("FHIR_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("FHIR_PORT", "8080")))
    serve.add_argument("--data-dir", default=None, help="directory of the embedded store (default ./data)")
    serve.add_argument("--workers", type=int, default=int(os.environ.get("FHIR_WORKERS", "1")),
                       help="server processes sharing the port (default 1; see docs/deploy.md)")
    serve.set_defaults(func=_serve)

    bak = sub.add_parser("backup", help="copy the SQLite store to DEST while the server runs (consistent)")
    bak.add_argument("--data-dir", default=None)
    bak.add_argument("dest", help="file to write (replaced atomically when the copy is complete and checked)")
    bak.set_defaults(func=_backup)

    res = sub.add_parser("restore", help="replace the SQLite store with a backup (stop the server first)")
    res.add_argument("--data-dir", default=None)
    res.add_argument("--force", action="store_true", help="replace an existing store")
    res.add_argument("source", help="a file written by `fhir-server backup`")
    res.set_defaults(func=_restore)

    exp = sub.add_parser("export", help="write every current resource as NDJSON (to move between stores)")
    exp.add_argument("--data-dir", default=None)
    exp.add_argument("--type", default=None, help="only this resource type")
    exp.add_argument("-o", "--output", default="-", help="file to write (default: standard output)")
    exp.set_defaults(func=_export)

    imp = sub.add_parser("import", help="load NDJSON files (ids kept; each line an update-as-create)")
    imp.add_argument("--data-dir", default=None)
    imp.add_argument("files", nargs="+")
    imp.set_defaults(func=_import)

    rix = sub.add_parser("reindex", help="re-extract search index values (after search parameters change)")
    rix.add_argument("--data-dir", default=None)
    rix.add_argument("--type", default=None, help="only this resource type")
    rix.set_defaults(func=_reindex)

    rlb = sub.add_parser("relabel", help="re-apply the ascmi-sls-* ValueSets to stored resources (ACCESS.md §C)")
    rlb.add_argument("--data-dir", default=None)
    rlb.add_argument("--type", default=None, help="only this resource type")
    rlb.set_defaults(func=_relabel)

    from fhir_server.security.admin import add_parsers

    add_parsers(sub, _clients, _token)
    from fhir_server.security.users_admin import add_parser as add_users_parser

    add_users_parser(sub, _users)

    ascmi = sub.add_parser("ascmi", help="ASCMI forms: import them into the store, or render them as text")
    ascmi_sub = ascmi.add_subparsers(dest="ascmi_command", required=True)
    ascmi_imp = ascmi_sub.add_parser("import", help="file ASCMI forms and revocations (JSON files)")
    ascmi_imp.add_argument("--data-dir", default=None)
    ascmi_imp.add_argument("files", nargs="+")
    ascmi_imp.set_defaults(func=_ascmi_import)
    ascmi_render = ascmi_sub.add_parser("render", help="print what a form (or a confidential communications "
                                                      "request) records, in plain language")
    ascmi_render.add_argument("form")
    ascmi_render.set_defaults(func=_ascmi_render)
    ascmi_disc = ascmi_sub.add_parser("disclosures", help="a person's accounting of disclosures, in plain language")
    ascmi_disc.add_argument("--patient", required=True, help="Patient id or Medi-Cal CIN")
    ascmi_disc.add_argument("--data-dir", default=None)
    ascmi_disc.set_defaults(func=_ascmi_disclosures)
    from fhir_server.ascmi.confidential import cli as confidential_cli

    confidential_cli.add_commands(ascmi_sub, _on_store)
    from fhir_server.conformance import cli as conformance_cli

    conformance_cli.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
