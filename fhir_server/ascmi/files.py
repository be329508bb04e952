"""ASCMI forms and revocations from files, for ``fhir-server ascmi import``.

A file holds one form or one revocation (JSON); which one is told by its shape (a revocation has ``revokes``).
Forms go first, so a revocation can name a form imported by the same command; each file is its own transaction
and a failure is reported with the OperationOutcome's diagnostics without stopping the others.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhir_server.ascmi.intake import Intake
from fhir_server.fhir.outcome import FHIRError


@dataclass(frozen=True, slots=True)
class Outcome:
    path: str
    consent: str | None  # ``Consent/<id>/_history/<vid>`` when it was stored
    error: str | None = None


def kind(document: Any) -> str:
    """``revocation`` when the JSON has ``revokes``, else ``form``."""
    return "revocation" if isinstance(document, dict) and "revokes" in document else "form"


def load(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def diagnostics(exc: FHIRError) -> str:
    """``422 $.individual.birthDate: birthDate is required; …`` — every issue, with its location."""
    parts = []
    for issue in exc.issues:
        where = f"{', '.join(issue.expression)}: " if issue.expression else ""
        parts.append(f"{where}{issue.diagnostics}")
    return f"{exc.status} " + "; ".join(parts)


def load_all(paths: Sequence[str]) -> list[tuple[str, Any]]:
    """Each path with its parsed JSON, or the OSError/ValueError raised reading it (reported per file by
    :func:`unreadable`, so one bad file does not stop the others)."""
    loaded: list[tuple[str, Any]] = []
    for path in paths:
        try:
            loaded.append((path, load(path)))
        except (OSError, ValueError) as exc:
            loaded.append((path, exc))
    return loaded


def unreadable(path: str, exc: Exception) -> Outcome:
    """The outcome of a file :func:`load_all` could not read or parse."""
    reason = exc.strerror if isinstance(exc, OSError) else f"not JSON: {exc}"
    return Outcome(path, None, f"cannot read: {reason}")


def ordered(paths: Sequence[str]) -> list[tuple[str, Any]]:
    """Each path with its parsed JSON (or the error reading it), forms first."""
    return sorted(load_all(paths), key=lambda item: kind(item[1]) == "revocation")


async def import_one(intake: Intake, path: str, document: Any) -> Outcome:
    if isinstance(document, Exception):
        return unreadable(path, document)
    try:
        if kind(document) == "revocation":
            result = await intake.file_revocation(document, "minimal")
        else:
            result = await intake.file_form(document, "minimal")
    except FHIRError as exc:
        return Outcome(path, None, diagnostics(exc))
    version = result.consent
    return Outcome(path, f"{version.resource_type}/{version.id}/_history/{version.version_id}")


async def import_all(intake: Intake, items: Iterable[tuple[str, Any]]) -> list[Outcome]:
    return [await import_one(intake, path, document) for path, document in items]
