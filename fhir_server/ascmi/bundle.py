"""Building a FHIR transaction Bundle: ``urn:uuid`` fullUrls, conditional requests, injectable ids.

New resources get ``urn:uuid:`` fullUrls and reference each other by them; the transaction processor replaces
them with the ids it assigns (or with the id of the resource an ``ifNoneExist`` search found). Ids come from
an injectable factory so examples and tests are byte-for-byte reproducible.

>>> b = TransactionBuilder(sequential_ids("doc"))
>>> b.post({"resourceType": "Patient"}, if_none_exist="identifier=s|1")
'urn:uuid:2e44e388-f616-56df-8aa1-e9583dd1f133'
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

IdFactory = Callable[[], str]


def random_ids() -> IdFactory:
    return lambda: str(uuid.uuid4())


def sequential_ids(seed: str) -> IdFactory:
    """Deterministic UUIDs (v5 of ``seed/n``) for reproducible bundles."""
    counter: Iterator[int] = iter(range(1, 1 << 30))
    return lambda: str(uuid.uuid5(uuid.NAMESPACE_URL, f"{seed}/{next(counter)}"))


def escape_token(text: str) -> str:
    """Escape a search value (``\\``, ``,``, ``|``, ``$``) and percent-encode what a query string cannot
    carry."""
    for ch in ("\\", ",", "|", "$"):
        text = text.replace(ch, "\\" + ch)
    return quote(text, safe=":/\\,|$@.-_~")


def token_query(param: str, identifiers: list[dict[str, str]]) -> str:
    """``identifier=sys|val,sys2|val2``: any of the identifiers matches (they all name the same party)."""
    values = ",".join(f"{escape_token(i['system'])}|{escape_token(i['value'])}" for i in identifiers)
    return f"{param}={values}"


@dataclass
class TransactionBuilder:
    new_id: IdFactory
    entries: list[dict[str, Any]] = field(default_factory=list)

    def post(self, resource: dict[str, Any], *, if_none_exist: str | None = None) -> str:
        full_url = f"urn:uuid:{self.new_id()}"
        request: dict[str, Any] = {"method": "POST", "url": resource["resourceType"]}
        if if_none_exist:
            request["ifNoneExist"] = if_none_exist
        self.entries.append({"fullUrl": full_url, "resource": resource, "request": request})
        return full_url

    def put(self, resource: dict[str, Any], *, if_match: str | None = None, full_url: str | None = None) -> str:
        """Update an existing resource (``resource["id"]`` set), versioned with ``If-Match`` when given.

        No fullUrl unless given: it must be absolute, and only the server knows its base; other entries refer
        to the resource as ``Type/id``.
        """
        url = f"{resource['resourceType']}/{resource['id']}"
        request: dict[str, Any] = {"method": "PUT", "url": url}
        if if_match:
            request["ifMatch"] = if_match
        entry: dict[str, Any] = {"fullUrl": full_url} if full_url else {}
        self.entries.append({**entry, "resource": resource, "request": request})
        return url

    def to_json(self) -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": "transaction", "entry": self.entries}


def weak_etag(version_id: str) -> str:
    return f'W/"{version_id}"'
