"""Rule 2: which of the patient's ASCMI Consents governs on day T (business time, not server time).

Candidates are ASCMI Consents (forms and revocations) that are ``active``, or ``inactive`` with a
``provision.period.end`` (revoked or superseded: they still governed their past days). An ``inactive`` Consent
without an end, and anything ``entered-in-error`` (or draft/proposed/rejected), never governs. Among the
candidates whose period contains T, the latest signed (``dateTime``) wins, ties going to the one recorded
last.
An event-based expiration has no ``period.end`` until a Care Partner records the event, so it stays open.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from fhir_server.consent.clock import within
from fhir_server.consent.compiled import CompiledConsent


def may_govern(c: CompiledConsent) -> bool:
    if c.form_type is None:  # not an ASCMI Consent (another program's directive): not ours to apply
        return False
    if c.status == "active":
        return True
    return c.status == "inactive" and c.end is not None


def governing(consents: Iterable[CompiledConsent], day: date) -> CompiledConsent | None:
    """The Consent in force on ``day``, or None (no consent on file at T)."""
    best: CompiledConsent | None = None
    best_key: tuple[object, ...] = ()
    for c in consents:
        if not may_govern(c) or not within(day, c.start, c.end):
            continue
        key = (c.signed_key, _recorded_key(c.version.recorded))
        if best is None or key >= best_key:
            best, best_key = c, key
    return best


def _recorded_key(recorded: str | int) -> tuple[int, str]:
    """Numbers and ISO instants both order correctly; numbers sort before strings only if mixed (never)."""
    return (recorded, "") if isinstance(recorded, int) else (0, recorded)
