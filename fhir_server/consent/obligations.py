"""Rule 7: the obligations a permit carries (``data/consent-obligations.json``).

Only an overall permit carries obligations, and only for the categories it permits: Part 2 records travel with
``42CFRPart2`` and ``NORDSCLCD`` (the consent reference is the decision's ``consent`` output); HIV and mental
health with ``NORDSCLCD``. Codes are listed once, in the order the categories were requested.
"""

from __future__ import annotations

from collections.abc import Iterable

from fhir_server.consent.model import Coding
from fhir_server.consent.tables import Tables


def obligations_for(categories: Iterable[str], tables: Tables) -> list[tuple[Coding, list[str]]]:
    """Each obligation once, with the permitted categories that call for it."""
    out: dict[tuple[str | None, str], tuple[Coding, list[str]]] = {}
    for cat in categories:
        for code in tables.obligations.get(cat, ()):
            out.setdefault(code.key, (code, []))[1].append(cat)
    return list(out.values())
