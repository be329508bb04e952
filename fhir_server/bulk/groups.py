"""Group membership for Group-level export."""

from __future__ import annotations

from fhir_server.ascmi.canonical import NETWORK_REFERENCE
from fhir_server.fhir import jsonio
from fhir_server.security.caller import Caller
from fhir_server.store.base import ResourceVersion


def managed_for(caller: Caller, group: ResourceVersion) -> bool:
    """Is this one of the caller's Care Partner Groups (``managingEntity`` = its Organization, or the network for
    ``Group/ascmi-all-care-partners``)?

    Such a Group may be exported by that Care Partner even when the gate withholds the Group *resource* (it lists
    persons, some of whom may not let this partner see anything): the export uses the member list only to choose
    patients and then discloses, resource by resource, exactly what the gate allows — members it may not see add
    nothing to the files, so the list is not disclosed.
    """
    if caller.organization is None or group.body is None:
        return False
    manager = (jsonio.loads(group.body).get("managingEntity") or {}).get("reference")
    return manager in (caller.organization, NETWORK_REFERENCE)


def member_ids(group: ResourceVersion) -> list[str]:
    """Ids of the Patients a Group lists as active members (``member.inactive`` true → left out).

    >>> from fhir_server.store.base import ResourceVersion
    >>> g = b'{"resourceType":"Group","member":[{"entity":{"reference":"Patient/1"}},'\\
    ...     b'{"entity":{"reference":"Patient/2"},"inactive":true},{"entity":{"reference":"Device/3"}}]}'
    >>> member_ids(ResourceVersion("Group", "g", 1, "2026-01-01T00:00:00.000Z", False, g))
    ['1']
    """
    if group.body is None:
        return []
    ids: list[str] = []
    for member in jsonio.loads(group.body).get("member") or []:
        ref = ((member or {}).get("entity") or {}).get("reference") or ""
        rtype, _, pid = ref.rpartition("/")
        if rtype.rsplit("/", 1)[-1] == "Patient" and pid and not member.get("inactive"):
            ids.append(pid)
    return list(dict.fromkeys(ids))
