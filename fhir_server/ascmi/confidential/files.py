"""Confidential communications requests and withdrawals from files (``fhir-server ascmi
confidential-communications import FILE...``): a file holds one request or one withdrawal (it has no
``individual``); requests go first, in order of receipt, then withdrawals. Each file is its own transaction and
a failure is reported without stopping the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fhir_server.ascmi.confidential.intake import ConfidentialIntake
from fhir_server.ascmi.files import Outcome, diagnostics, load_all, unreadable
from fhir_server.fhir.outcome import FHIRError


def is_withdrawal(document: Any) -> bool:
    return isinstance(document, dict) and "individual" not in document and "designated" not in document


def ordered(paths: Sequence[str]) -> list[tuple[str, Any]]:
    """Each path with its parsed JSON (or the error reading it): requests by receipt, then withdrawals."""

    def key(item: tuple[str, Any]) -> tuple[bool, str]:
        doc = item[1]
        return (is_withdrawal(doc), str(doc.get("receivedDate", "")) if isinstance(doc, dict) else "")

    return sorted(load_all(paths), key=key)


async def import_one(intake: ConfidentialIntake, path: str, document: Any) -> Outcome:
    if isinstance(document, Exception):
        return unreadable(path, document)
    try:
        if is_withdrawal(document):
            version = await intake.withdraw(document)
        else:
            version = (await intake.file_request(document, "minimal")).consent
    except FHIRError as exc:
        return Outcome(path, None, diagnostics(exc))
    return Outcome(path, f"{version.resource_type}/{version.id}/_history/{version.version_id}")
