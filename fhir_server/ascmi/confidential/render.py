"""A confidential communications request in plain language (``fhir-server ascmi render REQUEST``): what it
covers, where communications must go, from when, and by when every Care Partner must act.

>>> print(render_request(EXAMPLE, vocabulary=load_vocabulary()).splitlines()[0])
Confidential communications request R-1, received by Golden Poppy Health Plan by first-class mail on Friday 2026-12-04.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from fhir_server.ascmi.confidential.calendar import DAYS_TO_ACT, due_date
from fhir_server.ascmi.confidential.vocab import Vocabulary, load_vocabulary

_VIA = {"electronic": "electronically", "phone": "by phone", "mail": "by first-class mail"}

EXAMPLE: dict[str, Any] = {
    "requestId": "R-1", "receivedBy": {"name": "Golden Poppy Health Plan"}, "receivedDate": "2026-12-04",
    "receivedVia": "mail", "individual": {"givenName": "Ana", "familyName": "Reyes", "birthDate": "2009-03-01"},
    "designated": {"email": "ana@example.org"},
}

__all__ = ["EXAMPLE", "load_vocabulary", "render_request"]


def _address(a: Mapping[str, Any]) -> str:
    return ", ".join([*a.get("line", []), a.get("city", ""), f"{a.get('state', '')} {a.get('postalCode', '')}".strip()])


def contacts_text(designated: Mapping[str, Any]) -> list[str]:
    out = []
    if designated.get("address"):
        out.append(f"mail to {_address(designated['address'])}")
    if designated.get("email"):
        out.append(f"e-mail to {designated['email']}")
    if designated.get("phone"):
        out.append(f"phone calls to {designated['phone']}")
    return out


def render_request(request: Mapping[str, Any], *, vocabulary: Vocabulary) -> str:
    """Several lines of plain text describing a (validated) request."""
    received = date.fromisoformat(request["receivedDate"])
    via = request["receivedVia"]
    person = request["individual"]
    lines = [
        f"Confidential communications request {request['requestId']}, received by {request['receivedBy']['name']} "
        f"{_VIA[via]} on {received.strftime('%A')} {received.isoformat()}.",
        f"Member: {person['givenName']} {person['familyName']}, born {person['birthDate']}"
        + (f" (Medi-Cal {person['mediCalId']})." if person.get("mediCalId") else "."),
    ]
    if request.get("scope", "sensitive-services") == "all-communications":
        lines.append("Covers: every communication about the member.")
    else:
        names = [vocabulary.terminology.categories[c].display for c in vocabulary.sensitive_categories]
        lines.append(f"Covers: communications about sensitive services ({'; '.join(names)}).")
    lines.append("That is: " + "; ".join(k[0].lower() + k[1:] for k in vocabulary.kinds.values()) + ".")
    lines.append("Send them only as the member designated: " + "; ".join(contacts_text(request["designated"])) + ".")
    lines.append("Never to the subscriber or other enrollees, even when they hold the policy.")
    until = f"through {request['ends']}" if request.get("ends") else "until withdrawn or replaced by a newer request"
    lines.append(f"Applies from {received.isoformat()} {until}.")
    due = due_date(received, via)
    lines.append(f"Due: every plan and provider that must act has until {due.strftime('%A')} {due.isoformat()} "
                 f"({DAYS_TO_ACT[via]} calendar days after receipt).")
    return "\n".join(lines)
