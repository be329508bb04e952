"""The overdue report (``fhir-server ascmi overdue``): fulfil Tasks still ``requested`` after their due date,
grouped per Care Partner (the Task's owner). It is the search ASCMI.md §6 names,
``Task?code=fulfill&status=requested&period=lt<today>``, with today in the server's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from fhir_server.ascmi.confidential.vocab import TASK_CODE_SYSTEM
from fhir_server.fhir import jsonio
from fhir_server.repository import conditional
from fhir_server.store.base import Store

LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class Overdue:
    task: str
    owner: str
    owner_name: str
    patient: str
    consent: str
    due: date

    def days_late(self, today: date) -> int:
        return (today - self.due).days


def query(today: date) -> str:
    return f"code={TASK_CODE_SYSTEM}|fulfill&status=requested&period=lt{today.isoformat()}"


async def overdue(store: Store, today: date) -> list[Overdue]:
    out = []
    for v in await conditional.find(store, "Task", query(today), LIMIT):  # type: ignore[arg-type]
        assert v.body is not None
        task: dict[str, Any] = jsonio.loads(v.body)
        end = ((task.get("restriction") or {}).get("period") or {}).get("end")
        if not end:
            continue  # an R4 Task found through executionPeriod, not a due date
        owner = task.get("owner") or {}
        out.append(Overdue(v.reference, str(owner.get("reference", "?")), str(owner.get("display", "")),
                           str((task.get("for") or {}).get("reference", "?")),
                           str((task.get("focus") or {}).get("reference", "?")), date.fromisoformat(end[:10])))
    return sorted(out, key=lambda o: (o.owner_name, o.owner, o.due, o.task))


def report(items: list[Overdue], today: date) -> str:
    """Plain text, one block per Care Partner."""
    if not items:
        return f"No confidential communications request is past its due date (today is {today.isoformat()})."
    lines = [f"{len(items)} confidential communications Task(s) past their due date (today is {today.isoformat()}):"]
    owner = None
    for item in items:
        if item.owner != owner:
            owner = item.owner
            count = sum(1 for i in items if i.owner == owner)
            lines.append(f"{item.owner_name or owner} ({owner}): {count} overdue")
        lines.append(f"  {item.task}  due {item.due.isoformat()} ({item.days_late(today)} days late)  "
                     f"{item.patient}  {item.consent}")
    return "\n".join(lines)
