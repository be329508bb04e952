"""Versioned updates race: N concurrent PUTs with the same If-Match have exactly one winner."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.api.support import create, fhir_server_process, patient

N = 10


async def test_concurrent_if_match_updates_have_one_winner_in_process(client: httpx.AsyncClient) -> None:
    rid = (await create(client))["id"]
    responses = await asyncio.gather(*(
        client.put(f"/fhir/Patient/{rid}", json=patient(id=rid, name=[{"family": f"writer {i}"}]),
                   headers={"If-Match": 'W/"1"'})
        for i in range(N)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [412] * (N - 1)
    assert all(r.json()["issue"][0]["code"] == "conflict" for r in responses if r.status_code == 412)
    winner = next(r for r in responses if r.status_code == 200).json()
    current = (await client.get(f"/fhir/Patient/{rid}")).json()
    assert current == winner and current["meta"]["versionId"] == "2"


def test_concurrent_if_match_updates_have_one_winner_over_http(tmp_path: Path) -> None:
    with fhir_server_process(tmp_path / "data") as base, httpx.Client(base_url=base, timeout=30) as http:
        created = http.post(f"{base}/Patient", json=patient())
        assert created.status_code == 201
        rid = created.json()["id"]

        def put(i: int) -> int:
            with httpx.Client(timeout=30) as own:  # one connection per thread: real concurrency
                return own.put(f"{base}/Patient/{rid}", json=patient(id=rid, name=[{"family": f"w{i}"}]),
                               headers={"If-Match": 'W/"1"'}).status_code

        with ThreadPoolExecutor(N) as pool:
            statuses = sorted(pool.map(put, range(N)))
        assert statuses == [200] + [412] * (N - 1)
        history = http.get(f"{base}/Patient/{rid}/_history").json()
        assert history["total"] == 2
