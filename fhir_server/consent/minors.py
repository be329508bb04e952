"""Rule 5: a minor's own consent.

California lets a minor consent alone to some services (§2 table; property
``minor-may-consent`` of CodeSystem ascmi-category); information about
those services is then the minor's to share, so while the patient is under 18 at T, a permit in the Consent
covers such a category only when the minor signed for it. The mapping records that signature on the nested
permit provision of the category as the extension ``[base]/StructureDefinition/ascmi-minor-signature``
(valueDate = the minor's signature date); a parent's or guardian's signature alone does not count.
A patient without a known birth date is treated as an adult (the form always carries one).
"""

from __future__ import annotations

from datetime import date

from fhir_server.consent.tables import Tables

AGE_OF_MAJORITY = 18


def age_on(birth: date, day: date) -> int:
    years = day.year - birth.year
    return years - 1 if (day.month, day.day) < (birth.month, birth.day) else years


def is_minor(birth: date | None, day: date) -> bool:
    return birth is not None and age_on(birth, day) < AGE_OF_MAJORITY


def needs_minor_signature(category: str, birth: date | None, day: date, tables: Tables) -> bool:
    """True when a consent permit of ``category`` only counts if it carries the minor's signature."""
    cat = tables.categories.get(category)
    return cat is not None and cat.minor_may_consent_alone and is_minor(birth, day)
