"""The data confidential communications read from ``profiles/``: which categories are sensitive services, the
kinds of communication, the request and withdrawal JSON Schemas, and the fixed codes the Consent and Tasks carry.

Loaded once per canonical base (cached), on top of the ASCMI :class:`~fhir_server.ascmi.terminology.Terminology`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from fhir_server.ascmi.canonical import rebase
from fhir_server.ascmi.terminology import DATA_ROOT, Coding, Terminology, load_terminology
from fhir_server.ascmi.vocab import LOINC, coding

FORM_CODE = "CONFIDENTIAL-COMMUNICATIONS"
PATIENT_CONSENT = coding(LOINC, "59284-0", "Patient Consent")
TASK_CODE_SYSTEM = "http://hl7.org/fhir/CodeSystem/task-code"
FULFILL = coding(TASK_CODE_SYSTEM, "fulfill", "Fulfill the focal request")
#: Task statuses after which nobody has to act any more.
CLOSED_TASK_STATUSES = frozenset({"completed", "cancelled", "failed", "rejected", "entered-in-error"})
VIA = ("electronic", "phone", "mail")


@dataclass(frozen=True, slots=True, eq=False)
class Vocabulary:
    terminology: Terminology
    sensitive_categories: tuple[str, ...]  # ascmi-category codes (ValueSet ascmi-sensitive-services)
    sensitive_labels: tuple[Coding, ...]  # their security labels, in category order
    kinds: dict[str, str]  # ascmi-communication-kind code → display
    request_schema: dict[str, Any]
    withdrawal_schema: dict[str, Any]

    @property
    def canonical(self) -> Any:
        return self.terminology.canonical

    @property
    def form_system(self) -> str:
        return str(self.canonical.codesystem("ascmi-form"))

    def form_coding(self) -> dict[str, str]:
        return self.terminology.form_types[FORM_CODE].to_json()

    def category_of(self, label: dict[str, Any]) -> str | None:
        """The ASCMI category of a security label Coding (a system-less one matches by code)."""
        for category in self.terminology.categories.values():
            for c in category.labels:
                if c.code == label.get("code") and label.get("system") in (None, c.system):
                    return category.code
        return None


def _read(rel: str, base: str) -> dict[str, Any]:
    with open(DATA_ROOT / rel, encoding="utf-8") as f:
        return rebase(json.load(f), base)  # type: ignore[no-any-return]


@lru_cache(maxsize=8)
def load_vocabulary(canonical_base: str | None = None) -> Vocabulary:
    terminology = load_terminology(canonical_base) if canonical_base else load_terminology()
    base = terminology.base
    valueset = _read("profiles/ValueSet-ascmi-sensitive-services.json", base)
    categories = tuple(c["code"] for inc in valueset["compose"]["include"] for c in inc.get("concept", []))
    unknown = [c for c in categories if c not in terminology.categories]
    if unknown:
        raise ValueError(f"ValueSet ascmi-sensitive-services names categories not in ascmi-category: {unknown}")
    labels = tuple(label for c in categories for label in terminology.categories[c].labels)
    kinds_cs = _read("profiles/CodeSystem-ascmi-communication-kind.json", base)
    return Vocabulary(
        terminology=terminology,
        sensitive_categories=categories,
        sensitive_labels=labels,
        kinds={c["code"]: c.get("display", c["code"]) for c in kinds_cs["concept"]},
        request_schema=_read("profiles/ascmi-confidential-communication.schema.json", base),
        withdrawal_schema=_read("profiles/ascmi-confidential-communication-withdrawal.schema.json", base),
    )
