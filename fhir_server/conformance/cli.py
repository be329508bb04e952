"""The ``validate`` and ``package`` subcommands of ``fhir-server`` (registered by :mod:`fhir_server.cli`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def _validate(args: argparse.Namespace) -> int:
    from fhir_server.conformance.offline import validate_files
    from fhir_server.settings import Settings

    paths = [Path(f) for f in args.files]
    return validate_files(paths, list(args.profile or []), Settings.from_env().canonical_base, sys.stdout)


def _package(args: argparse.Namespace) -> int:
    from fhir_server.conformance.package import main

    return main(["-o", args.output] if args.output else [])


def register(sub: Any) -> None:
    val = sub.add_parser("validate", help="validate FHIR JSON, NDJSON or Bundle files offline (as $validate does)")
    val.add_argument("files", nargs="+", help="JSON resource or Bundle files; .ndjson files hold one per line")
    val.add_argument("--profile", action="append", metavar="URL",
                     help="also validate against this profile (canonical URL; repeatable)")
    val.set_defaults(func=_validate)
    pkg = sub.add_parser("package", help="build the FHIR NPM package of the profiles (ascmi.fhir.consent)")
    pkg.add_argument("-o", "--output", default=None, help="file to write (default build/package/<name>.tgz)")
    pkg.set_defaults(func=_package)
