"""The one place that knows the ASCMI canonical base and the URLs derived from it.

Data files in ``profiles/`` and ``mappings/`` are written with :data:`DEFAULT_BASE`; a deployment that moves
the base gets every URL rewritten by :func:`rebase` when the files are loaded, ``sid/`` identifier systems
included.

>>> Canonical("https://example.net/fhir").codesystem("ascmi-form")
'https://example.net/fhir/CodeSystem/ascmi-form'
>>> rebase({"url": DEFAULT_BASE + "/ValueSet/x"}, "https://example.net/fhir")
{'url': 'https://example.net/fhir/ValueSet/x'}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEFAULT_BASE = "https://ascmi.example.org/fhir"
NETWORK_ID = "ascmi-care-partner-network"
NETWORK_REFERENCE = f"Organization/{NETWORK_ID}"


@dataclass(frozen=True, slots=True)
class Canonical:
    """URLs under one canonical base (no trailing slash)."""

    base: str = DEFAULT_BASE

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", self.base.rstrip("/"))

    def codesystem(self, id_: str) -> str:
        return f"{self.base}/CodeSystem/{id_}"

    def valueset(self, id_: str) -> str:
        return f"{self.base}/ValueSet/{id_}"

    def structuredefinition(self, id_: str) -> str:
        return f"{self.base}/StructureDefinition/{id_}"

    def conceptmap(self, id_: str) -> str:
        return f"{self.base}/ConceptMap/{id_}"

    def sid(self, name: str) -> str:
        """An identifier system owned by this deployment, e.g. ``sid/medi-cal-cin``."""
        return f"{self.base}/sid/{name}"

    @property
    def medi_cal_cin(self) -> str:
        return self.sid("medi-cal-cin")

    @property
    def network_identifier(self) -> dict[str, str]:
        return {"system": self.sid("care-partner-network"), "value": "ascmi"}


def rebase(value: Any, base: str, *, default: str = DEFAULT_BASE) -> Any:
    """A copy of ``value`` where every string starting with ``default`` starts with ``base`` instead."""
    base = base.rstrip("/")
    if base == default:
        return value
    return _rebase(value, base, default)


def _rebase(value: Any, base: str, default: str) -> Any:
    if isinstance(value, str):
        return base + value[len(default) :] if value.startswith(default) else value
    if isinstance(value, dict):
        return {k: _rebase(v, base, default) for k, v in value.items()}
    if isinstance(value, list):
        return [_rebase(v, base, default) for v in value]
    return value
