"""The same ASCMI form posted N times at once files ONE Consent for ONE Patient (a concurrent duplicate answers
like a retry: 200, "already on file"), on both stores. Before, every request looked for the form outside its
transaction, so all of them could find nothing and file it again."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import httpx

from benchmarks.mixed import CIN, form
from tests.ascmi_http.support import count, search, total

N = 8


async def test_the_same_form_posted_concurrently_is_filed_once(client: httpx.AsyncClient) -> None:
    filed = form("91000001A", random.Random(7))
    responses = await asyncio.gather(*(client.post("/ascmi/forms", json=filed) for _ in range(N)))
    assert sorted(r.status_code for r in responses) == [200] * (N - 1) + [201], \
        [r.text[:300] for r in responses if r.status_code not in (200, 201)]
    assert await count(client, "Patient") == 1
    assert await count(client, "Consent") == 1
    assert await count(client, "Provenance") == 1
    for rtype in ("Patient", "Consent", "Provenance"):
        assert await total(client, rtype) == 1, rtype  # one version: not written twice, not superseded
    consents = {r.headers["location"].split("/_history")[0] for r in responses}
    assert len(consents) == 1  # every answer names the one Consent
    later = [r for r in responses if r.status_code == 200]
    assert all("already on file" in r.json()["issue"][0]["diagnostics"] for r in later)


def _forms_of(cin: str) -> list[dict[str, Any]]:
    rng, forms = random.Random(8), []
    for i in range(N):
        f = form(cin, rng)
        f["formId"] = f"RACE-{i}"
        f["signedDate"] = f["signature"]["date"] = f"2026-01-{10 + i:02d}"
        forms.append(f)
    return forms


async def _statuses(client: httpx.AsyncClient, patient_id: str) -> list[tuple[str, str]]:
    consents = await search(client, f"Consent?patient=Patient/{patient_id}&_count=100")
    return sorted((c["identifier"][0]["value"], c["status"]) for c in consents)


async def test_forms_of_a_new_person_filed_concurrently_end_as_if_filed_one_by_one(
        client: httpx.AsyncClient) -> None:
    """One Patient, every form filed once, and the same statuses (supersession) as filing them in turn: an
    intake planned while the person was new is planned again once another intake created the person."""
    responses = await asyncio.gather(*(client.post("/ascmi/forms", json=f) for f in _forms_of("91000002B")))
    assert Counter(r.status_code for r in responses) == {201: N}, [r.text[:300] for r in responses]
    for f in _forms_of("91000003C"):
        assert (await client.post("/ascmi/forms", json=f)).status_code == 201
    assert await count(client, "Patient") == 2
    assert await count(client, "Consent") == 2 * N
    concurrent = await search(client, f"Patient?identifier={CIN}|91000002B")
    in_turn = await search(client, f"Patient?identifier={CIN}|91000003C")
    assert len(concurrent) == len(in_turn) == 1
    assert await _statuses(client, concurrent[0]["id"]) == await _statuses(client, in_turn[0]["id"])


async def test_the_same_form_of_a_known_person_posted_concurrently_is_filed_once(client: httpx.AsyncClient) -> None:
    """The person is on file already and the form is older than theirs (stored inactive, superseding nothing, so
    no If-Match catches the race): the Consent's own check (formId + collector, for this person) decides."""
    second, first = _forms_of("91000004D")[:2]
    assert (await client.post("/ascmi/forms", json=first)).status_code == 201
    responses = await asyncio.gather(*(client.post("/ascmi/forms", json=second) for _ in range(N)))
    assert sorted(r.status_code for r in responses) == [200] * (N - 1) + [201], \
        [r.text[:300] for r in responses if r.status_code not in (200, 201)]
    assert len(await search(client, f"Consent?identifier={second['formId']}")) == 1
    assert await count(client, "Consent") == 2
    assert await total(client, "Consent") == 2
